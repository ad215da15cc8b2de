"""HTTP clients for the other services: kept-alive connections (libcurl, for its
CPU per call: bench/RESULTS.md), timeouts, one retry, a circuit breaker, one
error (ServiceUnavailable). No Flask: the app factory hands each client the
request id to forward, the metrics to feed and the tracer."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from io import BytesIO
from random import uniform
from time import monotonic, perf_counter, sleep
from typing import Any, Protocol
from urllib.parse import urlencode

import orjson
import pycurl

from .errors import ServiceUnavailable

# curl's errors for a call that never got an answer started: worth a retry.
RETRIED_ERRORS = frozenset(
    {pycurl.E_COULDNT_CONNECT, pycurl.E_GOT_NOTHING, pycurl.E_SEND_ERROR, pycurl.E_RECV_ERROR}
)
RETRY_PAUSE = (0.02, 0.1)  # seconds, at random: concurrent retries do not come back as one
FIRST_PAUSE = 1.0  # seconds a breaker stays open first: about a neighbour's restart
# Calls waiting on one neighbour at once, per client and worker: a slow neighbour
# is refused by its own name, and leaves threads (servicekit.serving.THREADS)
# free for the requests that need no neighbour.
MAX_WAITING_CALLS = 64
# Connections are replaced after this many seconds: behind a load balancer (a
# Kubernetes Service), only new connections reach the pods it adds.
CONNECTION_LIFETIME = 30
RequestIdSource = Callable[[], str | None]
CallObserver = Callable[[str, str, str, float], None]  # service, endpoint, outcome, seconds


class CallSpan(Protocol):
    """A call's trace span (servicekit.tracing), as the client feeds it."""

    def header_lines(self) -> list[str]:
        """The header lines that carry the span to the other service."""

    def retrying(self) -> None: ...

    def answered(self, status: int) -> None: ...


# service, endpoint, method, URL: the span of a call, around it all (a refusal included).
CallTracer = Callable[[str, str, str, str], AbstractContextManager[CallSpan]]


@dataclass(frozen=True)
class Timeouts:
    connect: float = 1.0
    read: float = 5.0


