import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from orders.beers_client import HttpBeersClient
from servicekit.errors import ServiceUnavailable
from servicekit.serving import THREADS
from servicekit.upstream import (
    MAX_WAITING_CALLS,
    CircuitBreaker,
    HttpUsersClient,
    RemoteUser,
    Timeouts,
)
from tests.servicekit.conftest import FakeUpstream

USER = {"id": 7, "username": "ivan", "is_admin": False, "email": "i@example.com"}


def users_client(url: str, **kwargs: Any) -> HttpUsersClient:
    return HttpUsersClient(url, timeouts=Timeouts(connect=0.5, read=0.5), **kwargs)


def test_users_client_sends_the_token_as_a_bearer_header(upstream: FakeUpstream) -> None:
    upstream.body = USER
    client = users_client(upstream.url)
    assert client.user_for_token("t0k") == RemoteUser(id=7, username="ivan", is_admin=False)
    request = upstream.requests[0]
    assert (request.method, request.path) == ("GET", "/api/users/me")
    assert request.headers["Authorization"] == "Bearer t0k"
    client.close()


def test_an_invalid_token_is_none_not_an_error(upstream: FakeUpstream) -> None:
    upstream.status, upstream.body = 401, {"status": 401}
    client = users_client(upstream.url)
    assert client.user_for_token("t0k") is None
    client.close()


def test_the_request_id_is_forwarded(upstream: FakeUpstream) -> None:
    upstream.body = USER
    client = users_client(upstream.url, request_id=lambda: "req-42")
    client.user_for_token("t0k")
    assert upstream.requests[0].headers["X-Request-ID"] == "req-42"
    client.close()


def test_calls_are_reported_to_the_observer(upstream: FakeUpstream) -> None:
    seen = []
    upstream.body = USER
    client = users_client(upstream.url, observe=lambda *args: seen.append(args))
    client.user_for_token("t0k")
    assert [(s, e, o) for s, e, o, _ in seen] == [("users", "me", "200")]
    client.close()


def test_connections_are_reused_between_calls(upstream: FakeUpstream) -> None:
    upstream.body = USER
    client = users_client(upstream.url)
    for _ in range(3):
        client.user_for_token("t0k")
    ports = {request.client_port for request in upstream.requests}
    assert len(ports) == 1
    client.close()


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_5xx_answer_is_service_unavailable(upstream: FakeUpstream, status: int) -> None:
    upstream.status = status
    client = users_client(upstream.url)
    with pytest.raises(ServiceUnavailable) as raised:
        client.user_for_token("t0k")
    assert raised.value.service == "users"
    client.close()


def test_a_dead_service_is_unavailable_at_once(dead_url: str) -> None:
    client = users_client(dead_url)
    started = time.perf_counter()
    with pytest.raises(ServiceUnavailable, match="not reachable"):
        client.user_for_token("t0k")
    assert time.perf_counter() - started < 2
    client.close()


def test_a_slow_service_is_unavailable_after_the_read_timeout(upstream: FakeUpstream) -> None:
    upstream.delay = 1.5
    client = users_client(upstream.url)
    started = time.perf_counter()
    with pytest.raises(ServiceUnavailable, match="no answer in time"):
        client.user_for_token("t0k")
    assert time.perf_counter() - started < 1.4
    client.close()


@pytest.mark.parametrize("body", ["not json", '{"id": "x"}', "[]"])
def test_a_garbled_answer_is_service_unavailable(upstream: FakeUpstream, body: str) -> None:
    upstream.body = body
    client = users_client(upstream.url)
    with pytest.raises(ServiceUnavailable):
        client.user_for_token("t0k")
    client.close()


def test_beers_client_reads_a_beer_and_its_decimal_price(upstream: FakeUpstream) -> None:
    upstream.body = {"sku": "1", "name": "Загорка", "price": "2.00"}
    client = HttpBeersClient(upstream.url)
    beer = client.beer("1")
    assert (beer.sku, beer.name, str(beer.price)) == ("1", "Загорка", "2.00")
    client.close()


def test_beers_client_says_none_for_an_unknown_sku(upstream: FakeUpstream) -> None:
    upstream.status, upstream.body = 404, {"status": 404}
    client = HttpBeersClient(upstream.url)
    assert client.beer("nope") is None
    client.close()


