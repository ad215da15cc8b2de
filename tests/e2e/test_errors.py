"""Every error, whatever its cause, is application/problem+json: never HTML."""

from __future__ import annotations

import pytest
import requests

from tests.problems import assert_problem

from .api_client import TIMEOUT, bearer
from .services import Shop

pytestmark = pytest.mark.e2e

TOO_LARGE = 1024 * 1024 + 1024


def service_url(shop: Shop, service: str) -> str:
    url: str = getattr(shop, service).url
    return url


@pytest.mark.parametrize(
    ("service", "path"),
    [
        ("users", "/no/such/path"),
        ("users", "/api/users/nobody/here"),
        ("beers", "/no/such/path"),
        ("beers", "/api/beers/no-such-sku"),
        ("orders", "/no/such/path"),
        ("orders", "/api/orders/current/extra"),
    ],
)
def test_an_unknown_path_is_a_404_problem(shop: Shop, service: str, path: str) -> None:
    response = requests.get(service_url(shop, service) + path, timeout=TIMEOUT)

    assert_problem(response, 404)


@pytest.mark.parametrize("service", ["users", "beers", "orders"])
def test_options_on_an_unknown_path_is_a_404_problem_with_its_type(
    shop: Shop, service: str
) -> None:
    response = requests.options(service_url(shop, service) + "/no/such/path", timeout=TIMEOUT)

    assert_problem(response, 404)
    assert response.headers["Content-Type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("service", "method", "path"),
    [
        ("users", "GET", "/api/users/register"),
        ("users", "DELETE", "/api/users/login"),
        ("beers", "PATCH", "/api/beers/"),
        ("beers", "POST", "/api/beers/some-sku"),
        ("orders", "POST", "/api/orders/current"),
        ("orders", "GET", "/api/orders/checkout"),
    ],
)
def test_a_wrong_method_is_a_405_problem_saying_what_is_allowed(
    shop: Shop, service: str, method: str, path: str
) -> None:
    response = requests.request(method, service_url(shop, service) + path, timeout=TIMEOUT)

    assert_problem(response, 405)
    assert response.headers["Allow"]
    assert method not in response.headers["Allow"].split(", ")


@pytest.mark.parametrize(
    ("service", "method", "path", "caller"),
    [
        ("users", "POST", "/api/users/register", None),
        ("beers", "POST", "/api/beers/", "admin"),
        ("orders", "PUT", "/api/orders/current", "customer"),
    ],
)
@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
def test_a_body_over_one_mebibyte_is_a_413_problem(
    shop: Shop,
    admin_token: str,
    service: str,
    method: str,
    path: str,
    caller: str | None,
    content_type: str,
) -> None:
    headers = {"Content-Type": content_type}
    if caller == "admin":
        headers.update(bearer(admin_token))
    elif caller == "customer":
        headers.update(bearer(shop.api.new_customer().token))
    body = b'{"sku": "' + b"x" * TOO_LARGE + b'"}'

    response = requests.request(
        method, service_url(shop, service) + path, data=body, headers=headers, timeout=TIMEOUT
    )

    assert_problem(response, 413)


@pytest.mark.parametrize("service", ["users", "beers", "orders"])
def test_a_body_that_is_not_json_is_a_400_problem(
    shop: Shop, admin_token: str, service: str
) -> None:
    path = {"users": "/api/users/login", "beers": "/api/beers/", "orders": "/api/orders/current"}
    method = "PUT" if service == "orders" else "POST"

    response = requests.request(
        method,
        service_url(shop, service) + path[service],
        data=b'{"sku": ',
        headers={"Content-Type": "application/json", **bearer(admin_token)},
        timeout=TIMEOUT,
    )

    assert_problem(response, 400)


def test_a_long_request_line_is_still_the_applications_to_answer(shop: Shop) -> None:
    """Up to the server's 128 KiB head the application answers, with problem+json."""
    path = "/api/beers/?" + "sku=123456&" * 1000 + "limit=abc"

    response = requests.get(shop.beers.url + path, timeout=TIMEOUT)

    assert_problem(response, 400)


@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [
        pytest.param("/api/beers/?" + "sku=123456&" * 20000, {}, (414, 431), id="request line"),
        pytest.param("/api/beers/", {"X-Padding": "x" * 300_000}, (431,), id="headers"),
    ],
)
def test_a_head_too_big_for_the_server_is_refused_with_an_empty_body(
    shop: Shop, path: str, headers: dict[str, str], status: tuple[int, ...]
) -> None:
    """The server refuses these before the application sees them (see the README)."""
    response = requests.get(shop.beers.url + path, headers=headers, timeout=TIMEOUT)

    assert response.status_code in status
    assert response.content == b""
