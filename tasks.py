"""Run the shop: `inv users setup|serve|create-admin`, `inv beers setup|serve`,
`inv orders setup|serve`, `inv up`, `inv test`, `inv check`.
"""

from __future__ import annotations

import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from getpass import getpass
from pathlib import Path
from typing import Any

import requests
from invoke import Context, Exit, task

ROOT = Path(__file__).resolve().parent
PORTS = {"users": 5001, "beers": 5002, "orders": 5003}
PR_SET_PDEATHSIG = 1  # prctl(2)
READY_TIMEOUT = 30.0

SERVICE_HELP = {
    "action": "setup, serve (or, for users, create-admin, unthrottle)",
    "host": "address to serve on (serve)",
    "port": "port to serve on (serve); the service's own by default",
    "workers": "worker processes (serve)",
    "reset": "drop the service's tables and data first (setup)",
}


@contextmanager
def service_context(service: str, database_url: str | None = None) -> Iterator[Any]:
    """The service's app context and its db; DATABASE_URL from the environment
    unless given (the default SQLite file when neither). Connections close after."""
    if service == "users":
        from users import create_app
        from users.models import db
    elif service == "beers":
        from beers import create_app
        from beers.models import db
    else:
        from orders import create_app
        from orders.models import db
    app = create_app({"DATABASE_URL": database_url} if database_url else None)
    with app.app_context():
        try:
            yield db
        finally:
            db.session.remove()
            db.engine.dispose()


def setup_service(
    service: str, *, reset: bool = False, seed: str = "no", database_url: str | None = None
) -> None:
    """Upgrade the service's database to the latest schema, keeping its rows
    (dropping everything first with reset).

    seed: for beers, "yes" loads the demo beers whose SKUs are free, "if-empty"
    only into an empty catalogue.
    """
    from servicekit.migrations import UnversionedDatabase, drop_everything, upgrade

    with service_context(service, database_url) as db:
        if reset:
            drop_everything(service, db)
        try:
            upgrade(service, db)
        except UnversionedDatabase as error:
            raise Exit(str(error), code=1) from error
        if service == "beers" and seed != "no":
            from beers.domain import catalogue_is_empty, seed_demo_catalogue

            if seed == "yes" or catalogue_is_empty():
                added = seed_demo_catalogue()
                print(f"beers: added {added} demo beers to the catalogue")
        print(f"{service}: database ready at {_safe_url(str(db.engine.url))}")


