"""A server's life: one server a port however they are started, workers that
die again and again are replaced and the server stays, workers that never
outlive their master, and SIGTERM and SIGHUP under steady load that cut no
request short.

Real servers over loopback; every load here is a few threads for a few
seconds, and every wait is bounded.
"""

from __future__ import annotations

import http.client
import json
import math
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from launcher import SERVICES as LAUNCHED
from launcher import free_ports_in_a_row, port_is_free

from .api_client import TIMEOUT, ShopApi
from .services import (
    ROOT,
    WORKERS,
    Service,
    StartService,
    alive,
    descendants,
    free_port,
    launch,
    service_environment,
    shell_environment,
    wait_for,
)

pytestmark = pytest.mark.e2e

LOAD_THREADS = 6
STOP_ROUNDS = 3


def one_line_refusal(process: subprocess.Popen[bytes], service: Service) -> str:
    """The one complaint of a server that refused to start (after the start-up
    lines `inv <svc> serve` says): `inv <svc> serve`'s own check of the port,
    or the server's bind when the other took the port just after that check.
    It must have exited 1."""
    assert process.wait(timeout=60) == 1
    said = service.output()
    complaints = [line for line in said.splitlines() if "already in use" in line]
    assert len(complaints) == 1 and "Traceback" not in said, said
    return complaints[0]


