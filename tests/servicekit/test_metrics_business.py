"""What /metrics tells about the business: logins by outcome and password
checks waiting (users); orders checked out, their money and idempotent replays
(orders)."""

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient

import orders
import users
import users.domain
from orders.models import db as orders_db
from tests.databases import fresh_app
from tests.fakes import FakeBeersClient, FakeUsersClient
from tests.metrics import samples
from users.models import db as users_db

ALICE = {"Authorization": "Bearer alice-token"}
PASSWORD = "ivan-s-own-passphrase"
LIMITS = {"LOGIN_MAX_FAILURES": 2, "LOGIN_MAX_FAILURES_PER_ADDRESS": 5}


def value(text: str, name: str, **labels: str) -> float:
    (found,) = [value for seen, value in samples(text, name) if seen == labels]
    return found


def metrics_of(client: FlaskClient) -> str:
    return client.get("/metrics").get_data(as_text=True)


@pytest.fixture
def users_app(tmp_path: Path) -> Iterator[APIFlask]:
    with fresh_app(users.create_app, users_db, "users", tmp_path, LIMITS) as app:
        yield app


@pytest.fixture
def orders_client(tmp_path: Path) -> Iterator[FlaskClient]:
    fakes = {"users_client": FakeUsersClient(), "beers_client": FakeBeersClient()}
    with fresh_app(orders.create_app, orders_db, "orders", tmp_path, None, **fakes) as app:
        yield app.test_client()


def log_in(client: FlaskClient, password: str) -> int:
    response = client.post("/api/users/login", json={"username": "ivan", "password": password})
    return response.status_code


def test_logins_are_counted_by_outcome(users_app: APIFlask) -> None:
    client = users_app.test_client()
    before = metrics_of(client)
    assert [value(before, "users_logins_total", outcome=o) for o in ("ok", "failed")] == [0, 0]
    body = {"username": "ivan", "email": "ivan@example.com", "password": PASSWORD}
    assert client.post("/api/users/register", json=body).status_code == 201

    statuses = [log_in(client, password) for password in (PASSWORD, "wrong", "wrong", "wrong")]

    assert statuses == [200, 401, 401, 429]
    text = metrics_of(client)
    assert value(text, "users_logins_total", outcome="ok") == 1
    assert value(text, "users_logins_total", outcome="failed") == 2
    assert value(text, "users_logins_total", outcome="throttled") == 1


def test_password_checks_waiting_their_turn_are_counted(users_app: APIFlask) -> None:
    client = users_app.test_client()
    users.domain._hashing.acquire()  # another request is checking a password
    try:
        login = threading.Thread(target=log_in, args=(users_app.test_client(), PASSWORD))
        login.start()
        deadline = time.monotonic() + 10
        while value(metrics_of(client), "users_password_checks_waiting") != 1:
            assert time.monotonic() < deadline, "the login never waited"
            time.sleep(0.01)
    finally:
        users.domain._hashing.release()
    login.join()
    assert value(metrics_of(client), "users_password_checks_waiting") == 0


def test_checkouts_count_orders_and_their_money(orders_client: FlaskClient) -> None:
    client = orders_client
    for sku, quantity in (("123456", 2), ("123457", 1)):  # 2 × 1.19 + 2.00
        response = client.put(
            "/api/orders/current", json={"sku": sku, "quantity": quantity}, headers=ALICE
        )
        assert response.status_code == 200
    assert client.post("/api/orders/checkout", headers=ALICE).status_code == 200
    assert client.post("/api/orders/checkout", headers=ALICE).status_code == 409  # empty

    text = metrics_of(client)
    assert value(text, "orders_checked_out_total") == 1
    assert value(text, "orders_checked_out_amount_total") == pytest.approx(4.38)


def test_idempotent_replays_are_counted_and_pay_nothing_twice(orders_client: FlaskClient) -> None:
    client = orders_client
    keyed = {**ALICE, "Idempotency-Key": "checkout-1"}
    client.put("/api/orders/current", json={"sku": "123458"}, headers=ALICE)
    first = client.post("/api/orders/checkout", headers=keyed)
    again = client.post("/api/orders/checkout", headers=keyed)

    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == first.get_data()
    text = metrics_of(client)
    assert value(text, "orders_idempotent_replays_total") == 1
    assert value(text, "orders_checked_out_total") == 1
    assert value(text, "orders_checked_out_amount_total") == pytest.approx(1.50)
