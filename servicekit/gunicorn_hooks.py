"""gunicorn settings for every service's server (`-c python:servicekit.gunicorn_hooks`).

Worker processes write their metrics to files in PROMETHEUS_MULTIPROC_DIR, so
that /metrics, whichever worker answers it, counts the whole server. And the
few requests gunicorn itself refuses (a request line or header too large to
parse) are answered as problem+json like every other error, not as HTML.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

from gunicorn import util
from prometheus_client import multiprocess


def write_problem(sock: Any, status: int, reason: str, detail: str) -> None:
    """gunicorn's own error page, as application/problem+json."""
    body = json.dumps(
        {"type": "about:blank", "title": reason, "status": status, "detail": detail}
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/problem+json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode("latin-1")
    util.write_nonblock(sock, head + body)


def post_fork(server: Any, worker: Any) -> None:
    util.write_error = write_problem


def child_exit(server: Any, worker: Any) -> None:
    """Fold a dead worker's live gauges away; its counters stay counted."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    """The metrics files belong to this server's life only."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
