from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient

from tests.databases import fresh_app
from users import create_app
from users.models import db

# register(username="ivan", password=..., email=None, **more_fields): the new user
Register = Callable[..., dict[str, Any]]
# login(username="ivan", password=...): a token
Login = Callable[..., str]


@pytest.fixture
def app(tmp_path: Path) -> Iterator[APIFlask]:
    with fresh_app(create_app, db, "users", tmp_path) as app:
        yield app


@pytest.fixture
def client(app: APIFlask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def register(client: FlaskClient) -> Register:
    def register(
        username: str = "ivan",
        password: str = "ivan-s-own-passphrase",
        email: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        body = {"username": username, "email": email or f"{username}@example.com"}
        body.update(password=password, **extra)
        response = client.post("/api/users/register", json=body)
        assert response.status_code == 201, response.json
        user: dict[str, Any] = response.get_json()
        return user

    return register


@pytest.fixture
def login(client: FlaskClient) -> Login:
    def login(username: str = "ivan", password: str = "ivan-s-own-passphrase") -> str:
        response = client.post(
            "/api/users/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.json
        token: str = response.json["token"]
        return token

    return login
