"""`inv up` stops its servers however it ends: Ctrl-C, SIGTERM, a closed
terminal (SIGHUP), or its own sudden death (kill -9). No server is orphaned."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .services import ROOT, UNWANTED_ENVIRONMENT, alive, descendants, wait_for

pytestmark = pytest.mark.e2e


def three_free_ports() -> int:
    """A port such that it and the next two are free."""
    for _ in range(50):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            base = int(sock.getsockname()[1])
        if base + 2 < 65536 and all(_free(base + offset) for offset in (1, 2)):
            return base
    raise RuntimeError("no three free ports in a row")


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@pytest.fixture
def shop_up(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], set[int]]]:
    """`inv up` on three free ports with its own SQLite files; its servers' pids."""
    env = {k: v for k, v in os.environ.items() if k not in UNWANTED_ENVIRONMENT}
    for service in ("users", "beers", "orders"):
        env[f"{service.upper()}_DATABASE_URL"] = f"sqlite:///{tmp_path / service}.db"
    env["SECRET_KEY"] = "e2e-up"
    log = tmp_path / "up.log"
    with log.open("wb") as output:
        up = subprocess.Popen(
            [sys.executable, "-m", "invoke", "up", "--workers", "1"]
            + ["--base-port", str(three_free_ports())],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        assert wait_for(lambda: "The shop is up" in log.read_text(), 60), log.read_text()
        servers = descendants(up.pid)
        assert len(servers) >= 6  # three masters and their workers
        yield up, servers
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
        for pid in alive(descendants(up.pid)):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("ending", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_inv_up_leaves_no_server_behind(
    shop_up: tuple[subprocess.Popen[bytes], set[int]], ending: int
) -> None:
    up, servers = shop_up
    started = time.monotonic()

    up.send_signal(ending)

    assert wait_for(lambda: not alive(servers), 15), alive(servers)
    if ending != signal.SIGKILL:
        up.wait(timeout=10)
        assert time.monotonic() - started < 3.0  # nothing was in flight
