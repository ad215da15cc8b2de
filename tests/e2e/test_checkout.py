"""Checkout: prices frozen at the catalogue's current price, and when it is refused."""

from __future__ import annotations

import pytest

from tests.problems import assert_problem

from .api_client import ShopApi

pytestmark = pytest.mark.e2e


def test_an_open_order_shows_the_price_from_when_the_beer_was_added(
    api: ShopApi, admin_token: str
) -> None:
    sku = api.new_beer(admin_token, price="1.50")
    customer = api.new_customer()
    api.add_to_order(customer.token, sku, 2)

    assert api.replace_beer(admin_token, sku, price="2.25").status_code == 200

    (line,) = api.current_order_body(customer.token)["beers"]
    assert line["unit_price"] == "1.50"


def test_checkout_charges_the_catalogue_price_at_checkout_time(
    api: ShopApi, admin_token: str
) -> None:
    sku = api.new_beer(admin_token, price="1.50", name="Old name")
    customer = api.new_customer()
    api.add_to_order(customer.token, sku, 2)
    assert api.replace_beer(admin_token, sku, name="New name", price="2.25").status_code == 200

    response = api.checkout(customer.token)

    assert response.status_code == 200, response.text
    order = response.json()
    assert order["beers"] == [
        {"sku": sku, "name": "New name", "quantity": 2, "unit_price": "2.25", "line_total": "4.50"}
    ]
    assert order["total"] == "4.50"


def test_a_closed_order_keeps_the_prices_that_were_paid(api: ShopApi, admin_token: str) -> None:
    sku = api.new_beer(admin_token, price="1.50")
    customer = api.new_customer()
    api.add_to_order(customer.token, sku, 2)
    paid = api.checkout(customer.token).json()

    assert api.replace_beer(admin_token, sku, price="9.99").status_code == 200

    assert api.order(customer.token, paid["id"]).json() == paid
    (listed,) = api.order_history(customer.token).json()
    assert listed["total"] == "3.00"
    assert listed["beers"][0]["unit_price"] == "1.50"


@pytest.mark.parametrize("emptied", [False, True], ids=["never opened", "emptied"])
def test_checking_out_an_empty_order_is_409(api: ShopApi, admin_token: str, emptied: bool) -> None:
    customer = api.new_customer()
    if emptied:
        sku = api.new_beer(admin_token)
        api.add_to_order(customer.token, sku, 1)
        api.remove_from_order(customer.token, sku)

    response = api.checkout(customer.token)

    assert_problem(response, 409)
    assert all(order["is_open"] for order in api.order_history(customer.token).json())


def test_checking_out_a_beer_that_left_the_catalogue_is_409_naming_it(
    api: ShopApi, admin_token: str
) -> None:
    kept, gone = api.new_beer(admin_token), api.new_beer(admin_token)
    customer = api.new_customer()
    api.add_to_order(customer.token, kept, 1)
    api.add_to_order(customer.token, gone, 1)
    assert api.delete_beer(admin_token, gone).status_code == 204

    response = api.checkout(customer.token)

    problem = assert_problem(response, 409)
    assert gone in problem["detail"]
    assert kept not in problem["detail"]
    assert problem["skus"] == [gone]


def test_an_order_whose_beer_left_the_catalogue_stays_open_after_checkout_fails(
    api: ShopApi, admin_token: str
) -> None:
    gone = api.new_beer(admin_token, price="4.00")
    customer = api.new_customer()
    before = api.add_to_order(customer.token, gone, 3).json()
    api.delete_beer(admin_token, gone)

    api.checkout(customer.token)

    current = api.current_order_body(customer.token)
    assert current["id"] == before["id"]
    assert current["is_open"] is True
    assert current["time_checked_out"] is None
    assert [(line["sku"], line["quantity"]) for line in current["beers"]] == [(gone, 3)]


def test_checkout_succeeds_once_the_beer_that_left_is_removed(
    api: ShopApi, admin_token: str
) -> None:
    kept, gone = api.new_beer(admin_token), api.new_beer(admin_token)
    customer = api.new_customer()
    api.add_to_order(customer.token, kept, 1)
    api.add_to_order(customer.token, gone, 1)
    api.delete_beer(admin_token, gone)
    assert api.checkout(customer.token).status_code == 409

    api.remove_from_order(customer.token, gone)
    response = api.checkout(customer.token)

    assert response.status_code == 200, response.text
    assert [line["sku"] for line in response.json()["beers"]] == [kept]
