"""Ordering beers over real HTTP: the open order, its lines and the order history."""

from __future__ import annotations

import re

import pytest
import requests

from tests.problems import assert_problem

from .api_client import TIMEOUT, ShopApi, assert_utc_time, bearer, encoded, unique

pytestmark = pytest.mark.e2e

MONEY = re.compile(r"^\d+\.\d{2}$")


def test_a_customer_orders_beers_from_registration_to_order_history(
    api: ShopApi, admin_token: str
) -> None:
    lager = api.new_beer(admin_token, price="1.19", name="Бургаско")
    stout = api.new_beer(admin_token, price="2.00", name="Stout")
    username = unique("journey")
    assert api.register(username).status_code == 201
    token = api.token_for(username)

    listed = api.list_beers({"sku": [lager, stout]})
    assert [beer["sku"] for beer in listed.json()] == [lager, stout]

    assert api.add_to_order(token, lager, 2).status_code == 200
    assert api.add_to_order(token, stout, 3, form=True, bare=True).status_code == 200
    current = api.current_order_body(token)
    assert current["is_open"] is True
    assert {line["sku"]: line["quantity"] for line in current["beers"]} == {lager: 2, stout: 3}
    assert current["total"] == "8.38"

    assert api.remove_from_order(token, stout, in_query=True).status_code == 204
    checked_out = api.checkout(token)
    assert checked_out.status_code == 200, checked_out.text
    order = checked_out.json()
    assert order["is_open"] is False
    assert order["total"] == "2.38"
    assert order["beers"] == [
        {
            "sku": lager,
            "name": "Бургаско",
            "quantity": 2,
            "unit_price": "1.19",
            "line_total": "2.38",
        }
    ]
    assert_utc_time(order["time_checked_out"])

    history = api.order_history(token)
    assert [past["id"] for past in history.json()] == [order["id"]]
    assert api.order(token, order["id"]).json() == order
    assert api.current_order_body(token)["beers"] == []


def test_adding_the_same_beer_twice_adds_up(api: ShopApi, admin_token: str) -> None:
    sku = api.new_beer(admin_token, price="1.50")
    customer = api.new_customer()

    api.add_to_order(customer.token, sku, 2)
    response = api.add_to_order(customer.token, sku, 3)

    assert response.status_code == 200, response.text
    assert [(line["sku"], line["quantity"]) for line in response.json()["beers"]] == [(sku, 5)]
    assert response.json()["total"] == "7.50"


@pytest.mark.parametrize("body", ["json", "urlencoded form", "multipart form"])
@pytest.mark.parametrize("authorization", ["Bearer {token}", "{token}"])
def test_a_beer_can_be_added_with_any_body_and_either_authorization(
    api: ShopApi, admin_token: str, body: str, authorization: str
) -> None:
    sku = api.new_beer(admin_token)
    customer = api.new_customer()
    fields = {"sku": sku, "quantity": 4}

    response = requests.put(
        f"{api.orders_url}/api/orders/current",
        headers={"Authorization": authorization.format(token=customer.token)},
        timeout=TIMEOUT,
        **encoded(body, fields),
    )

    assert response.status_code == 200, response.text
    assert [(line["sku"], line["quantity"]) for line in response.json()["beers"]] == [(sku, 4)]


@pytest.mark.parametrize("in_query", [False, True], ids=["sku in body", "sku in query"])
def test_removing_a_beer_takes_its_line_out_of_the_order(
    api: ShopApi, admin_token: str, in_query: bool
) -> None:
    kept, removed = api.new_beer(admin_token), api.new_beer(admin_token)
    customer = api.new_customer()
    api.add_to_order(customer.token, kept, 1)
    api.add_to_order(customer.token, removed, 2)

    response = api.remove_from_order(customer.token, removed, in_query=in_query)

    assert response.status_code == 204
    assert response.content == b""
    lines = api.current_order_body(customer.token)["beers"]
    assert [line["sku"] for line in lines] == [kept]


def test_removing_a_beer_that_is_not_in_the_order_is_204_and_changes_nothing(
    api: ShopApi, admin_token: str
) -> None:
    sku = api.new_beer(admin_token)
    customer = api.new_customer()
    api.add_to_order(customer.token, sku, 1)
    before = api.current_order_body(customer.token)

    response = api.remove_from_order(customer.token, unique("absent"))

    assert response.status_code == 204
    assert api.current_order_body(customer.token) == before


