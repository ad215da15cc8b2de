import hashlib
import time
from pathlib import Path

import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient

from tests.users.conftest import Login, Register
from users.models import Token, db


def test_logging_in_issues_a_bearer_token_with_its_expiry(
    client: FlaskClient, register: Register
) -> None:
    register()
    response = client.post(
        "/api/users/login", data={"username": "ivan", "password": "ivan-s-own-passphrase"}
    )
    assert response.status_code == 200
    assert response.json["token_type"] == "Bearer"
    assert len(response.json["token"]) >= 43  # 256 bits in URL-safe base64
    assert response.json["expires_at"].endswith("+00:00")


def test_the_token_is_stored_only_as_its_sha256_digest(
    app: APIFlask, register: Register, login: Login
) -> None:
    register()
    token = login()
    with app.app_context():
        stored = db.session.scalars(db.select(Token.digest)).all()
    assert stored == [hashlib.sha256(token.encode()).hexdigest()]


def test_every_login_issues_a_new_token_and_all_stay_valid(
    client: FlaskClient, register: Register, login: Login
) -> None:
    register()
    first, second = login(), login()
    assert first != second
    for token in (first, second):
        assert (
            client.get("/api/users/me", headers={"Authorization": f"Bearer {token}"}).status_code
            == 200
        )


@pytest.mark.parametrize(
    "username, password", [("ivan", "wrong-password"), ("nobody", "ivan-s-own-passphrase")]
)
def test_a_wrong_username_or_password_gets_one_and_the_same_401(
    client: FlaskClient, register: Register, username: str, password: str
) -> None:
    register()
    response = client.post("/api/users/login", json={"username": username, "password": password})
    assert response.status_code == 401
    assert response.json["detail"] == "Wrong username or password."


def test_login_takes_about_as_long_for_an_unknown_user_as_for_a_wrong_password(
    client: FlaskClient, register: Register
) -> None:
    register()

    def slowest_of(username: str) -> float:
        times = []
        for _ in range(3):
            started = time.perf_counter()
            client.post("/api/users/login", json={"username": username, "password": "wrong-one"})
            times.append(time.perf_counter() - started)
        return min(times)

    client.post("/api/users/login", json={"username": "nobody", "password": "warm-up"})
    known, unknown = slowest_of("ivan"), slowest_of("nobody")
    # Both check a slow password hash; without the stand-in hash an unknown
    # user would answer in well under a tenth of the time.
    assert unknown > known / 3


def test_login_needs_both_fields(client: FlaskClient) -> None:
    response = client.post("/api/users/login", json={})
    assert response.status_code == 400
    assert set(response.json["errors"]) == {"username", "password"}


@pytest.mark.parametrize("scheme", ["Bearer ", "bearer ", ""])
def test_check_token_takes_the_token_with_or_without_the_bearer_word(
    client: FlaskClient, register: Register, login: Login, scheme: str
) -> None:
    register()
    token = login()
    response = client.post("/api/users/check_token", headers={"Authorization": scheme + token})
    assert response.status_code == 200
    assert response.json["username"] == "ivan"


def test_check_token_takes_the_token_from_the_body_too(
    client: FlaskClient, register: Register, login: Login
) -> None:
    register()
    token = login()
    response = client.post("/api/users/check_token", data={"token": token})
    assert response.status_code == 200
    assert response.json["username"] == "ivan"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-a-token"}, {"Authorization": "Basic aXZhbjpzZWNyZXQ="}],
)
def test_me_without_a_valid_token_is_401_with_a_bearer_challenge(
    client: FlaskClient, headers: dict[str, str]
) -> None:
    response = client.get("/api/users/me", headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.mimetype == "application/problem+json"


def test_logout_revokes_only_the_token_presented(
    client: FlaskClient, register: Register, login: Login
) -> None:
    register()
    kept, revoked = login(), login()
    response = client.post("/api/users/logout", headers={"Authorization": f"Bearer {revoked}"})
    assert response.status_code == 204
    assert response.data == b""
    assert client.post("/api/users/check_token", json={"token": revoked}).status_code == 401
    assert client.post("/api/users/check_token", json={"token": kept}).status_code == 200


def test_logging_out_twice_is_a_401(client: FlaskClient, register: Register, login: Login) -> None:
    register()
    token = login()
    client.post("/api/users/logout", json={"token": token})
    response = client.post("/api/users/logout", json={"token": token})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_an_expired_token_is_refused(
    app: APIFlask, client: FlaskClient, register: Register
) -> None:
    app.config["TOKEN_TTL_SECONDS"] = 1
    register()
    token = client.post(
        "/api/users/login", json={"username": "ivan", "password": "ivan-s-own-passphrase"}
    ).json["token"]
    assert client.get("/api/users/me", headers={"Authorization": token}).status_code == 200
    time.sleep(1.1)
    response = client.get("/api/users/me", headers={"Authorization": token})
    assert response.status_code == 401


def test_the_token_lifetime_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from users import create_app

    monkeypatch.setenv("TOKEN_TTL_SECONDS", "60")
    app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/u.db"})
    assert app.config["TOKEN_TTL_SECONDS"] == 60


def test_the_login_answer_is_never_cached(client: FlaskClient, register: Register) -> None:
    register()
    response = client.post(
        "/api/users/login", json={"username": "ivan", "password": "ivan-s-own-passphrase"}
    )
    assert response.headers["Cache-Control"] == "no-store"


def test_a_very_long_token_in_the_body_is_just_not_valid(client: FlaskClient) -> None:
    response = client.post("/api/users/check_token", json={"token": "x" * 5000})
    assert response.status_code == 401
