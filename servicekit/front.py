"""The front of every worker: a request is read whole on granian's event loop
(RSGI), then handed to the Flask (WSGI) app on a thread of our own, started
whenever none is idle; so a body trickling in holds no thread, as it would under
granian's WSGI interface (bench/RESULTS.md, "The front"). A worker holds at most
`body_budget` bytes of bodies at once; one not whole within `body_timeout` is a 408.
"""

from __future__ import annotations

import asyncio
import ctypes
import io
import logging
import os
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable
from queue import SimpleQueue
from typing import Any

import orjson
from granian.rsgi import HTTPProtocol, ProtocolClosed, ProtocolError, Scope

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
WSGIAnswer = tuple[int, list[tuple[str, str]], bytes]  # status, headers, body
# The Content-Security-Policy of every answer but the docs page's
# (servicekit.observability), the front's own answers included.
POLICY = "default-src 'none'; frame-ancestors 'none'"

# Where granian hands over HTTP/1.1 headers, the WSGI names of the two that are
# not HTTP_*; and how repeated headers are joined (RFC 9110, 5.3; cookies, 6265).
UNPREFIXED = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}
JOINERS = {"HTTP_COOKIE": "; "}
# What the app gets for a header value granian would not read (one that is not
# ASCII, see _unreadable_names): U+FFFD, the replacement character, as its
# UTF-8 bytes in latin-1 like any raw value. A header the contract holds to
# printable ASCII (Idempotency-Key) is then a 400 naming it, and a token a 401,
# rather than the header going missing.
UNREADABLE_VALUE = "\ufffd".encode().decode("latin-1")
# Past the app's body limit, this much more is read and dropped, so that the
# client is not reset before it reads its 413.
DRAIN_BYTES = 2 * 1024 * 1024
# From the master: this worker is about to be stopped (servicekit.serving).
DRAIN_SIGNAL = signal.SIGUSR1
# Bodies this small are read without waiting for the budget: a worker's
# open connections (BACKPRESSURE) bound what they hold together, and an
# ordinary request is not queued behind a flood of big bodies.
SMALL_BODY_BYTES = 16 * 1024


def problem_answer(status: int, title: str, detail: str, close: bool = False) -> WSGIAnswer:
    """A problem+json answer the front gives itself, before the app sees the
    request, with the headers every answer of the application has."""
    body = orjson.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail},
        option=orjson.OPT_APPEND_NEWLINE,
    )
    headers = [
        ("Content-Type", "application/problem+json"),
        ("X-Content-Type-Options", "nosniff"),
        ("Content-Security-Policy", POLICY),
    ]
    if close:
        headers.append(("Connection", "close"))
    return status, headers, body


# A body granian cannot read (a broken chunk, say): the client's fault.
UNREADABLE_BODY = problem_answer(400, "Bad Request", "The request body could not be read.")

# Liveness (servicekit.health) runs on a few threads of its own: requests
# waiting on the database or on a neighbour may hold every request thread, and
# a probe queued behind them would have the worker restarted for being busy.
LIVENESS_PATH = "/health"
LIVENESS_THREADS = 4

# How often the worker's memory is read while a chunked body is collected.
MEMORY_CHECK_SECONDS = 0.02
BODY_TOO_LARGE = problem_answer(
    413, "Content Too Large", "The request body is larger than the server can hold now.", close=True
)


class BodyTooLarge(Exception):
    """A chunked body given up while it was read: the worker's memory ran short."""


def body_timeout_answer(seconds: float) -> WSGIAnswer:
    """The 408 for a body not whole in time; the connection closes after it."""
    detail = f"The request body did not arrive whole within {seconds:g} seconds."
    return problem_answer(408, "Request Timeout", detail, close=True)


