import pytest

from orders import create_app
from orders.models import db
from tests.databases import fresh_app
from tests.fakes import FakeBeersClient, FakeUsersClient

ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}


@pytest.fixture
def users():
    return FakeUsersClient()


@pytest.fixture
def beers():
    return FakeBeersClient()


@pytest.fixture
def app(tmp_path, users, beers):
    with fresh_app(
        create_app, db, "orders", tmp_path, users_client=users, beers_client=beers
    ) as app:
        yield app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def add(client):
    def add(sku="123456", quantity=1, headers=ALICE):
        response = client.put(
            "/api/orders/current", json={"sku": sku, "quantity": quantity}, headers=headers
        )
        assert response.status_code == 200, response.json
        return response.json

    return add
