import pytest

from orders import create_app
from orders.models import db
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
    app = create_app(
        {"DATABASE_URL": f"sqlite:///{tmp_path}/orders.db", "SECRET_KEY": "test"},
        users_client=users,
        beers_client=beers,
    )
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.engine.dispose()


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
