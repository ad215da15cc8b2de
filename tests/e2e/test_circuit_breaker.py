"""A frozen neighbour: orders' calls to users time out, then its circuit
breaker takes users for down and answers 503 at once, without a call; /health
stays fast all along; when users thaws, one trial call closes the breaker."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator

import pytest
import requests

from tests.problems import assert_problem

from .api_client import TIMEOUT, ShopApi
from .services import Service, StartService, descendants

pytestmark = pytest.mark.e2e

READ_TIMEOUT = 0.5
BREAKER_SECONDS = 2.0


def timed(call: object) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = call()  # type: ignore[operator]
    return response, time.monotonic() - started


@pytest.fixture
def users_and_orders(start_service: StartService) -> Iterator[tuple[Service, Service]]:
    users = start_service("users", workers=1)
    orders = start_service(
        "orders",
        workers=1,  # the breaker is per worker process: one, to count its calls
        USERS_URL=users.url,
        UPSTREAM_READ_TIMEOUT=READ_TIMEOUT,
        UPSTREAM_BREAKER_FAILURES=2,
        UPSTREAM_BREAKER_SECONDS=BREAKER_SECONDS,
    )
    frozen = {users.process.pid, *descendants(users.process.pid)}
    yield users, orders
    for pid in frozen:  # never leave it frozen
        os.kill(pid, signal.SIGCONT)


def freeze(service: Service, stop: bool) -> None:
    for pid in {service.process.pid, *descendants(service.process.pid)}:
        os.kill(pid, signal.SIGSTOP if stop else signal.SIGCONT)


def test_the_breaker_opens_on_a_frozen_neighbour_and_closes_when_it_thaws(
    users_and_orders: tuple[Service, Service],
) -> None:
    users, orders = users_and_orders
    api = ShopApi(users.url, "http://unused", orders.url)
    token = api.new_customer().token
    current = lambda: api.current_order(token)  # noqa: E731
    assert current().status_code == 200

    freeze(users, stop=True)
    waiting = threading.Thread(target=current)  # a request waiting on users meanwhile
    waiting.start()
    health, health_seconds = timed(lambda: requests.get(f"{orders.url}/health", timeout=TIMEOUT))
    timed_out = [timed(current) for _ in range(2)]
    refused, refused_seconds = timed(current)
    waiting.join()
    freeze(users, stop=False)
    time.sleep(BREAKER_SECONDS + 0.2)
    trial = current()

    assert health.status_code == 200 and health_seconds < 0.3
    for response, _ in timed_out:
        assert assert_problem(response, 503)["service"] == "users"
    assert assert_problem(refused, 503)["service"] == "users"
    assert "taken for down" in refused.json()["detail"]
    assert refused_seconds < READ_TIMEOUT / 2  # at once, without a call
    assert trial.status_code == 200


def test_health_answers_at_once_while_many_requests_wait_on_a_frozen_neighbour(
    start_service: StartService,
) -> None:
    users = start_service("users", workers=1)
    orders = start_service(
        "orders",
        workers=1,
        USERS_URL=users.url,
        UPSTREAM_READ_TIMEOUT=3.0,
        UPSTREAM_BREAKER_FAILURES=1000,
    )
    api = ShopApi(users.url, "http://unused", orders.url)
    token = api.new_customer().token
    freeze(users, stop=True)
    try:
        waiting = [threading.Thread(target=api.current_order, args=(token,)) for _ in range(20)]
        for thread in waiting:  # one by one, as requests come on a quiet day
            thread.start()
            time.sleep(0.05)
        health, health_seconds = timed(
            lambda: requests.get(f"{orders.url}/health", timeout=TIMEOUT)
        )
    finally:
        freeze(users, stop=False)
    for thread in waiting:
        thread.join()

    assert health.status_code == 200 and health_seconds < 0.3
