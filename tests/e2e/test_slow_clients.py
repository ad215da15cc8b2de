"""Slow and idle clients cannot stall a service: while many connections trickle a
body or send nothing at all, to every service at once, everyone else is served.

Loopback only, bounded in count (64 trickling and 500 idle connections a
service) and in time (a few seconds).
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import requests

from .api_client import ShopApi
from .services import Shop

TRICKLING = 64
IDLE = 500
SECONDS = 4.0
SLOWEST_ALLOWED = 1.0
TRICKLED_HEAD = (
    b"PUT /api/orders/current HTTP/1.1\r\nHost: shop\r\n"
    b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
)


def connect(url: str) -> socket.socket:
    address = urlsplit(url)
    return socket.create_connection((address.hostname, address.port), timeout=5)


@contextmanager
def slow_and_idle_clients(urls: list[str]) -> Iterator[None]:
    """Open the connections, keep the trickling ones sending a byte a second, and
    close them all at the end."""
    trickling: list[socket.socket] = []
    idle: list[socket.socket] = []
    stop = threading.Event()
    try:
        for url in urls:
            for _ in range(TRICKLING):
                connection = connect(url)
                connection.sendall(TRICKLED_HEAD)
                trickling.append(connection)
            idle.extend(connect(url) for _ in range(IDLE))

        def trickle() -> None:
            while not stop.wait(1.0):
                for connection in trickling:
                    try:
                        connection.send(b" ")
                    except OSError:
                        pass

        dripping = threading.Thread(target=trickle, daemon=True)
        dripping.start()
        yield
    finally:
        stop.set()
        for connection in trickling + idle:
            connection.close()


def ordinary_requests(api: ShopApi, token: str, sku: str) -> list[tuple[str, int, float]]:
    """A beer, a token check and the open order (which crosses all three
    services), again and again for SECONDS: what was asked, its status, its time."""
    calls = {
        "beer": lambda: api.beer(sku),
        "token check": lambda: api.me(token),
        "open order": lambda: api.current_order(token),
    }
    answered = []
    deadline = time.monotonic() + SECONDS
    while time.monotonic() < deadline:
        for name, call in calls.items():
            started = time.monotonic()
            try:
                status = call().status_code
            except requests.RequestException:
                status = 0
            answered.append((name, status, time.monotonic() - started))
    return answered


def test_slow_and_idle_clients_do_not_stall_the_shop(
    shop: Shop, api: ShopApi, admin_token: str
) -> None:
    customer = api.new_customer()
    sku = api.new_beer(admin_token)
    api.add_to_order(customer.token, sku)

    with slow_and_idle_clients([shop.users.url, shop.beers.url, shop.orders.url]):
        answered = ordinary_requests(api, customer.token, sku)

    assert {status for _, status, _ in answered} == {200}, answered
    slowest = max(answered, key=lambda call: call[2])
    assert slowest[2] < SLOWEST_ALLOWED, slowest
    assert len(answered) > 30  # served all along, not once at the end
