"""A PostgreSQL restart while a service holds connections: no traceback in the
log, no error for a request that was answered, and the service goes on."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from apiflask import APIFlask
from sqlalchemy import text

from beers import create_app
from beers.models import db
from tests.databases import POSTGRES_URL
from tests.fakes import FakeUsersClient
from tests.postgres import PostgresServer, postgres_server

pytestmark = pytest.mark.skipif(
    not POSTGRES_URL, reason="restarts a PostgreSQL server: inv test --postgres"
)


@pytest.fixture
def server() -> Iterator[PostgresServer]:
    with postgres_server(("beers",)) as server:
        yield server


@pytest.fixture
def app(server: PostgresServer) -> Iterator[APIFlask]:
    app = create_app(
        {"DATABASE_URL": f"{server.url}/beers", "SECRET_KEY": "test", "LOG_LEVEL": "INFO"},
        users_client=FakeUsersClient(),
    )
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


def restart(server: PostgresServer) -> None:
    server.stop()
    server.start()


def test_a_restart_after_a_requests_last_statement_spoils_nothing(
    app: APIFlask, server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    @app.get("/read-then-restart")
    def read_then_restart() -> dict[str, bool]:
        db.session.execute(text("SELECT 1"))  # the session holds its connection
        restart(server)  # which dies before the session ends
        return {"read": True}

    client = app.test_client()
    answered = client.get("/read-then-restart")
    after = client.get("/api/beers/")

    assert answered.status_code == 200
    assert after.status_code == 200
    assert "Traceback" not in capsys.readouterr().err


def test_a_pooled_connection_that_died_is_one_warning_line_not_a_traceback(
    app: APIFlask, server: PostgresServer, capsys: pytest.CaptureFixture[str]
) -> None:
    with app.app_context():
        pooled = db.engine.raw_connection()  # as the compiled reads take one
        pooled.cursor().execute("SELECT 1")
        restart(server)
        pooled.close()  # its reset fails: the pool drops it

    log = capsys.readouterr().err
    assert "Traceback" not in log
    dropped = [line for line in log.splitlines() if "Exception during reset" in line]
    assert len(dropped) == 1
    assert " WARNING " in dropped[0] and " sqlalchemy.pool" in dropped[0]
    assert "terminating connection" in dropped[0]
    assert app.test_client().get("/api/beers/").status_code == 200
