"""A frozen or dead neighbour: orders' calls to users time out (once each,
never retried), then its circuit breaker takes users for down and answers 503
at once, without a call; /health stays fast all along; about a second later
one trial call closes the breaker, or, while users stays down, opens it again
for twice as long as before, up to UPSTREAM_BREAKER_SECONDS."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import pytest
import requests

from tests.metrics import samples
from tests.problems import assert_problem

from .api_client import TIMEOUT, ShopApi, bearer
from .services import Service, StartService, descendants, free_port

pytestmark = pytest.mark.e2e

# Long enough that anything which waited on a frozen users, or queued behind a
# request that did, shows as taking half of it at least, however loaded the
# machine: what must be "at once" is held to under half of it.
READ_TIMEOUT = 2.0
BREAKER_SECONDS = 2.0


def timed(call: Callable[[], requests.Response]) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


@dataclass(frozen=True)
class Neighbours:
    """An orders asking a users of its own, and a customer of that users."""

    users: Service
    orders: Service
    api: ShopApi
    token: str

    def current_order(self) -> requests.Response:
        """The customer's open order, which orders answers only once users has."""
        return self.api.current_order(self.token)

    def health(self) -> tuple[requests.Response, float]:
        """orders' /health, and how long it took."""
        return timed(lambda: requests.get(f"{self.orders.url}/health", timeout=TIMEOUT))


StartNeighbours = Callable[..., Neighbours]


@pytest.fixture
def start_neighbours(start_service: StartService) -> StartNeighbours:
    """Start a users, and an orders of one worker asking it with these settings
    (the breaker is per worker process: one, to count its calls)."""

    def start(**orders_settings: str | int | float) -> Neighbours:
        users = start_service("users", workers=1)
        orders = start_service("orders", workers=1, USERS_URL=users.url, **orders_settings)
        api = ShopApi(users.url, "http://unused", orders.url)
        return Neighbours(users, orders, api, api.new_customer().token)

    return start


@contextmanager
def frozen(service: Service) -> Iterator[None]:
    """The service's processes stopped (SIGSTOP) for the block, as a frozen
    machine would be; going on again after it, whatever happens."""
    pids = {service.process.pid, *descendants(service.process.pid)}
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def test_the_breaker_opens_on_a_frozen_neighbour_and_closes_when_it_thaws(
    start_neighbours: StartNeighbours,
) -> None:
    neighbours = start_neighbours(
        UPSTREAM_READ_TIMEOUT=READ_TIMEOUT,
        UPSTREAM_BREAKER_FAILURES=2,
        UPSTREAM_BREAKER_SECONDS=BREAKER_SECONDS,
    )
    current, orders = neighbours.current_order, neighbours.orders
    assert current().status_code == 200

    with frozen(neighbours.users):
        waiting = threading.Thread(target=current)  # a request waiting on users meanwhile
        waiting.start()
        time.sleep(READ_TIMEOUT / 10)  # (it has reached orders)
        health, health_seconds = neighbours.health()
        health_beside_it = waiting.is_alive()
        timed_out = [timed(current) for _ in range(2)]
        calls_before = upstream_outcomes(orders)
        refused, refused_seconds = timed(current)
        calls_after = upstream_outcomes(orders)
        waiting.join()
    poll_until_answered(current, within=30)  # a trial call, once the pause is over

    assert health.status_code == 200 and health_beside_it
    assert health_seconds < READ_TIMEOUT / 2
    for response, _ in timed_out:
        assert assert_problem(response, 503)["service"] == "users"
    assert assert_problem(refused, 503)["service"] == "users"
    assert "taken for down" in refused.json()["detail"]
    # At once, without a call: counted as refused, and no call was made.
    assert calls_after.get("refused", 0) == calls_before.get("refused", 0) + 1
    assert sum(calls_after.values()) == sum(calls_before.values()) + 1
    assert refused_seconds < READ_TIMEOUT / 2


def test_health_answers_at_once_while_many_requests_wait_on_a_frozen_neighbour(
    start_neighbours: StartNeighbours,
) -> None:
    neighbours = start_neighbours(UPSTREAM_READ_TIMEOUT=3.0, UPSTREAM_BREAKER_FAILURES=1000)
    with frozen(neighbours.users):
        waiting = [threading.Thread(target=neighbours.current_order) for _ in range(20)]
        for thread in waiting:  # one by one, as requests come on a quiet day
            thread.start()
            time.sleep(0.05)
        health, health_seconds = neighbours.health()
        still_waiting = sum(thread.is_alive() for thread in waiting)
    for thread in waiting:
        thread.join()

    assert health.status_code == 200 and still_waiting > 0  # answered beside them
    assert health_seconds < 3.0 / 2  # not after a read timeout


