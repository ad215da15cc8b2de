from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient

from orders import create_app
from orders.models import db
from tests.databases import fresh_app
from tests.fakes import FakeBeersClient, FakeUsersClient

ALICE = {"Authorization": "Bearer alice-token"}
BOB = {"Authorization": "Bearer bob-token"}
# add(sku="123456", quantity=1, headers=ALICE): the open order after the beers are added
AddToOrder = Callable[..., dict[str, Any]]


@pytest.fixture
def users() -> FakeUsersClient:
    return FakeUsersClient()


@pytest.fixture
def beers() -> FakeBeersClient:
    return FakeBeersClient()


@pytest.fixture
def app(tmp_path: Path, users: FakeUsersClient, beers: FakeBeersClient) -> Iterator[APIFlask]:
    with fresh_app(
        create_app, db, "orders", tmp_path, users_client=users, beers_client=beers
    ) as app:
        yield app


@pytest.fixture
def client(app: APIFlask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def add(client: FlaskClient) -> AddToOrder:
    def add(
        sku: str = "123456", quantity: int = 1, headers: dict[str, str] = ALICE
    ) -> dict[str, Any]:
        response = client.put(
            "/api/orders/current", json={"sku": sku, "quantity": quantity}, headers=headers
        )
        assert response.status_code == 200, response.json
        order: dict[str, Any] = response.get_json()
        return order

    return add