def test_beers_client_asks_for_many_skus_in_one_call(upstream: FakeUpstream) -> None:
    upstream.body = [{"sku": "1", "name": "a", "price": "1.00"}]
    client = HttpBeersClient(upstream.url)
    found = client.beers(["2", "1", "1"])
    assert list(found) == ["1"]
    assert len(upstream.requests) == 1
    assert upstream.requests[0].query["sku"] == ["1", "2"]
    client.close()


def test_beers_client_splits_huge_lookups_to_keep_urls_short(upstream: FakeUpstream) -> None:
    upstream.body = []
    client = HttpBeersClient(upstream.url)
    skus = [f"{n:064d}" for n in range(100)]  # 100 SKUs of the longest kind
    client.beers(skus)
    assert len(upstream.requests) > 1
    assert all(len(r.raw_path) < 4000 for r in upstream.requests)
    assert sorted(sku for r in upstream.requests for sku in r.query["sku"]) == skus
    client.close()


def test_a_kept_alive_connection_closed_by_the_other_side_is_retried_once(
    upstream: FakeUpstream,
) -> None:
    upstream.body = USER
    upstream.close_kept_alive = True
    client = users_client(upstream.url)
    assert client.user_for_token("t0k") is not None
    assert client.user_for_token("t0k") is not None  # its connection was dropped: a new one
    assert len({request.client_port for request in upstream.requests}) == 2
    client.close()


def test_connections_are_renewed_so_new_pods_behind_a_service_get_calls(
    upstream: FakeUpstream,
) -> None:
    upstream.body = USER
    client = HttpUsersClient(upstream.url, connection_lifetime=1)
    client.user_for_token("t0k")
    time.sleep(1.2)
    client.user_for_token("t0k")
    assert len({request.client_port for request in upstream.requests}) == 2
    client.close()


