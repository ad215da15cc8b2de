"""When users or beers is down, slow or failing, the answer is a quick 503 and nothing is written.

Extra orders (and beers) processes, each with its own database, have their USERS_URL
or BEERS_URL pointing at a port where nothing listens, or at a fake beers service
served from this test process.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import requests

from tests.problems import assert_problem

from .api_client import TIMEOUT, Customer, ShopApi, unique
from .fake_beers import SLOW_SECONDS, FakeBeers
from .services import Service, StartService, free_port

pytestmark = pytest.mark.e2e

# Where nothing listens a connection is refused at once: with a connect timeout
# this long, an answer within it came at once, not after a timeout, on any machine.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 1.0  # of the orders that calls the fake beers
TIMED_OUT = 1.0 + READ_TIMEOUT  # its default connect timeout and that: a call's bound


def assert_unavailable(response: requests.Response, service: str) -> None:
    problem = assert_problem(response, 503)
    assert problem["service"] == service
    assert service in problem["detail"]


@pytest.fixture(scope="module")
def fake_beers() -> Iterator[FakeBeers]:
    with FakeBeers() as fake:
        yield fake


@pytest.fixture
def beers(fake_beers: FakeBeers) -> Iterator[FakeBeers]:
    """The fake, answering normally at the start of each test."""
    fake_beers.mode = "ok"
    fake_beers.calls.clear()
    fake_beers.release.clear()
    yield fake_beers
    fake_beers.mode = "ok"
    fake_beers.release.set()  # a slow answer still waiting finishes now


@pytest.fixture(scope="module")
def orders_without_beers(start_service: StartService) -> Service:
    return start_service(
        "orders",
        BEERS_URL=f"http://127.0.0.1:{free_port()}",
        UPSTREAM_CONNECT_TIMEOUT=CONNECT_TIMEOUT,
    )


@pytest.fixture(scope="module")
def orders_without_users(start_service: StartService) -> Service:
    return start_service(
        "orders",
        USERS_URL=f"http://127.0.0.1:{free_port()}",
        UPSTREAM_CONNECT_TIMEOUT=CONNECT_TIMEOUT,
    )


@pytest.fixture(scope="module")
def beers_without_users(start_service: StartService) -> Service:
    return start_service(
        "beers",
        USERS_URL=f"http://127.0.0.1:{free_port()}",
        UPSTREAM_CONNECT_TIMEOUT=CONNECT_TIMEOUT,
    )


@pytest.fixture(scope="module")
def orders_with_fake_beers(start_service: StartService, fake_beers: FakeBeers) -> Service:
    return start_service(
        "orders",
        BEERS_URL=fake_beers.url,
        UPSTREAM_READ_TIMEOUT=READ_TIMEOUT,
    )


def orders_api(api: ShopApi, orders: Service) -> ShopApi:
    return ShopApi(api.users_url, api.beers_url, orders.url)


def put_beer(api: ShopApi, customer: Customer, sku: str) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = api.add_to_order(customer.token, sku, 1)
    return response, time.monotonic() - started


def test_adding_a_beer_while_beers_is_down_is_503_naming_beers_at_once(
    api: ShopApi, admin_token: str, orders_without_beers: Service
) -> None:
    sku = api.new_beer(admin_token)
    customer = api.new_customer()
    orders = orders_api(api, orders_without_beers)

    response, seconds = put_beer(orders, customer, sku)

    assert_unavailable(response, "beers")
    assert seconds < CONNECT_TIMEOUT
    current = orders.current_order_body(customer.token)
    assert (current["id"], current["beers"]) == (None, [])
    assert orders.order_history(customer.token).json() == []


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/orders/"),
        ("GET", "/api/orders/current"),
        ("PUT", "/api/orders/current"),
        ("DELETE", "/api/orders/current?sku=123456"),
        ("POST", "/api/orders/checkout"),
        ("GET", "/api/orders/1"),
    ],
)
def test_any_order_request_while_users_is_down_is_503_naming_users_at_once(
    api: ShopApi, orders_without_users: Service, method: str, path: str
) -> None:
    customer = api.new_customer()
    started = time.monotonic()

    response = requests.request(
        method,
        orders_without_users.url + path,
        json={"sku": "123456", "quantity": 1},
        headers=customer.auth,
        timeout=TIMEOUT,
    )

    assert_unavailable(response, "users")
    assert time.monotonic() - started < CONNECT_TIMEOUT


def test_adding_a_beer_while_beers_is_slow_is_503_within_the_read_timeout(
    api: ShopApi, beers: FakeBeers, orders_with_fake_beers: Service
) -> None:
    beers.mode = "slow"
    sku = unique("slow")
    beers.prices[sku] = "1.00"
    customer = api.new_customer()
    orders = orders_api(api, orders_with_fake_beers)

    response, seconds = put_beer(orders, customer, sku)

    assert_unavailable(response, "beers")
    assert seconds < SLOW_SECONDS  # given up before the slow fake answers
    assert len(beers.calls) == 1  # and not sent again
    assert orders.current_order_body(customer.token)["beers"] == []


def test_adding_a_beer_while_beers_answers_500_is_503(
    api: ShopApi, beers: FakeBeers, orders_with_fake_beers: Service
) -> None:
    beers.mode = "error"
    customer = api.new_customer()
    orders = orders_api(api, orders_with_fake_beers)

    response, seconds = put_beer(orders, customer, unique("sku"))

    assert_unavailable(response, "beers")
    assert seconds < TIMED_OUT  # the 500 at once, not a timeout
    assert orders.order_history(customer.token).json() == []


@pytest.mark.parametrize("mode", ["error", "slow"])
def test_checking_out_while_beers_fails_is_503_and_the_order_stays_open(
    api: ShopApi, beers: FakeBeers, orders_with_fake_beers: Service, mode: str
) -> None:
    sku = unique("sku")
    beers.prices[sku] = "2.50"
    customer = api.new_customer()
    orders = orders_api(api, orders_with_fake_beers)
    before = orders.add_to_order(customer.token, sku, 2).json()
    beers.mode = mode

    started = time.monotonic()
    response = orders.checkout(customer.token)

    assert_unavailable(response, "beers")
    assert time.monotonic() - started < SLOW_SECONDS  # never waited out the slow fake
    beers.mode = "ok"
    assert orders.current_order_body(customer.token) == before
    assert [order["is_open"] for order in orders.order_history(customer.token).json()] == [True]


def test_checkout_asks_beers_for_every_price_in_one_call(
    api: ShopApi, beers: FakeBeers, orders_with_fake_beers: Service
) -> None:
    skus = [unique("sku") for _ in range(3)]
    beers.prices.update(dict.fromkeys(skus, "1.00"))
    customer = api.new_customer()
    orders = orders_api(api, orders_with_fake_beers)
    for sku in skus:
        orders.add_to_order(customer.token, sku, 1)
    beers.calls.clear()

    response = orders.checkout(customer.token)

    assert response.status_code == 200, response.text
    assert len(beers.calls) == 1
    _, query, _ = beers.calls[0]
    assert sorted(query["sku"]) == sorted(skus)


def test_orders_forwards_the_request_id_to_beers(
    api: ShopApi, beers: FakeBeers, orders_with_fake_beers: Service
) -> None:
    sku = unique("sku")
    beers.prices[sku] = "1.00"
    customer = api.new_customer()
    request_id = unique("request")

    response = requests.put(
        f"{orders_with_fake_beers.url}/api/orders/current",
        json={"sku": sku},
        headers={**customer.auth, "X-Request-ID": request_id},
        timeout=TIMEOUT,
    )

    assert response.status_code == 200, response.text
    assert [call[2] for call in beers.calls] == [request_id]


def test_changing_the_catalogue_while_users_is_down_is_503_naming_users(
    api: ShopApi, admin_token: str, beers_without_users: Service
) -> None:
    beers = ShopApi(api.users_url, beers_without_users.url, api.orders_url)
    sku = unique("sku")

    response = beers.create_beer(admin_token, sku)

    assert_unavailable(response, "users")
    assert_problem(beers.beer(sku), 404)


def test_reading_the_catalogue_needs_no_users_service(beers_without_users: Service) -> None:
    response = requests.get(f"{beers_without_users.url}/api/beers/", timeout=TIMEOUT)

    assert response.status_code == 200
    assert response.json() == []
