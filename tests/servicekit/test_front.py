"""The front: a request read whole on the event loop becomes PEP 3333's environ,
and a request that finds no idle thread gets a new one."""

from __future__ import annotations

import asyncio
import json
import threading
from types import SimpleNamespace
from typing import Any

import pytest

from servicekit import front as front_module
from servicekit.front import (
    BODY_TOO_LARGE,
    DRAIN_BYTES,
    MEMORY_CHECK_SECONDS,
    UNREADABLE_BODY,
    UNREADABLE_VALUE,
    BodyBudget,
    BodyTooLarge,
    Front,
    MemoryWatch,
    RequestThreads,
    WSGIAnswer,
    body_timeout_answer,
    call_wsgi,
    wsgi_environ,
)


class Headers:
    """granian's scope.headers (2.8.9): a value that is not ASCII is left out of
    items(), and of get() when it is its name's first; its name stays in keys()."""

    def __init__(self, *pairs: tuple[str, str]) -> None:
        self.pairs = list(pairs)

    def items(self) -> list[tuple[str, str]]:
        return [(name, value) for name, value in self.pairs if value.isascii()]

    def keys(self) -> list[str]:
        return list(dict.fromkeys(name for name, _ in self.pairs))

    def get(self, key: str, default: Any = None) -> Any:
        first = next((value for name, value in self.pairs if name == key), None)
        return first if first is not None and first.isascii() else default

    def __contains__(self, key: str) -> bool:
        return any(name == key for name, _ in self.pairs)


def scope(*headers: tuple[str, str], path: str = "/api/beers/123456") -> Any:
    return SimpleNamespace(
        method="POST",
        path=path,
        query_string="q=1",
        server="127.0.0.1:5002",
        client="[::1]:40000",
        http_version="1.1",
        scheme="http",
        headers=Headers(*headers),
    )


