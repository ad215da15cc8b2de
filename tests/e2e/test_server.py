"""The production server's life: a dead worker is replaced, SIGTERM lets requests
in flight finish, and with none in flight a service stops at once."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from servicekit.launcher import wait_for

from .api_client import TIMEOUT, ShopApi
from .fake_beers import FakeBeers
from .services import WORKERS, Service, StartService, descendants

pytestmark = pytest.mark.e2e


@pytest.fixture
def fake_beers() -> Iterator[FakeBeers]:
    with FakeBeers() as fake:
        yield fake


def test_a_dead_worker_is_replaced(start_service: StartService) -> None:
    beers = start_service("beers")
    before = descendants(beers.process.pid)
    assert len(before) == WORKERS

    victim = min(before)
    os.kill(victim, signal.SIGKILL)

    assert wait_for(lambda: len(descendants(beers.process.pid) - {victim}) == WORKERS, 15)
    beers.wait_until_ready()  # the new worker has loaded the app
    for _ in range(2 * WORKERS):  # every worker answers
        assert requests.get(f"{beers.url}/health", timeout=TIMEOUT).status_code == 200


def test_sigterm_lets_a_request_in_flight_finish(
    start_service: StartService, api: ShopApi, fake_beers: FakeBeers
) -> None:
    fake_beers.mode, fake_beers.prices = "slow", {"slow-1": "2.50"}
    orders = start_service("orders", BEERS_URL=fake_beers.url, UPSTREAM_READ_TIMEOUT=8)
    customer = api.new_customer()
    answers: list[requests.Response] = []
    adding = threading.Thread(
        target=lambda: answers.append(
            ShopApi(api.users_url, api.beers_url, orders.url).add_to_order(customer.token, "slow-1")
        )
    )
    adding.start()
    assert wait_for(lambda: fake_beers.calls, 10)  # the add is waiting on beers now

    orders.process.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    fake_beers.release.set()  # beers answers, a second after the signal
    adding.join(TIMEOUT)

    assert [answer.status_code for answer in answers] == [200]
    assert answers[0].json()["beers"][0]["sku"] == "slow-1"
    orders.process.wait(timeout=10)


@pytest.mark.parametrize("signal_number", [signal.SIGINT, signal.SIGTERM])
def test_with_nothing_in_flight_a_service_stops_within_3_seconds(
    start_service: StartService, signal_number: int
) -> None:
    service: Service = start_service("users")
    workers = descendants(service.process.pid)

    started = time.monotonic()
    service.process.send_signal(signal_number)
    service.process.wait(timeout=10)

    assert time.monotonic() - started < 3.0
    assert not any(Path(f"/proc/{pid}").exists() for pid in workers)
    assert "SIGKILL" not in service.output()
