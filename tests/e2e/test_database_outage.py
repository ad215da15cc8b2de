"""A service whose own database goes away answers 503 naming it, with one log
line per failed request and no traceback, keeps /health fast, and recovers by
itself when the database is back (PostgreSQL: its server stopped and started)."""

from __future__ import annotations

import time

import pytest
import requests

from tests.databases import POSTGRES_URL
from tests.postgres import postgres_server
from tests.problems import PROBLEM_JSON

from .api_client import TIMEOUT
from .services import StartService

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not POSTGRES_URL, reason="stops a PostgreSQL server: inv test --postgres"),
]


def test_beers_answers_503_while_its_database_is_down_and_recovers(
    start_service: StartService,
) -> None:
    with postgres_server(("beers",)) as server:
        beers = start_service("beers", DATABASE_URL=f"{server.url}/beers")
        assert requests.get(f"{beers.url}/api/beers/", timeout=TIMEOUT).status_code == 200

        server.stop()
        answers = [requests.get(f"{beers.url}/api/beers/", timeout=TIMEOUT) for _ in range(3)]
        started = time.monotonic()
        health = requests.get(f"{beers.url}/health", timeout=TIMEOUT)
        health_seconds = time.monotonic() - started
        ready = requests.get(f"{beers.url}/ready", timeout=TIMEOUT)
        server.start()
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            back = requests.get(f"{beers.url}/api/beers/", timeout=TIMEOUT)
            if back.status_code == 200:
                break
            time.sleep(0.2)

    for answer in answers:
        assert answer.status_code == 503
        assert answer.headers["Content-Type"].startswith(PROBLEM_JSON)
        assert answer.headers["Retry-After"] == "1"
        assert answer.json()["service"] == "beers-database"
    assert health.status_code == 200 and health_seconds < 1
    assert ready.status_code == 503
    assert back.status_code == 200  # recovered without a restart
    log = beers.output()
    assert log.count("the beers database is unavailable") >= 3
    assert "Traceback" not in log
