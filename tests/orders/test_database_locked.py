"""An operator's open write transaction on orders' SQLite file: reads are
answered as usual, writes wait a while and then are the database's 503, and
nothing is written."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url
from werkzeug.test import TestResponse

import servicekit.db
from orders import create_app
from orders.models import db
from tests.databases import POSTGRES_URL, fresh_app
from tests.fakes import FakeBeersClient, FakeUsersClient
from tests.problems import assert_problem

from .conftest import ALICE

pytestmark = pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's write lock")


@pytest.fixture(params=[0.5])
def app(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[APIFlask]:
    """orders whose writers wait `request.param` seconds at most (not 5: a quick test)."""
    monkeypatch.setattr(servicekit.db, "WRITE_WAIT_SECONDS", request.param)
    with fresh_app(
        create_app,
        db,
        "orders",
        tmp_path,
        users_client=FakeUsersClient(),
        beers_client=FakeBeersClient(),
    ) as app:
        yield app


@pytest.fixture
def outside_writer(app: APIFlask) -> Iterator[sqlite3.Connection]:
    """An operator's open write transaction on orders.db, from the sqlite3 shell."""
    outside = sqlite3.connect(make_url(app.config["SQLALCHEMY_DATABASE_URI"]).database or "")
    outside.isolation_level = None
    outside.execute("BEGIN IMMEDIATE")
    yield outside
    outside.rollback()
    outside.close()


def add_in_threads(app: APIFlask, count: int) -> tuple[list[threading.Thread], list[TestResponse]]:
    """`count` requests adding a beer to ALICE's order at once: their threads,
    and their answers as they come."""
    answers: list[TestResponse] = []

    def add() -> None:
        answer = app.test_client().put("/api/orders/current", json={"sku": "123456"}, headers=ALICE)
        answers.append(answer)

    threads = [threading.Thread(target=add) for _ in range(count)]
    for thread in threads:
        thread.start()
    return threads, answers


@pytest.mark.parametrize("app", [30.0], indirect=True)  # writers wait as long as it takes
def test_reads_are_answered_while_writers_wait_for_an_operators_write_lock(
    app: APIFlask, outside_writer: sqlite3.Connection
) -> None:
    client: FlaskClient = app.test_client()
    adding, writes = add_in_threads(app, 20)  # more than the pool's 15 connections

    # A read that queued behind the writers for a connection would be a 503
    # after 5 s (the pool's timeout), long before the writers give up.
    reads = [client.get("/api/orders/current", headers=ALICE) for _ in range(20)]
    writers_waiting = sum(thread.is_alive() for thread in adding)
    outside_writer.rollback()  # the operator is done: the writers write, in turn
    for thread in adding:
        thread.join()

    assert [read.status_code for read in reads] == [200] * 20
    assert writers_waiting > 0
    assert [write.status_code for write in writes] == [200] * 20
    assert client.get("/api/orders/current", headers=ALICE).get_json()["beers"][0]["quantity"] == 20


def test_writes_that_wait_too_long_for_the_write_lock_are_the_databases_503(
    app: APIFlask, outside_writer: sqlite3.Connection
) -> None:
    client: FlaskClient = app.test_client()
    adding, writes = add_in_threads(app, 5)
    for thread in adding:
        thread.join()

    assert len(writes) == 5
    for write in writes:
        problem = assert_problem(write, 503)
        assert problem["service"] == "orders-database"
        assert write.headers["Retry-After"] == "1"
    outside_writer.rollback()
    assert client.get("/api/orders/current", headers=ALICE).get_json()["beers"] == []