class BodyBudget:
    """The bytes of request bodies a worker holds at once. A body takes its
    share before it is read and gives it back once it is answered; past the
    budget, bodies wait their turn, first come first served. Used from the event
    loop's thread only."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0
        self._waiting: deque[tuple[int, asyncio.Future[None]]] = deque()

    async def take(self, size: int) -> int:
        """Wait until size bytes (at most the whole budget) are free; what was taken."""
        size = min(size, self.limit)
        if not self._waiting and self.held + size <= self.limit:
            self.held += size
            return size
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, turn)
        self._waiting.append(entry)
        try:
            await turn
        except BaseException:
            if turn.done() and not turn.cancelled():
                self.give_back(size)  # granted just as it was given up
            else:
                self._waiting.remove(entry)
            raise
        return size

    def give_back(self, size: int) -> None:
        self.held -= size
        while self._waiting and self.held + self._waiting[0][0] <= self.limit:
            size, turn = self._waiting.popleft()
            self.held += size
            turn.set_result(None)
        if self.held == 0:
            release_free_memory()


class MemoryWatch:
    """A chunked body is collected whole in Rust, out of the budget's sight
    (its length is not known ahead). While any is being collected, the
    worker's resident memory is read every MEMORY_CHECK_SECONDS; past `limit`
    bytes, the reads that were in progress at the check before are given up.
    A read begun since is spared: a body sent whole is read before the next
    check, so a flood of big chunked bodies does not take small ones with it."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.collecting: set[asyncio.Task[Any]] = set()
        self.given_up: set[asyncio.Task[Any]] = set()
        self._watching: asyncio.Task[None] | None = None

    async def collect(self, protocol: HTTPProtocol) -> bytes:
        """The whole body; BodyTooLarge if memory runs short meanwhile."""
        task = asyncio.current_task()
        assert task is not None
        self.collecting.add(task)
        if self._watching is None or self._watching.done():
            self._watching = asyncio.get_running_loop().create_task(self._watch())
        try:
            return await protocol()
        except asyncio.CancelledError:
            if task not in self.given_up:
                raise
            task.uncancel()
            raise BodyTooLarge from None
        finally:
            self.collecting.discard(task)
            self.given_up.discard(task)

    async def _watch(self) -> None:
        seen: set[asyncio.Task[Any]] = set()  # the reads in progress at the check before
        while self.collecting:
            await asyncio.sleep(MEMORY_CHECK_SECONDS)
            if resident_bytes() > self.limit:
                for task in (seen & self.collecting) - self.given_up:
                    self.given_up.add(task)
                    task.cancel()  # drops the Rust side's read, and the connection
            seen = set(self.collecting)


def resident_bytes() -> int:
    """This process's resident memory."""
    with open("/proc/self/statm", "rb") as statm:
        return int(statm.read().split()[1]) * PAGE_BYTES


PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def release_free_memory() -> None:
    """Hand the pages of freed bodies back to the system (glibc keeps the top
    of its heaps otherwise)."""
    if _LIBC is not None:
        _LIBC.malloc_trim(0)


_LIBC = ctypes.CDLL(None) if sys.platform.startswith("linux") else None