def test_each_thread_has_its_own_connection(upstream: FakeUpstream) -> None:
    upstream.body = USER
    client = users_client(upstream.url)
    threads = [threading.Thread(target=client.user_for_token, args=("t0k",)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({request.client_port for request in upstream.requests}) == 3
    client.close()


# retries and the circuit breaker


def test_a_call_whose_connection_is_dropped_unanswered_is_retried_once(
    upstream: FakeUpstream,
) -> None:
    upstream.body, upstream.hang_up = USER, 1
    client = users_client(upstream.url)

    assert client.user_for_token("t0k") is not None
    assert (upstream.dropped, len(upstream.requests)) == (1, 1)
    client.close()


def test_a_call_is_retried_only_once(upstream: FakeUpstream) -> None:
    upstream.body, upstream.hang_up = USER, 2
    client = users_client(upstream.url)

    with pytest.raises(ServiceUnavailable, match="not reachable"):
        client.user_for_token("t0k")
    assert upstream.dropped == 2
    client.close()


def test_a_read_timeout_is_not_retried(upstream: FakeUpstream) -> None:
    upstream.body, upstream.delay = USER, 1.2
    client = users_client(upstream.url)

    with pytest.raises(ServiceUnavailable, match="no answer in time"):
        client.user_for_token("t0k")
    time.sleep(0.5)  # the fake finishes the one request it got
    assert len(upstream.requests) == 1
    client.close()


def test_a_read_timeout_on_a_kept_alive_connection_is_answered_once_and_not_retried(
    upstream: FakeUpstream,
) -> None:
    """curl reports no connect time for a reused connection: the timeout must
    still count as a read timeout, not a connect failure worth a retry. And it
    is the read timeout alone: no connect is made, so none is waited for."""
    upstream.body = USER
    client = HttpUsersClient(upstream.url, timeouts=Timeouts(connect=3.0, read=0.5))
    assert client.user_for_token("t0k") is not None  # the connection is now kept alive
    upstream.delay = 5.0  # frozen, as far as the client can tell

    started = time.perf_counter()
    with pytest.raises(ServiceUnavailable, match="no answer in time"):
        client.user_for_token("t0k")
    waited = time.perf_counter() - started

    assert waited < 2.0  # the read's 0.5 s; connect + read would be 3.5 s
    assert len(upstream.requests) == 2  # the first call, and the timed-out one, sent once
    assert len({request.client_port for request in upstream.requests}) == 1
    client.close()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def breaking_client(url: str, clock: Clock) -> HttpUsersClient:
    breaker = CircuitBreaker(failures=3, max_pause=30, clock=clock)
    return HttpUsersClient(url, timeouts=Timeouts(connect=0.5, read=0.5), breaker=breaker)


def test_after_failures_in_a_row_the_breaker_refuses_calls_without_sending_them(
    upstream: FakeUpstream,
) -> None:
    client = opened_breaker(upstream, Clock())

    with pytest.raises(ServiceUnavailable, match="taken for down"):
        client.user_for_token("t0k")
    assert len(upstream.requests) == 3
    client.close()


def test_an_answer_below_500_resets_the_count(upstream: FakeUpstream) -> None:
    client = breaking_client(upstream.url, Clock())
    for status in (500, 500, 401, 500, 500):
        upstream.status, upstream.body = status, USER
        with contextlib.suppress(ServiceUnavailable):
            client.user_for_token("t0k")

    upstream.status = 200
    assert client.user_for_token("t0k") is not None  # still closed: only two in a row
    client.close()


def opened_breaker(upstream: FakeUpstream, clock: Clock) -> HttpUsersClient:
    """A client whose breaker three 500s in a row have just opened."""
    upstream.status = 500
    client = breaking_client(upstream.url, clock)
    for _ in range(3):
        with pytest.raises(ServiceUnavailable):
            client.user_for_token("t0k")
    return client


def test_after_the_pause_one_trial_call_closes_the_breaker_when_it_succeeds(
    upstream: FakeUpstream,
) -> None:
    clock = Clock()
    client = opened_breaker(upstream, clock)

    clock.now = 1
    upstream.status, upstream.body = 200, USER
    assert client.user_for_token("t0k") is not None
    assert client.user_for_token("t0k") is not None
    assert len(upstream.requests) == 5
    client.close()


def test_a_failed_trial_opens_the_breaker_again_at_once(upstream: FakeUpstream) -> None:
    clock = Clock()
    client = opened_breaker(upstream, clock)
    clock.now = 1

    with pytest.raises(ServiceUnavailable, match="answered 500"):
        client.user_for_token("t0k")  # the trial
    with pytest.raises(ServiceUnavailable, match="taken for down"):
        client.user_for_token("t0k")
    assert len(upstream.requests) == 4
    client.close()


class BrokenHeaders:
    """A request id source and a call tracer whose header lines raise while `broken`."""

    def __init__(self) -> None:
        self.broken = False

    def request_id(self) -> str:
        if self.broken:
            raise RuntimeError("no request id")
        return "r-1"

    def header_lines(self) -> list[str]:
        if self.broken:
            raise RuntimeError("no trace headers")
        return []

    def retrying(self) -> None: ...

    def answered(self, status: int) -> None: ...

    @contextlib.contextmanager
    def trace(self, *call: str) -> Iterator["BrokenHeaders"]:
        yield self


@pytest.mark.parametrize("source", ["request id", "trace span"])
def test_headers_that_fail_during_a_trial_leave_the_breaker_a_later_trial(
    upstream: FakeUpstream, source: str
) -> None:
    clock, broken = Clock(), BrokenHeaders()
    breaker = CircuitBreaker(failures=3, max_pause=30, clock=clock)
    hooks: dict[str, Any] = (
        {"request_id": broken.request_id} if source == "request id" else {"trace": broken.trace}
    )
    client = users_client(upstream.url, breaker=breaker, **hooks)
    upstream.status = 500
    for _ in range(3):
        with pytest.raises(ServiceUnavailable):
            client.user_for_token("t0k")
    clock.now = 1  # the pause is over: the next call is the trial

    broken.broken = True
    with pytest.raises(RuntimeError):
        client.user_for_token("t0k")
    broken.broken = False
    upstream.status, upstream.body = 200, USER
    assert client.user_for_token("t0k") is not None  # a trial went out, and closed it
    assert client.user_for_token("t0k") is not None
    assert len(upstream.requests) == 5
    client.close()


def test_while_the_trial_call_is_out_other_calls_are_refused_at_once(
    upstream: FakeUpstream,
) -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, max_pause=30, clock=clock)
    breaker.record(failed=True)
    clock.now = 1

    assert breaker.allow() is True  # the trial
    others = run_in_threads(breaker.allow, 4)
    assert others == [False] * 4
    breaker.record(failed=False)
    assert breaker.allow() is True


def run_in_threads(call: Callable[[], bool], count: int) -> list[bool]:
    """What `call` gives on `count` other threads, as concurrent requests' calls."""
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(call())) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def open_pauses(breaker: CircuitBreaker, clock: Clock, trials: int) -> list[float]:
    """Fail `trials` trial calls in a row, each as soon as it is allowed: the
    seconds the breaker stayed shut before each trial."""
    pauses = []
    for _ in range(trials):
        opened = clock.now
        while not breaker.allow():
            clock.now += 0.25
        pauses.append(clock.now - opened)
        breaker.record(failed=True)
    return pauses


