"""The production server every service runs in: granian's multi-process server
(ShopServer, with our rules for a server's life) and, in each worker, our front
(servicekit.front), so that slow or idle clients hold a socket, never a thread.

`python -m servicekit.serving users --host 127.0.0.1 --port 5001 --workers 2`
"""

from __future__ import annotations

import argparse
import ctypes
import importlib
import logging
import multiprocessing.connection
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from granian._granian import SocketHolder
from granian.constants import HTTPModes, Interfaces, Loops
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server import MPServer  # a process per worker

from .config import (
    BadSetting,
    BaseConfig,
    environment_values,
    log_settings,
    service_database_url,
    share_a_secret_key,
)
from .db import announce_the_served_file
from .front import DRAIN_SIGNAL, Front
from .logs import configure_logging

log = logging.getLogger("servicekit.serving")  # also when run as __main__

APP_VARIABLE = "SERVICEKIT_APP"
THREADS_VARIABLE = "SERVICEKIT_THREADS"
MASTER_VARIABLE = "SERVICEKIT_MASTER_PID"
READY_FD_VARIABLE = "SERVICEKIT_READY_FD"
GRACE_SECONDS = 10
# Python threads per worker, started as needed. A request holds one while it
# waits on another service or the database, so there are many. Idle
# connections hold none, but granian counts open connections against
# BACKPRESSURE, so that is high.
THREADS = 160
BACKPRESSURE = 1024
BACKLOG = 1024
HEADER_READ_TIMEOUT_MS = 10_000
# The most a request line and headers may take (the longest documented query,
# 1000 SKUs of 64 characters, fits); the server itself answers a
# bigger head (431, or 414 for the line) with an empty body.
HEAD_BUFFER_BYTES = 128 * 1024
# A worker that dies this soon after it started counts as dying again: its
# replacement waits, twice as long each time, up to the most.
SHORT_LIFE_SECONDS = 10.0
FIRST_RESPAWN_DELAY_SECONDS = 0.5
MOST_RESPAWN_DELAY_SECONDS = 5.0
# How long a new worker may take to load the app on SIGHUP before the old one
# is stopped anyway (the new one then serves once it has loaded).
WORKER_LOAD_SECONDS = 60.0
# How long a worker about to stop answers with `Connection: close` first.
DRAIN_SECONDS = 0.5
PR_SET_PDEATHSIG = 1  # prctl(2)
MIB = 1024 * 1024
# glibc's mallopt(3): big buffers (request bodies) in mappings of their own,
# given back to the system when freed, and few arenas for many threads.
# granian's Rust side allocates with jemalloc, which by default keeps freed
# pages for reuse and purges them only on later activity in the same arena:
# after a flood of bodies a worker would keep their memory. Read when the
# library loads, so set before the server's process starts (main() sees to it).
JEMALLOC_CONF_VARIABLE = "_RJEM_MALLOC_CONF"
JEMALLOC_CONF = "dirty_decay_ms:0,muzzy_decay_ms:0"
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
MMAP_THRESHOLD_BYTES = 64 * 1024
MALLOC_ARENAS = 2


GRANIAN_LOGS_TO_OURS = {
    "loggers": {
        "_granian": {"handlers": [], "propagate": True},
        "granian.access": {"handlers": [], "propagate": False},  # the app logs requests
    }
}


@dataclass(frozen=True)
class ServerSettings:
    app: str  # "users", "beers", "orders", or any module with create_app()
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 2
    threads: int = THREADS


class PortTaken(OSError):
    """The address cannot be listened on: another server has it, or it is not ours."""


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port that no other socket may share: without
    SO_REUSEPORT, a second server's bind fails however soon it comes."""
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, protocol)
    except (OSError, socket.gaierror) as error:
        raise PortTaken(f"cannot serve on {host}:{port}: {error.strerror}") from error
    try:
        # A connection of an earlier server still closing does not keep the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(BACKLOG)
    except OSError as error:
        sock.close()
        raise PortTaken(f"cannot serve on {host}:{port}: {error.strerror}") from error
    sock.set_inheritable(True)
    return sock