def poll_until_answered(call: Callable[[], requests.Response], within: float) -> list[str]:
    """Call until the answer is not a 503 (`within` seconds at most, then
    fail): what each 503 said, in order."""
    refusals: list[str] = []
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        response = call()
        if response.status_code != 503:
            assert response.status_code == 200, response.text
            return refusals
        refusals.append(response.json()["detail"])
        time.sleep(0.05)
    pytest.fail(f"still 503 after {within} s: {refusals[-3:]}")


def test_after_a_neighbours_blip_calls_go_through_again_within_about_a_second(
    start_neighbours: StartNeighbours,
) -> None:
    neighbours = start_neighbours(
        UPSTREAM_READ_TIMEOUT=READ_TIMEOUT,
        UPSTREAM_BREAKER_FAILURES=2,
        UPSTREAM_BREAKER_SECONDS=30,  # the longest pause; the first is a second
    )
    current = neighbours.current_order

    with frozen(neighbours.users):  # a blip: users is back at once after it
        timed_out = [current() for _ in range(2)]  # the breaker opens
        opened = time.monotonic()
    refusals = poll_until_answered(current, within=30)
    recovered = time.monotonic() - opened

    for response in timed_out:
        assert "no answer in time" in assert_problem(response, 503)["detail"]
    assert refusals and all("taken for down" in detail for detail in refusals)
    assert recovered < 30 / 3  # about the first second, far from the longest pause


def trial_times(orders: Service, trials: int) -> list[float]:
    """Ask orders (whose users is dead) every 50 ms until `trials` calls have
    gone out to users: when each was answered. The first opens the breaker."""
    answered: list[float] = []
    deadline = time.monotonic() + 60
    while len(answered) < trials and time.monotonic() < deadline:
        response = requests.get(
            f"{orders.url}/api/orders/current", headers=bearer("any"), timeout=TIMEOUT
        )
        detail = assert_problem(response, 503)["detail"]
        if "taken for down" not in detail:
            assert "not reachable" in detail
            answered.append(time.monotonic())
        time.sleep(0.05)
    return answered


def test_while_a_neighbour_stays_down_the_pause_between_trials_doubles_up_to_the_longest(
    start_service: StartService,
) -> None:
    orders = start_service(
        "orders",
        workers=1,  # one breaker to watch
        USERS_URL=f"http://127.0.0.1:{free_port()}",
        UPSTREAM_BREAKER_FAILURES=1,
        UPSTREAM_BREAKER_SECONDS=4,
    )

    answered = trial_times(orders, 5)
    gaps = [later - earlier for earlier, later in zip(answered, answered[1:], strict=False)]

    # Pauses of 1, 2, 4, 4 s. A gap is its pause, give or take how late the
    # answers before and after it reached us (a quarter of the pause allowed),
    # and a loaded machine delays each about alike: each doubled pause shows
    # as a longer gap, and the capped one as shorter than a doubling.
    assert len(gaps) == 4, answered
    assert all(gap > pause * 0.75 for gap, pause in zip(gaps, (1, 2, 4, 4), strict=True)), gaps
    assert gaps[0] < gaps[1] < gaps[2], gaps
    assert gaps[3] < 8, gaps  # capped at 4, not doubled to 8


def upstream_outcomes(orders: Service) -> dict[str, float]:
    """orders' calls to users so far, by outcome (from /metrics)."""
    text = requests.get(f"{orders.url}/metrics", timeout=TIMEOUT).text
    found: dict[str, float] = {}
    for labels, value in samples(text, "upstream_requests_total"):
        if labels["service"] == "users":
            found[labels["outcome"]] = found.get(labels["outcome"], 0) + value
    return found


def test_a_read_timeout_on_a_kept_alive_connection_is_answered_once_not_retried(
    start_neighbours: StartNeighbours,
) -> None:
    connect, read = 0.5, 2.0
    neighbours = start_neighbours(
        UPSTREAM_CONNECT_TIMEOUT=connect,
        UPSTREAM_READ_TIMEOUT=read,
        UPSTREAM_BREAKER_FAILURES=1000,
    )
    for _ in range(3):  # orders' connection to users is kept alive now
        assert neighbours.current_order().status_code == 200
    before = upstream_outcomes(neighbours.orders)

    with frozen(neighbours.users):
        response, seconds = timed(neighbours.current_order)
    after = upstream_outcomes(neighbours.orders)

    assert "no answer in time" in assert_problem(response, 503)["detail"]
    # One attempt, ended by the timeout; a retry would add an "error" attempt first.
    assert after.get("timeout", 0) - before.get("timeout", 0) == 1
    assert after.get("error", 0) == before.get("error", 0)
    assert seconds < (connect + read) * 1.6  # once, not twice
