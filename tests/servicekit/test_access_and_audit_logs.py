"""The lines an operator reads: one per request at INFO (ACCESS_LOG=false: none),
failed and throttled logins by username (never the password), and an audit
line for every change an administrator makes."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient

import beers
import users
import users.domain
from beers.models import db as beers_db
from tests.databases import fresh_app
from tests.fakes import FakeUsersClient
from users.models import db as users_db

ADMIN = {"Authorization": "Bearer admin-token"}  # the fakes' administrator, id 1
PASSWORD = "ivan-s-own-passphrase"


@pytest.fixture
def beers_client(tmp_path: Path) -> Iterator[FlaskClient]:
    with fresh_app(
        beers.create_app, beers_db, "beers", tmp_path, users_client=FakeUsersClient()
    ) as app:
        yield app.test_client()


@pytest.fixture
def users_app(tmp_path: Path) -> Iterator[APIFlask]:
    settings = {"LOGIN_MAX_FAILURES": 1}
    with fresh_app(users.create_app, users_db, "users", tmp_path, settings) as app:
        yield app


def lines(caplog: pytest.LogCaptureFixture, logger: str) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == logger]


def test_every_request_has_an_access_line_at_info(
    beers_client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    beers_client.get("/api/beers/?limit=1", headers={"X-Request-ID": "walk-1"})
    (record,) = [r for r in caplog.records if r.name == "servicekit.access"]
    assert record.levelname == "INFO"
    assert record.getMessage().startswith("GET /api/beers/ 200 ")  # a success, and no query
    assert record.__dict__["request_id"] == "walk-1"
    assert record.__dict__["route"] == "/api/beers/"
    assert record.__dict__["duration_ms"] >= 0


@pytest.mark.parametrize("path", ["/health", "/ready", "/metrics"])
def test_a_probe_or_scrape_that_went_well_is_an_access_line_at_debug_only(
    beers_client: FlaskClient, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    caplog.set_level("DEBUG")
    assert beers_client.get(path).status_code == 200
    (record,) = [r for r in caplog.records if r.name == "servicekit.access"]
    assert record.levelname == "DEBUG"
    assert record.getMessage().startswith(f"GET {path} 200 ")


def test_access_log_false_turns_the_lines_off(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    settings = {"ACCESS_LOG": False}
    with fresh_app(
        beers.create_app, beers_db, "beers", tmp_path, settings, users_client=FakeUsersClient()
    ) as app:
        app.test_client().get("/api/beers/")
        app.test_client().get("/no/such/thing")
    assert lines(caplog, "servicekit.access") == []


def test_failed_and_throttled_logins_name_the_username_never_the_password(
    users_app: APIFlask, caplog: pytest.LogCaptureFixture
) -> None:
    client = users_app.test_client()
    body = {"username": "ivan", "email": "ivan@example.com", "password": PASSWORD}
    assert client.post("/api/users/register", json=body).status_code == 201
    caplog.set_level("INFO")
    for _ in range(2):
        client.post("/api/users/login", json={"username": "ivan", "password": "s3cret-guess"})

    assert lines(caplog, "users.views") == [
        "login of ivan from 127.0.0.1 failed",
        "login of ivan from 127.0.0.1 throttled",
    ]
    assert "s3cret-guess" not in caplog.text


def test_beer_changes_name_the_administrator_and_what_changed(
    beers_client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("INFO")
    beer = {"sku": "KAM-1", "name": "Каменица", "price": "1.80"}
    assert beers_client.post("/api/beers/", json=beer, headers=ADMIN).status_code == 201
    patch = beers_client.patch("/api/beers/KAM-1", json={"price": "1.85"}, headers=ADMIN)
    assert patch.status_code == 200
    replace = {"name": "Kamenitza", "price": "1.85"}
    assert beers_client.put("/api/beers/KAM-1", json=replace, headers=ADMIN).status_code == 200
    assert beers_client.delete("/api/beers/KAM-1", headers=ADMIN).status_code == 204
    assert beers_client.delete("/api/beers/KAM-1", headers=ADMIN).status_code == 404

    assert lines(caplog, "beers.audit") == [
        "administrator 1 added beer KAM-1: name Каменица, price 1.80",
        "administrator 1 changed beer KAM-1: price from 1.80 to 1.85",
        "administrator 1 changed beer KAM-1: name from Каменица to Kamenitza",
        "administrator 1 deleted beer KAM-1",
    ]


def test_promotions_and_demotions_name_the_administrator(
    users_app: APIFlask, caplog: pytest.LogCaptureFixture
) -> None:
    client = users_app.test_client()
    ids = {}
    for name in ("boss", "ivan"):
        body = {"username": name, "email": f"{name}@example.com", "password": PASSWORD}
        ids[name] = client.post("/api/users/register", json=body).json["id"]
    with users_app.app_context():
        users.domain.promote_to_admin("boss")
    login = client.post("/api/users/login", json={"username": "boss", "password": PASSWORD})
    boss = {"Authorization": f"Bearer {login.json['token']}"}
    caplog.set_level("INFO")

    for is_admin in (True, False):
        response = client.patch(
            f"/api/users/{ids['ivan']}", json={"is_admin": is_admin}, headers=boss
        )
        assert response.status_code == 200

    assert lines(caplog, "users.audit") == [
        f"administrator {ids['boss']} promoted user {ids['ivan']} (ivan)",
        f"administrator {ids['boss']} demoted user {ids['ivan']} (ivan)",
    ]
