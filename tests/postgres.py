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
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

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


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def throwaway_postgres(databases: tuple[str, ...] = ()) -> Iterator[str]:
    """Start a fresh server, create `databases`; yield its URL without a database
    name (`postgresql://postgres@127.0.0.1:PORT`); stop it and delete it after."""
    binaries = postgres_bin()
    folder = Path(tempfile.mkdtemp(prefix="beers-postgres-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    port = _free_port()
    run = _runner(folder)
    try:
        run([str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"])
        options = " ".join(f"-c {name}={value}" for name, value in SERVER_SETTINGS.items())
        options += f" -p {port} -k {folder}"
        server_log = str(folder / "server.log")
        run(
            [
                str(binaries / "pg_ctl"),
                "-D",
                str(data),
                "-l",
                server_log,
                "-o",
                options,
                "-w",
                "start",
            ]
        )
        try:
            for name in databases:
                run(
                    [
                        str(binaries / "createdb"),
                        "-h",
                        "127.0.0.1",
                        "-p",
                        str(port),
                        "-U",
                        "postgres",
                        name,
                    ]
                )
            yield f"postgresql://postgres@127.0.0.1:{port}"
        finally:
            run([str(binaries / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


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
