"""Starting the shop's services for tasks.py, bench/ and the end-to-end tests:
their databases set up, their servers started, waited for and stopped, on free
ports. SERVICES names them: each a package with `create_app()`, its `db` in
`<name>.models`."""

from __future__ import annotations

import ctypes
import errno
import fcntl
import importlib
import logging
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import requests

from servicekit.config import BadSetting, environment_values, service_database_url
from servicekit.db import DatabaseProblem, printable_url
from servicekit.migrations import (
    UnknownRevision,
    UnversionedDatabase,
    drop_everything,
    migration_target,
    upgrade,
)
from servicekit.serving import JEMALLOC_CONF, JEMALLOC_CONF_VARIABLE, PR_SET_PDEATHSIG

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServiceEntry:
    """What the launcher knows of a service besides its package."""

    name: str
    port: int  # where it serves unless told otherwise
    # A demo catalogue to load: `<name>.domain` has seed_demo_catalogue() and
    # catalogue_is_empty().
    seeds: bool = False


SERVICES: dict[str, ServiceEntry] = {
    entry.name: entry
    for entry in (
        ServiceEntry("users", 5001),
        ServiceEntry("beers", 5002, seeds=True),
        ServiceEntry("orders", 5003),
    )
}
DEFAULT_HOST = "127.0.0.1"
DEFAULT_WORKERS = 2
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0

Seed = Literal["no", "yes", "if-empty"]


class LaunchError(Exception):
    """Something an operator can put right. The message is one line, with no
    password in it."""


class SetupFailed(LaunchError):
    """A service's database could not be brought to the latest schema."""


class PortInUse(LaunchError):
    """A port a server should listen on is taken, or cannot be listened on."""


class NotReady(LaunchError):
    """A server exited, or did not answer /ready in time."""


def setup_service(
    name: str, *, reset: bool = False, seed: Seed = "no", database_url: str | None = None
) -> None:
    """Upgrade the service's database to the latest schema, keeping its rows
    (dropping everything first with reset). The database is DATABASE_URL from the
    environment unless given, the service's SQLite file when neither.

    seed, for a service that has a demo catalogue: "yes" loads the demo entries
    whose keys are free, "if-empty" only into an empty catalogue.
    """
    try:  # here, once, rather than in every worker, which would crash in a loop
        environment_values(importlib.import_module(name).Config)
    except BadSetting as error:
        raise SetupFailed(f"{name}: {error}") from error
    url = service_database_url(name, database_url)
    metadata = importlib.import_module(f"{name}.models").db.metadata
    try:
        with migration_target(url, metadata) as target:
            if reset:
                drop_everything(name, target)
            migrated = upgrade(name, target)
    except DatabaseProblem as error:
        raise SetupFailed(f"the {name} database: {error}") from error
    except (UnversionedDatabase, UnknownRevision) as error:
        raise SetupFailed(str(error)) from error
    added = 0
    if SERVICES[name].seeds and seed != "no":
        added = _seed(name, url, only_if_empty=seed == "if-empty")
    seeded = f", {added} demo entries added to the catalogue" if added else ""
    where = printable_url(url)
    log.info("database ready at %s, %s%s", where, migrated, seeded, extra={"service": name})


def _seed(name: str, url: str, *, only_if_empty: bool) -> int:
    """How many demo entries were added."""
    domain = importlib.import_module(f"{name}.domain")
    with service_context(name, url):
        if only_if_empty and not domain.catalogue_is_empty():
            return 0
        added: int = domain.seed_demo_catalogue()
        return added


@contextmanager
def service_context(name: str, database_url: str | None = None) -> Iterator[Any]:
    """Inside the service's app context, its Flask-SQLAlchemy `db`: for work on
    its data through its own domain functions. DATABASE_URL from the environment
    unless given; connections are closed after."""
    app = importlib.import_module(name).create_app(
        {"DATABASE_URL": database_url} if database_url else None
    )
    db = importlib.import_module(f"{name}.models").db
    with app.app_context():
        try:
            yield db
        finally:
            db.session.remove()
            db.engine.dispose()


def server_argv(app: str, host: str, port: int, workers: int) -> list[str]:
    """The production server's command line for one service (or any app module)."""
    return [sys.executable, "-m", "servicekit.serving", app] + [
        *("--host", host),
        *("--port", str(port)),
        *("--workers", str(workers)),
    ]


def server_env(database_url: str | None) -> dict[str, str]:
    """The environment one service's server runs in: this one, with its own
    database (DATABASE_URL removed when it has none: the default file then)."""
    env = dict(os.environ)
    env[JEMALLOC_CONF_VARIABLE] = JEMALLOC_CONF  # else the server starts itself again with it
    if database_url:
        env["DATABASE_URL"] = database_url
    else:
        env.pop("DATABASE_URL", None)
    return env


def reachable_at(host: str) -> str:
    """Where a client reaches a server listening on host."""
    return "127.0.0.1" if host in ("0.0.0.0", "::") else host


def start_servers(
    host: str,
    ports: Mapping[str, int],
    database_urls: Mapping[str, str | None],
    workers: int,
    env: Mapping[str, str] | None = None,
    logs: Path | None = None,
) -> dict[str, subprocess.Popen[bytes]]:
    """A server for each service, each told where its neighbours are, stopped
    if this process dies; their stderr into `logs`/<service>.log if given.

    One launcher at a time checks the ports and starts its servers, until each
    listens (or has exited): of two `inv up` started together, the second finds
    the ports taken (PortInUse) rather than each getting some of them."""
    with starting_alone():
        check_ports_free(host, ports)
        servers = _start(host, ports, database_urls, workers, env, logs)
        wait_for(  # each server listening, or gone
            lambda: all(
                server.poll() is not None or not port_is_free(host, ports[name])
                for name, server in servers.items()
            ),
            READY_TIMEOUT,
        )
    return servers