def test_a_second_server_for_a_served_port_refuses_in_one_line(
    start_service: StartService, tmp_path: Path
) -> None:
    first = start_service("users")
    # Straight to the server, past `inv users serve`'s own check of the port.
    second = subprocess.run(
        [sys.executable, "-m", "servicekit.serving", "users", "--port", str(first.port)],
        cwd=ROOT,
        env=service_environment("users", tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert second.returncode == 1
    assert second.stderr.strip().splitlines() == [second.stderr.strip()]
    assert f"cannot serve on 127.0.0.1:{first.port}: Address already in use" in second.stderr
    assert requests.get(f"{first.url}/ready", timeout=TIMEOUT).status_code == 200


def test_of_two_servers_started_together_on_one_port_one_serves_and_one_refuses(
    tmp_path: Path,
) -> None:
    port = free_port()
    # At INFO: at DEBUG the command line adds the traceback to its one line.
    envs = [service_environment("users", tmp_path / f"s{i}", LOG_LEVEL="INFO") for i in range(2)]
    servers = [launch("users", port, env, tmp_path / f"s{i}") for i, env in enumerate(envs)]
    try:
        assert wait_for(lambda: any(s.process.poll() is not None for s in servers), 60)
        refused = next(s for s in servers if s.process.poll() is not None)
        serving = next(s for s in servers if s is not refused)
        one_line_refusal(refused.process, refused)
        serving.wait_until_ready()
        time.sleep(1.0)  # the loser is not merely late
        assert serving.process.poll() is None
    finally:
        for server in servers:
            server.stop()


def test_of_two_inv_up_started_together_one_is_up_and_the_other_fails_in_one_line(
    tmp_path: Path,
) -> None:
    base_port = free_ports_in_a_row(len(LAUNCHED))
    command = [sys.executable, "-m", "invoke", "up", "--workers", "1", "--base-port"]
    ups = []
    for name in ("first", "second"):
        env = shell_environment()
        env.update(
            {f"{s.upper()}_DATABASE_URL": f"sqlite:///{tmp_path}/{name}-{s}.db" for s in LAUNCHED}
        )
        env["SECRET_KEY"] = "e2e-two-ups"
        with (
            (tmp_path / f"{name}.out").open("wb") as out,
            (tmp_path / f"{name}.err").open("wb") as err,
        ):
            ups.append(
                subprocess.Popen(
                    command + [str(base_port)],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=err,
                    start_new_session=True,
                )
            )
    try:
        assert wait_for(lambda: any(up.poll() is not None for up in ups), 90)
        loser = next(i for i, up in enumerate(ups) if up.poll() is not None)
        winner = 1 - loser
        names = ("first", "second")
        assert ups[loser].wait() == 1
        assert "The shop is up" not in (tmp_path / f"{names[loser]}.out").read_text()
        said = (tmp_path / f"{names[loser]}.err").read_text()
        # Its set-up lines, then the one line of its failure.
        assert said.strip().splitlines()[-1].startswith("inv up: ports "), said
        assert "already in use" in said and "Traceback" not in said, said
        assert wait_for(
            lambda: "The shop is up" in (tmp_path / f"{names[winner]}.out").read_text(), 60
        )
        assert ups[winner].poll() is None
    finally:
        for up in ups:
            if up.poll() is None:
                up.send_signal(signal.SIGINT)
                try:
                    up.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(up.pid, signal.SIGKILL)
                    up.wait()


def test_workers_stop_and_free_the_port_when_their_master_is_killed(
    start_service: StartService,
) -> None:
    service = start_service("users")
    workers = descendants(service.process.pid)
    assert len(workers) == WORKERS

    service.process.send_signal(signal.SIGKILL)
    service.process.wait(timeout=10)

    assert wait_for(lambda: not alive(workers), 5), alive(workers)
    # A worker's main thread can show as a zombie while its other threads are
    # still being torn down, the socket with them: the port frees a moment later.
    assert wait_for(lambda: port_is_free("127.0.0.1", service.port), 5)


def test_a_worker_killed_again_and_again_is_replaced_and_the_server_stays(
    start_service: StartService,
) -> None:
    service = start_service("beers")
    killed: set[int] = set()
    for _ in range(3):  # each replacement killed as soon as it is there
        assert wait_for(lambda: len(descendants(service.process.pid) - killed) == WORKERS, 30)
        victim = min(descendants(service.process.pid) - killed)
        os.kill(victim, signal.SIGKILL)
        killed.add(victim)
        assert wait_for(lambda: not alive(killed), 5)

    assert wait_for(lambda: len(descendants(service.process.pid) - killed) == WORKERS, 30)
    service.wait_until_ready()
    assert service.process.poll() is None
    assert "crash loop" not in service.output()


@dataclass(frozen=True)
class Call:
    """One request, sent again and again."""

    method: str
    path: str
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


class SteadyLoad:
    """Threads sending one request after another, each over a connection kept
    alive for as long as the server keeps it, each outcome counted: 'ok' (200);
    'refused' (the connection was never accepted); 'unread on a new connection'
    (a connection the server took at the last instant and closed without reading
    it: nothing of the request was done); 'unread on a kept-alive connection
    read late' (its last answer, without `Connection: close`, so made before
    the drain, was read only after the signal: on a busy machine this client
    sat on the connection past the drain); or what must not happen: a request
    closed unread on a connection in use (the server closed it under the
    request), a request cut off, any other status."""

    def __init__(self, port: int, call: Call) -> None:
        self.port = port
        self.call = call
        self.outcomes: Counter[str] = Counter()
        self.last_answer = 0.0
        self.signalled_at = math.inf  # when the test signals the server
        self.stop = threading.Event()
        self._lock = threading.Lock()

    def _count(self, outcome: str) -> None:
        with self._lock:
            self.outcomes[outcome] += 1
            if outcome == "ok":
                self.last_answer = time.monotonic()

    def _loop(self) -> None:
        connection: http.client.HTTPConnection | None = None
        answered_on_it, answered_at = 0, 0.0
        while not self.stop.is_set():
            if connection is None:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=TIMEOUT)
                answered_on_it = 0
            try:
                call = self.call
                connection.request(call.method, call.path, call.body, dict(call.headers))
                answer = connection.getresponse()
                answer.read()
            except ConnectionRefusedError:
                self._count("refused")
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                # Closed before a byte of an answer (while sending, or waiting).
                if not answered_on_it:
                    self._count("unread on a new connection")
                elif answered_at > self.signalled_at:
                    self._count("unread on a kept-alive connection read late")
                else:
                    self._count("unread on a kept-alive connection")
            except (OSError, http.client.HTTPException) as error:
                self._count(f"cut: {error!r}")
            else:
                self._count("ok" if answer.status == 200 else f"status {answer.status}")
                answered_on_it, answered_at = answered_on_it + 1, time.monotonic()
                if not answer.will_close:
                    continue
            connection.close()
            connection = None
            time.sleep(0.01)
        if connection is not None:
            connection.close()

    @contextmanager
    def running(self) -> Iterator[SteadyLoad]:
        threads = [threading.Thread(target=self._loop) for _ in range(LOAD_THREADS)]
        for thread in threads:
            thread.start()
        try:
            yield self
        finally:
            self.stop.set()
            for thread in threads:
                thread.join(TIMEOUT * 2)


@pytest.mark.parametrize("round_", range(STOP_ROUNDS))
def test_sigterm_under_steady_load_answers_every_accepted_request_whole(
    start_service: StartService, api: ShopApi, admin_token: str, round_: int
) -> None:
    orders = start_service("orders")
    customer = api.new_customer()
    sku = api.new_beer(admin_token)
    call = Call(
        "PUT",
        "/api/orders/current",
        json.dumps({"sku": sku, "quantity": 1}).encode(),
        {**customer.auth, "Content-Type": "application/json"},
    )
    load = SteadyLoad(orders.port, call)
    with load.running():
        assert wait_for(lambda: load.outcomes["ok"] > 20, 30)
        load.signalled_at = time.monotonic()
        orders.process.send_signal(signal.SIGTERM)
        orders.process.wait(timeout=30)
        gone = time.monotonic()
    # Every connection kept alive was told to close with its answer before the
    # workers stopped: only one opened in the last instant, or one its client
    # left idle past the drain (as HTTP lets a server close), may go unread.
    allowed = {"ok", "refused", "unread on a new connection"}
    allowed.add("unread on a kept-alive connection read late")
    assert set(load.outcomes) <= allowed, load.outcomes
    assert gone - load.last_answer < 3.0  # the contract's 1 s, with room for a busy machine
    assert "refused to gracefully stop" not in orders.output()


def test_sighup_under_steady_load_replaces_every_worker_and_refuses_nothing(
    start_service: StartService,
) -> None:
    beers = start_service("beers")
    before = descendants(beers.process.pid)
    load = SteadyLoad(beers.port, Call("GET", "/api/beers/"))
    with load.running():
        assert wait_for(lambda: load.outcomes["ok"] > 20, 30)
        beers.process.send_signal(signal.SIGHUP)
        assert wait_for(lambda: not (descendants(beers.process.pid) & before), 60)
        assert wait_for(lambda: len(descendants(beers.process.pid)) == WORKERS, 30)
        served_before = load.outcomes["ok"]
        assert wait_for(lambda: load.outcomes["ok"] > served_before + 20, 30)
    assert set(load.outcomes) == {"ok"}, load.outcomes
    assert beers.process.poll() is None