class ShopServer(MPServer):
    """granian's multi-process server with our rules for a server's life:

    - the master listens itself, without SO_REUSEPORT, and hands the socket to
      the workers: a second server for the port fails to bind and exits 1, and
      a worker that stops leaves the connections queued behind it to the others;
    - a worker that dies is replaced however often, after a delay that grows
      while replacements keep dying (never granian's crash-loop exit);
    - workers stop when the master dies, SIGKILL included (PR_SET_PDEATHSIG);
    - SIGHUP replaces the workers one by one, each new one loaded before an old
      one is asked to stop;
    - SIGTERM and SIGINT stop the workers gracefully (requests in flight get
      GRACE_SECONDS); the master also owns the folder of the workers' metrics.
    """

    def __init__(self, listener: socket.socket, **options: Any) -> None:
        super().__init__(**options)
        self.listener = listener
        self.stopping = threading.Event()
        self.short_lives = 0  # workers in a row that died young

    def _init_shared_socket(self) -> None:
        # granian's own way on Linux: each worker binds with SO_REUSEPORT.
        self._ssp = None
        self._sfd = self.listener.fileno()  # type: ignore[assignment]
        # Its stub lacks the arguments: the fd, whether it is a Unix socket, the backlog.
        self._shd = SocketHolder(self._sfd, False, BACKLOG)  # type: ignore[call-arg,assignment]
        self._sso = self.listener

    def _drop_shared_socket(self) -> None:
        """Before the workers are stopped: let the answers in flight close their
        kept-alive connections. (Shutting the listening socket down here would
        refuse new connections sooner, but granian's workers then spin on
        accept and do not stop.)"""
        self._drain([worker for worker in self.wrks if worker.is_alive()])
        self.listener.close()

    def _drain(self, workers: Sequence[Any]) -> None:
        """Each answer of these workers from now on closes its connection;
        then wait DRAIN_SECONDS for the requests in flight to be answered so."""
        for worker in workers:
            try:
                os.kill(worker.inner.pid, DRAIN_SIGNAL)
            except ProcessLookupError:
                pass
        if workers:
            time.sleep(DRAIN_SECONDS)

    def signal_handler_interrupt(self, *args: Any, **kwargs: Any) -> None:
        self.stopping.set()
        super().signal_handler_interrupt(*args, **kwargs)

    def _stop_workers(self) -> None:
        """granian's, but a worker counts as stopped once it has exited (see
        `exited`): granian asks is_alive(), which a worker's exit can escape."""
        for worker in self.wrks:
            worker.terminate()
        deadline = time.monotonic() + GRACE_SECONDS
        for worker in self.wrks:
            stop_or_kill(worker, max(deadline - time.monotonic(), 0.0), f"worker-{worker.idx + 1}")
        self.wrks.clear()

    def _serve_loop(self, spawn_target: Any, target_loader: Any) -> None:
        """Until SIGTERM or SIGINT: replace the workers that die, and all of
        them, one by one, on SIGHUP."""
        while not self.stopping.is_set():
            self.main_loop_interrupt.wait()
            self.main_loop_interrupt.clear()
            if self.stopping.is_set():
                break
            if self.interrupt_children:
                self._replace_dead_workers(spawn_target, target_loader)
            if self.reload_signal:
                self.reload_signal = False
                log.info("SIGHUP: replacing the workers one by one")
                self._call_hooks(self.hooks_reload)
                self._roll_workers(spawn_target, target_loader)
        self.interrupt_children.clear()  # stopped as asked: not a failure

    def _replace_dead_workers(self, spawn_target: Any, target_loader: Any) -> None:
        dead = []
        while self.interrupt_children:
            idx = self.interrupt_children.pop(0)
            if not self.wrks[idx].is_alive():  # not since replaced (SIGHUP)
                dead.append(idx)
        if not dead:
            return
        now = time.monotonic()
        for idx in dead:
            self.short_lives = (
                self.short_lives + 1 if now - self.wrks[idx].birth < SHORT_LIFE_SECONDS else 0
            )
        delay = respawn_delay(self.short_lives)
        if delay:
            log.warning("workers keep dying: the next starts in %.1f s", delay)
            if self.stopping.wait(delay):
                return
        for idx in dead:
            os.close(self._start_in_place(idx, spawn_target, target_loader))
        self._metrics.incr_respawn_err(len(dead))

    def _start_in_place(self, idx: int, spawn_target: Any, target_loader: Any) -> int:
        """A new worker in slot idx; the fd it reports on once its app is loaded."""
        ready_read, ready_write = os.pipe()
        os.environ[READY_FD_VARIABLE] = str(ready_write)
        try:
            worker = self._spawn_worker(idx=idx, target=spawn_target, callback_loader=target_loader)
            worker.start()
        finally:
            os.close(ready_write)
            del os.environ[READY_FD_VARIABLE]
        self.wrks[idx] = worker
        return ready_read

    def _roll_workers(self, spawn_target: Any, target_loader: Any) -> None:
        for idx in range(len(self.wrks)):
            if self.stopping.is_set():
                return
            old = self.wrks[idx]
            ready = self._start_in_place(idx, spawn_target, target_loader)
            try:
                loaded = wait_until_loaded(ready, WORKER_LOAD_SECONDS)
            finally:
                os.close(ready)
            if not loaded and not self.wrks[idx].is_alive():
                self._give_up_the_new_worker(idx, old)
                return
            self._drain([old])
            old.terminate()
            stop_or_kill(old, GRACE_SECONDS, f"worker-{idx + 1} (old)")
        self._metrics.incr_spawn(len(self.wrks))

    def _give_up_the_new_worker(self, idx: int, old: Any) -> None:
        """The new worker died loading the app: the old ones keep serving."""
        new = self.wrks[idx]
        new.interrupt_by_parent = True
        new.join()
        if idx in self.interrupt_children:
            self.interrupt_children.remove(idx)
        self.wrks[idx] = old
        log.error("SIGHUP: a new worker died loading the app; the old workers go on serving")