class Body:
    """What granian's protocol object gives: the body in chunks, or whole in
    one call (`stalled`: a body that never arrives whole); and the answer."""

    def __init__(self, *chunks: bytes, stalled: bool = False) -> None:
        self.chunks = list(chunks)
        self.read = 0
        self.calls = 0
        self.stalled = stalled
        self.answer: tuple[int, list[tuple[str, str]], bytes] | None = None

    async def __call__(self) -> bytes:
        self.calls += 1
        if self.stalled:
            await asyncio.sleep(60)
        whole, self.chunks = b"".join(self.chunks), []
        return whole

    def response_bytes(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
        self.answer = (status, headers, body)

    def __aiter__(self) -> Body:
        return self

    async def __anext__(self) -> bytes:
        if not self.chunks:
            raise StopAsyncIteration
        self.read += 1
        return self.chunks.pop(0)


def test_the_environ_carries_the_request_as_pep_3333_says() -> None:
    environ = wsgi_environ(
        scope(
            ("content-type", "application/json"),
            ("x-tag", "a"),
            ("x-tag", "b"),
            ("cookie", "a=1"),
            ("cookie", "b=2"),
            path="/api/beers/Б",
        ),
        b"{}",
    )
    assert environ["REQUEST_METHOD"] == "POST"
    assert environ["PATH_INFO"] == "/api/beers/Б".encode().decode("latin-1")
    assert environ["QUERY_STRING"] == "q=1"
    assert (environ["SERVER_NAME"], environ["SERVER_PORT"]) == ("127.0.0.1", "5002")
    assert environ["REMOTE_ADDR"] == "::1"
    assert environ["CONTENT_TYPE"] == "application/json"
    assert environ["HTTP_X_TAG"] == "a,b"
    assert environ["HTTP_COOKIE"] == "a=1; b=2"
    assert environ["wsgi.input"].read() == b"{}"


def test_a_header_value_granian_leaves_out_reaches_the_app_as_the_replacement_character() -> None:
    environ = wsgi_environ(
        scope(("idempotency-key", "ключ-1"), ("authorization", "Bearer ключ"), ("x-id", "7")), b""
    )

    for key in ("HTTP_IDEMPOTENCY_KEY", "HTTP_AUTHORIZATION"):
        assert environ[key] == UNREADABLE_VALUE
        assert environ[key].encode("latin-1").decode() == "\ufffd"
    assert environ["HTTP_X_ID"] == "7"


def test_a_repeated_header_whose_first_value_granian_leaves_out_keeps_the_others_too() -> None:
    environ = wsgi_environ(scope(("x-tag", "ж"), ("x-tag", "b"), ("x_tag", "ж")), b"")

    assert environ["HTTP_X_TAG"] == "b," + UNREADABLE_VALUE  # no value a validator accepts


def test_a_chunked_body_read_whole_has_a_length_and_no_longer_a_transfer_encoding() -> None:
    environ = wsgi_environ(scope(("transfer-encoding", "chunked")), b"sku=1")
    assert environ["CONTENT_LENGTH"] == "5"
    assert "HTTP_TRANSFER_ENCODING" not in environ


def test_a_body_past_the_limit_is_cut_one_byte_past_it_after_draining_a_bounded_amount() -> None:
    front = Front(lambda environ, start: [], max_threads=1, max_body_bytes=10)
    chunk = b"x" * 1024 * 1024
    body = Body(*[chunk] * 8)
    announced = scope(("content-length", str(8 * len(chunk))))
    # Body stands in for granian's protocol object, which Python code cannot make.
    read = asyncio.run(front._read_body(announced, body))  # type: ignore[arg-type]
    assert read == b"x" * 11
    assert body.read == DRAIN_BYTES // len(chunk) + 1  # then it stopped reading


def test_no_body_is_read_where_none_is_announced() -> None:
    front = Front(lambda environ, start: [], max_threads=1, max_body_bytes=10)
    body = Body(b"unexpected")
    # Body stands in for granian's protocol object, which Python code cannot make.
    assert asyncio.run(front._read_body(scope(), body)) == b""  # type: ignore[arg-type]
    assert body.read == 0


def test_a_wsgi_answer_is_collected_whole_and_its_iterable_closed() -> None:
    closed = []

    class Answer(list[bytes]):
        def close(self) -> None:
            closed.append(True)

    def app(environ: dict[str, Any], start_response: Any) -> Answer:
        start_response("201 CREATED", [("Location", "/api/beers/1")])
        return Answer([b"{", b"}"])

    assert call_wsgi(app, {}) == (201, [("Location", "/api/beers/1")], b"{}")
    assert closed == [True]


def test_a_request_that_finds_every_thread_busy_gets_a_new_one() -> None:
    threads = RequestThreads(limit=8)
    release = threading.Event()
    started = threading.Semaphore(0)

    def busy() -> None:
        started.release()
        release.wait(5)

    for _ in range(3):
        threads.submit(busy)
    assert all(started.acquire(timeout=2) for _ in range(3))  # three at once

    done = threading.Event()
    threads.submit(done.set)  # a lone request while all three are busy
    assert done.wait(2)
    release.set()


def test_past_the_limit_requests_wait_for_a_thread_to_free() -> None:
    threads = RequestThreads(limit=2)
    release = threading.Event()
    finished = threading.Semaphore(0)

    def busy() -> None:
        release.wait(5)
        finished.release()

    for _ in range(5):
        threads.submit(busy)
    assert threads._started == 2
    release.set()
    assert all(finished.acquire(timeout=2) for _ in range(5))  # the queued three too


def test_a_header_name_with_an_underscore_is_dropped_not_taken_for_its_hyphened_twin() -> None:
    environ = wsgi_environ(
        scope(("x-forwarded-for", "10.0.0.1"), ("x_forwarded_for", "6.6.6.6")), b""
    )
    assert environ["HTTP_X_FORWARDED_FOR"] == "10.0.0.1"


def test_a_raw_utf8_query_reaches_the_app_as_latin1_like_the_path() -> None:
    request = scope()
    request.query_string = "sku=ж"
    assert wsgi_environ(request, b"")["QUERY_STRING"] == "sku=ж".encode().decode("latin-1")


def test_a_body_of_a_length_within_the_limit_is_read_in_one_call() -> None:
    front = Front(lambda environ, start: [], max_threads=1, max_body_bytes=4096)
    body = Body(*[b"x"] * 2048)
    # Body stands in for granian's protocol object, which Python code cannot make.
    read = asyncio.run(front._read_body(scope(("content-length", "2048")), body))  # type: ignore[arg-type]
    assert read == b"x" * 2048
    assert (body.calls, body.read) == (1, 0)  # one call, no chunk by chunk


def test_a_chunked_body_is_read_in_one_call() -> None:
    front = Front(lambda environ, start: [], max_threads=1, max_body_bytes=4096)
    body = Body(*[b"x"] * 2048)
    chunked = scope(("transfer-encoding", "chunked"))
    read = asyncio.run(front._read_body(chunked, body))  # type: ignore[arg-type]
    assert read == b"x" * 2048
    assert (body.calls, body.read) == (1, 0)


def test_a_body_not_whole_in_time_is_a_408_problem_that_closes_the_connection() -> None:
    front = Front(
        lambda environ, start: [], max_threads=1, max_body_bytes=1_000_000, body_timeout=0.05
    )
    body = Body(stalled=True)
    asyncio.run(front.__rsgi__(scope(("content-length", "100000")), body))  # type: ignore[arg-type]
    assert body.answer is not None
    status, headers, content = body.answer
    assert status == 408
    assert ("Connection", "close") in headers
    assert ("Content-Type", "application/problem+json") in headers
    assert b"within 0.05 seconds" in content
    assert body.calls == 1
    assert front.budget.held == 0  # its share of the budget given back


@pytest.mark.parametrize(
    "answer", [UNREADABLE_BODY, BODY_TOO_LARGE, body_timeout_answer(30)], ids=["400", "413", "408"]
)
def test_the_fronts_own_answers_carry_the_headers_every_answer_has(answer: WSGIAnswer) -> None:
    status, headers, content = answer
    assert ("X-Content-Type-Options", "nosniff") in headers
    assert ("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'") in headers
    assert json.loads(content)["status"] == status


def test_bodies_past_the_budget_wait_their_turn_first_come_first_served() -> None:
    async def scenario() -> list[str]:
        budget = BodyBudget(limit=100)
        order: list[str] = []

        async def body(name: str, size: int) -> None:
            taken = await budget.take(size)
            order.append(name)
            await asyncio.sleep(0.01)
            budget.give_back(taken)

        assert await budget.take(80) == 80
        waiting = [asyncio.create_task(body(name, 50)) for name in ("first", "second")]
        await asyncio.sleep(0.01)
        assert order == []  # 80 + 50 is past the budget: both wait
        budget.give_back(80)
        await asyncio.gather(*waiting)
        assert budget.held == 0
        return order

    assert asyncio.run(scenario()) == ["first", "second"]


def test_a_body_that_gives_up_waiting_leaves_the_budget_as_it_was() -> None:
    async def scenario() -> None:
        budget = BodyBudget(limit=100)
        await budget.take(100)
        with_deadline = asyncio.wait_for(budget.take(10), 0.01)
        try:
            await with_deadline
        except TimeoutError:
            pass
        budget.give_back(100)
        assert budget.held == 0
        assert await budget.take(100) == 100  # nobody left in the queue ahead

    asyncio.run(scenario())


def test_health_is_answered_at_once_while_every_request_thread_is_busy() -> None:
    release = threading.Event()
    busy = threading.Semaphore(0)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        if environ["PATH_INFO"] != "/health":
            busy.release()
            release.wait(10)  # as a request held on the database's write lock
        start_response("200 OK", [])
        return [environ["PATH_INFO"].encode()]

    async def scenario() -> bytes | None:
        front = Front(app, max_threads=2, max_body_bytes=4096)
        held = [Body() for _ in range(3)]  # two on the threads, one queued
        waiting = [asyncio.create_task(front.__rsgi__(scope(), body)) for body in held]  # type: ignore[arg-type]
        await asyncio.to_thread(lambda: all(busy.acquire(timeout=5) for _ in range(2)))
        probe = Body()
        liveness = scope(path="/health")
        try:
            await asyncio.wait_for(front.__rsgi__(liveness, probe), 2)  # type: ignore[arg-type]
            assert all(body.answer is None for body in held)  # still held meanwhile
        finally:
            release.set()
            await asyncio.gather(*waiting)
        assert all(body.answer is not None for body in held)
        return probe.answer[2] if probe.answer else None

    assert asyncio.run(scenario()) == b"/health"


class HeldBody(Body):
    """A chunked body collected in Rust until `arrived` is set."""

    def __init__(self, *chunks: bytes) -> None:
        super().__init__(*chunks)
        self.arrived = asyncio.Event()

    async def __call__(self) -> bytes:
        await self.arrived.wait()
        return await super().__call__()


def test_memory_short_gives_up_the_chunked_reads_already_in_progress_not_one_begun_since(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def scenario() -> None:
        watch = MemoryWatch(limit=100)
        big, small = HeldBody(b"x" * 1000), HeldBody(b'{"username": "u"}')
        reading_small: list[asyncio.Task[bytes]] = []
        checks: list[int] = []

        def resident() -> int:
            """The worker's memory at each check: fine at the first, when the
            small body comes; short at the second; fine again after."""
            checks.append(len(checks) + 1)
            if len(checks) == 1:
                reading_small.append(asyncio.create_task(watch.collect(small)))  # type: ignore[arg-type]
            return 101 if len(checks) == 2 else 0

        monkeypatch.setattr(front_module, "resident_bytes", resident)
        reading_big = asyncio.create_task(watch.collect(big))  # type: ignore[arg-type]
        with pytest.raises(BodyTooLarge):
            await asyncio.wait_for(reading_big, 50 * MEMORY_CHECK_SECONDS)
        small.arrived.set()
        assert await reading_small[0] == b'{"username": "u"}'  # in progress, yet spared
        assert watch.collecting == set()

    asyncio.run(scenario())