def _safe_url(url: str) -> str:
    """The database URL without its password, fit to print."""
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def server_argv(service: str, host: str, port: int, workers: int) -> list[str]:
    """The production server's command line for one service (or any app module)."""
    return [sys.executable, "-m", "servicekit.serving", service] + [
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def server_env(database_url: str | None) -> dict[str, str]:
    """The environment one service's server runs in: its own database."""
    env = dict(os.environ)
    if database_url:
        env["DATABASE_URL"] = database_url
    else:
        env.pop("DATABASE_URL", None)
    return env


def _service_task(
    c: Context,
    service: str,
    action: str,
    host: str,
    port: int,
    workers: int,
    reset: bool,
    seed: bool = False,
) -> None:
    if action == "setup":
        setup_service(service, reset=reset, seed="yes" if seed else "no")
    elif action == "serve":
        if reset or seed:
            raise Exit("--reset and --seed go with setup, not serve", code=2)
        database_url = os.environ.get("DATABASE_URL")
        setup_service(service, database_url=database_url)
        argv = server_argv(service, host, port or PORTS[service], workers)
        sys.stdout.flush()
        # The server takes this process's place, so Ctrl-C and kill reach it.
        os.execve(argv[0], argv, server_env(database_url))
    else:
        raise Exit(f"inv {service}: unknown action {action!r}; try setup or serve", code=2)


@task(
    positional=["action"],
    help={
        **SERVICE_HELP,
        "username": "create-admin: the administrator's username; unthrottle: whose failed "
        "logins to forget",
        "email": "create-admin: their email (when the user is new)",
        "password": "create-admin: their password (when the user is new); "
        "else $ADMIN_PASSWORD, else asked for",
    },
)
def users(
    c: Context,
    action: str,
    host: str = "127.0.0.1",
    port: int = 0,
    workers: int = 2,
    reset: bool = False,
    username: str = "",
    email: str = "",
    password: str = "",
) -> None:
    """users: setup, serve, create-admin (create or promote an administrator), or
    unthrottle (forget a username's failed logins)."""
    if action == "create-admin":
        create_admin(username, email, password)
    elif action == "unthrottle":
        unthrottle(username)
    else:
        _service_task(c, "users", action, host, port, workers, reset)


def unthrottle(username: str) -> None:
    """Forget every failed login of a username, from every address."""
    from users.domain import name_key
    from users.throttling import unthrottle as forget_failures

    if not username:
        raise Exit("unthrottle: say whose failed logins to forget: --username U", code=2)
    setup_service("users")
    with service_context("users"):
        forgotten = forget_failures(name_key(username))
    print(f"Forgot {forgotten} failed logins of {username}")


def create_admin(username: str, email: str, password: str) -> None:
    """Promote the user to administrator, or create them as one; print no secret."""
    from marshmallow import ValidationError

    from servicekit.errors import Problem
    from users.domain import promote_to_admin, register
    from users.schemas import RegisterIn

    setup_service("users")
    with service_context("users"):
        user = promote_to_admin(username)
        if user is not None:
            print(f"Promoted {user.username} (id {user.id}) to administrator")
            return
        password = password or os.environ.get("ADMIN_PASSWORD") or getpass("Password: ")
        try:
            fields = RegisterIn().load({"username": username, "email": email, "password": password})
            user = register(fields, is_admin=True)
        except ValidationError as error:
            raise Exit(f"create-admin: invalid input: {error.messages}", code=2) from error
        except Problem as error:
            raise Exit(f"create-admin: {error.detail}", code=2) from error
        print(f"Created administrator {user.username} (id {user.id})")


@task(positional=["action"], help={**SERVICE_HELP, "seed": "load the demo catalogue (setup)"})
def beers(
    c: Context,
    action: str,
    host: str = "127.0.0.1",
    port: int = 0,
    workers: int = 2,
    reset: bool = False,
    seed: bool = False,
) -> None:
    """beers: setup [--seed] or serve."""
    _service_task(c, "beers", action, host, port, workers, reset, seed)


@task(positional=["action"], help=SERVICE_HELP)
def orders(
    c: Context,
    action: str,
    host: str = "127.0.0.1",
    port: int = 0,
    workers: int = 2,
    reset: bool = False,
) -> None:
    """orders: setup or serve."""
    _service_task(c, "orders", action, host, port, workers, reset)


@task(
    help={
        "host": "address to serve on",
        "workers": "worker processes per service",
        "base_port": "users' port; beers and orders take the next two",
    }
)
def up(c: Context, host: str = "127.0.0.1", workers: int = 2, base_port: int = 5001) -> None:
    """Set up and start all three services; Ctrl-C stops them."""
    _stop_on_signals()
    if os.environ.pop("DATABASE_URL", None):
        print("inv up: DATABASE_URL is ignored; set USERS_DATABASE_URL and the like")
    ports = {service: base_port + offset for offset, service in enumerate(PORTS)}
    reachable_at = _reachable_at(host)
    database_urls = {svc: os.environ.get(f"{svc.upper()}_DATABASE_URL") for svc in PORTS}
    for service in PORTS:
        setup_service(service, seed="if-empty", database_url=database_urls[service])
    servers = start_servers(host, ports, database_urls, workers)
    try:
        for service, port in ports.items():
            wait_until_ready(f"http://{reachable_at}:{port}/ready", servers[service])
        print("\nThe shop is up (Ctrl-C stops it):")
        for service, port in ports.items():
            print(f"  {service:7} http://{reachable_at}:{port}/api/{service}/   docs: /api/docs")
        while all(server.poll() is None for server in servers.values()):
            time.sleep(0.5)
        raise Exit("a service stopped; stopping the others", code=1)
    except KeyboardInterrupt:
        print("\nStopping…")
    finally:
        _stop(servers.values())


def _reachable_at(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "::") else host


def start_servers(
    host: str,
    ports: dict[str, int],
    database_urls: dict[str, str | None],
    workers: int,
    env: dict[str, str] | None = None,
    logs: Path | None = None,
) -> dict[str, subprocess.Popen[bytes]]:
    """A server for each service, each told where its neighbours are, stopped
    if this process dies; their stderr into `logs`/<service>.log if given."""
    reachable_at = _reachable_at(host)
    neighbours = {
        "USERS_URL": f"http://{reachable_at}:{ports['users']}",
        "BEERS_URL": f"http://{reachable_at}:{ports['beers']}",
    }
    return {
        service: subprocess.Popen(
            server_argv(service, host, port, workers),
            env={**server_env(database_urls[service]), **neighbours, **(env or {})},
            stderr=(logs / f"{service}.log").open("wb") if logs else None,
            preexec_fn=_stop_when_parent_dies,
        )
        for service, port in ports.items()
    }


def _stop_on_signals() -> None:
    """Ctrl-C, a plain kill and a closed terminal (SIGHUP) all stop the shop
    cleanly, even when this process was started in the background (where
    SIGINT starts out ignored)."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    for stop in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, interrupt)


def _stop_when_parent_dies() -> None:
    """In a server's process, before it starts: if `inv up` dies without a word
    (kill -9), the kernel sends the server SIGTERM, so no server is orphaned."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_ready(url: str, server: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until url answers 200; give up when the server exits or time runs out."""
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if server is not None and server.poll() is not None:
            raise Exit(f"{url}: the server exited with {server.returncode}", code=1)
        try:
            if requests.get(url, timeout=1).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise Exit(f"{url} was not ready within {READY_TIMEOUT:.0f} s", code=1)


def _stop(servers: Any) -> None:
    for server in servers:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
    for server in servers:
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()


@task(
    help={
        "args": "extra pytest arguments, e.g. '-k checkout'",
        "postgres": "run against a throwaway PostgreSQL server instead of SQLite",
    }
)
def test(c: Context, args: str = "", postgres: bool = False) -> None:
    """Run every test: service tests, then end-to-end over real HTTP."""
    command = f"{sys.executable} -m pytest {args}"
    if not postgres:
        c.run(command, pty=False)
        return
    from tests.postgres import throwaway_postgres

    with throwaway_postgres() as url:
        print(f"PostgreSQL for the tests at {url}")
        c.run(command, env={"TEST_POSTGRES_URL": url}, pty=False)


FUZZ_CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance"
)


