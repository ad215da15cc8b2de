"""The production server every service runs in: granian, with our front.

`python -m servicekit.serving users --host 127.0.0.1 --port 5001 --workers 2`

granian reads requests in Rust on an event loop; servicekit.front reads their
bodies on that loop and only then runs the Flask app on a thread, so slow or
idle clients hold a socket, never a Python thread. granian's master process
replaces a worker that dies, stops the workers gracefully on SIGTERM or SIGINT
(requests in flight get GRACE_SECONDS), and here also owns the folder where its
workers share their metrics.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

from granian.constants import HTTPModes, Interfaces, Loops
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server import MPServer as Server  # a process per worker

from .config import log_settings, share_a_secret_key
from .front import Front
from .logs import configure_logging

APP_VARIABLE = "SERVICEKIT_APP"
THREADS_VARIABLE = "SERVICEKIT_THREADS"
GRACE_SECONDS = 10
# Python threads per worker, started as needed. A request holds one while it
# waits on another service or the database, so there are many. Idle
# connections hold none, but granian counts open connections against
# BACKPRESSURE, so that is high.
THREADS = 128
BACKPRESSURE = 1024
# How long a thread may hold the GIL while another waits for it (Python's
# default is 5 ms). Every request passes between the event loop's thread and a
# request thread twice, and each hand-over could wait that long behind a busy
# thread (the measurements: bench/RESULTS.md, "The front").
SWITCH_INTERVAL_SECONDS = 0.001
HEADER_READ_TIMEOUT_MS = 10_000
# The most a request line and headers may take (the longest documented query,
# 1000 SKUs of 64 characters, fits); the server itself answers a
# bigger head (431, or 414 for the line) with an empty body.
HEAD_BUFFER_BYTES = 128 * 1024


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


def build_server(settings: ServerSettings) -> Server:
    """A granian server for `<app>.create_app()`, not yet serving."""
    level, log_format = log_settings()
    configure_logging(settings.app, level, log_format)
    share_a_secret_key()
    # For worker_app, in each worker.
    os.environ[APP_VARIABLE] = settings.app
    os.environ[THREADS_VARIABLE] = str(settings.threads)
    server = Server(
        "servicekit.serving:worker_app",
        factory=True,
        interface=Interfaces.RSGI,
        loop=Loops.uvloop,
        address=settings.host,
        port=settings.port,
        workers=settings.workers,
        backpressure=BACKPRESSURE,
        http=HTTPModes.http1,
        http1_settings=HTTP1Settings(
            header_read_timeout=HEADER_READ_TIMEOUT_MS, max_buffer_size=HEAD_BUFFER_BYTES
        ),
        websockets=False,
        respawn_failed_workers=True,  # at once
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
    """The app a worker serves: `<app>.create_app()` behind the front. Then everything made so far
    (the app, its schemas, SQLAlchemy's metadata) is moved out of the garbage
    collector's sight: it lives as long as the worker, and the collector would
    otherwise walk it again and again while requests come and go."""
    # Until granian sets its own handlers, a worker would take a stop signal
    # for its master's and miss it. It is still loading, with nothing in flight:
    # it can simply go.
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, lambda signum, frame: os._exit(0))
    app = importlib.import_module(os.environ[APP_VARIABLE]).create_app()
    front = Front(app, int(os.environ[THREADS_VARIABLE]), app.config["MAX_CONTENT_LENGTH"])
    sys.setswitchinterval(SWITCH_INTERVAL_SECONDS)
    gc.freeze()
    return front


def serve(settings: ServerSettings) -> None:
    """Serve until SIGTERM or SIGINT; then let requests in flight finish."""
    build_server(settings).serve()


def parse_arguments(argv: Sequence[str]) -> ServerSettings:
    parser = argparse.ArgumentParser(prog="python -m servicekit.serving", description=__doc__)
    parser.add_argument("app", help="users, beers, orders (or any module with create_app)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=THREADS)
    args = parser.parse_args(argv)
    return ServerSettings(args.app, args.host, args.port, args.workers, args.threads)


if __name__ == "__main__":
    serve(parse_arguments(sys.argv[1:]))
    # Stopped cleanly. Tearing down the interpreter (every module the app
    # imports) would only spend CPU on memory the kernel frees anyway.
    logging.shutdown()
    os._exit(0)