def stop_or_kill(worker: Any, seconds: float, name: str) -> None:
    """Wait so many seconds for a worker asked to stop to exit, then kill it;
    either way, reaped once gone."""
    if not exited(worker, seconds):
        log.warning("%s took over %d s to stop: killed", name, GRACE_SECONDS)
        worker.kill()
    worker.join()


def exited(worker: Any, seconds: float) -> bool:
    """Whether the worker's process exits within seconds, told by its sentinel
    (the pipe it holds open while it lives). Not is_alive(): a worker's watcher
    thread (granian's) waits to reap it too, and between that thread's reaping
    and its recording the exit code, is_alive() on another thread finds no
    child, no code, and answers True; on a loaded machine long enough for
    granian to kill a worker that had stopped as asked."""
    return bool(multiprocessing.connection.wait([worker.inner.sentinel], seconds))


def respawn_delay(short_lives: int) -> float:
    """How long a dead worker's replacement waits, after so many workers in a
    row died young: none for the first, then doubling up to the most."""
    if short_lives <= 1:
        return 0.0
    return min(FIRST_RESPAWN_DELAY_SECONDS * 2 ** (short_lives - 2), MOST_RESPAWN_DELAY_SECONDS)


def wait_until_loaded(ready: int, seconds: float) -> bool:
    """Whether the worker reporting on `ready` loaded its app within seconds
    (False too when it died first: its end of the pipe closed empty)."""
    readable, _, _ = select.select([ready], [], [], seconds)
    return bool(readable) and os.read(ready, 1) == b"1"


