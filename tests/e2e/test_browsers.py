"""Browsers over real HTTP: with CORS_ORIGINS, each service answers a listed
origin's preflight with a 204 and exposes the headers clients read, errors
included; an origin not listed, or a service with no origins, gets no CORS
headers."""

from __future__ import annotations

import pytest
import requests

from .api_client import TIMEOUT
from .services import Service, Shop, StartService

pytestmark = pytest.mark.e2e

PAGE = "https://shop.example"
SERVICES = ["users", "beers", "orders"]
# A path of each service, the methods it allows, and an error to read.
PATHS = {
    "users": ("/api/users/me", {"GET"}, ("/api/users/me", 401)),
    "beers": ("/api/beers/123456", {"GET", "PUT", "PATCH", "DELETE"}, ("/api/beers/nope", 404)),
    "orders": ("/api/orders/current", {"GET", "PUT", "DELETE"}, ("/api/orders/current", 401)),
}
EXPOSED = {
    "Location",
    "Retry-After",
    "X-Request-ID",
    "X-Total-Count",
    "Idempotent-Replayed",
    "RateLimit",
    "RateLimit-Policy",
}


@pytest.fixture(scope="module")
def with_cors(start_service: StartService) -> dict[str, Service]:
    """Each service once more, with CORS_ORIGINS set (one worker each: what is
    checked here does not depend on the worker count)."""
    return {
        name: start_service(name, workers=1, CORS_ORIGINS=f"{PAGE},http://localhost:3000")
        for name in SERVICES
    }


def preflight(url: str, origin: str, method: str) -> requests.Response:
    return requests.options(
        url,
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": "authorization,idempotency-key",
        },
        timeout=TIMEOUT,
    )


def cors_headers(response: requests.Response) -> dict[str, str]:
    return {
        name: value
        for name, value in response.headers.items()
        if name.lower().startswith("access-control-")
    }


def names(header: str) -> set[str]:
    return {name.strip() for name in header.split(",")}


@pytest.mark.parametrize("service", SERVICES)
def test_a_preflight_is_204_with_the_paths_methods_and_the_apis_headers(
    with_cors: dict[str, Service], service: str
) -> None:
    path, methods, _ = PATHS[service]
    response = preflight(with_cors[service].url + path, PAGE, sorted(methods)[-1])
    assert response.status_code == 204, response.text
    assert response.headers["Access-Control-Allow-Origin"] == PAGE
    assert methods <= names(response.headers["Access-Control-Allow-Methods"])
    assert names(response.headers["Access-Control-Allow-Headers"]) == {
        "Authorization",
        "Content-Type",
        "Idempotency-Key",
        "X-Request-ID",
    }
    assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize("service", SERVICES)
def test_answers_and_errors_expose_the_headers_to_the_listed_origin(
    with_cors: dict[str, Service], service: str
) -> None:
    base = with_cors[service].url
    _, _, (error_path, error_status) = PATHS[service]
    for path, status in (("/health", 200), (error_path, error_status)):
        response = requests.get(base + path, headers={"Origin": PAGE}, timeout=TIMEOUT)
        assert response.status_code == status, response.text
        assert response.headers["Access-Control-Allow-Origin"] == PAGE
        assert names(response.headers["Access-Control-Expose-Headers"]) == EXPOSED
        assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize("service", SERVICES)
def test_an_origin_not_listed_gets_no_cors_headers(
    with_cors: dict[str, Service], service: str
) -> None:
    path, _, _ = PATHS[service]
    url = with_cors[service].url + path
    assert cors_headers(preflight(url, "https://evil.example", "GET")) == {}
    answer = requests.get(url, headers={"Origin": "https://evil.example"}, timeout=TIMEOUT)
    assert cors_headers(answer) == {}


@pytest.mark.parametrize("service", SERVICES)
def test_without_cors_origins_no_service_sends_cors_headers(shop: Shop, service: str) -> None:
    path, _, _ = PATHS[service]
    url = getattr(shop, service).url + path
    assert cors_headers(preflight(url, PAGE, "GET")) == {}
    answer = requests.get(url, headers={"Origin": PAGE}, timeout=TIMEOUT)
    assert cors_headers(answer) == {}
