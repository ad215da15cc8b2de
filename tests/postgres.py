"""A throwaway PostgreSQL server for the test suite: `inv test --postgres`.

It runs Debian's PostgreSQL binaries as an unprivileged user (the `postgres`
account when we are root) on a free loopback port, keeps everything in a
temporary folder, and is gone when the block ends. Settings trade durability
for speed: it only ever holds test data.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from launcher import free_port

SERVER_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "400",
}


def postgres_bin() -> Path:
    """The folder of the newest installed server binaries."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    if pg_ctl:
        return Path(pg_ctl).resolve().parent
    raise SystemExit("PostgreSQL is not installed: apt-get install postgresql")


def _as_unprivileged(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: run it as `postgres` then."""
    if os.geteuid() != 0:
        return argv
    return ["runuser", "-u", "postgres", "--", *argv]


class PostgresServer:
    """A server in a folder of its own, on a free loopback port; it can be
    stopped and started again (to test what a service does meanwhile)."""

    def __init__(self) -> None:
        self.binaries = postgres_bin()
        self.folder = Path(tempfile.mkdtemp(prefix="shop-postgres-"))
        self.data = self.folder / "data"
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}"
        self.run = _runner(self.folder)

    def create(self, databases: tuple[str, ...]) -> None:
        self.run(
            [str(self.binaries / "initdb"), "-D", str(self.data), "-U", "postgres"]
            + ["--auth=trust"]
        )
        self.start()
        for name in databases:
            self.run(
                [str(self.binaries / "createdb"), "-h", "127.0.0.1", "-p", str(self.port)]
                + ["-U", "postgres", name]
            )

    def start(self) -> None:
        options = " ".join(f"-c {name}={value}" for name, value in SERVER_SETTINGS.items())
        options += f" -p {self.port} -k {self.folder}"
        log = str(self.folder / "server.log")
        self.run(
            [str(self.binaries / "pg_ctl"), "-D", str(self.data), "-l", log, "-o", options]
            + ["-w", "start"]
        )

    def stop(self) -> None:
        self.run([str(self.binaries / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])


@contextmanager
def postgres_server(databases: tuple[str, ...] = ()) -> Iterator[PostgresServer]:
    """A fresh server with `databases`; stopped and deleted after."""
    server = PostgresServer()
    try:
        server.create(databases)
        try:
            yield server
        finally:
            with suppress(SystemExit):  # already stopped
                server.stop()
    finally:
        shutil.rmtree(server.folder, ignore_errors=True)


@contextmanager
def throwaway_postgres(databases: tuple[str, ...] = ()) -> Iterator[str]:
    """Start a fresh server, create `databases`; yield its URL without a database
    name (`postgresql://postgres@127.0.0.1:PORT`); stop it and delete it after."""
    with postgres_server(databases) as server:
        yield server.url


def _runner(folder: Path):  # type: ignore[no-untyped-def]
    log = folder / "commands.log"

    def run(argv: list[str]) -> None:
        with open(log, "ab") as output:
            done = subprocess.run(
                _as_unprivileged(argv), stdout=output, stderr=subprocess.STDOUT, cwd=folder
            )
        if done.returncode != 0:
            raise SystemExit(f"{argv[0]} failed:\n{log.read_text(errors='replace')[-3000:]}")

    return run
