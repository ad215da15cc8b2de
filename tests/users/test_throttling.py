"""Login throttling: failures counted per username and address in the database,
429 with Retry-After and the RateLimit headers, and a password check at a time
per worker."""

from collections.abc import Iterator
from datetime import timedelta
from ipaddress import ip_network
from pathlib import Path

import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

import users.domain
from servicekit.db import utcnow, writing
from tests.databases import fresh_app
from tests.users.conftest import Register
from users import create_app
from users.models import LoginFailure, db
from users.throttling import client_address, unthrottle

PASSWORD = "ivan-s-own-passphrase"
LIMITS = {"LOGIN_MAX_FAILURES": 3, "LOGIN_MAX_FAILURES_PER_ADDRESS": 5, "LOGIN_WINDOW_SECONDS": 600}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[APIFlask]:
    with fresh_app(create_app, db, "users", tmp_path, settings=LIMITS) as app:
        yield app


def log_in(
    client: FlaskClient,
    username: str = "ivan",
    password: str = "wrong password",
    address: str = "10.0.0.1",
    **headers: str,
) -> TestResponse:
    return client.post(
        "/api/users/login",
        json={"username": username, "password": password},
        environ_base={"REMOTE_ADDR": address},
        headers=headers,
    )


def fail(
    client: FlaskClient, times: int, username: str = "ivan", address: str = "10.0.0.1"
) -> None:
    for _ in range(times):
        assert log_in(client, username, address=address).status_code == 401


def test_each_failure_counts_down_the_ratelimit_headers(
    client: FlaskClient, register: Register
) -> None:
    register("ivan", PASSWORD)

    answers = [log_in(client) for _ in range(3)]

    assert [a.headers["RateLimit"].split(";")[1] for a in answers] == ["r=2", "r=1", "r=0"]
    assert all(a.headers["RateLimit-Policy"] == '"login";q=3;w=600' for a in answers)
    assert answers[0].headers["RateLimit"].endswith(";t=600")


def test_too_many_failures_is_429_without_checking_the_password(
    client: FlaskClient, register: Register, monkeypatch: pytest.MonkeyPatch
) -> None:
    register("ivan", PASSWORD)
    fail(client, 3)
    checked = []
    monkeypatch.setattr(users.domain, "check_password_hash", lambda *a: checked.append(a))

    response = log_in(client, password=PASSWORD)  # even the right one

    assert response.status_code == 429
    assert response.mimetype == "application/problem+json"
    assert 590 <= int(response.headers["Retry-After"]) <= 600
    assert response.headers["RateLimit"].startswith('"login";r=0;')
    assert checked == []


def test_429s_and_400s_are_not_counted(client: FlaskClient, register: Register) -> None:
    register("ivan", PASSWORD)
    fail(client, 2)
    client.post(
        "/api/users/login", json={"username": "ivan"}, environ_base={"REMOTE_ADDR": "10.0.0.1"}
    )

    assert log_in(client, password=PASSWORD).status_code == 200


def test_a_successful_login_clears_the_count_for_that_address(
    client: FlaskClient, register: Register
) -> None:
    register("ivan", PASSWORD)
    fail(client, 2)
    assert log_in(client, password=PASSWORD).headers["RateLimit"] == '"login";r=3;t=0'

    fail(client, 2)
    assert log_in(client, password=PASSWORD).status_code == 200


def test_failures_from_another_address_do_not_count(
    client: FlaskClient, register: Register
) -> None:
    register("ivan", PASSWORD)
    fail(client, 3, address="10.0.0.1")

    assert log_in(client, password=PASSWORD, address="10.0.0.2").status_code == 200


def test_too_many_failures_from_one_address_stop_every_login_from_there(
    client: FlaskClient, register: Register
) -> None:
    register("ivan", PASSWORD)
    for number in range(5):
        fail(client, 1, username=f"nobody{number}")

    assert log_in(client, password=PASSWORD).status_code == 429
    assert log_in(client, password=PASSWORD, address="10.0.0.2").status_code == 200


def test_failures_older_than_the_window_are_forgotten_and_deleted(
    app: APIFlask, client: FlaskClient, register: Register
) -> None:
    register("ivan", PASSWORD)
    with app.app_context(), writing(db.engine) as connection:
        long_ago = utcnow() - timedelta(seconds=601)
        row = {"username_key": "ivan", "address": "10.0.0.1", "time": long_ago}
        connection.execute(LoginFailure.__table__.insert(), [row] * 3)

    assert log_in(client).status_code == 401  # the three old ones do not count
    with app.app_context():
        assert db.session.query(LoginFailure).count() == 1  # and are gone


def test_unthrottle_forgets_a_usernames_failures_everywhere(
    app: APIFlask, client: FlaskClient, register: Register
) -> None:
    register("ivan", PASSWORD)
    fail(client, 3, address="10.0.0.1")
    fail(client, 3, address="10.0.0.2")

    with app.app_context():
        assert unthrottle("ivan") == 6

    assert log_in(client, password=PASSWORD).status_code == 200


def test_the_client_is_found_behind_trusted_proxies_only() -> None:
    proxies = (ip_network("10.0.0.0/8"),)

    assert client_address("203.0.113.9", "1.2.3.4", proxies) == "203.0.113.9"
    assert client_address("10.0.0.5", "1.2.3.4", proxies) == "1.2.3.4"
    assert client_address("10.0.0.5", "1.2.3.4, 10.1.1.1", proxies) == "1.2.3.4"
    assert client_address("10.0.0.5", "6.6.6.6, 1.2.3.4", proxies) == "1.2.3.4"
    assert client_address("10.0.0.5", "1.2.3.4", ()) == "10.0.0.5"


def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_count(tmp_path: Path) -> None:
    settings = {**LIMITS, "TRUSTED_PROXIES": (ip_network("10.0.0.0/8"),)}
    with fresh_app(create_app, db, "users", tmp_path, settings=settings) as app:
        client = app.test_client()
        for _ in range(3):
            log_in(client, address="10.0.0.1", **{"X-Forwarded-For": "198.51.100.1"})

        blocked = log_in(client, address="10.0.0.1", **{"X-Forwarded-For": "198.51.100.1"})
        other = log_in(client, address="10.0.0.1", **{"X-Forwarded-For": "198.51.100.2"})

    assert blocked.status_code == 429
    assert other.status_code == 401


def test_a_login_that_waited_too_long_for_its_password_check_is_503(tmp_path: Path) -> None:
    settings = {**LIMITS, "PASSWORD_WAIT_SECONDS": 0.1}
    with fresh_app(create_app, db, "users", tmp_path, settings=settings) as app:
        users.domain._hashing.acquire()  # another request is checking a password
        try:
            response = log_in(app.test_client())
        finally:
            users.domain._hashing.release()

    assert response.status_code == 503
    assert response.headers["Retry-After"] == "1"
    assert response.json["service"] == "users"
