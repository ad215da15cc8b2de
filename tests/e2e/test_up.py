"""`inv up` stops its servers however it ends: Ctrl-C, SIGTERM, a closed
terminal (SIGHUP), or its own sudden death (kill -9). No server is orphaned."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from launcher import SERVICES, free_ports_in_a_row, wait_for

from .services import ROOT, alive, descendants, shell_environment

pytestmark = pytest.mark.e2e


@dataclass
class ShopUp:
    up: subprocess.Popen[bytes]
    servers: set[int]  # pids of the servers' masters and workers
    base_port: int
    env: dict[str, str]
    log: Path  # what it printed


def up_command(base_port: int) -> list[str]:
    return [sys.executable, "-m", "invoke", "up", "--workers", "1", "--base-port", str(base_port)]


def shop_environment(folder: Path) -> dict[str, str]:
    """The environment `inv up` runs in here: its own SQLite files in folder."""
    env = shell_environment()
    for service in SERVICES:
        env[f"{service.upper()}_DATABASE_URL"] = f"sqlite:///{folder / service}.db"
    env["SECRET_KEY"] = "e2e-up"
    return env


@pytest.fixture
def secret_key() -> str:
    """SECRET_KEY for inv up; a test parametrized with "" runs it without one."""
    return "e2e-up"


@pytest.fixture
def shop_up(tmp_path: Path, secret_key: str) -> Iterator[ShopUp]:
    """`inv up` on three free ports with its own SQLite files."""
    env = shop_environment(tmp_path)
    env["SECRET_KEY"] = secret_key
    base_port = free_ports_in_a_row(len(SERVICES))
    log = tmp_path / "up.log"
    with log.open("wb") as output:
        up = subprocess.Popen(
            up_command(base_port),
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
        yield ShopUp(up, servers, base_port, env, log)
    finally:
        if up.poll() is None:
            os.killpg(up.pid, signal.SIGKILL)
            up.wait()
        for pid in alive(descendants(up.pid)):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("ending", [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_inv_up_leaves_no_server_behind(shop_up: ShopUp, ending: int) -> None:
    up, servers = shop_up.up, shop_up.servers
    started = time.monotonic()

    up.send_signal(ending)

    assert wait_for(lambda: not alive(servers), 15), alive(servers)
    if ending != signal.SIGKILL:
        up.wait(timeout=10)
        assert time.monotonic() - started < 3.0  # nothing was in flight


def test_ctrl_c_stops_the_shop_at_once_and_quietly(shop_up: ShopUp) -> None:
    started = time.monotonic()

    os.killpg(shop_up.up.pid, signal.SIGINT)  # as a terminal does: the whole group

    shop_up.up.wait(timeout=10)
    assert time.monotonic() - started < 3.0
    assert wait_for(lambda: not alive(shop_up.servers), 5), alive(shop_up.servers)
    said = shop_up.log.read_text()
    for noise in ("Traceback", "SIGKILL", "Unexpected exit", "ERROR"):
        assert noise not in said, said


@pytest.mark.parametrize("round_", range(3))  # a worker killed was seen one stop in a few
def test_a_plain_stop_kills_no_worker(shop_up: ShopUp, round_: int) -> None:
    started = time.monotonic()

    os.killpg(shop_up.up.pid, signal.SIGINT)  # as `timeout -s INT` and a terminal do

    shop_up.up.wait(timeout=10)
    assert wait_for(lambda: not alive(shop_up.servers), 5), alive(shop_up.servers)
    assert time.monotonic() - started < 3.0
    said = shop_up.log.read_text()
    for noise in ("refused to gracefully stop", "killed", "Killing"):
        assert noise not in said, said


@pytest.mark.parametrize("secret_key", [""])
def test_startup_says_one_line_per_service_then_the_urls(shop_up: ShopUp) -> None:
    warning, *ready = shop_up.log.read_text().split("The shop is up")[0].strip().splitlines()

    assert "SECRET_KEY is not set" in warning  # once for the shop, not once a worker
    assert [line.split()[2] for line in ready] == list(SERVICES)  # labelled, in order
    assert all("database ready at" in line for line in ready)


def test_a_second_inv_up_on_the_same_ports_says_they_are_taken_and_starts_nothing(
    shop_up: ShopUp, tmp_path: Path
) -> None:
    second = subprocess.run(
        up_command(shop_up.base_port),
        cwd=ROOT,
        env=shop_environment(tmp_path / "second"),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert second.returncode == 1
    assert "The shop is up" not in second.stdout
    assert second.stderr.strip().splitlines() == [
        f"inv up: ports {shop_up.base_port} (users), {shop_up.base_port + 1} (beers), "
        f"{shop_up.base_port + 2} (orders) are already in use on 127.0.0.1"
    ]
    assert not (tmp_path / "second").exists()  # not even a database set up
    assert shop_up.up.poll() is None  # the first shop is untouched


def test_every_url_inv_up_prints_answers(shop_up: ShopUp) -> None:
    printed = shop_up.log.read_text().split("The shop is up")[1]
    urls = re.findall(r"http://\S+", printed)

    assert len(urls) == 2 * len(SERVICES)  # each service's home page and API docs
    for offset, service in enumerate(SERVICES):
        home = f"http://127.0.0.1:{shop_up.base_port + offset}"
        assert f"{home}/" in urls and f"{home}/api/docs" in urls, service
    for url in urls:
        assert requests.get(url, timeout=10).status_code == 200, url
