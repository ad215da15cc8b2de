"""The front of every worker: a request is read whole on granian's event loop,
then handed to the Flask (WSGI) app on a thread of our own.

Why not granian's own WSGI interface: it reads a request's body in the Python
thread that serves it, so a body trickling in a byte a second holds a thread
for as long as it trickles, and how soon granian starts another for the next
request is its pool's business. With one or two workers, the slow-client test
at times saw a lone request wait about 10 s behind such bodies. Here a body
costs the event loop a few bytes until it is complete, and a thread is started
whenever a request finds none idle.
"""

from __future__ import annotations

import asyncio
import io
import logging
import sys
import threading
from collections.abc import Callable, Iterable
from queue import SimpleQueue
from typing import Any

from granian.rsgi import HTTPProtocol, ProtocolClosed, ProtocolError, Scope

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
WSGIAnswer = tuple[int, list[tuple[str, str]], bytes]  # status, headers, body

# Where granian hands over HTTP/1.1 headers, the WSGI names of the two that are
# not HTTP_*; and how repeated headers are joined (RFC 9110, 5.3; cookies, 6265).
UNPREFIXED = {"content-type": "CONTENT_TYPE", "content-length": "CONTENT_LENGTH"}
JOINERS = {"HTTP_COOKIE": "; "}
# Past the app's body limit, this much more is read and dropped, so that the
# client is not reset before it reads its 413.
DRAIN_BYTES = 2 * 1024 * 1024
# A body granian cannot read (a broken chunk, say): the client's fault.
UNREADABLE_BODY: WSGIAnswer = (
    400,
    [("Content-Type", "application/problem+json")],
    b'{"type":"about:blank","title":"Bad Request","status":400,'
    b'"detail":"The request body could not be read."}\n',
)


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

    def __init__(self, app: WSGIApp, max_threads: int, max_body_bytes: int) -> None:
        self.app = app
        self.threads = RequestThreads(max_threads)
        self.max_body_bytes = max_body_bytes

    async def __rsgi__(self, scope: Scope, protocol: HTTPProtocol) -> None:
        try:
            body = await self._read_body(scope, protocol)
        except ProtocolClosed:
            return  # the client left before its request was whole
        except ProtocolError:
            protocol.response_bytes(*UNREADABLE_BODY)
            return
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[WSGIAnswer] = loop.create_future()
        environ = wsgi_environ(scope, body)
        self.threads.submit(lambda: self._answer(environ, loop, answer))
        status, headers, content = await answer
        protocol.response_bytes(status, headers, content)

    async def _read_body(self, scope: Scope, protocol: HTTPProtocol) -> bytes:
        """The body, whole; past the app's limit, the first limit + 1 bytes (the
        app then answers 413), after reading up to DRAIN_BYTES more."""
        headers = scope.headers
        if "transfer-encoding" not in headers and headers.get("content-length", "0") == "0":
            return b""
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
    for name, value in scope.headers.items():
        if "_" in name:  # else X_Forwarded_For would pass for X-Forwarded-For
            continue
        key = UNPREFIXED.get(name) or "HTTP_" + name.upper().replace("-", "_")
        value = _as_latin1(value)
        if key in environ:
            value = environ[key] + JOINERS.get(key, ",") + value
        environ[key] = value
    if environ.pop("HTTP_TRANSFER_ENCODING", None):  # read whole: its length is known
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ


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
