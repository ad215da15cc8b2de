import pytest

from tests.databases import fresh_app
from users import create_app
from users.models import db


@pytest.fixture
def app(tmp_path):
    with fresh_app(create_app, db, "users", tmp_path) as app:
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def register(client):
    def register(username="ivan", password="ivan-s-own-passphrase", email=None, **extra):
        body = {"username": username, "email": email or f"{username}@example.com"}
        body.update(password=password, **extra)
        response = client.post("/api/users/register", json=body)
        assert response.status_code == 201, response.json
        return response.json

    return register


@pytest.fixture
def login(client):
    def login(username="ivan", password="ivan-s-own-passphrase"):
        response = client.post(
            "/api/users/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, response.json
        return response.json["token"]

    return login
