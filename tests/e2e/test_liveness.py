"""Liveness has a queue of its own: while more requests than a worker has
threads wait on orders' database (an operator holds SQLite's write lock),
`/health` is answered ahead of a request sent before it, which waits its turn
for a thread."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy.engine import make_url

from tests.databases import POSTGRES_URL

from .api_client import ShopApi
from .services import StartService

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(bool(POSTGRES_URL), reason="SQLite's lock")]

# Customers adding beers over and over, more than a worker's request threads
# (servicekit.serving.THREADS): each add waits on the write lock, so some wait
# in the queue for a thread.
CUSTOMERS = 200
QUEUED_PROBES = 30  # tries, a second each, to see a request wait for a thread


def keep_adding(shop: ShopApi, token: str, sku: str, stop: threading.Event) -> None:
    while not stop.is_set():
        try:
            shop.add_to_order(token, sku)
        except requests.RequestException:
            pass  # a client given up on; the next add goes in its place


def request_threads_taken(url: str) -> bool:
    """Whether a request that waits on nothing waits (for a thread) a second."""
    for _ in range(QUEUED_PROBES):
        try:
            requests.get(f"{url}/", timeout=1)
        except requests.Timeout:
            return True
        time.sleep(0.2)
    return False


def send_home_page_request(url: str) -> socket.socket:
    """A connection that has sent GET / whole (before whatever is sent next)."""
    address = urlsplit(url)
    connection = socket.create_connection((address.hostname, address.port), timeout=10)
    connection.sendall(b"GET / HTTP/1.1\r\nHost: %s\r\n\r\n" % address.netloc.encode())
    return connection


def answer_started(connection: socket.socket) -> bool:
    """Whether any of the answer has come back on the connection yet."""
    connection.setblocking(False)
    try:
        return bool(connection.recv(1))
    except BlockingIOError:
        return False


def test_health_is_answered_while_every_request_thread_waits_on_the_database(
    api: ShopApi, admin_token: str, start_service: StartService
) -> None:
    orders = start_service("orders", workers=1)
    shop = ShopApi(api.users_url, api.beers_url, orders.url)
    sku = api.new_beer(admin_token)
    customer = api.new_customer()
    stop = threading.Event()
    customers = [
        threading.Thread(target=keep_adding, args=(shop, customer.token, sku, stop))
        for _ in range(CUSTOMERS)
    ]
    operator = sqlite3.connect(make_url(orders.env["DATABASE_URL"]).database or "")
    operator.isolation_level = None
    operator.execute("BEGIN IMMEDIATE")
    try:
        for thread in customers:
            thread.start()
        taken = request_threads_taken(orders.url)
        with send_home_page_request(orders.url) as home:
            health = requests.get(f"{orders.url}/health", timeout=10)
            home_answered = answer_started(home)
    finally:
        stop.set()
        operator.rollback()  # the operator is done
        operator.close()
    for thread in customers:
        thread.join()

    assert taken, "the adds never took every request thread"
    assert health.status_code == 200
    assert health.json() == {"status": "ok"}
    assert not home_answered  # health went ahead of a request sent before it