class CircuitBreaker:
    """After `failures` failed calls in a row the neighbour is taken for down:
    calls are refused for a pause (first FIRST_PAUSE seconds), then one trial
    call goes out. Its success closes the breaker; its failure doubles the pause,
    up to `max_pause`. So a restart costs about a second of refusals, and a
    neighbour that stays down is asked ever more rarely. One per client, so per
    worker; `on_change` hears it open (True) and close (False).

    The lock guards the counts, never a call. The trial is known by its thread,
    so a call sent before the breaker opened and failing late is no failed trial.
    """

    def __init__(
        self,
        failures: int = 5,
        max_pause: float = 30.0,
        clock: Callable[[], float] = monotonic,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.failures, self.max_pause, self.clock = failures, max_pause, clock
        self.on_change = on_change or (lambda opened: None)
        self.first_pause = min(FIRST_PAUSE, max_pause)
        self._lock = threading.Lock()
        self._failed = 0
        self._opened_at: float | None = None
        self._pause = 0.0
        self._trial: int | None = None  # the thread whose call is the trial, while it is out

    @property
    def pause(self) -> float:
        """How long the breaker stays open this time (0 while closed)."""
        return self._pause

    def allow(self) -> bool:
        """Whether a call may go out now (if so, it must end in `record`)."""
        if self._opened_at is None:
            return True
        with self._lock:
            if self._opened_at is None:
                return True
            if self._trial is not None or self.clock() - self._opened_at < self._pause:
                return False
            self._trial = threading.get_ident()
            return True

    def record(self, failed: bool) -> None:
        if not failed and not self._failed and self._opened_at is None:
            return  # the usual case: nothing to change, no lock taken
        with self._lock:
            if not failed:
                was_open = self._opened_at is not None
                self._failed, self._opened_at, self._pause, self._trial = 0, None, 0.0, None
                if was_open:
                    self.on_change(False)
            elif self._trial == threading.get_ident():
                self._open(min(self._pause * 2, self.max_pause))
            elif self._opened_at is None:
                self._failed += 1
                if self._failed >= self.failures:
                    self._open(self.first_pause)
                    self.on_change(True)

    def _open(self, pause: float) -> None:
        self._opened_at, self._pause, self._trial = self.clock(), pause, None


@dataclass(frozen=True)
class Answer:
    """What another service answered: its status and body."""

    status: int
    body: bytes


class ServiceClient:
    """Calls one other service; a dead, slow or 5xx answer raises ServiceUnavailable."""

    service = "upstream"

    def __init__(
        self,
        base_url: str,
        *,
        timeouts: Timeouts | None = None,
        request_id: RequestIdSource | None = None,
        observe: CallObserver | None = None,
        trace: CallTracer | None = None,
        connection_lifetime: int = CONNECTION_LIFETIME,
        breaker: CircuitBreaker | None = None,
        max_waiting_calls: int = MAX_WAITING_CALLS,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._waiting_calls = threading.BoundedSemaphore(max_waiting_calls)
        self.breaker = breaker or CircuitBreaker()
        self.timeouts = timeouts or Timeouts()
        self.connection_lifetime = connection_lifetime
        self._request_id = request_id or (lambda: None)
        self._observe = observe or (lambda *args: None)
        self._trace = trace  # None: tracing is off
        self._local = threading.local()
        self._handles: weakref.WeakSet[pycurl.Curl] = weakref.WeakSet()

    def _handle(self) -> pycurl.Curl:
        """This thread's curl handle (made on its first call)."""
        handle: pycurl.Curl | None = getattr(self._local, "handle", None)
        if handle is None:
            handle = self._local.handle = pycurl.Curl()
            self._handles.add(handle)
            handle.setopt(pycurl.CONNECTTIMEOUT_MS, int(self.timeouts.connect * 1000))
            handle.setopt(pycurl.NOSIGNAL, 1)  # timeouts without signals, in threads
            handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
            handle.setopt(pycurl.MAXLIFETIME_CONN, self.connection_lifetime)
        return handle

    def _send(self, method: str, url: str, headers: list[str]) -> Answer:
        handle = self._handle()
        body = BytesIO()
        handle.setopt(pycurl.TIMEOUT_MS, self._whole_call_ms(handle))
        handle.setopt(pycurl.URL, url)
        handle.setopt(pycurl.CUSTOMREQUEST, method)
        handle.setopt(pycurl.HTTPHEADER, headers)
        handle.setopt(pycurl.WRITEDATA, body)
        # curl itself re-sends, once, on a kept-alive connection the other side
        # closed as we sent (its keep-alive ran out, it restarted); never a timeout.
        handle.perform()
        return Answer(handle.getinfo(pycurl.RESPONSE_CODE), body.getvalue())

    def _whole_call_ms(self, handle: pycurl.Curl) -> int:
        """curl bounds a call as a whole: on a kept-alive connection the call is
        its read; on a new one, a connect then a read. (A kept-alive connection
        the other side has closed meanwhile is connected again within the
        read's time.)"""
        read_ms = int(self.timeouts.read * 1000)
        if handle.getinfo(pycurl.ACTIVESOCKET) != -1:  # a connection is kept alive
            return read_ms
        return int(self.timeouts.connect * 1000) + read_ms

    def call(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        headers: Mapping[str, str] | None = None,
        params: Any = None,
    ) -> Answer:
        """Send one request; return any answer below 500, raise on the rest.
        Every call here only reads, so one that could not connect, or was reset
        before any answer, is sent once more after a short random pause; never
        one that timed out reading: the other side may still be working on it."""
        if self._trace is None:
            return self._call_in_turn(method, path, endpoint, headers, params, None)
        with self._trace(self.service, endpoint, method, self.base_url + path) as span:
            return self._call_in_turn(method, path, endpoint, headers, params, span)

    def _call_in_turn(
        self,
        method: str,
        path: str,
        endpoint: str,
        headers: Mapping[str, str] | None,
        params: Any,
        span: CallSpan | None,
    ) -> Answer:
        """The call, unless too many wait already or the breaker is open (then refused)."""
        if not self._waiting_calls.acquire(blocking=False):
            self._observe(self.service, endpoint, "refused", 0.0)
            raise ServiceUnavailable(self.service, "too many calls are already waiting on it")
        try:
            # Built before the breaker is asked: whatever raises here takes no trial.
            lines = self._header_lines(headers, span)
            url = self.base_url + path + (f"?{urlencode(params, doseq=True)}" if params else "")
            if not self.breaker.allow():  # (if it allows, _call records the outcome)
                self._observe(self.service, endpoint, "refused", 0.0)
                raise ServiceUnavailable(self.service, "taken for down after repeated failures")
            return self._call(method, url, lines, endpoint, span)
        finally:
            self._waiting_calls.release()

    def _header_lines(self, headers: Mapping[str, str] | None, span: CallSpan | None) -> list[str]:
        lines = ["Accept: application/json", "Expect:"]
        lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
        request_id = self._request_id()
        if request_id:
            lines.append(f"X-Request-ID: {request_id}")
        if span is not None:
            lines.extend(span.header_lines())
        return lines

    def _call(
        self, method: str, url: str, lines: list[str], endpoint: str, span: CallSpan | None
    ) -> Answer:
        """The call the breaker allowed: every way out of it goes through `record`,
        else a trial that never ended would keep the breaker open for good."""
        failed = True
        try:
            answer = self._attempt(method, url, lines, endpoint)
            if answer is None:
                if span is not None:
                    span.retrying()
                sleep(uniform(*RETRY_PAUSE))
                answer = self._attempt(method, url, lines, endpoint, last=True)
            assert answer is not None  # (a last attempt answers or raises)
            if span is not None:
                span.answered(answer.status)
            failed = answer.status >= 500
        finally:
            self.breaker.record(failed)
        if failed:
            raise ServiceUnavailable(self.service, f"it answered {answer.status}")
        return answer

    def _attempt(
        self, method: str, url: str, lines: list[str], endpoint: str, last: bool = False
    ) -> Answer | None:
        """One try: the answer; None when it may be tried again; else raises."""
        started = perf_counter()
        outcome = "error"
        try:
            answer = self._send(method, url, lines)
            outcome = str(answer.status)
            return answer
        except pycurl.error as error:
            code = error.args[0]
            if code == pycurl.E_OPERATION_TIMEDOUT and self._request_sent():
                outcome = "timeout"
                raise ServiceUnavailable(self.service, "no answer in time") from error
            if not last and (code in RETRIED_ERRORS or code == pycurl.E_OPERATION_TIMEDOUT):
                return None  # no connection, or reset before any answer: try again
            raise ServiceUnavailable(self.service, "not reachable") from error
        finally:
            self._observe(self.service, endpoint, outcome, perf_counter() - started)

    def _request_sent(self) -> bool:
        """Whether the last call's request went out: a timeout after that is a slow
        answer, before it an unreachable service. (Not CONNECT_TIME: curl reports
        0 on a kept-alive connection, and a read timeout would be sent twice.)"""
        return self._handle().getinfo(pycurl.REQUEST_SIZE) > 0

    def json_of(self, answer: Answer) -> Any:
        """The body of a 200 we rely on; another status, or garbage, counts as the
        service failing."""
        if answer.status != 200:
            raise ServiceUnavailable(self.service, f"it answered {answer.status} unexpectedly")
        try:
            return orjson.loads(answer.body)
        except ValueError as error:
            raise ServiceUnavailable(self.service, "it answered with no JSON") from error

    def close(self) -> None:
        """Close every thread's connection."""
        for handle in list(self._handles):
            handle.close()
        self._local = threading.local()


@dataclass(frozen=True)
class RemoteUser:
    """Who a token belongs to, as the users service says."""

    id: int
    username: str
    is_admin: bool


class UsersClient(Protocol):
    """What beers and orders ask the users service: who a token belongs to. The
    HTTP client is one; service tests hand create_app a fake."""

    def user_for_token(self, token: str) -> RemoteUser | None:
        """The token's user, or None when the token is not valid."""


class HttpUsersClient(ServiceClient, UsersClient):
    """Asks the users service over HTTP."""

    service = "users"

    def user_for_token(self, token: str) -> RemoteUser | None:
        """The token's user, or None when users says the token is not valid.

        It asks GET /api/users/me, which answers as check_token does for a
        token in the header, without a body to send or read."""
        response = self.call(
            "GET",
            "/api/users/me",
            endpoint="me",
            headers={"Authorization": f"Bearer {token}"},
        )
        if response.status == 401:
            return None
        body = self.json_of(response)
        try:
            return RemoteUser(
                id=int(body["id"]), username=str(body["username"]), is_admin=bool(body["is_admin"])
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ServiceUnavailable(self.service, "it answered an unknown user shape") from error