def test_order_money_is_two_decimal_strings_and_quantities_are_integers(
    api: ShopApi, admin_token: str
) -> None:
    sku = api.new_beer(admin_token, price="0.1")
    customer = api.new_customer()

    order = api.add_to_order(customer.token, sku, 3).json()

    (line,) = order["beers"]
    assert line["unit_price"] == "0.10"
    assert line["line_total"] == "0.30"
    assert order["total"] == "0.30"
    assert isinstance(line["quantity"], int) and line["quantity"] == 3
    for money in (line["unit_price"], line["line_total"], order["total"]):
        assert isinstance(money, str) and MONEY.match(money)
    assert order["is_open"] is True


def test_order_lines_keep_non_ascii_names_as_utf8(api: ShopApi, admin_token: str) -> None:
    sku = api.new_beer(admin_token, name="Бургаско")
    customer = api.new_customer()

    response = api.add_to_order(customer.token, sku, 1)

    assert response.status_code == 200
    assert "Бургаско".encode() in response.content
    assert b"\\u" not in response.content


def test_order_times_are_iso_8601_in_utc_with_an_offset(api: ShopApi, admin_token: str) -> None:
    sku = api.new_beer(admin_token)
    customer = api.new_customer()
    opened = api.add_to_order(customer.token, sku, 1).json()
    assert opened["time_checked_out"] is None

    closed = api.checkout(customer.token).json()

    created = assert_utc_time(closed["time_created"])
    modified = assert_utc_time(closed["time_modified"])
    checked_out = assert_utc_time(closed["time_checked_out"])
    assert created <= modified
    assert created <= checked_out
    assert closed["time_created"] == opened["time_created"]


def test_order_history_lists_the_orders_oldest_first(api: ShopApi, admin_token: str) -> None:
    sku = api.new_beer(admin_token)
    customer = api.new_customer()
    closed_ids = []
    for quantity in (1, 2):
        api.add_to_order(customer.token, sku, quantity)
        closed_ids.append(api.checkout(customer.token).json()["id"])
    open_id = api.add_to_order(customer.token, sku, 3).json()["id"]

    history = api.order_history(customer.token)

    assert history.status_code == 200
    orders = history.json()
    assert [order["id"] for order in orders] == [*closed_ids, open_id]
    assert [order["is_open"] for order in orders] == [False, False, True]
    assert closed_ids[0] < closed_ids[1] < open_id


def test_the_current_order_is_empty_when_none_is_open_and_looking_creates_none(
    api: ShopApi,
) -> None:
    customer = api.new_customer()

    current = api.current_order_body(customer.token)

    assert current["id"] is None
    assert current["is_open"] is True
    assert current["beers"] == []
    assert current["total"] == "0.00"
    assert api.order_history(customer.token).json() == []


def test_an_order_can_be_fetched_by_its_id_with_its_lines(api: ShopApi, admin_token: str) -> None:
    sku = api.new_beer(admin_token, price="3.20", name="Porter")
    customer = api.new_customer()
    order_id = api.add_to_order(customer.token, sku, 2).json()["id"]

    response = api.order(customer.token, order_id)

    assert response.status_code == 200
    order = response.json()
    assert order["id"] == order_id
    assert order["beers"] == [
        {"sku": sku, "name": "Porter", "quantity": 2, "unit_price": "3.20", "line_total": "6.40"}
    ]


def test_the_orders_collection_answers_with_and_without_a_trailing_slash(api: ShopApi) -> None:
    customer = api.new_customer()

    for path in ("/api/orders", "/api/orders/"):
        response = requests.get(
            api.orders_url + path,
            headers=bearer(customer.token),
            allow_redirects=False,
            timeout=TIMEOUT,
        )
        assert response.status_code == 200, path
        assert response.json() == []


def test_setting_a_line_opens_an_order_and_sets_exactly_that_many(
    api: ShopApi, admin_token: str
) -> None:
    sku = api.new_beer(admin_token, price="1.19", name="Бургаско")
    customer = api.new_customer()

    first = api.set_quantity(customer.token, sku, 4)
    again = api.set_quantity(customer.token, sku, 4)

    assert first.status_code == again.status_code == 200, first.text
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["beers"] == [
        {"sku": sku, "name": "Бургаско", "quantity": 4, "unit_price": "1.19", "line_total": "4.76"}
    ]
    assert again.json()["total"] == "4.76"


