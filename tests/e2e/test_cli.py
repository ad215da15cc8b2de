"""The command line as an operator meets it: help, refused flags, and one line
(exit status 1 or 2, no traceback, no password) for the usual mistakes."""

from __future__ import annotations

import fcntl
import os
import re
import select
import socket
import subprocess
import sys
import termios
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from launcher import SERVICES, free_port, free_ports_in_a_row

from .services import ROOT, launch, service_environment, shell_environment

pytestmark = pytest.mark.e2e

SECRET = "s3cret-pw"
# `inv users create-admin` for a user boss2, without and with an email.
CREATE_BOSS = ("users", "create-admin", "--username", "boss2")
CREATE_BOSS_WITH_EMAIL = (*CREATE_BOSS, "--email", "boss2@example.com")
# A log line, as every command and service writes them: it starts with the time.
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


def operator_environment(**settings: str) -> dict[str, str]:
    """This environment without what would change the shop, plus these settings."""
    return {**shell_environment("SHOP_ADMIN_PASSWORD"), **settings}


def inv(*args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """`inv ARGS` as a subprocess, in an environment of only these settings, with
    no terminal to type into."""
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=ROOT,
        env=operator_environment(**settings),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line(completed: subprocess.CompletedProcess[str]) -> str:
    """The only line a failed command wrote, its output and errors together."""
    lines = (completed.stdout + completed.stderr).strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def said(completed: subprocess.CompletedProcess[str]) -> str:
    """The one line a command wrote besides its log lines (set-up's, say)."""
    lines = (completed.stdout + completed.stderr).strip().splitlines()
    others = [line for line in lines if not LOG_LINE.match(line)]
    assert len(others) == 1, lines
    return others[0]


def log_lines(completed: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in completed.stderr.splitlines() if LOG_LINE.match(line)]


@pytest.fixture
def database(tmp_path: Path) -> str:
    """A SQLite database of the test's own, not there yet."""
    return f"sqlite:///{tmp_path}/shop.db"


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
        "the actions are setup, serve, migrate, revision, create-admin, unthrottle"
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


def test_a_setting_that_will_not_read_is_one_line_before_anything_starts(database: str) -> None:
    failed = inv(
        "users",
        "serve",
        "--port",
        str(free_port()),
        DATABASE_URL=database,
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


def test_serving_on_a_busy_port_is_one_line_naming_it(busy_port: int, database: str) -> None:
    failed = inv("users", "serve", "--port", str(busy_port), DATABASE_URL=database)

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


# Every mistake is one line, with no traceback.


@pytest.mark.parametrize(
    ("args", "refusal"),
    [
        (("users", "serve", "--port", "abc"), "--port takes a whole number from 1 to 65535"),
        (("users", "serve", "-p", "70000"), "--port takes a whole number from 1 to 65535"),
        (("beers", "serve", "--workers", "0"), "--workers takes a whole number of at least 1"),
        (("up", "--workers", "-2"), "--workers takes a whole number of at least 1"),
        (("up", "--base-port", "x"), "--base-port takes a whole number from 1 to 65533"),
        (("bench", "--duration", "soon"), "--duration takes a whole number of at least 1"),
    ],
)
def test_a_number_flag_given_anything_else_is_one_line_naming_it(
    args: tuple[str, ...], refusal: str
) -> None:
    refused = inv(*args)

    assert refused.returncode == 1
    assert one_line(refused) == f"inv: {refusal}, not {args[-1]!r}"


def test_an_unknown_log_level_is_one_line_naming_the_levels() -> None:
    refused = inv("users", "setup", LOG_LEVEL="LOUD")

    assert refused.returncode == 1
    assert one_line(refused) == (
        "inv: LOG_LEVEL='LOUD' will not do: it is one of DEBUG, INFO, WARNING, ERROR, "
        "CRITICAL; the default is INFO"
    )


def test_a_neighbours_url_that_is_no_url_is_refused_before_serving(
    database: str, tmp_path: Path
) -> None:
    refused = inv(
        "beers", "serve", "--port", str(free_port()), DATABASE_URL=database, USERS_URL="not-a-url"
    )

    assert refused.returncode == 1
    assert one_line(refused) == (
        "inv beers serve: beers: USERS_URL='not-a-url' will not do: it is an http:// or "
        "https:// URL with a host, like http://users:5001; the default is http://127.0.0.1:5001"
    )
    assert list(tmp_path.iterdir()) == []  # no database set up


def test_a_password_holding_an_at_sign_is_explained_and_stays_hidden() -> None:
    url = f"postgresql://shop:{SECRET}@home@127.0.0.1:{free_port()}/shop"

    refused = inv("orders", "setup", DATABASE_URL=url)

    assert refused.returncode == 1
    line = one_line(refused)
    assert line.startswith("inv orders setup: the orders database: postgresql+psycopg://shop:***@")
    assert "the password holds an @" in line and "%40" in line
    assert SECRET not in line and "home" not in line


def test_bench_without_gunicorn_says_what_to_install(tmp_path: Path) -> None:
    """As in an environment of requirements.txt alone, which has no gunicorn."""
    hidden = tmp_path / "gunicorn"
    hidden.mkdir()
    (hidden / "__init__.py").write_text("raise ImportError('not installed')\n")

    refused = inv("bench", "--quick", PYTHONPATH=str(tmp_path))

    assert refused.returncode == 1
    line = one_line(refused)
    assert line.startswith("inv bench needs what is not installed: ")
    assert "gunicorn (" in line and "install -r requirements-dev.txt)" in line


def test_inv_list_shows_every_task_on_one_line_in_a_whole_sentence() -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "invoke", "--list"],
        cwd=ROOT,
        env=operator_environment(COLUMNS="80"),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert listed.returncode == 0, listed.stderr
    lines = [line for line in listed.stdout.splitlines()[1:] if line.strip()]
    names = [line.split()[0] for line in lines]
    assert set(names) >= {"up", "test", "check", "fuzz", "bench", *SERVICES}
    assert all(re.match(r"  \S", line) for line in lines), lines  # none runs on to a second
    assert all(line.endswith(".") and len(line) <= 80 for line in lines), lines


# inv users create-admin: everything it can check, checked before it asks.


def test_create_admin_without_an_email_for_a_new_user_asks_for_no_password(
    database: str,
) -> None:
    refused = inv(*CREATE_BOSS, DATABASE_URL=database)

    assert refused.returncode == 2
    assert said(refused) == (
        "inv users create-admin: there is no user 'boss2' to promote; to create one, give --email"
    )
    assert "Traceback" not in refused.stderr


def test_create_admin_checks_the_email_before_it_wants_a_password(database: str) -> None:
    refused = inv(*CREATE_BOSS, "--email", "not-an-email", DATABASE_URL=database)

    assert refused.returncode == 2
    line = said(refused)
    assert line.startswith("inv users create-admin: invalid input: ")
    assert "'email'" in line and "password" not in line


def test_create_admin_with_no_password_and_no_terminal_says_where_to_give_one(
    database: str,
) -> None:
    refused = inv(*CREATE_BOSS_WITH_EMAIL, DATABASE_URL=database)

    assert refused.returncode == 2
    assert said(refused) == (
        "inv users create-admin: no password: give --password or $SHOP_ADMIN_PASSWORD, "
        "or run it in a terminal to be asked"
    )


def test_create_admin_takes_the_password_from_the_environment_and_checks_it(
    database: str,
) -> None:
    refused = inv(*CREATE_BOSS_WITH_EMAIL, DATABASE_URL=database, SHOP_ADMIN_PASSWORD="short")
    created = inv(
        *CREATE_BOSS_WITH_EMAIL, DATABASE_URL=database, SHOP_ADMIN_PASSWORD="a long secret"
    )

    assert refused.returncode == 2
    assert "'password'" in said(refused)
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip() == "Created administrator boss2 (id 1)"


class Terminal:
    """`inv ARGS` run in a terminal of its own (a pseudo-terminal it controls), as
    an operator types into it, in an environment of only these settings. As a
    context manager it ends the command on the way out, keeping its exit status."""

    def __init__(self, args: tuple[str, ...], **settings: str) -> None:
        self.master, replica = os.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "invoke", *args],
            cwd=ROOT,
            env=operator_environment(**settings),
            stdin=replica,
            stdout=replica,
            stderr=replica,
            start_new_session=True,
            preexec_fn=lambda: fcntl.ioctl(0, termios.TIOCSCTTY, 0),
        )
        os.close(replica)
        self.seen = ""
        self.returncode: int | None = None

    def __enter__(self) -> Terminal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.returncode = self.close()

    def wait_for(self, text: str, seconds: float = 60) -> bool:
        """Whether the command wrote text within so many seconds."""
        deadline = time.monotonic() + seconds
        while text not in self.seen and time.monotonic() < deadline:
            if select.select([self.master], [], [], 0.2)[0]:
                try:
                    self.seen += os.read(self.master, 4096).decode(errors="replace")
                except OSError:  # the command ended and closed the terminal
                    break
        return text in self.seen

    def type(self, line: str) -> None:
        os.write(self.master, f"{line}\n".encode())

    def give_the_password_twice(self, password: str, again: str) -> None:
        """Answer create-admin's two questions for the password."""
        assert self.wait_for("Password: "), self.seen
        self.type(password)
        assert self.wait_for("Password again: "), self.seen
        self.type(again)

    def close(self) -> int:
        """The command's exit status, once it has ended (killed if it still waits)."""
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait()
        self.read_the_rest()
        os.close(self.master)
        return code

    def read_the_rest(self) -> None:
        """What the command wrote last, before it closed the terminal."""
        while select.select([self.master], [], [], 0.2)[0]:
            try:
                chunk = os.read(self.master, 4096)
            except OSError:  # closed: all of it has been read
                return
            if not chunk:
                return
            self.seen += chunk.decode(errors="replace")


