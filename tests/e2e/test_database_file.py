"""A SQLite database file deleted while its service runs: /ready says so in
every worker, writes are the database's 503, and nothing goes into the
unlinked file or a new one in its place."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from sqlalchemy.engine import make_url

from tests.databases import POSTGRES_URL
from tests.problems import assert_problem

from .api_client import TIMEOUT, ShopApi, unique
from .services import StartService

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(bool(POSTGRES_URL), reason="a SQLite file")]


def test_a_deleted_database_file_is_not_ready_and_takes_no_registrations(
    start_service: StartService,
) -> None:
    users = start_service("users", workers=2)
    api = ShopApi(users.url, "http://unused", "http://unused")
    assert api.register(unique("before")).status_code == 201
    path = Path(make_url(users.env["DATABASE_URL"]).database or "")

    path.unlink()
    ready = [requests.get(f"{users.url}/ready", timeout=TIMEOUT) for _ in range(6)]
    registrations = [api.register(unique("after")) for _ in range(6)]

    for answer in ready:
        assert_problem(answer, 503)
    for registration in registrations:
        assert assert_problem(registration, 503)["service"] == "users-database"
    assert not path.exists()
    assert requests.get(f"{users.url}/health", timeout=TIMEOUT).status_code == 200