def build_server(settings: ServerSettings, listener: socket.socket) -> ShopServer:
    """A granian server for `<app>.create_app()` on listener, not yet serving."""
    level, _ = log_settings()
    # For worker_app, in each worker.
    os.environ[APP_VARIABLE] = settings.app
    os.environ[THREADS_VARIABLE] = str(settings.threads)
    os.environ[MASTER_VARIABLE] = str(os.getpid())
    announce_the_served_file(service_database_url(settings.app))
    server = ShopServer(
        listener,
        target="servicekit.serving:worker_app",
        factory=True,
        interface=Interfaces.RSGI,
        loop=Loops.uvloop,
        address=settings.host,
        port=settings.port,
        workers=settings.workers,
        backlog=BACKLOG,
        backpressure=BACKPRESSURE,
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(
            header_read_timeout=HEADER_READ_TIMEOUT_MS, max_buffer_size=HEAD_BUFFER_BYTES
        ),
        websockets=False,
        respawn_failed_workers=True,
        workers_kill_timeout=GRACE_SECONDS,
        # Its start-up chatter only when asked for; warnings and worker deaths
        # always, through our handler: labelled and formatted like the app's.
        log_level=LogLevels.info if level.upper() == "DEBUG" else LogLevels.warning,
        log_dictconfig=GRANIAN_LOGS_TO_OURS,
    )
    metrics = tempfile.mkdtemp(prefix=f"shop-{settings.app}-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics  # the workers inherit it
    server.on_shutdown(lambda: shutil.rmtree(metrics, ignore_errors=True))
    return server


def worker_app() -> Front:
    """The app a worker serves: `<app>.create_app()` behind the front."""
    stop_with_the_master(int(os.environ[MASTER_VARIABLE]))
    # Until granian sets its own handlers, a worker would take a stop signal
    # for its master's and miss it. It is still loading, with nothing in flight:
    # it can simply go.
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, lambda signum, frame: os._exit(0))
    signal.signal(DRAIN_SIGNAL, signal.SIG_IGN)  # until the front listens for it
    give_freed_memory_back()
    app = importlib.import_module(os.environ[APP_VARIABLE]).create_app()
    front = Front(
        app,
        int(os.environ[THREADS_VARIABLE]),
        app.config["MAX_CONTENT_LENGTH"],
        body_timeout=app.config["BODY_TIMEOUT_SECONDS"],
        body_budget=app.config["WORKER_MEMORY_MIB"] * MIB // 4,
        # Past this, chunked bodies being read are given up (servicekit.front.MemoryWatch).
        memory_limit=app.config["WORKER_MEMORY_MIB"] * MIB * 3 // 4,
    )
    report_loaded()
    return front


def stop_with_the_master(master: int) -> None:
    """The kernel kills this worker when its master dies, however it dies; and
    if the master is already gone, the worker goes at once."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != master:
        os._exit(1)


def give_freed_memory_back() -> None:
    """glibc keeps big freed blocks for reuse, and by default raises the size
    it maps apart after each such free: after a flood of bodies a worker would
    keep their memory. A fixed threshold gives it back."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None)
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
        libc.mallopt(M_ARENA_MAX, MALLOC_ARENAS)


def report_loaded() -> None:
    """Tell the master (on SIGHUP, waiting for it) that the app is loaded."""
    ready = os.environ.pop(READY_FD_VARIABLE, None)
    if ready is not None:
        try:
            os.write(int(ready), b"1")
            os.close(int(ready))
        except OSError:
            pass  # the master stopped waiting


def serve(settings: ServerSettings) -> int:
    """Serve until SIGTERM or SIGINT, then let requests in flight finish; the
    exit status (1, with one line said, when the port is taken)."""
    level, log_format = log_settings()
    configure_logging(settings.app, level, log_format)
    try:
        environment_values(BaseConfig)
        listener = listen(settings.host, settings.port)
    except (PortTaken, BadSetting) as error:
        log.error("%s", error)
        return 1
    share_a_secret_key()
    build_server(settings, listener).serve()
    return 0


def parse_arguments(argv: Sequence[str]) -> ServerSettings:
    parser = argparse.ArgumentParser(prog="python -m servicekit.serving", description=__doc__)
    parser.add_argument("app", help="users, beers, orders (or any module with create_app)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=THREADS)
    args = parser.parse_args(argv)
    return ServerSettings(args.app, args.host, args.port, args.workers, args.threads)


def main(argv: Sequence[str]) -> None:
    settings = parse_arguments(argv)
    if os.environ.get(JEMALLOC_CONF_VARIABLE) != JEMALLOC_CONF:  # see JEMALLOC_CONF
        environment = {**os.environ, JEMALLOC_CONF_VARIABLE: JEMALLOC_CONF}
        os.execve(sys.executable, [sys.executable, "-m", "servicekit.serving", *argv], environment)
    status = serve(settings)
    # Tearing down the interpreter (every module the app imports) would only
    # spend CPU on memory the kernel frees anyway.
    logging.shutdown()
    os._exit(status)


if __name__ == "__main__":
    main(sys.argv[1:])
