"""gunicorn settings for every service's server (`-c python:servicekit.gunicorn_hooks`).

Worker processes write their metrics to files in PROMETHEUS_MULTIPROC_DIR, so
that /metrics, whichever worker answers it, counts the whole server.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from prometheus_client import multiprocess


def child_exit(server: Any, worker: Any) -> None:
    """Fold a dead worker's live gauges away; its counters stay counted."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)


def on_exit(server: Any) -> None:
    """The metrics files belong to this server's life only."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
