"""Checkout: the prices the order shows, frozen if the catalogue still asks them, and
when checkout is refused."""

from __future__ import annotations

from typing import Any

import pytest

from tests.problems import assert_problem

from .api_client import Customer, ShopApi, unique

pytestmark = pytest.mark.e2e


def an_order_of(
    api: ShopApi, admin_token: str, quantity: int, **beer: str
) -> tuple[Customer, str, dict[str, Any]]:
    """A new customer whose open order holds `quantity` of a new beer (its price
    and name as given): who, the beer's SKU, and the order as the addition answered."""
    sku = api.new_beer(admin_token, **beer)
    customer = api.new_customer()
    added = api.add_to_order(customer.token, sku, quantity)
    assert added.status_code == 200, added.text
    return customer, sku, added.json()


def a_repriced_order(
    api: ShopApi, admin_token: str, **beer: str
) -> tuple[Customer, str, dict[str, Any]]:
    """An order of 4 of a new beer added at 1.19, which the catalogue has since
    priced at 1.25 (its name as given)."""
    customer, sku, added = an_order_of(api, admin_token, 4, price="1.19", **beer)
    assert api.replace_beer(admin_token, sku, price="1.25", **beer).status_code == 200
    return customer, sku, added


def an_order_whose_beer_left(
    api: ShopApi, admin_token: str, kept_price: str = "1.50"
) -> tuple[Customer, str, str, dict[str, Any]]:
    """A new customer's open order of one each of two new beers, the second of
    which has since left the catalogue: who, the SKU kept, the SKU gone, and the
    order before the beer left."""
    kept, gone = api.new_beer(admin_token, price=kept_price), api.new_beer(admin_token)
    customer = api.new_customer()
    api.add_to_order(customer.token, kept, 1)
    before = api.add_to_order(customer.token, gone, 1).json()
    assert api.delete_beer(admin_token, gone).status_code == 204
    return customer, kept, gone, before


def test_an_open_order_shows_the_price_from_when_the_beer_was_added(
    api: ShopApi, admin_token: str
) -> None:
    customer, sku, _ = an_order_of(api, admin_token, 2, price="1.50")

    assert api.replace_beer(admin_token, sku, price="2.25").status_code == 200

    (line,) = api.current_order_body(customer.token)["beers"]
    assert line["unit_price"] == "1.50"


def test_checkout_pays_the_price_the_order_shows_under_the_catalogues_current_name(
    api: ShopApi, admin_token: str
) -> None:
    customer, sku, _ = an_order_of(api, admin_token, 2, price="1.50", name="Old name")
    assert api.replace_beer(admin_token, sku, name="New name", price="1.50").status_code == 200

    response = api.checkout(customer.token)

    assert response.status_code == 200, response.text
    order = response.json()
    assert order["beers"] == [
        {"sku": sku, "name": "New name", "quantity": 2, "unit_price": "1.50", "line_total": "3.00"}
    ]
    assert order["total"] == "3.00"


def test_a_price_changed_between_add_and_checkout_is_409_and_the_order_shows_the_new_one(
    api: ShopApi, admin_token: str
) -> None:
    customer, sku, added = a_repriced_order(api, admin_token, name="Бургаско")
    assert added["total"] == "4.76"

    response = api.checkout(customer.token)

    problem = assert_problem(response, 409)
    assert problem["errors"] == {sku: ["The price changed from 1.19 to 1.25."]}
    assert problem["changed"] == [{"sku": sku, "unit_price": "1.19", "price": "1.25"}]
    current = api.current_order_body(customer.token)
    assert current["id"] == added["id"]
    assert current["is_open"] is True
    assert current["beers"] == [
        {"sku": sku, "name": "Бургаско", "quantity": 4, "unit_price": "1.25", "line_total": "5.00"}
    ]
    assert current["total"] == "5.00"

    paid = api.checkout(customer.token)

    assert paid.status_code == 200, paid.text
    assert paid.json()["is_open"] is False
    assert paid.json()["total"] == "5.00"
    assert paid.json()["beers"] == current["beers"]


def test_a_price_changed_again_after_the_409_is_another_409(api: ShopApi, admin_token: str) -> None:
    customer, sku, _ = a_repriced_order(api, admin_token)
    assert_problem(api.checkout(customer.token), 409)
    api.replace_beer(admin_token, sku, price="1.30")

    problem = assert_problem(api.checkout(customer.token), 409)

    assert problem["changed"] == [{"sku": sku, "unit_price": "1.25", "price": "1.30"}]
    assert api.current_order_body(customer.token)["total"] == "5.20"
    paid = api.checkout(customer.token)
    assert paid.status_code == 200, paid.text
    assert paid.json()["total"] == "5.20"


def test_the_409_is_kept_for_its_idempotency_key_and_a_new_key_pays(
    api: ShopApi, admin_token: str
) -> None:
    customer, _, _ = a_repriced_order(api, admin_token)
    first = api.checkout(customer.token, key=unique("pay"))
    retried = api.checkout(customer.token, key=first.request.headers["Idempotency-Key"])

    assert first.status_code == retried.status_code == 409
    assert retried.content == first.content
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert api.current_order_body(customer.token)["is_open"] is True

    paid = api.checkout(customer.token, key=unique("pay"))

    assert paid.status_code == 200, paid.text
    assert paid.json()["total"] == "5.00"


def test_a_beer_that_left_the_catalogue_wins_over_a_changed_price_and_nothing_is_repriced(
    api: ShopApi, admin_token: str
) -> None:
    customer, changed, gone, before = an_order_whose_beer_left(api, admin_token, "1.19")
    assert api.replace_beer(admin_token, changed, price="1.25").status_code == 200

    problem = assert_problem(api.checkout(customer.token), 409)

    assert problem["skus"] == [gone]
    assert "changed" not in problem
    assert api.current_order_body(customer.token) == before


def test_a_closed_order_keeps_the_prices_that_were_paid(api: ShopApi, admin_token: str) -> None:
    customer, sku, _ = an_order_of(api, admin_token, 2, price="1.50")
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
    customer, kept, gone, _ = an_order_whose_beer_left(api, admin_token)

    response = api.checkout(customer.token)

    problem = assert_problem(response, 409)
    assert gone in problem["detail"]
    assert kept not in problem["detail"]
    assert problem["skus"] == [gone]


def test_an_order_whose_beer_left_the_catalogue_stays_open_after_checkout_fails(
    api: ShopApi, admin_token: str
) -> None:
    customer, gone, before = an_order_of(api, admin_token, 3, price="4.00")
    assert api.delete_beer(admin_token, gone).status_code == 204

    api.checkout(customer.token)

    current = api.current_order_body(customer.token)
    assert current["id"] == before["id"]
    assert current["is_open"] is True
    assert current["time_checked_out"] is None
    assert [(line["sku"], line["quantity"]) for line in current["beers"]] == [(gone, 3)]


def test_checkout_succeeds_once_the_beer_that_left_is_removed(
    api: ShopApi, admin_token: str
) -> None:
    customer, kept, gone, _ = an_order_whose_beer_left(api, admin_token)
    assert api.checkout(customer.token).status_code == 409

    api.remove_from_order(customer.token, gone)
    response = api.checkout(customer.token)

    assert response.status_code == 200, response.text
    assert [line["sku"] for line in response.json()["beers"]] == [kept]
