"""Concurrent requests against two worker processes: the database keeps the rules."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import TypeVar

import pytest
import requests

from .api_client import TIMEOUT, ShopApi, bearer

pytestmark = pytest.mark.e2e

T = TypeVar("T")
THREADS = 20


def all_at_once(count: int, call: Callable[[requests.Session, int], T]) -> list[T]:
    """Run call(session, i) for i < count in as many threads, released together,
    each thread with its own connection."""
    barrier = threading.Barrier(count)

    def run(index: int) -> T:
        with requests.Session() as session:
            barrier.wait(timeout=TIMEOUT)
            return call(session, index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


def test_concurrent_adds_of_one_beer_open_one_order_with_every_bottle(
    api: ShopApi, admin_token: str
) -> None:
    sku = api.new_beer(admin_token)
    customer = api.new_customer()

    statuses = all_at_once(
        THREADS,
        lambda session, _: (
            session.put(
                f"{api.orders_url}/api/orders/current",
                json={"sku": sku, "quantity": 1},
                headers=bearer(customer.token),
                timeout=TIMEOUT,
            ).status_code
        ),
    )

    assert statuses == [200] * THREADS
    orders = api.order_history(customer.token).json()
    assert [order["is_open"] for order in orders] == [True]
    assert [(line["sku"], line["quantity"]) for line in orders[0]["beers"]] == [(sku, THREADS)]


def test_concurrent_adds_of_different_beers_open_one_order_with_every_line(
    api: ShopApi, admin_token: str
) -> None:
    skus = [api.new_beer(admin_token) for _ in range(10)]
    customer = api.new_customer()

    statuses = all_at_once(
        len(skus),
        lambda session, index: (
            session.put(
                f"{api.orders_url}/api/orders/current",
                json={"sku": skus[index], "quantity": index + 1},
                headers=bearer(customer.token),
                timeout=TIMEOUT,
            ).status_code
        ),
    )

    assert statuses == [200] * len(skus)
    orders = api.order_history(customer.token).json()
    assert [order["is_open"] for order in orders] == [True]
    lines = {line["sku"]: line["quantity"] for line in orders[0]["beers"]}
    assert lines == {sku: index + 1 for index, sku in enumerate(skus)}


@pytest.mark.parametrize("checkouts", [2, 10])
def test_of_concurrent_checkouts_of_one_order_exactly_one_succeeds(
    api: ShopApi, admin_token: str, checkouts: int
) -> None:
    sku = api.new_beer(admin_token)
    customer = api.new_customer()
    api.add_to_order(customer.token, sku, 2)

    statuses = all_at_once(
        checkouts,
        lambda session, _: (
            session.post(
                f"{api.orders_url}/api/orders/checkout",
                headers=bearer(customer.token),
                timeout=TIMEOUT,
            ).status_code
        ),
    )

    assert sorted(statuses) == [200] + [409] * (checkouts - 1)
    orders = api.order_history(customer.token).json()
    assert [order["is_open"] for order in orders] == [False]
    assert orders[0]["beers"][0]["quantity"] == 2


def test_adds_racing_a_checkout_land_in_the_closed_order_or_the_next_one(
    api: ShopApi, admin_token: str
) -> None:
    sku = api.new_beer(admin_token, price="1.50")
    customer = api.new_customer()
    api.add_to_order(customer.token, sku, 1)

    def act(session: requests.Session, index: int) -> int:
        if index == 0:
            url = f"{api.orders_url}/api/orders/checkout"
            return session.post(url, headers=bearer(customer.token), timeout=TIMEOUT).status_code
        return session.put(
            f"{api.orders_url}/api/orders/current",
            json={"sku": sku, "quantity": 1},
            headers=bearer(customer.token),
            timeout=TIMEOUT,
        ).status_code

    checkout, *adds = all_at_once(10, act)

    assert adds == [200] * 9
    assert checkout in (200, 409)  # 409: the order kept changing; the client may try again
    orders = api.order_history(customer.token).json()
    assert sum(order["is_open"] for order in orders) <= 1
    assert sum(line["quantity"] for order in orders for line in order["beers"]) == 10
    closed = [order for order in orders if not order["is_open"]]
    assert len(closed) == (1 if checkout == 200 else 0)
    for order in closed:
        (line,) = order["beers"]
        assert Decimal(order["total"]) == Decimal("1.50") * line["quantity"]


def test_concurrent_sets_of_one_line_leave_one_of_them_never_a_sum(
    api: ShopApi, admin_token: str
) -> None:
    sku = api.new_beer(admin_token)
    customer = api.new_customer()
    api.add_to_order(customer.token, sku, 50)

    answers = all_at_once(
        THREADS,
        lambda session, index: session.put(
            f"{api.orders_url}/api/orders/current/beers/{sku}",
            json={"quantity": index + 1},
            headers=bearer(customer.token),
            timeout=TIMEOUT,
        ),
    )

    assert [answer.status_code for answer in answers] == [200] * THREADS
    # Each set answers the order as it left it: its own quantity, nothing added.
    shown = [answer.json()["beers"][0]["quantity"] for answer in answers]
    assert shown == list(range(1, THREADS + 1))
    orders = api.order_history(customer.token).json()
    assert [order["is_open"] for order in orders] == [True]
    ((line_sku, final),) = [(line["sku"], line["quantity"]) for line in orders[0]["beers"]]
    assert line_sku == sku
    assert final in shown  # the last set to commit, whichever it was
    assert api.set_quantity(customer.token, sku, 7).json()["beers"][0]["quantity"] == 7


@pytest.mark.parametrize("round_", range(3))
def test_a_price_change_racing_sets_and_a_checkout_never_charges_a_price_not_shown(
    api: ShopApi, admin_token: str, round_: int
) -> None:
    sku = api.new_beer(admin_token, price="1.00")
    customer = api.new_customer()
    api.set_quantity(customer.token, sku, 1)

    def act(session: requests.Session, index: int) -> requests.Response:
        if index == 0:
            return session.put(
                f"{api.beers_url}/api/beers/{sku}",
                json={"name": "Test lager", "price": "2.00"},
                headers=bearer(admin_token),
                timeout=TIMEOUT,
            )
        if index == 1:
            return session.post(
                f"{api.orders_url}/api/orders/checkout",
                headers=bearer(customer.token),
                timeout=TIMEOUT,
            )
        return session.put(
            f"{api.orders_url}/api/orders/current/beers/{sku}",
            json={"quantity": 2},
            headers=bearer(customer.token),
            timeout=TIMEOUT,
        )

    repriced, checkout, *sets = all_at_once(6, act)

    assert repriced.status_code == 200, repriced.text
    assert [answer.status_code for answer in sets] == [200] * len(sets)
    shown = {Decimal("1.00")} | {
        Decimal(line["unit_price"]) for answer in sets for line in answer.json()["beers"]
    }
    if checkout.status_code == 200:
        (line,) = checkout.json()["beers"]
        assert Decimal(line["unit_price"]) in shown
        assert Decimal(checkout.json()["total"]) == Decimal(line["unit_price"]) * line["quantity"]
    else:
        problem = checkout.json()
        assert checkout.status_code == 409, problem
        if "changed" in problem:
            assert problem["changed"] == [{"sku": sku, "unit_price": "1.00", "price": "2.00"}]
    for order in api.order_history(customer.token).json():
        for line in order["beers"]:
            assert Decimal(line["line_total"]) == Decimal(line["unit_price"]) * line["quantity"]
