"""Browsers: CORS_ORIGINS, the preflight, exposed headers, errors readable, and
nothing at all for an origin not listed or with no origins set."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from werkzeug.datastructures import Headers

import beers
from servicekit.cors import ALLOWED_HEADERS, EXPOSED_HEADERS, web_origins
from tests.databases import fresh_app
from tests.fakes import FakeUsersClient

PAGE = "https://shop.example"
OTHER_PAGE = "http://localhost:8080"
ADMIN = {"Authorization": "Bearer admin-token"}


def preflight(origin: str, method: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "authorization,content-type",
    }


def beers_client(folder: Path, origins: object) -> Iterator[FlaskClient]:
    settings = {"CORS_ORIGINS": origins}
    with fresh_app(
        beers.create_app, beers.models.db, "beers", folder, settings, users_client=FakeUsersClient()
    ) as app:
        yield app.test_client()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[FlaskClient]:
    yield from beers_client(tmp_path, (PAGE, OTHER_PAGE))


def cors_headers(headers: Headers) -> dict[str, str]:
    return {
        name: value for name, value in headers.items() if name.lower().startswith("access-control-")
    }


def test_a_preflight_is_a_204_allowing_the_paths_methods_and_the_apis_headers(
    client: FlaskClient,
) -> None:
    response = client.options("/api/beers/123456", headers=preflight(PAGE, "PATCH"))
    assert response.status_code == 204
    assert response.data == b""
    assert response.headers["Access-Control-Allow-Origin"] == PAGE
    methods = {m.strip() for m in response.headers["Access-Control-Allow-Methods"].split(",")}
    assert {"GET", "PUT", "PATCH", "DELETE"} <= methods
    assert "POST" not in methods  # the collection's, not this path's
    allowed = response.headers["Access-Control-Allow-Headers"].split(", ")
    assert allowed == list(ALLOWED_HEADERS)
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "Origin" in response.headers["Vary"]


def test_the_collections_preflight_allows_post(client: FlaskClient) -> None:
    response = client.options("/api/beers", headers=preflight(OTHER_PAGE, "POST"))
    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == OTHER_PAGE
    assert "POST" in response.headers["Access-Control-Allow-Methods"]


@pytest.mark.parametrize(
    "method, path, headers, status",
    [
        ("get", "/api/beers/", {}, 200),
        ("get", "/api/beers/nope", {}, 404),
        ("get", "/api/beers/?qty=3", {}, 400),
        ("delete", "/api/beers/123456", {}, 401),
        ("post", "/api/beers/", ADMIN, 400),
        ("get", "/no/such/path", {}, 404),
    ],
)
def test_answers_and_errors_alike_allow_the_origin_and_expose_the_headers(
    client: FlaskClient, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    response = client.open(path, method=method, headers={**headers, "Origin": PAGE})
    assert response.status_code == status
    assert response.headers["Access-Control-Allow-Origin"] == PAGE
    exposed = {
        name.strip() for name in response.headers["Access-Control-Expose-Headers"].split(",")
    }
    assert exposed == set(EXPOSED_HEADERS)
    assert "Access-Control-Allow-Credentials" not in response.headers


def test_an_origin_is_matched_whole_not_as_a_prefix(client: FlaskClient) -> None:
    for origin in (f"{PAGE}.evil.example", "https://shop.exampl", "http://shop.example"):
        response = client.get("/api/beers/", headers={"Origin": origin})
        assert cors_headers(response.headers) == {}, origin


def test_an_origin_not_listed_gets_no_cors_headers(client: FlaskClient) -> None:
    answer = client.get("/api/beers/", headers={"Origin": "https://evil.example"})
    assert cors_headers(answer.headers) == {}
    refused = client.options("/api/beers/1", headers=preflight("https://evil.example", "PUT"))
    assert refused.status_code != 204
    assert cors_headers(refused.headers) == {}


def test_a_request_without_an_origin_gets_no_cors_headers(client: FlaskClient) -> None:
    assert cors_headers(client.get("/api/beers/").headers) == {}


def test_without_origins_there_are_no_cors_headers_at_all(tmp_path: Path) -> None:
    for client in beers_client(tmp_path, ()):
        answer = client.get("/api/beers/", headers={"Origin": PAGE})
        asked = client.options("/api/beers/1", headers=preflight(PAGE, "PUT"))
        assert cors_headers(answer.headers) == {}
        assert cors_headers(asked.headers) == {}
        assert "Vary" not in answer.headers


def test_the_setting_may_be_given_as_the_environment_gives_it(tmp_path: Path) -> None:
    for client in beers_client(tmp_path, f" {PAGE} ,{OTHER_PAGE}"):
        response = client.get("/api/beers/", headers={"Origin": OTHER_PAGE})
        assert response.headers["Access-Control-Allow-Origin"] == OTHER_PAGE


def test_origins_are_read_separated_by_commas() -> None:
    assert web_origins("https://a.example, http://localhost:3000,,") == (
        "https://a.example",
        "http://localhost:3000",
    )
    assert web_origins("") == ()


@pytest.mark.parametrize(
    "raw", ["*", "shop.example", "https://shop.example/", "https://shop.example/app", "ftp://x"]
)
def test_what_is_not_an_origin_is_refused_saying_what_would_do(raw: str) -> None:
    with pytest.raises(ValueError, match="scheme://host"):
        web_origins(raw)