def test_create_admin_in_a_terminal_asks_for_the_password_twice_unseen(database: str) -> None:
    with Terminal(CREATE_BOSS_WITH_EMAIL, DATABASE_URL=database) as terminal:
        terminal.give_the_password_twice("a long secret", "a long secret")
        assert terminal.wait_for("Created administrator boss2 (id 1)"), terminal.seen

    assert terminal.returncode == 0
    assert "a long secret" not in terminal.seen


def test_create_admin_in_a_terminal_refuses_two_passwords_that_differ(database: str) -> None:
    with Terminal(CREATE_BOSS_WITH_EMAIL, DATABASE_URL=database) as terminal:
        terminal.give_the_password_twice("a long secret", "a long secreT")

    assert terminal.returncode == 2
    assert "the two passwords differ; nothing was changed" in terminal.seen
    assert "Created" not in terminal.seen


def test_create_admin_in_a_terminal_says_the_email_is_missing_before_asking(
    database: str,
) -> None:
    with Terminal(CREATE_BOSS, DATABASE_URL=database) as terminal:
        assert terminal.wait_for("to create one, give --email"), terminal.seen

    assert terminal.returncode == 2
    assert "Password" not in terminal.seen


# Serving and migrating say what they did.


def test_serve_says_where_the_api_docs_are_and_they_answer(tmp_path: Path) -> None:
    port = free_port()
    service = launch("users", port, service_environment("users", tmp_path), tmp_path, workers=1)
    try:
        service.wait_until_ready()
        lines = [line for line in service.output().splitlines() if "the API docs: " in line]
        assert len(lines) == 1, service.output()
        docs = lines[0].rsplit("the API docs: ", 1)[1]
        assert f"serving on 127.0.0.1:{port}, 1 worker;" in lines[0]
        assert docs == f"http://127.0.0.1:{port}/api/docs"
        assert requests.get(docs, timeout=10).status_code == 200
    finally:
        service.stop()


