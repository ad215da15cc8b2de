"""What a chunked body costs a worker: users served with one worker, a login
(refused for want of a password) posted with a 2 KiB body in one chunk and in
one-byte chunks, rounds alternating, CPU of the worker from /proc; then the
worker's peak memory (VmHWM) while it reads chunked bodies past the 1 MiB limit.

    python -m bench.chunks [rounds] [requests a round]   (5 200)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

from launcher import (
    free_port,
    server_argv,
    server_env,
    setup_service,
    wait_until_ready,
)

BODY_BYTES = 2048
MIB = 1024 * 1024
BIG_BODIES_MIB = (3, 10, 30)


def cpu_seconds(pid: int) -> float:
    """User and system CPU time of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def workers_of(server: int) -> list[int]:
    children = Path(f"/proc/{server}/task/{server}/children").read_text()
    return [int(pid) for pid in children.split()]


def login_body(size: int) -> bytes:
    return b'{"username": "' + b"u" * (size - 16) + b'"}'


def post_chunked(port: int, chunks: list[bytes]) -> bytes:
    """POST the chunks as one chunked login, all in one write; the status line
    (read also when the server answered before it read the whole body)."""
    coded = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for chunk in chunks)
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        try:
            connection.sendall(
                b"POST /api/users/login HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n"
                b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                + coded
                + b"0\r\n\r\n"
            )
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    return answer.partition(b"\r\n")[0]


def peak_growth_mib(worker: int, port: int, size_mib: int) -> tuple[float, bytes]:
    """How far the worker's resident memory rose above where it was while it
    read a chunked body of size_mib in 64 KiB chunks; its answer's status line."""
    Path(f"/proc/{worker}/clear_refs").write_text("5")  # the peak starts again from now
    before = memory_mib(worker, "VmRSS")
    status = post_chunked(port, [b"x" * 64 * 1024] * (16 * size_mib))
    return memory_mib(worker, "VmHWM") - before, status


def memory_mib(pid: int, field: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(f"no {field} for {pid}")


def cpu_a_request(worker: int, port: int, chunks: list[bytes], count: int) -> float:
    before = cpu_seconds(worker)
    for _ in range(count):
        post_chunked(port, chunks)
    return (cpu_seconds(worker) - before) / count


def main(rounds: int = 5, count: int = 200) -> None:
    body = login_body(BODY_BYTES)
    one_byte_chunks = [body[i : i + 1] for i in range(len(body))]
    with tempfile.TemporaryDirectory() as folder:
        database = f"sqlite:///{folder}/users.db"
        setup_service("users", database_url=database)
        port = free_port()
        server = subprocess.Popen(
            server_argv("users", "127.0.0.1", port, 1),
            env=server_env(database),
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_ready(f"http://127.0.0.1:{port}/ready", server)
            (worker,) = workers_of(server.pid)
            cpu_a_request(worker, port, [body], count)  # warmed up
            for _ in range(rounds):
                whole = cpu_a_request(worker, port, [body], count)
                in_bytes = cpu_a_request(worker, port, one_byte_chunks, count)
                print(
                    f"one chunk {whole * 1e6:6.0f} us, one-byte chunks {in_bytes * 1e6:6.0f} us,"
                    f" ratio {in_bytes / whole:.2f}",
                    flush=True,
                )
            for size in BIG_BODIES_MIB:
                growth, status = peak_growth_mib(worker, port, size)
                print(f"a {size} MiB chunked body: {status.decode()}, peak {growth:+.0f} MiB")
        finally:
            server.terminate()
            server.wait(30)


if __name__ == "__main__":
    main(*(int(argument) for argument in sys.argv[1:]))
