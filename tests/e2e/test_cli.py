"""The command line as an operator meets it: help, refused flags, and one line
(exit status 1, no traceback, no password) for the usual mistakes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from servicekit.launcher import SERVICES, free_port, free_ports_in_a_row

from .services import ROOT, UNWANTED_ENVIRONMENT

pytestmark = pytest.mark.e2e

SECRET = "s3cret-pw"


def inv(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """`inv ARGS` as a subprocess, in an environment of only these settings."""
    env = {k: v for k, v in os.environ.items() if k not in UNWANTED_ENVIRONMENT}
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        env={**env, **settings},
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line(completed: subprocess.CompletedProcess[str]) -> str:
    """The only line a failed command wrote, its output and errors together."""
    lines = (completed.stdout + completed.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port something listens on."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        yield int(listener.getsockname()[1])


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("asking", ["--help", "-h"])
def test_a_service_command_lists_its_actions_and_their_flags(service: str, asking: str) -> None:
    helped = inv(service, asking)

    assert helped.returncode == 0, helped.stderr
    for words in ("setup", "serve", "--reset", "--host", "--port", "--workers"):
        assert words in helped.stdout


def test_users_help_shows_its_own_actions_too() -> None:
    helped = inv("users", "--help").stdout

    assert "create-admin" in helped and "unthrottle" in helped and "--username" in helped


def test_only_beers_offers_the_demo_catalogue() -> None:
    assert "--seed" in inv("beers", "-h").stdout
    assert "--seed" not in inv("orders", "-h").stdout


def test_dash_h_is_help_for_inv_up_too() -> None:
    helped = inv("up", "-h")

    assert helped.returncode == 0, helped.stderr
    assert "--base-port" in helped.stdout and "--host" in helped.stdout


@pytest.mark.parametrize(
    ("args", "refusal"),
    [
        (("users", "setup", "--port", "9"), "inv users setup takes --reset, not --port"),
        (
            ("beers", "serve", "--seed"),
            "inv beers serve takes --host, --port, --workers, not --seed",
        ),
        (("users", "unthrottle", "--username", "u", "--workers", "3"), "not --workers"),
        (("orders", "setup", "--host", "0.0.0.0"), "inv orders setup takes --reset, not --host"),
    ],
)
def test_a_flag_the_action_does_not_take_is_refused(args: tuple[str, ...], refusal: str) -> None:
    refused = inv(*args)

    assert refused.returncode == 2
    assert refusal in one_line(refused)


def test_an_unknown_action_is_answered_with_every_action() -> None:
    refused = inv("users", "frobnicate")

    assert refused.returncode == 2
    assert one_line(refused) == (
        "inv users: unknown action 'frobnicate'; "
        "the actions are setup, serve, revision, create-admin, unthrottle"
    )


@pytest.mark.parametrize("service", SERVICES)
def test_a_revision_of_unchanged_models_says_so_and_writes_nothing(service: str) -> None:
    migrations = ROOT / service / "migrations"
    before = sorted(migrations.glob("*.py"))

    done = inv(service, "revision", "-m", "nothing new")

    assert done.returncode == 0, done.stderr
    assert one_line(done) == f"The {service} models and migrations agree: no revision to write"
    assert sorted(migrations.glob("*.py")) == before


def test_a_revision_needs_a_message() -> None:
    refused = inv("orders", "revision")

    assert refused.returncode == 2
    assert one_line(refused) == "inv orders revision needs --message"


@pytest.mark.parametrize("url", ["foo", f"mysql://shop:{SECRET}@db.example/shop"])
def test_a_database_url_the_shop_cannot_use_is_one_line_naming_the_drivers(url: str) -> None:
    failed = inv("users", "setup", DATABASE_URL=url)

    assert failed.returncode == 1
    line = one_line(failed)
    assert line.startswith("inv users setup: the users database: ")
    assert "sqlite (sqlite:///" in line and "postgresql (postgresql://" in line
    assert SECRET not in line


def test_a_setting_that_will_not_read_is_one_line_before_anything_starts(
    tmp_path: Path,
) -> None:
    failed = inv(
        "users",
        "serve",
        "--port",
        str(free_port()),
        DATABASE_URL=f"sqlite:///{tmp_path}/users.db",
        LOGIN_MAX_FAILURES="ten",
    )

    assert failed.returncode == 1
    assert one_line(failed).startswith(
        "inv users serve: users: LOGIN_MAX_FAILURES='ten' will not do"
    )


def test_an_unreachable_postgresql_server_is_one_line_without_the_password() -> None:
    url = f"postgresql://shop:{SECRET}@127.0.0.1:{free_port()}/shop"

    failed = inv("orders", "setup", DATABASE_URL=url)

    assert failed.returncode == 1
    line = one_line(failed)
    assert "cannot connect to postgresql+psycopg://shop:***@127.0.0.1" in line
    assert "Connection refused" in line
    assert SECRET not in line


def test_at_log_level_debug_the_traceback_is_shown_too() -> None:
    failed = inv("users", "setup", DATABASE_URL="foo", LOG_LEVEL="DEBUG")

    assert failed.returncode == 1
    assert "Traceback" in failed.stderr
    assert "is not a database URL" in failed.stderr


def test_serving_on_a_busy_port_is_one_line_naming_it(busy_port: int, tmp_path: Path) -> None:
    failed = inv(
        "users", "serve", "--port", str(busy_port), DATABASE_URL=f"sqlite:///{tmp_path}/users.db"
    )

    assert failed.returncode == 1
    assert one_line(failed) == (
        f"inv users serve: port {busy_port} (users) is already in use on 127.0.0.1"
    )


def test_inv_up_with_a_busy_port_is_one_line_and_starts_nothing(tmp_path: Path) -> None:
    base_port = free_ports_in_a_row(len(SERVICES))
    databases = {
        f"{service.upper()}_DATABASE_URL": f"sqlite:///{tmp_path / service}.db"
        for service in SERVICES
    }
    with socket.socket() as beers_port:
        beers_port.bind(("127.0.0.1", base_port + 1))
        beers_port.listen()

        failed = inv("up", "--base-port", str(base_port), **databases)

    assert failed.returncode == 1
    assert one_line(failed) == (
        f"inv up: port {base_port + 1} (beers) is already in use on 127.0.0.1"
    )
    assert list(tmp_path.iterdir()) == []  # no database set up, so no server started
