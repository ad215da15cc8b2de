"""Floods cannot take a service down: many connections each holding back the
last byte of a 1 MiB body leave every other request answered, each worker's
memory under WORKER_MEMORY_MIB and back near where it started after; a body
not whole in time is a 408; a chunked body too big for the worker's memory is
given up with a 413 the client reads, and small ones sent meanwhile are
answered; a body in one-byte chunks costs no work a chunk.

FLOOD connections here, not the contract's 1,000, to keep CI short
(bench/RESULTS.md has the run at 1,000); loopback only, bounded in time.
"""

from __future__ import annotations

import os
import selectors
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from .api_client import TIMEOUT
from .services import WORKERS, Service, StartService, alive, descendants, wait_for

pytestmark = pytest.mark.e2e

FLOOD = 300
FLOOD_SECONDS = 6.0
WORKER_MEMORY_MIB = 256
SETTLED_MIB = 50
MIB = 1024 * 1024
CHUNKED_BODY = 2048
CPU_ROUNDS = 400
# A worker reading a chunked body gives it up past three quarters of this.
CHUNKED_WORKER_MEMORY_MIB = 192
MOST_CHUNKED_MIB = 512
MOST_PER_CHUNK_SECONDS = 5e-6


def resident_mib(pid: int, field: str = "VmRSS") -> float:
    """A process's resident memory now (VmRSS), or at its peak (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} for {pid}")


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def connect(service: Service) -> socket.socket:
    return socket.create_connection(("127.0.0.1", service.port), timeout=TIMEOUT)


FLOOD_HEAD = (
    b"POST /api/users/register HTTP/1.1\r\nHost: shop\r\n"
    b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % MIB
)


@contextmanager
def flooded(service: Service) -> Iterator[None]:
    """FLOOD connections, each sending a 1 MiB body but its last byte for as
    long as the server takes them; all closed at the end."""
    selector = selectors.DefaultSelector()
    remaining: dict[socket.socket, memoryview] = {}
    body = memoryview(b"x" * (MIB - 1))
    stop = threading.Event()
    try:
        for _ in range(FLOOD):
            connection = connect(service)
            connection.sendall(FLOOD_HEAD)
            connection.setblocking(False)
            remaining[connection] = body
            selector.register(connection, selectors.EVENT_WRITE)

        def push() -> None:
            while not stop.is_set() and selector.get_map():
                for key, _ in selector.select(0.1):
                    connection = key.fileobj
                    assert isinstance(connection, socket.socket)
                    try:
                        sent = connection.send(remaining[connection][: 256 * 1024])
                    except OSError:
                        selector.unregister(connection)
                        continue
                    remaining[connection] = remaining[connection][sent:]
                    if not remaining[connection]:
                        selector.unregister(connection)

        pushing = threading.Thread(target=push, daemon=True)
        pushing.start()
        yield
        stop.set()
        pushing.join(TIMEOUT)
    finally:
        stop.set()
        for connection in remaining:
            connection.close()
        selector.close()


def warm(service: Service) -> None:
    """Every worker has served a few requests: its memory is its working size."""
    for _ in range(10 * WORKERS):
        requests.get(f"{service.url}/api/users/me", timeout=TIMEOUT)


def test_a_flood_of_held_back_bodies_leaves_others_served_and_memory_bounded(
    start_service: StartService,
) -> None:
    users = start_service("users", WORKER_MEMORY_MIB=WORKER_MEMORY_MIB)
    warm(users)
    workers = descendants(users.process.pid)
    started = {pid: resident_mib(pid) for pid in workers}
    peak = dict(started)
    answered: list[tuple[int, float]] = []

    with flooded(users):
        deadline = time.monotonic() + FLOOD_SECONDS
        while time.monotonic() < deadline:
            for pid in workers:
                peak[pid] = max(peak[pid], resident_mib(pid))
            begun = time.monotonic()
            status = requests.post(
                f"{users.url}/api/users/login", json={"username": "nobody"}, timeout=TIMEOUT
            ).status_code
            answered.append((status, time.monotonic() - begun))
            time.sleep(0.1)

    assert {status for status, _ in answered} == {400}, answered  # no password: refused at once
    assert max(seconds for _, seconds in answered) < 2.0, answered
    assert alive(workers) == workers and users.process.poll() is None  # nothing exited
    assert max(peak.values()) < WORKER_MEMORY_MIB, peak

    def settled() -> bool:
        return all(resident_mib(pid) < started[pid] + SETTLED_MIB for pid in workers)

    assert wait_for(settled, 60, interval=1.0), {pid: resident_mib(pid) for pid in workers}


def test_a_body_not_whole_in_time_is_408_and_the_connection_closes(
    start_service: StartService,
) -> None:
    users = start_service("users", BODY_TIMEOUT_SECONDS=1)
    with connect(users) as connection:
        connection.sendall(FLOOD_HEAD + b'{"username": ')
        begun = time.monotonic()
        answer = b""
        while chunk := connection.recv(65536):  # until the server closes it
            answer += chunk
        waited = time.monotonic() - begun

    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer
    assert b"application/problem+json" in head.lower()
    assert b"x-content-type-options: nosniff" in head.lower()  # like the app's own answers
    assert b"within 1 seconds" in body
    assert waited >= 0.9
    assert requests.get(f"{users.url}/health", timeout=TIMEOUT).status_code == 200


def send_body(service: Service, chunks: Iterable[bytes]) -> bytes:
    """POST the chunks as a chunked login, as fast as the server reads them;
    the status line of its answer (read also when the server answered and
    closed before it read the whole body)."""
    with connect(service) as connection:
        try:
            connection.sendall(
                b"POST /api/users/login HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n"
                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            )
            for coded in chunked(chunks):
                connection.sendall(coded)
        except (BrokenPipeError, ConnectionResetError):
            pass  # answered already
        answer = b""
        try:
            while chunk := connection.recv(65536):
                answer += chunk
        except ConnectionResetError:
            pass  # closed with some of the body unread: what came before it stands
    return answer.partition(b"\r\n")[0]


def chunked(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """The chunks in chunked transfer coding, written a batch at a time (so
    that one-byte chunks go out together), and the last chunk."""
    batch = b""
    for chunk in chunks:
        batch += b"%x\r\n%s\r\n" % (len(chunk), chunk)
        if len(batch) >= 64 * 1024:
            yield batch
            batch = b""
    yield batch + b"0\r\n\r\n"


def test_a_chunked_body_too_big_for_memory_is_a_413_read_and_small_ones_meanwhile_are_answered(
    start_service: StartService,
) -> None:
    users = start_service("users", workers=1, WORKER_MEMORY_MIB=CHUNKED_WORKER_MEMORY_MIB)
    warm(users)
    (worker,) = descendants(users.process.pid)
    Path(f"/proc/{worker}/clear_refs").write_text("5")  # its peak memory counts from here
    big_answer: list[bytes] = []
    chunk = b"x" * 64 * 1024
    big = threading.Thread(
        target=lambda: big_answer.append(
            send_body(users, (chunk for _ in range(MOST_CHUNKED_MIB * MIB // len(chunk))))
        ),
        daemon=True,
    )
    big.start()
    small_answers = set()
    while big.is_alive():
        small_answers.add(send_body(users, [b'{"username": "nobody"}']).split(b" ")[1])
    big.join()

    assert big_answer and big_answer[0].startswith(b"HTTP/1.1 413 "), big_answer
    assert small_answers == {b"400"}, small_answers  # no password: refused, not given up
    assert alive({worker}) == {worker}
    assert resident_mib(worker, "VmHWM") < CHUNKED_WORKER_MEMORY_MIB


def test_a_body_in_one_byte_chunks_costs_no_work_a_chunk_in_python(
    start_service: StartService,
) -> None:
    users = start_service("users", workers=1)
    (worker,) = descendants(users.process.pid)
    body = b'{"username": "' + b"u" * (CHUNKED_BODY - 16) + b'"}'
    one_byte_chunks = [body[i : i + 1] for i in range(len(body))]

    def cpu_of(chunks: list[bytes]) -> float:
        before = cpu_seconds(worker)
        statuses = {send_body(users, chunks) for _ in range(CPU_ROUNDS)}
        assert len(statuses) == 1 and statuses != {b""}, statuses
        return cpu_seconds(worker) - before

    cpu_of([body])  # warmed up
    whole = cpu_of([body])
    in_bytes = cpu_of(one_byte_chunks)

    # What a chunk adds now is hyper's work in Rust; through Python a chunk
    # cost ten times this bound. hyper's own work puts the contract's 3 times
    # at the edge on a small machine (bench/RESULTS.md): the cost a chunk is
    # what is held here.
    per_chunk = (in_bytes - whole) / (CPU_ROUNDS * len(one_byte_chunks))
    assert per_chunk < MOST_PER_CHUNK_SECONDS, (in_bytes, whole)