def test_setting_a_line_replaces_what_adds_made_of_it_at_the_price_now(
    api: ShopApi, admin_token: str
) -> None:
    sku = api.new_beer(admin_token, price="1.50")
    customer = api.new_customer()
    api.add_to_order(customer.token, sku, 7)
    api.replace_beer(admin_token, sku, price="1.60")

    response = api.set_quantity(customer.token, sku, 2)

    assert response.status_code == 200, response.text
    (line,) = response.json()["beers"]
    assert (line["quantity"], line["unit_price"], line["line_total"]) == (2, "1.60", "3.20")


@pytest.mark.parametrize("quantity", [0, 100001, "two"])
def test_setting_a_bad_quantity_is_400_naming_it(
    api: ShopApi, admin_token: str, quantity: object
) -> None:
    sku = api.new_beer(admin_token)
    customer = api.new_customer()

    problem = assert_problem(api.set_quantity(customer.token, sku, quantity), 400)

    assert list(problem["errors"]) == ["quantity"]
    assert api.order_history(customer.token).json() == []


def test_setting_a_line_of_a_beer_not_in_the_catalogue_is_404(api: ShopApi) -> None:
    customer = api.new_customer()

    assert_problem(api.set_quantity(customer.token, unique("sku"), 1), 404)
    assert api.order_history(customer.token).json() == []


def test_a_retried_set_with_its_key_is_replayed(api: ShopApi, admin_token: str) -> None:
    sku = api.new_beer(admin_token)
    customer = api.new_customer()
    key = unique("set")

    first = api.set_quantity(customer.token, sku, 3, key=key)
    again = api.set_quantity(customer.token, sku, 3, key=key)

    assert again.content == first.content
    assert again.headers["Idempotent-Replayed"] == "true"
    assert_problem(api.set_quantity(customer.token, sku, 4, key=key), 422)


def test_the_order_history_comes_a_page_at_a_time_with_the_total_count(
    api: ShopApi, admin_token: str
) -> None:
    sku = api.new_beer(admin_token)
    customer = api.new_customer()
    ids = []
    for _ in range(4):
        api.add_to_order(customer.token, sku, 1)
        ids.append(api.checkout(customer.token).json()["id"])
    ids.append(api.add_to_order(customer.token, sku, 1).json()["id"])

    pages = [api.order_history(customer.token, {"limit": 2, "offset": o}) for o in (0, 2, 4, 6)]

    assert [[order["id"] for order in page.json()] for page in pages] == [
        ids[0:2],
        ids[2:4],
        ids[4:5],
        [],
    ]
    assert {page.headers["X-Total-Count"] for page in pages} == {"5"}
    assert api.order_history(customer.token).headers["X-Total-Count"] == "5"


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1001}, {"offset": -1}])
def test_a_bad_page_of_the_order_history_is_400(api: ShopApi, params: dict[str, int]) -> None:
    customer = api.new_customer()
    problem = assert_problem(api.order_history(customer.token, params), 400)
    assert list(problem["errors"]) == list(params)


def test_an_administrator_reads_and_lists_another_users_orders(
    api: ShopApi, admin_token: str
) -> None:
    sku = api.new_beer(admin_token)
    customer = api.new_customer()
    api.add_to_order(customer.token, sku, 2)
    closed = api.checkout(customer.token).json()
    still_open = api.add_to_order(customer.token, sku, 1).json()

    read = api.order(admin_token, closed["id"])
    listed = api.order_history(admin_token, {"user_id": customer.id, "limit": 1, "offset": 1})

    assert read.status_code == 200, read.text
    assert read.json() == closed
    assert listed.status_code == 200, listed.text
    assert listed.json() == [still_open]
    assert listed.headers["X-Total-Count"] == "2"


def test_anyone_but_an_administrator_sending_user_id_is_403(api: ShopApi, admin_token: str) -> None:
    sku = api.new_beer(admin_token)
    customer, other = api.new_customer(), api.new_customer()
    order_id = api.add_to_order(other.token, sku, 1).json()["id"]

    for user_id in (other.id, customer.id):
        response = api.order_history(customer.token, {"user_id": user_id})
        assert_problem(response, 403)
    assert_problem(api.order(customer.token, order_id), 404)
