"""The services as real processes: started the way an operator starts them, and stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from launcher import SERVICES as LAUNCHED
from launcher import STOP_TIMEOUT, LaunchError, wait_until_ready
from launcher import free_port as free_port  # for the tests, as are these
from launcher import wait_for as wait_for
from tests.databases import fresh_database_url

from .api_client import ShopApi

ROOT = Path(__file__).resolve().parents[2]
# The contract, concurrency rules included, must hold with any number of workers
# a service: 4 unless E2E_WORKERS says otherwise (CI runs 1 too).
WORKERS = int(os.environ.get("E2E_WORKERS", "4"))
SERVICES = tuple(LAUNCHED)  # users, beers, orders
ADMIN_PASSWORD = "admin password 4 e2e"
# Variables of the developer's shell that would change how a service runs.
UNWANTED_ENVIRONMENT = (
    "DATABASE_URL",
    "USERS_DATABASE_URL",
    "BEERS_DATABASE_URL",
    "ORDERS_DATABASE_URL",
    "USERS_URL",
    "BEERS_URL",
    "UPSTREAM_CONNECT_TIMEOUT",
    "UPSTREAM_READ_TIMEOUT",
    "UPSTREAM_BREAKER_FAILURES",
    "LOG_FORMAT",
    "LOGIN_MAX_FAILURES",
    "LOGIN_MAX_FAILURES_PER_ADDRESS",
    "LOGIN_WINDOW_SECONDS",
    "TRUSTED_PROXIES",
    "PASSWORD_WAIT_SECONDS",
    "IDEMPOTENCY_TTL_SECONDS",
    "UPSTREAM_BREAKER_SECONDS",
    "TOKEN_TTL_SECONDS",
    "FLASK_SERVER_NAME",
    "LOG_LEVEL",
    "PROMETHEUS_MULTIPROC_DIR",
)
# OpenTelemetry's own variables, all of them: an endpoint set in the shell would
# trace the whole suite (test_tracing.py sets the ones it means).
UNWANTED_PREFIXES = ("OTEL_",)


def _process_table() -> dict[int, tuple[int, str]]:
    """Every process: its parent and its state."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rpartition(")")[2].split()
            except OSError:
                continue
            table[int(entry.name)] = (int(fields[1]), fields[0])
    return table


def descendants(pid: int) -> set[int]:
    """Every live process below pid (a server's workers, say)."""
    children: dict[int, list[int]] = {}
    for child, (parent, state) in _process_table().items():
        if state != "Z":
            children.setdefault(parent, []).append(child)
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    table = _process_table()
    return {pid for pid in pids if pid in table and table[pid][1] != "Z"}


def shell_environment(*also_unwanted: str) -> dict[str, str]:
    """This process's environment without what would change how a service runs
    (nor the variables named here)."""
    unwanted = (*UNWANTED_ENVIRONMENT, *also_unwanted)
    return {
        name: value
        for name, value in os.environ.items()
        if name not in unwanted and not name.startswith(UNWANTED_PREFIXES)
    }


def service_environment(
    service: str, directory: Path, **settings: str | int | float
) -> dict[str, str]:
    """The environment a service runs with: its own database in `directory`."""
    env = shell_environment()
    env["DATABASE_URL"] = fresh_database_url(f"e2e_{directory.name}_{service}", directory)
    env["SECRET_KEY"] = f"e2e-{service}-secret"
    env["LOG_LEVEL"] = "DEBUG"  # a line for every request, to follow request ids through
    env.update({name: str(value) for name, value in settings.items()})
    return env


@dataclass
class Service:
    """One running service: its server's master process and where its output goes."""

    name: str
    port: int
    process: subprocess.Popen[bytes]
    stdout: Path
    stderr: Path
    env: Mapping[str, str]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        """Everything the process wrote so far: its logs."""
        return "".join(
            path.read_text(errors="replace") for path in (self.stdout, self.stderr) if path.exists()
        )

    def wait_until_ready(self) -> None:
        """Wait until GET /ready answers 200; fail with the logs if the process dies."""
        try:
            wait_until_ready(f"{self.url}/ready", self.process)
        except LaunchError as error:
            pytest.fail(f"{self.name}: {error}:\n{self.output()}")

    def stop(self) -> None:
        """SIGTERM to the server's master process; the whole process group is killed after 15 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            # start_new_session made the master a group leader: its pid is the group id.
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def launch(
    service: str, port: int, env: Mapping[str, str], logs: Path, workers: int = WORKERS
) -> Service:
    """Start `python -m invoke <service> serve` (it execs the server) without waiting for it."""
    logs.mkdir(parents=True, exist_ok=True)
    stdout, stderr = logs / f"{service}.stdout.log", logs / f"{service}.stderr.log"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "invoke", service, "serve"]
            + ["--port", str(port), "--workers", str(workers)],
            cwd=ROOT,
            env=dict(env),
            stdout=out,
            stderr=err,
            start_new_session=True,
        )
    return Service(service, port, process, stdout, stderr, env)


def create_admin(username: str, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    """`inv users create-admin`, as an operator runs it, on the users database in env."""
    completed = subprocess.run(
        [sys.executable, "-m", "invoke", "users", "create-admin"]
        + ["--username", username, "--email", f"{username}@example.com"]
        + ["--password", ADMIN_PASSWORD],
        cwd=ROOT,
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    if completed.returncode != 0:
        pytest.fail(f"create-admin failed:\n{completed.stdout}\n{completed.stderr}")
    return completed


@dataclass
class Shop:
    """The running shop: its three services, a client for them, and an administrator."""

    users: Service
    beers: Service
    orders: Service
    api: ShopApi
    admin_username: str
    admin_output: str

    def logs(self, characters: int = 3000) -> list[tuple[str, str]]:
        """The end of each service's log, to show with a failing test."""
        services = (self.users, self.beers, self.orders)
        return [(f"{service.name} log", service.output()[-characters:]) for service in services]


StartService = Callable[..., Service]