def revision_names(service: str) -> list[str]:
    """The service's migrations, oldest first, each as its file name without .py."""
    return sorted(path.stem for path in (ROOT / service / "migrations").glob("[0-9]*_*.py"))


def test_setup_and_migrate_name_the_revision_and_the_steps_taken(database: str) -> None:
    names = revision_names("users")
    ids = [name[:4] for name in names]

    set_up = inv("users", "setup", DATABASE_URL=database)
    down = inv("users", "migrate", "--to", ids[0], DATABASE_URL=database)
    again = inv("users", "setup", DATABASE_URL=database)
    to_base = inv("users", "migrate", "-t", "base", DATABASE_URL=database)

    for done in (set_up, down, again, to_base):
        assert done.returncode == 0, done.stderr
    assert log_lines(set_up)[-1].endswith(
        f"database ready at {database}, at revision {names[-1]} (applied {', '.join(ids)})"
    )
    assert log_lines(down)[-1].endswith(
        f"database at revision {names[0]} (undid {', '.join(reversed(ids[1:]))})"
    )
    assert log_lines(again)[-1].endswith(f"at revision {names[-1]} (applied {', '.join(ids[1:])})")
    assert log_lines(to_base)[-1].endswith(
        f"database at revision base (undid {', '.join(reversed(ids))})"
    )


def test_migrating_to_a_revision_there_is_not_is_one_line_naming_those_there_are(
    database: str,
) -> None:
    refused = inv("beers", "migrate", "--to", "0999", DATABASE_URL=database)

    assert refused.returncode == 1
    line = one_line(refused)
    assert line.startswith("inv beers migrate: beers has no revision '0999'; it has 0001")
    assert line.endswith(", head, base")


def test_migrate_needs_a_revision() -> None:
    refused = inv("orders", "migrate")

    assert refused.returncode == 2
    assert one_line(refused) == "inv orders migrate needs --to"


def test_bench_refuses_a_scenario_it_does_not_have_before_starting_anything() -> None:
    refused = inv("bench", "--only", "beer_get,nope")

    assert refused.returncode == 2
    line = one_line(refused)
    assert line.startswith("inv bench: no scenario nope; the scenarios are ")
    assert "beer_get" in line