class RequestThreads:
    """The threads requests run on: one more starts whenever a request finds
    none idle, up to `limit`; an idle one waits for the next request rather
    than ending, so that the pool is there when a burst comes back."""

    def __init__(self, limit: int) -> None:
        self.limit = limit  # the most threads it starts
        self._jobs: SimpleQueue[Callable[[], None]] = SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._started = 0

    def submit(self, job: Callable[[], None]) -> None:
        """Run `job` on a thread; called from the event loop's thread only."""
        self._jobs.put(job)
        if self._idle.acquire(blocking=False):
            return  # an idle thread will take it
        if self._started < self.limit:
            self._started += 1
            threading.Thread(
                target=self._serve, name=f"request-{self._started}", daemon=True
            ).start()

    def _serve(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()
            except Exception:  # a thread lost would be a slot lost for good
                logging.getLogger(__name__).exception("a request thread's job failed")
            self._idle.release()


class Front:
    """An RSGI application (granian's native interface) serving a WSGI app."""

    def __init__(
        self,
        app: WSGIApp,
        max_threads: int,
        max_body_bytes: int,
        body_timeout: float = 30.0,
        body_budget: int = 64 * 1024 * 1024,
        memory_limit: int = 192 * 1024 * 1024,
    ) -> None:
        self.app = app
        self.threads = RequestThreads(max_threads)
        self.liveness_threads = RequestThreads(LIVENESS_THREADS)
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout
        self.budget = BodyBudget(body_budget)
        self.memory = MemoryWatch(memory_limit)
        self.draining = False

    def __rsgi_init__(self, loop: asyncio.AbstractEventLoop) -> None:
        """On the worker's event loop, once: DRAIN_SIGNAL from the master (the
        server is about to stop this worker) makes every answer from then on
        close its connection, so that no client sends its next request on a
        connection about to be closed."""
        loop.add_signal_handler(DRAIN_SIGNAL, self._drain)

    def _drain(self) -> None:
        self.draining = True

    async def __rsgi__(self, scope: Scope, protocol: HTTPProtocol) -> None:
        share = self._share_of_budget(scope)
        taken = 0
        try:
            async with asyncio.timeout(self.body_timeout):
                if share > SMALL_BODY_BYTES:
                    taken = await self.budget.take(share)
                body = await self._read_body(scope, protocol)
        except TimeoutError:
            protocol.response_bytes(*body_timeout_answer(self.body_timeout))
            self._give_back(taken)
            return
        except ProtocolClosed:
            self._give_back(taken)
            return  # the client left before its request was whole
        except ProtocolError:
            self._give_back(taken)
            protocol.response_bytes(*UNREADABLE_BODY)
            return
        except BodyTooLarge:
            self._give_back(taken)
            protocol.response_bytes(*BODY_TOO_LARGE)
            return
        try:
            status, headers, content = await self._run_app(scope, body)
        finally:
            del body
            self._give_back(taken)
        if self.draining:
            headers = [*headers, ("Connection", "close")]
        protocol.response_bytes(status, headers, content)

    def _give_back(self, taken: int) -> None:
        if taken:
            self.budget.give_back(taken)

    def _share_of_budget(self, scope: Scope) -> int:
        """The most this request's body will hold: its length, the limit + 1
        for a chunked one or one past the limit."""
        headers = scope.headers
        keep = self.max_body_bytes + 1
        if "transfer-encoding" in headers:
            return keep
        try:
            return min(int(headers.get("content-length", "0")), keep)
        except ValueError:
            return keep

    async def _run_app(self, scope: Scope, body: bytes) -> WSGIAnswer:
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[WSGIAnswer] = loop.create_future()
        environ = wsgi_environ(scope, body)
        threads = self.liveness_threads if scope.path == LIVENESS_PATH else self.threads
        threads.submit(lambda: self._answer(environ, loop, answer))
        return await answer

    async def _read_body(self, scope: Scope, protocol: HTTPProtocol) -> bytes:
        """The body, whole, read in one call however it is cut up; past the
        declared limit, the first limit + 1 bytes (the app then answers 413),
        after reading up to DRAIN_BYTES more."""
        headers = scope.headers
        chunked = "transfer-encoding" in headers
        length = headers.get("content-length", "0")
        if not chunked and length == "0":
            return b""
        if chunked:
            return await self.memory.collect(protocol)
        if length.isdigit() and int(length) <= self.max_body_bytes:
            return await protocol()
        chunks, size, keep = [], 0, self.max_body_bytes + 1
        async for chunk in protocol:
            if size < keep:
                chunks.append(chunk[: keep - size])
            size += len(chunk)
            if size > keep + DRAIN_BYTES:
                break
        return b"".join(chunks)

    def _answer(
        self,
        environ: dict[str, Any],
        loop: asyncio.AbstractEventLoop,
        answer: asyncio.Future[WSGIAnswer],
    ) -> None:
        """On a request thread: run the app, and hand its answer to the loop."""
        try:
            response = call_wsgi(self.app, environ)
        except BaseException as error:  # noqa: BLE001 - the loop's future reports it
            loop.call_soon_threadsafe(_settle, answer, None, error)
        else:
            loop.call_soon_threadsafe(_settle, answer, response, None)


def _settle(
    answer: asyncio.Future[WSGIAnswer], response: WSGIAnswer | None, error: BaseException | None
) -> None:
    if answer.done():  # cancelled: the client went away
        return
    if error is not None:
        answer.set_exception(error)
    else:
        answer.set_result(response)  # type: ignore[arg-type]


def wsgi_environ(scope: Scope, body: bytes) -> dict[str, Any]:
    """PEP 3333's environ for a request granian has read: strings carry the raw
    bytes as latin-1 characters, the body is whole, and its length is known."""
    server_host, _, server_port = scope.server.rpartition(":")
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": _as_latin1(scope.path),
        "QUERY_STRING": _as_latin1(scope.query_string),  # raw UTF-8 may come in it
        "SERVER_NAME": server_host.strip("[]"),
        "SERVER_PORT": server_port,
        "SERVER_PROTOCOL": f"HTTP/{scope.http_version}",
        "REMOTE_ADDR": scope.client.rpartition(":")[0].strip("[]"),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.scheme,
        "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    headers = scope.headers
    items = headers.items()
    for name, value in items:
        _add_header(environ, name, _as_latin1(value))
    names = headers.keys()
    # Mostly one value a name, each read: then items() has the names of keys().
    if len(names) != len(items) or [name for name, _ in items] != names:
        for name in _unreadable_names(headers, names):
            _add_header(environ, name, UNREADABLE_VALUE)
    if environ.pop("HTTP_TRANSFER_ENCODING", None):  # read whole: its length is known
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


def _add_header(environ: dict[str, Any], name: str, value: str) -> None:
    if "_" in name:  # else X_Forwarded_For would pass for X-Forwarded-For
        return
    key = UNPREFIXED.get(name) or "HTTP_" + name.upper().replace("-", "_")
    if key in environ:
        value = environ[key] + JOINERS.get(key, ",") + value
    environ[key] = value


def _unreadable_names(headers: Any, names: list[str]) -> list[str]:
    """The headers whose (first) value granian would not read: it leaves a value
    that is not ASCII out of items() and get(), but its name in keys(), and has
    no bytes to offer for it. (A repeated header whose first value is readable
    but a later one is not cannot be told from one with the readable values only.)"""
    return [name for name in names if headers.get(name) is None]


def _as_latin1(text: str) -> str:
    return text if text.isascii() else text.encode("utf-8").decode("latin-1")


def call_wsgi(app: WSGIApp, environ: dict[str, Any]) -> WSGIAnswer:
    """Run a WSGI app to the end of its answer."""
    started: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        if exc_info is not None and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [status, headers]

    chunks = app(environ, start_response)
    try:
        content = b"".join(chunks)
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            close()
    status, headers = started
    return int(status[:3]), headers, content
