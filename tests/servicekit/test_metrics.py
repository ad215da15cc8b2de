"""What /metrics tells about a worker, its requests, its database pool and its
neighbours, checked on the beers app."""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient

from beers import create_app
from beers.models import db
from launcher import free_port
from servicekit.metrics import forget_dead_workers
from servicekit.upstream import CircuitBreaker
from tests.databases import fresh_app
from tests.fakes import FakeUsersClient
from tests.metrics import metric_types, samples


@pytest.fixture
def app(tmp_path: Path) -> Iterator[APIFlask]:
    with fresh_app(create_app, db, "beers", tmp_path, users_client=FakeUsersClient()) as app:
        yield app


@pytest.fixture
def client(app: APIFlask) -> FlaskClient:
    return app.test_client()


def value(text: str, name: str, **labels: str) -> float:
    """The one sample of this name with these labels."""
    (found,) = [value for seen, value in samples(text, name) if seen == labels]
    return found


def test_a_worker_reports_its_cpu_memory_files_and_threads(client: FlaskClient) -> None:
    client.get("/api/beers/")
    text = client.get("/metrics").get_data(as_text=True)

    assert value(text, "worker_cpu_seconds_total") > 0
    assert value(text, "worker_resident_memory_bytes") > 10 * 1024 * 1024
    assert value(text, "worker_resident_memory_max_bytes") > 10 * 1024 * 1024
    assert value(text, "worker_open_fds") >= 3  # stdin, stdout, stderr at least
    assert value(text, "worker_open_fds_max") >= 3
    assert value(text, "worker_threads") >= 1
    assert value(text, "worker_threads_max") >= 1
    assert value(text, "worker_starts_total") == 1
    assert value(text, "workers") == 1
    types = metric_types(text)
    assert types["worker_cpu_seconds"] == "counter"
    assert types["worker_starts"] == "counter"
    assert types["worker_resident_memory_bytes"] == "gauge"


def test_cpu_seconds_only_grow(client: FlaskClient) -> None:
    first = value(client.get("/metrics").get_data(as_text=True), "worker_cpu_seconds_total")
    sum(range(3_000_000))  # some CPU in this very process
    second = value(client.get("/metrics").get_data(as_text=True), "worker_cpu_seconds_total")
    assert second > first


def test_requests_in_flight_count_the_request_being_served(client: FlaskClient) -> None:
    # The scrape itself is in flight while it is served; the one before it is done.
    for _ in range(3):
        text = client.get("/metrics").get_data(as_text=True)
        assert value(text, "http_requests_in_flight") == 1


def test_a_request_refused_before_it_starts_is_not_counted_out(client: FlaskClient) -> None:
    client.get("/api/beers/?bad=1")  # refused by the intake (a 400)
    client.get("/no/such/path")
    text = client.get("/metrics").get_data(as_text=True)
    assert value(text, "http_requests_in_flight") == 1


def test_database_connections_in_use_are_counted(app: APIFlask, client: FlaskClient) -> None:
    assert value(client.get("/metrics").get_data(as_text=True), "db_pool_connections_in_use") == 0
    with app.app_context():
        with db.engine.connect():
            text = client.get("/metrics").get_data(as_text=True)
            assert value(text, "db_pool_connections_in_use") == 1
    text = client.get("/metrics").get_data(as_text=True)
    assert value(text, "db_pool_connections_in_use") == 0


def test_the_breaker_of_a_dead_neighbour_shows_open(tmp_path: Path) -> None:
    settings = {
        "USERS_URL": f"http://127.0.0.1:{free_port()}",  # nobody listens
        "UPSTREAM_BREAKER_FAILURES": 2,
    }
    with fresh_app(create_app, db, "beers", tmp_path, settings) as app:
        client = app.test_client()
        before = client.get("/metrics").get_data(as_text=True)
        assert value(before, "upstream_breaker_open", service="users") == 0
        for _ in range(3):  # two failures open it; the third is refused at once
            response = client.delete("/api/beers/123456", headers={"Authorization": "any"})
            assert response.status_code == 503
        text = client.get("/metrics").get_data(as_text=True)
        app.extensions["users_client"].close()
    assert value(text, "upstream_breaker_open", service="users") == 1
    assert value(text, "upstream_breaker_openings_total", service="users") == 1
    assert value(text, "upstream_requests_total", service="users", endpoint="me", outcome="refused")


def test_a_breaker_tells_when_it_opens_and_closes() -> None:
    now = [0.0]
    heard: list[bool] = []
    breaker = CircuitBreaker(2, 30.0, clock=lambda: now[0], on_change=heard.append)
    breaker.record(failed=True)
    assert heard == []
    breaker.record(failed=True)
    assert heard == [True]
    now[0] = 1.5
    assert breaker.allow()  # the trial
    breaker.record(failed=True)  # fails: open again, no news
    assert heard == [True]
    now[0] = 10.0
    assert breaker.allow()
    breaker.record(failed=False)
    assert heard == [True, False]
    breaker.record(failed=False)  # closed already: no news
    assert heard == [True, False]


def test_gauges_of_dead_workers_are_forgotten(tmp_path: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    dead, alive = int(gone.stdout), os.getpid()
    for pid in (dead, alive):
        (tmp_path / f"gauge_livesum_{pid}.db").write_bytes(b"")
        (tmp_path / f"counter_{pid}.db").write_bytes(b"")

    forget_dead_workers(str(tmp_path))

    left = sorted(path.name for path in tmp_path.iterdir())
    assert left == sorted(
        [f"counter_{dead}.db", f"counter_{alive}.db", f"gauge_livesum_{alive}.db"]
    )
