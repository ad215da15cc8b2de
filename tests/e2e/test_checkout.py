"""Checkout: the prices the order shows, frozen if the catalogue still asks them, and
when checkout is refused."""

from __future__ import annotations

import pytest

from tests.problems import assert_problem

from .api_client import ShopApi, unique

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


def test_checkout_pays_the_price_the_order_shows_under_the_catalogues_current_name(
    api: ShopApi, admin_token: str
) -> None:
    sku = api.new_beer(admin_token, price="1.50", name="Old name")
    customer = api.new_customer()
    api.add_to_order(customer.token, sku, 2)
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
    sku = api.new_beer(admin_token, price="1.19", name="Бургаско")
    customer = api.new_customer()
    added = api.add_to_order(customer.token, sku, 4).json()
    assert added["total"] == "4.76"
    assert api.replace_beer(admin_token, sku, name="Бургаско", price="1.25").status_code == 200

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
    sku = api.new_beer(admin_token, price="1.19")
    customer = api.new_customer()
    api.add_to_order(customer.token, sku, 4)
    api.replace_beer(admin_token, sku, price="1.25")
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
    sku = api.new_beer(admin_token, price="1.19")
    customer = api.new_customer()
    api.add_to_order(customer.token, sku, 4)
    api.replace_beer(admin_token, sku, price="1.25")
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
    changed, gone = api.new_beer(admin_token, price="1.19"), api.new_beer(admin_token)
    customer = api.new_customer()
    api.add_to_order(customer.token, changed, 1)
    before = api.add_to_order(customer.token, gone, 1).json()
    api.replace_beer(admin_token, changed, price="1.25")
    api.delete_beer(admin_token, gone)

    problem = assert_problem(api.checkout(customer.token), 409)

    assert problem["skus"] == [gone]
    assert "changed" not in problem
    assert api.current_order_body(customer.token) == before


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