@contextmanager
def starting_alone() -> Iterator[None]:
    """Hold this machine's launch lock (a file lock the kernel drops with its holder)."""
    path = launch_lock_path()
    with path.open("a") as lock:
        if not wait_for(lambda: _try_lock(lock.fileno()), READY_TIMEOUT):
            raise NotReady(f"another launcher held {path} for {READY_TIMEOUT:.0f} s")
        yield


def launch_lock_path() -> Path:
    return Path(tempfile.gettempdir()) / f"shop-launch-{os.getuid()}.lock"


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _start(
    host: str,
    ports: Mapping[str, int],
    database_urls: Mapping[str, str | None],
    workers: int,
    env: Mapping[str, str] | None,
    logs: Path | None,
) -> dict[str, subprocess.Popen[bytes]]:
    # USERS_URL and the like: where each service finds the others.
    neighbours = {f"{n.upper()}_URL": f"http://{reachable_at(host)}:{p}" for n, p in ports.items()}
    servers = {}
    for name, port in ports.items():
        log_file = (logs / f"{name}.log").open("wb") if logs else None
        servers[name] = subprocess.Popen(
            server_argv(name, host, port, workers),
            env={**server_env(database_urls.get(name)), **neighbours, **(env or {})},
            stderr=log_file,
            preexec_fn=_stop_when_parent_dies,
            # A group of its own: Ctrl-C reaches only us, and we stop each
            # server in order (its workers would otherwise each take it at once).
            process_group=0,
        )
        if log_file is not None:
            log_file.close()  # the server has its own copy
    return servers


def _stop_when_parent_dies() -> None:
    """In a server's process, before it starts: if its starter dies without a
    word (kill -9), the kernel sends the server SIGTERM, so no server is orphaned."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def stop_servers(servers: Iterable[subprocess.Popen[bytes]]) -> None:
    """SIGTERM to every server still running, then wait for each; kill one that
    takes longer than STOP_TIMEOUT."""
    servers = list(servers)
    for server in servers:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
    for server in servers:
        try:
            server.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            server.kill()


def stop_on_signals() -> None:
    """Ctrl-C, a plain kill and a closed terminal (SIGHUP) all raise
    KeyboardInterrupt, so the servers are stopped cleanly, even when this
    process was started in the background (where SIGINT starts out ignored)."""

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    for stop in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop, interrupt)


def wait_for(condition: Callable[[], object], seconds: float, interval: float = 0.1) -> bool:
    """Whether condition() came true within so many seconds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return False


def answers_ready(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).status_code == 200
    except requests.RequestException:
        return False


def wait_until_ready(
    url: str, server: subprocess.Popen[bytes] | None = None, timeout: float = READY_TIMEOUT
) -> None:
    """Wait until url answers 200. NotReady when time runs out, or when the
    server exits first: then whatever answers at url is not this server."""

    def exited() -> bool:
        return server is not None and server.poll() is not None

    if not wait_for(lambda: exited() or answers_ready(url), timeout):
        raise NotReady(f"{url} was not ready within {timeout:.0f} s")
    if server is not None and server.returncode is not None:
        raise NotReady(f"{url}: the server exited with {server.returncode} before it was ready")


def free_port() -> int:
    """A port nothing listens on right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_ports_in_a_row(count: int) -> int:
    """A port such that it and the next count - 1 are free right now."""
    for _ in range(50):
        first = free_port()
        following = range(first + 1, first + count)
        if first + count <= 65536 and all(port_is_free(DEFAULT_HOST, port) for port in following):
            return first
    raise PortInUse(f"found no {count} free ports in a row")


def port_is_free(host: str, port: int) -> bool:
    """Whether a server could listen on host:port now; PortInUse if it never
    could there (an address not on this machine, say)."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as error:
        raise PortInUse(f"cannot serve on {host!r}: {error.strerror}") from error
    with socket.socket(family, kind, protocol) as sock:
        # As servers do: a connection of an earlier server still closing does
        # not keep the port from them.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as error:
            if error.errno == errno.EADDRINUSE:
                return False
            raise PortInUse(f"cannot serve on {host}:{port}: {error.strerror}") from error
    return True


def check_ports_free(host: str, ports: Mapping[str, int]) -> None:
    """PortInUse naming every service whose port on host is taken."""
    taken = [f"{port} ({name})" for name, port in ports.items() if not port_is_free(host, port)]
    if len(taken) == 1:
        raise PortInUse(f"port {taken[0]} is already in use on {host}")
    if taken:
        raise PortInUse(f"ports {', '.join(taken)} are already in use on {host}")


def wait_until_all_ready(
    servers: Mapping[str, subprocess.Popen[bytes]], urls: Mapping[str, str]
) -> None:
    """Each server answers its /ready, and all of them still run once the last does."""
    for name, server in servers.items():
        wait_until_ready(f"{urls[name]}/ready", server)
    stopped = [name for name, server in servers.items() if server.poll() is not None]
    if stopped:
        raise NotReady(f"{', '.join(stopped)} stopped while the others started")