@task(help={"examples": "examples schemathesis makes per operation and phase"})
def fuzz(c: Context, examples: int = 30) -> None:
    """Fuzz each service against its own OpenAPI document (schemathesis), all three
    running on temporary databases: no 5xx but documented 503s, every answer as
    documented."""
    folder = Path(tempfile.mkdtemp(prefix="shop-fuzz-"))
    ports = {service: free_port() for service in PORTS}
    urls = {service: f"http://127.0.0.1:{port}" for service, port in ports.items()}
    databases: dict[str, str | None] = {
        service: f"sqlite:///{folder / service}.db" for service in PORTS
    }
    for service in PORTS:
        setup_service(service, seed="yes", database_url=databases[service])
    password = secrets.token_urlsafe(24)
    with service_context("users", databases["users"]):
        from users.domain import register

        register(
            {"username": "fuzzer", "email": "fuzzer@example.com", "password": password},
            is_admin=True,
        )
    servers = start_servers("127.0.0.1", ports, databases, 2, {"SECRET_KEY": "fuzz"}, folder)
    failed = []
    try:
        for service, server in servers.items():
            wait_until_ready(f"{urls[service]}/ready", server)
        # users last: its logout revokes the token the others are fuzzed with.
        for service in ("beers", "orders", "users"):
            token = requests.post(
                f"{urls['users']}/api/users/login",
                json={"username": "fuzzer", "password": password},
                timeout=10,
            ).json()["token"]
            schemathesis = Path(sys.executable).parent / "st"
            done = c.run(
                f"cd {folder} && {schemathesis} run {urls[service]}/api/openapi.json "
                f"--checks {FUZZ_CHECKS} --max-examples {examples} --seed 1 "
                f"--header 'Authorization: Bearer {token}' --report junit "
                f"--report-dir {folder / 'reports' / service}",
                warn=True,
                pty=False,
            )
            if done is None or done.failed:
                failed.append(service)
    finally:
        _stop(servers.values())
    if failed:
        raise Exit(f"fuzzing found answers the documents do not allow: {', '.join(failed)}")
    print(f"fuzzed users, beers and orders: every answer as documented ({folder})")


@task
def check(c: Context) -> None:
    """Lint, format check, type check, and the deployment files against their schemas."""
    tools = Path(sys.executable).parent
    c.run(f"{sys.executable} -m ruff check .")
    c.run(f"{sys.executable} -m ruff format --check .")
    c.run(f"{sys.executable} -m mypy")
    c.run(f"{sys.executable} -m servicekit.apidocs users beers orders")  # OpenAPI: Redocly lint
    manifests = ROOT / "deploy" / "k8s"
    validate = f"{tools / 'kubernetes-validate'} --strict --quiet"
    c.run(f"{validate} {manifests}/*.yaml {manifests}/examples/*.yaml")
    c.run(f"{tools / 'check-jsonschema'} --builtin-schema vendor.compose-spec compose.yaml")


@task(
    help={
        "quick": "one short run at 4 connections: checks that the benchmark works",
        "duration": "seconds per measured run",
        "workers": "worker processes per service",
        "record": "also write the table to bench/RESULTS.md",
        "only": "comma-separated scenarios to run, e.g. beer_get,order_get (ceilings always run)",
        "in_process": "instead: each endpoint's CPU inside its service, without a server",
    }
)
def bench(
    c: Context,
    quick: bool = False,
    duration: int = 10,
    workers: int = 2,
    record: bool = False,
    only: str = "",
    in_process: bool = False,
) -> None:
    """Load-test every scenario with wrk against a bare Flask ceiling; print a table."""
    if in_process:
        from bench.inprocess import main as in_process_main

        in_process_main()
        return
    from bench.run import Settings, main

    chosen = tuple(name for name in only.split(",") if name)
    settings = Settings(duration=duration, workers=workers, only=chosen)
    if quick:
        settings = Settings(duration=1, connections=(4,), workers=workers, warmup=0, users=16)
    main(settings, ROOT / "bench" / "RESULTS.md" if record else None)