def test_the_breaker_first_opens_for_a_second_then_doubles_up_to_its_longest_pause() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=2, max_pause=30, clock=clock)
    breaker.record(failed=True)
    assert breaker.allow() is True  # one failure: still closed
    breaker.record(failed=True)

    assert open_pauses(breaker, clock, 8) == [1, 2, 4, 8, 16, 30, 30, 30]


def test_a_successful_trial_resets_the_doubling() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, max_pause=30, clock=clock)
    breaker.record(failed=True)
    assert open_pauses(breaker, clock, 3) == [1, 2, 4]
    clock.now += 8
    assert breaker.allow() is True
    breaker.record(failed=False)  # the neighbour is back

    breaker.record(failed=True)  # down again: a second, as the first time
    assert open_pauses(breaker, clock, 2) == [1, 2]


def test_calls_that_were_out_before_it_opened_do_not_count_as_failed_trials() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, max_pause=30, clock=clock)
    breaker.record(failed=True)  # open for a second

    def fail_late() -> bool:
        breaker.record(failed=True)
        return True

    clock.now = 0.5
    run_in_threads(fail_late, 5)  # late failures, none of them the trial
    clock.now = 1
    assert breaker.allow() is True  # still a second, not doubled five times
    assert breaker.pause == 1


def test_a_longest_pause_under_a_second_is_the_first_pause_too() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failures=1, max_pause=0.5, clock=clock)
    breaker.record(failed=True)

    assert open_pauses(breaker, clock, 3) == [0.5, 0.5, 0.5]


def test_the_breaker_does_not_make_concurrent_calls_wait_on_each_other(
    upstream: FakeUpstream,
) -> None:
    upstream.body, upstream.delay = USER, 0.3
    client = users_client(upstream.url)
    threads = [threading.Thread(target=client.user_for_token, args=("t0k",)) for _ in range(4)]

    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert time.perf_counter() - started < 0.3 * 2  # together, not one after another
    client.close()


def test_calls_beyond_the_waiting_budget_are_refused_at_once(upstream: FakeUpstream) -> None:
    upstream.body, upstream.delay = USER, 0.5
    client = users_client(upstream.url, max_waiting_calls=1)
    waiting = threading.Thread(target=client.user_for_token, args=("t0k",))
    waiting.start()
    time.sleep(0.1)

    started = time.perf_counter()
    with pytest.raises(ServiceUnavailable, match="already waiting"):
        client.user_for_token("t0k")
    assert time.perf_counter() - started < 0.1
    waiting.join()
    assert client.user_for_token("t0k") is not None  # the budget came back
    client.close()


def test_one_neighbour_s_waiting_calls_leave_another_s_calls_alone(upstream: FakeUpstream) -> None:
    upstream.body, upstream.delay = USER, 0.5
    users = users_client(upstream.url, max_waiting_calls=1)
    beers = HttpBeersClient(upstream.url, max_waiting_calls=1)
    waiting = threading.Thread(target=users.user_for_token, args=("t0k",))
    waiting.start()
    time.sleep(0.1)

    with pytest.raises(ServiceUnavailable, match="already waiting") as refused:
        users.user_for_token("t0k")
    assert refused.value.service == "users"  # the slow one is named, and only it
    assert beers.call("GET", "/api/beers/123456", endpoint="beer").status == 200
    waiting.join()
    users.close()
    beers.close()


def test_waiting_calls_never_take_every_request_thread() -> None:
    neighbours = 2  # orders: users and beers
    assert neighbours * MAX_WAITING_CALLS < THREADS
