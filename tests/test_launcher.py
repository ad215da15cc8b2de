"""The launcher: databases set up without the services' apps, ports checked
before anything starts, and readiness that only the launcher's own server gives."""

import fcntl
import socket
import subprocess
import sys
from pathlib import Path
from typing import NoReturn

import pytest
from sqlalchemy import create_engine, inspect

from launcher import (
    SERVICES,
    NotReady,
    PortInUse,
    SetupFailed,
    check_ports_free,
    free_port,
    free_ports_in_a_row,
    launch_lock_path,
    port_is_free,
    setup_service,
    starting_alone,
    wait_until_ready,
)
from servicekit.config import service_database_url
from servicekit.db import DatabaseUnreachable, UnsupportedDatabaseURL, open_engine, printable_url
from servicekit.serving import MOST_RESPAWN_DELAY_SECONDS, respawn_delay
from tests.servicekit import conftest as servicekit_tests
from tests.servicekit.conftest import FakeUpstream

# The fake HTTP server of servicekit's tests, a fixture here as there.
upstream = servicekit_tests.upstream


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_database_url_is_the_one_its_app_finds(
    monkeypatch: pytest.MonkeyPatch, service: str
) -> None:
    import importlib

    monkeypatch.delenv("DATABASE_URL", raising=False)
    app = importlib.import_module(service).create_app({"SECRET_KEY": "t"})

    assert service_database_url(service) == app.config["SQLALCHEMY_DATABASE_URI"]


def test_setup_migrates_without_making_the_app(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import orders

    def no_app(*args: object, **kwargs: object) -> NoReturn:
        raise AssertionError("setup made the app, and with it the clients for users and beers")

    monkeypatch.setattr(orders, "create_app", no_app)
    url = f"sqlite:///{tmp_path}/orders.db"

    setup_service("orders", database_url=url)

    assert "orders" in inspect(create_engine(url)).get_table_names()


def test_setup_with_an_unusable_database_says_which_service(tmp_path: Path) -> None:
    with pytest.raises(SetupFailed, match="^the beers database: cannot connect to sqlite:///"):
        setup_service("beers", database_url=f"sqlite:///{tmp_path}/no/such/folder/beers.db")


@pytest.mark.parametrize(
    "url",
    ["foo", "mysql://u:pw@h/x", "postgresql+psycopg2://u:pw@h/x", "postgresql://u:pw@h:port/x"],
)
def test_only_the_supported_drivers_are_accepted(url: str) -> None:
    with pytest.raises(UnsupportedDatabaseURL, match="the installed drivers are sqlite") as refused:
        open_engine(url)
    assert "pw" not in str(refused.value)


def test_an_unreachable_server_is_named_without_its_password() -> None:
    with pytest.raises(DatabaseUnreachable) as refused:
        open_engine(f"postgresql://u:hidden@127.0.0.1:{free_port()}/x")
    assert "hidden" not in str(refused.value)
    assert "u:***@127.0.0.1" in str(refused.value)


def test_a_url_that_does_not_parse_is_printed_without_its_password() -> None:
    assert printable_url("postgresql://u:hidden@h:port/x") == "postgresql://u:***@h:port/x"


def test_a_port_with_a_listener_is_not_free() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]

        assert not port_is_free("127.0.0.1", port)
        with pytest.raises(PortInUse, match=f"^port {port} \\(beers\\) is already in use"):
            check_ports_free("127.0.0.1", {"users": free_port(), "beers": port})


def test_ports_in_a_row_are_free() -> None:
    first = free_ports_in_a_row(3)

    assert all(port_is_free("127.0.0.1", port) for port in range(first, first + 3))


def test_a_server_that_exited_is_not_ready_though_something_answers_its_url(
    upstream: FakeUpstream,
) -> None:
    server = subprocess.Popen([sys.executable, "-c", "pass"])
    server.wait()

    with pytest.raises(NotReady, match="the server exited with 0"):
        wait_until_ready(f"{upstream.url}/ready", server)


def test_a_running_server_whose_url_answers_is_ready(upstream: FakeUpstream) -> None:
    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        wait_until_ready(f"{upstream.url}/ready", server)
    finally:
        server.kill()
        server.wait()


def test_one_launcher_at_a_time_holds_the_launch_lock() -> None:
    with starting_alone(), launch_lock_path().open("a") as another:
        with pytest.raises(BlockingIOError):
            fcntl.flock(another.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    with launch_lock_path().open("a") as another:  # free again
        fcntl.flock(another.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_dead_worker_is_replaced_at_once_then_later_and_later_up_to_the_most() -> None:
    delays = [respawn_delay(deaths_in_a_row) for deaths_in_a_row in range(1, 9)]

    assert delays[0] == 0
    assert delays == sorted(delays)
    assert delays[-1] == MOST_RESPAWN_DELAY_SECONDS
