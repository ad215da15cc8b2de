"""Bad input is a 400 problem naming every bad field at once, and writes nothing."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.problems import assert_problem

from .api_client import TIMEOUT, ShopApi, bearer, unique

pytestmark = pytest.mark.e2e


def assert_names_fields(response: requests.Response, *fields: str) -> dict[str, Any]:
    problem = assert_problem(response, 400)
    assert set(fields) <= problem["errors"].keys(), problem
    for field in fields:
        assert problem["errors"][field], problem
        assert all(isinstance(message, str) for message in problem["errors"][field])
    return problem


# users


@pytest.mark.parametrize(
    ("field", "fields"),
    [
        ("username", {"username": "ab"}),
        ("username", {"username": "has space"}),
        ("username", {"username": "x" * 65}),
        ("email", {"email": "not-an-email"}),
        ("password", {"password": "seven77"}),
        ("password", {"password": "p" * 129}),
        ("first_name", {"first_name": "n" * 256}),
        ("last_name", {"last_name": "n" * 256}),
    ],
)
def test_registering_with_a_bad_field_is_400_naming_it(
    api: ShopApi, field: str, fields: dict[str, str]
) -> None:
    username = unique("valid")
    body = {"username": username, "email": f"{username}@example.com", "password": "long enough"}

    response = requests.post(
        f"{api.users_url}/api/users/register", json={**body, **fields}, timeout=TIMEOUT
    )

    assert_names_fields(response, field)
    assert api.login(username, "long enough").status_code == 401


def test_registering_with_the_username_as_password_is_400_naming_password(api: ShopApi) -> None:
    username = unique("samesame")

    response = api.register(username, password=username.upper())

    assert_names_fields(response, "password")


def test_registering_names_every_bad_field_at_once(api: ShopApi) -> None:
    response = requests.post(
        f"{api.users_url}/api/users/register",
        json={"username": "x!", "email": "nope", "password": "short"},
        timeout=TIMEOUT,
    )

    assert_names_fields(response, "username", "email", "password")


def test_registering_with_nothing_names_every_required_field(api: ShopApi) -> None:
    response = requests.post(f"{api.users_url}/api/users/register", json={}, timeout=TIMEOUT)

    assert_names_fields(response, "username", "email", "password")


# beers


@pytest.mark.parametrize("price", ["1.999", "0.001", "0", "0.00", "-1", "1000000.00", "abc", ""])
def test_adding_a_beer_with_a_bad_price_is_400_naming_price(
    api: ShopApi, admin_token: str, price: str
) -> None:
    sku = unique("sku")

    response = api.create_beer(admin_token, sku, price=price)

    assert_names_fields(response, "price")
    assert api.beer(sku).status_code == 404


@pytest.mark.parametrize("price", ["0.01", "999999.99", "1.5"])
def test_adding_a_beer_at_a_price_at_the_limits_keeps_two_decimals(
    api: ShopApi, admin_token: str, price: str
) -> None:
    response = api.create_beer(admin_token, price=price)

    assert response.status_code == 201, response.text
    assert response.json()["price"] == f"{float(price):.2f}"


@pytest.mark.parametrize(
    "image", ["not a url", "ftp://example.com/beer.png", "http://example.com/" + "x" * 255]
)
def test_adding_a_beer_with_a_bad_image_url_is_400_naming_image(
    api: ShopApi, admin_token: str, image: str
) -> None:
    response = api.create_beer(admin_token, image=image)

    assert_names_fields(response, "image")


@pytest.mark.parametrize("sku", ["has space", "sku!", "ünï", "a/b", ".", "..", "x" * 65])
def test_adding_a_beer_with_a_bad_sku_is_400_naming_sku(
    api: ShopApi, admin_token: str, sku: str
) -> None:
    response = api.create_beer(admin_token, sku)

    assert_names_fields(response, "sku")


def test_adding_a_beer_names_every_bad_field_at_once(api: ShopApi, admin_token: str) -> None:
    response = api.create_beer(admin_token, "bad sku", name="", price="1.999", image="nope")

    assert_names_fields(response, "sku", "name", "price", "image")


def test_adding_a_beer_whose_sku_is_taken_is_409_and_keeps_the_first(
    api: ShopApi, admin_token: str
) -> None:
    sku = api.new_beer(admin_token, price="1.50", name="First")

    response = api.create_beer(admin_token, sku, price="3.00", name="Second")

    assert_problem(response, 409)
    assert api.beer(sku).json()["name"] == "First"


def test_replacing_a_beer_with_a_bad_price_is_400_and_changes_nothing(
    api: ShopApi, admin_token: str
) -> None:
    sku = api.new_beer(admin_token, price="1.50")

    response = api.replace_beer(admin_token, sku, price="2.345")

    assert_names_fields(response, "price")
    assert api.beer(sku).json()["price"] == "1.50"


def test_replacing_a_beer_that_is_not_there_is_404(api: ShopApi, admin_token: str) -> None:
    response = api.replace_beer(admin_token, unique("absent"))

    assert_problem(response, 404)


def test_deleting_a_beer_that_is_not_there_is_404(api: ShopApi, admin_token: str) -> None:
    response = api.delete_beer(admin_token, unique("absent"))

    assert_problem(response, 404)


# orders


@pytest.mark.parametrize(
    ("quantity", "form"),
    [
        (0, False),
        (-1, False),
        (10001, False),
        ("abc", False),
        (2.5, False),
        (True, False),
        (None, False),
        ("0", True),
        ("2.5", True),
        ("", True),
    ],
)
def test_adding_a_bad_quantity_is_400_naming_quantity_and_changes_nothing(
    api: ShopApi, admin_token: str, quantity: Any, form: bool
) -> None:
    sku = api.new_beer(admin_token)
    customer = api.new_customer()
    api.add_to_order(customer.token, sku, 1)
    before = api.current_order_body(customer.token)

    response = api.add_to_order(customer.token, sku, quantity, form=form)

    assert_names_fields(response, "quantity")
    assert api.current_order_body(customer.token) == before


def test_adding_a_bad_quantity_to_no_order_opens_none(api: ShopApi, admin_token: str) -> None:
    sku = api.new_beer(admin_token)
    customer = api.new_customer()

    response = api.add_to_order(customer.token, sku, 0)

    assert_names_fields(response, "quantity")
    assert api.order_history(customer.token).json() == []


def test_adding_without_a_sku_is_400_naming_sku(api: ShopApi) -> None:
    customer = api.new_customer()

    response = requests.put(
        f"{api.orders_url}/api/orders/current",
        json={"quantity": 1},
        headers=bearer(customer.token),
        timeout=TIMEOUT,
    )

    assert_names_fields(response, "sku")
    assert api.order_history(customer.token).json() == []


def test_adding_a_sku_that_is_not_in_the_catalogue_is_404_and_changes_nothing(
    api: ShopApi, admin_token: str
) -> None:
    sku = api.new_beer(admin_token)
    customer = api.new_customer()
    api.add_to_order(customer.token, sku, 1)
    before = api.current_order_body(customer.token)
    absent = unique("absent")

    response = api.add_to_order(customer.token, absent, 1)

    problem = assert_problem(response, 404)
    assert absent in problem["detail"]
    assert api.current_order_body(customer.token) == before


def test_removing_without_a_sku_is_400_naming_sku(api: ShopApi, admin_token: str) -> None:
    sku = api.new_beer(admin_token)
    customer = api.new_customer()
    api.add_to_order(customer.token, sku, 1)
    before = api.current_order_body(customer.token)

    response = requests.delete(
        f"{api.orders_url}/api/orders/current", headers=bearer(customer.token), timeout=TIMEOUT
    )

    assert_names_fields(response, "sku")
    assert api.current_order_body(customer.token) == before
