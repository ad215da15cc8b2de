"""Workers killed (kill -9) in the middle of a burst of adds and checkouts:
afterwards nothing is lost and nothing doubled, every total is the sum of its
lines, and no user has more than one open order."""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from decimal import Decimal

import pytest
import requests

from .api_client import TIMEOUT, Customer, ShopApi
from .services import StartService, descendants, wait_for

pytestmark = pytest.mark.e2e

CUSTOMERS = 6
BURST_SECONDS = 3.0
KILLS = 2


def test_killed_workers_lose_and_double_nothing(
    api: ShopApi, admin_token: str, start_service: StartService
) -> None:
    orders = start_service("orders", workers=4)  # some die, the others serve
    shop = ShopApi(api.users_url, api.beers_url, orders.url)
    sku = api.new_beer(admin_token, price="1.25")
    customers = [api.new_customer() for _ in range(CUSTOMERS)]
    outcomes: dict[int, Counter[str]] = {c.id: Counter() for c in customers}
    stop = threading.Event()

    def shop_for(customer: Customer) -> None:
        tally = outcomes[customer.id]
        while not stop.is_set():
            checking_out = random.random() < 0.2
            try:
                if checking_out:
                    status = shop.checkout(customer.token).status_code
                else:
                    status = shop.add_to_order(customer.token, sku, 1).status_code
                kind = "checkout" if checking_out else "add"
                tally[
                    f"{kind} {'ok' if status == 200 else 'refused' if status < 500 else 'lost'}"
                ] += 1
            except requests.RequestException:
                tally[f"{'checkout' if checking_out else 'add'} unknown"] += 1

    # Workers that were there from the start, so that each kill takes one that
    # was serving (a replacement killed young is test_lifecycle's business).
    victims = random.sample(sorted(descendants(orders.process.pid)), KILLS)
    shoppers = [threading.Thread(target=shop_for, args=(c,)) for c in customers]
    for shopper in shoppers:
        shopper.start()
    try:
        for victim in victims:
            time.sleep(BURST_SECONDS / (KILLS + 1))
            os.kill(victim, signal.SIGKILL)
        time.sleep(BURST_SECONDS / (KILLS + 1))
    finally:
        stop.set()
        for shopper in shoppers:
            shopper.join(TIMEOUT)
    assert wait_for(lambda: requests.get(f"{orders.url}/health", timeout=1).ok, 15)

    for customer in customers:
        tally = outcomes[customer.id]
        history = requests.get(
            f"{orders.url}/api/orders/", headers=customer.auth, timeout=TIMEOUT
        ).json()
        assert sum(1 for order in history if order["is_open"]) <= 1
        added = sum(line["quantity"] for order in history for line in order["beers"])
        assert tally["add ok"] <= added <= tally["add ok"] + tally["add unknown"], tally
        closed = sum(1 for order in history if not order["is_open"])
        assert tally["checkout ok"] <= closed <= tally["checkout ok"] + tally["checkout unknown"]
        for order in history:
            lines_total = sum(Decimal(line["line_total"]) for line in order["beers"])
            assert Decimal(order["total"]) == lines_total
            for line in order["beers"]:
                assert Decimal(line["line_total"]) == Decimal(line["unit_price"]) * line["quantity"]
    assert sum(sum(t.values()) for t in outcomes.values()) > 50  # it was a burst
