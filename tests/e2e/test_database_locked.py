"""An operator holds orders' SQLite write lock (an open transaction in the
sqlite3 shell) while customers add beers: every read is answered as usual
meanwhile, and every add either waits its turn and is written or, past its
wait, is the database's 503, nothing written."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
import requests
from sqlalchemy.engine import make_url

from tests.databases import POSTGRES_URL
from tests.problems import assert_problem

from .api_client import ShopApi
from .services import StartService

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's lock")]

WRITERS = 48  # more than a worker's pooled connections (15), over two workers


def test_reads_go_on_while_an_operator_holds_the_write_lock(
    api: ShopApi, admin_token: str, start_service: StartService
) -> None:
    orders = start_service("orders", workers=2)
    shop = ShopApi(api.users_url, api.beers_url, orders.url)
    sku = api.new_beer(admin_token)
    customer = api.new_customer()
    writes: list[requests.Response] = []
    operator = sqlite3.connect(make_url(orders.env["DATABASE_URL"]).database or "")
    operator.isolation_level = None

    operator.execute("BEGIN IMMEDIATE")
    try:
        adding = [
            threading.Thread(target=lambda: writes.append(shop.add_to_order(customer.token, sku)))
            for _ in range(WRITERS)
        ]
        for thread in adding:
            thread.start()
        time.sleep(0.5)  # the adds are waiting now
        reads = [shop.current_order(customer.token) for _ in range(10)]
        writers_waiting = sum(thread.is_alive() for thread in adding)
    finally:
        operator.rollback()  # the operator is done
        operator.close()
    for thread in adding:
        thread.join()

    assert [read.status_code for read in reads] == [200] * 10
    assert writers_waiting > 0  # the reads were answered while adds waited
    written = [write for write in writes if write.status_code == 200]
    for write in writes:
        if write.status_code != 200:
            assert assert_problem(write, 503)["service"] == "orders-database"
    lines = shop.current_order_body(customer.token)["beers"]
    assert sum(line["quantity"] for line in lines) == len(written)
