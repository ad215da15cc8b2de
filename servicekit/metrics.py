"""Prometheus metrics every service exposes on /metrics: requests, calls to other
services and their breakers, the database pool, each worker's CPU, memory, files
and threads; merged across the workers through PROMETHEUS_MULTIPROC_DIR
(prometheus_client's multiprocess mode)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from typing import Literal

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import Engine, event

# A worker reads its own CPU, memory, files and threads at most this often.
WORKER_SAMPLE_SECONDS = 1.0
PAGE_BYTES = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


class Metrics:
    """The counters and histograms every service exposes on /metrics."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "http_requests_total",
            "Requests served, by endpoint and status.",
            ["method", "endpoint", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "http_request_duration_seconds",
            "Time to serve a request, by endpoint and status.",
            ["method", "endpoint", "status"],
            registry=self.registry,
        )
        self.upstream_calls = Counter(
            "upstream_requests_total",
            "Calls to other services, by outcome (status code, timeout or error).",
            ["service", "endpoint", "outcome"],
            registry=self.registry,
        )
        self.upstream_latency = Histogram(
            "upstream_request_duration_seconds",
            "Time spent waiting for other services.",
            ["service", "endpoint"],
            registry=self.registry,
        )
        self.in_flight = self.gauge(
            "http_requests_in_flight", "Requests being served now, all workers together."
        )
        self.breaker_open = self.gauge(
            "upstream_breaker_open",
            "Workers whose circuit breaker takes this neighbour for down (refusing calls).",
            ("service",),
        )
        self.breaker_openings = self.counter(
            "upstream_breaker_openings",
            "Times a worker's circuit breaker took this neighbour for down.",
            ("service",),
        )
        self.pool_in_use = self.gauge(
            "db_pool_connections_in_use",
            "Database connections taken from the workers' pools now, all workers together.",
        )
        self.worker = WorkerGauges(self)

    def observe_request(self, method: str, endpoint: str, status: str, seconds: float) -> None:
        self.requests.labels(method, endpoint, status).inc()
        self.latency.labels(method, endpoint, status).observe(seconds)

    def observe_upstream(self, service: str, endpoint: str, outcome: str, seconds: float) -> None:
        self.upstream_calls.labels(service, endpoint, outcome).inc()
        self.upstream_latency.labels(service, endpoint).observe(seconds)

    def counter(self, name: str, documentation: str, labels: tuple[str, ...] = ()) -> Counter:
        """A counter on /metrics (its samples are `<name>_total`), added up across workers."""
        return Counter(name, documentation, labels, registry=self.registry)

    def gauge(
        self,
        name: str,
        documentation: str,
        labels: tuple[str, ...] = (),
        merged: Literal["livesum", "livemax"] = "livesum",
    ) -> Gauge:
        """A gauge on /metrics; `merged` says how workers' values merge
        (`livesum`: added up, `livemax`: the largest), counting live workers only."""
        return Gauge(name, documentation, labels, registry=self.registry, multiprocess_mode=merged)

    def breaker_observer(self, service: str) -> Callable[[bool], None]:
        """What a circuit breaker calls when it opens (True) or closes (False)."""
        is_open, openings = self.breaker_open.labels(service), self.breaker_openings.labels(service)
        is_open.set(0)  # on /metrics from the start: a closed breaker is a 0, not a gap

        def changed(opened: bool) -> None:
            is_open.set(1 if opened else 0)
            if opened:
                openings.inc()

        return changed

    def watch_pool(self, engine: Engine) -> None:
        """Count the engine's pooled connections in use, as they are taken and given back."""
        in_use = self.pool_in_use
        event.listen(engine, "checkout", lambda *args: in_use.inc())
        event.listen(engine, "checkin", lambda *args: in_use.dec())

    def exposition(self) -> bytes:
        """Prometheus text; merged across worker processes when they share a directory."""
        self.worker.sample()
        directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if directory:
            forget_dead_workers(directory)
            merged = CollectorRegistry()
            multiprocess.MultiProcessCollector(merged)
            return generate_latest(merged)
        return generate_latest(self.registry)


class WorkerGauges:
    """This worker process's CPU time, resident memory, open files and threads
    (from /proc; nothing on a system without it), and that it started."""

    def __init__(self, metrics: Metrics) -> None:
        self.starts = metrics.counter(
            "worker_starts",
            "Worker processes started: a server's start counts each; so does every "
            "worker that replaces one that died.",
        )
        self.alive = metrics.gauge("workers", "Worker processes alive.")
        self.cpu = metrics.counter(
            "worker_cpu_seconds", "CPU time (user and system) of every worker, dead ones included."
        )
        self.memory = metrics.gauge(
            "worker_resident_memory_bytes", "Resident memory of the live workers, added up."
        )
        self.memory_max = metrics.gauge(
            "worker_resident_memory_max_bytes",
            "Resident memory of the largest live worker.",
            merged="livemax",
        )
        self.files = metrics.gauge("worker_open_fds", "Open file descriptors of the live workers.")
        self.files_max = metrics.gauge(
            "worker_open_fds_max",
            "Open file descriptors of the live worker with most.",
            merged="livemax",
        )
        self.threads = metrics.gauge("worker_threads", "Threads of the live workers, added up.")
        self.threads_max = metrics.gauge(
            "worker_threads_max", "Threads of the live worker with most.", merged="livemax"
        )
        self.starts.inc()
        self.alive.set(1)
        self._cpu_counted = 0.0
        self._sampled_at = float("-inf")
        self.sample()

    def sample_now_and_then(self, now: float) -> None:
        """Sample unless this worker did less than WORKER_SAMPLE_SECONDS ago."""
        if now - self._sampled_at >= WORKER_SAMPLE_SECONDS:
            self.sample(now)

    def sample(self, now: float | None = None) -> None:
        self._sampled_at = time.monotonic() if now is None else now
        times = os.times()
        cpu = times.user + times.system
        if cpu > self._cpu_counted:
            self.cpu.inc(cpu - self._cpu_counted)
            self._cpu_counted = cpu
        status = read_own_stat()
        if status is None:
            return
        resident, threads = status
        self.memory.set(resident)
        self.memory_max.set(resident)
        self.threads.set(threads)
        self.threads_max.set(threads)
        try:
            files = len(os.listdir("/proc/self/fd")) - 1  # not the listing's own
        except OSError:
            return
        self.files.set(files)
        self.files_max.set(files)


def read_own_stat() -> tuple[int, int] | None:
    """This process's resident bytes and threads, from /proc/self/stat (None without it)."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            line = stat.read()
    except OSError:
        return None
    # After the command's closing parenthesis (a command may hold spaces):
    # field 20 is the thread count, 24 the resident pages (proc(5)).
    fields = line[line.rindex(b")") + 2 :].split()
    return int(fields[21]) * PAGE_BYTES, int(fields[17])


def forget_dead_workers(directory: str) -> None:
    """Drop the live gauges of worker processes that died (a killed worker
    never says so itself), so that `livesum` and `livemax` count live ones.

    prometheus_client's mark_process_dead does the same, but two workers
    answering scrapes at once could both remove a file, and the second's
    error would fail its scrape."""
    alive: dict[int, bool] = {}
    for name in os.listdir(directory):
        if name.startswith("gauge_live") and name.endswith(".db"):
            pid = int(name[: -len(".db")].rsplit("_", 1)[1])
            if pid not in alive:
                alive[pid] = is_alive(pid)
            if not alive[pid]:
                with contextlib.suppress(FileNotFoundError):
                    os.remove(os.path.join(directory, name))


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's: alive
    return True
