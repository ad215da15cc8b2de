"""A query parameter or body field that an operation does not take is a 400
naming it, on every operation each service documents, and nothing is written."""

from __future__ import annotations

import re
from typing import Any

import pytest
import requests

from tests.problems import assert_problem

from .api_client import PASSWORD, TIMEOUT, ShopApi, bearer, unique
from .services import Shop

pytestmark = pytest.mark.e2e

UNKNOWN = {"qty": ["Unknown field."]}


def documented_operations(url: str) -> list[tuple[str, str]]:
    """(method, path) of every operation in the service's OpenAPI document."""
    document = requests.get(f"{url}/api/openapi.json", timeout=TIMEOUT).json()
    return [
        (method, path)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "put", "post", "patch", "delete")
    ]


def url_of(base: str, path: str) -> str:
    return base + re.sub(r"\{[^}]+\}", "7", path)


@pytest.mark.parametrize("service", ["users", "beers", "orders"])
def test_every_operation_refuses_a_query_parameter_it_does_not_take(
    shop: Shop, service: str
) -> None:
    base = getattr(shop, service).url
    operations = documented_operations(base)
    assert len(operations) >= 5
    for method, path in operations:
        response = requests.request(
            method, url_of(base, path), params={"qty": "3"}, timeout=TIMEOUT
        )
        assert assert_problem(response, 400)["errors"] == UNKNOWN, (method, path)


def test_a_catalogue_query_it_does_not_take_is_400_not_the_whole_catalogue(api: ShopApi) -> None:
    response = api.list_beers({"name": "Tuborg"})
    assert assert_problem(response, 400)["errors"] == {"name": ["Unknown field."]}


def test_a_beer_asked_for_with_a_query_is_400_naming_it(api: ShopApi) -> None:
    response = requests.get(f"{api.beers_url}/api/beers/123456?foo=1", timeout=TIMEOUT)
    assert assert_problem(response, 400)["errors"] == {"foo": ["Unknown field."]}


def test_registering_with_a_field_it_does_not_take_registers_nobody(api: ShopApi) -> None:
    username = unique("extra")
    body = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}
    response = requests.post(
        f"{api.users_url}/api/users/register", json={**body, "is_admin": True}, timeout=TIMEOUT
    )
    assert assert_problem(response, 400)["errors"] == {"is_admin": ["Unknown field."]}
    assert api.login(username).status_code == 401


def test_adding_a_beer_with_a_field_it_does_not_take_adds_nothing(
    api: ShopApi, admin_token: str
) -> None:
    sku = unique("sku")
    response = api.create_beer(admin_token, sku, qty=3)
    assert assert_problem(response, 400)["errors"] == UNKNOWN
    assert api.beer(sku).status_code == 404


@pytest.mark.parametrize("form", [False, True])
def test_adding_to_the_order_with_qty_is_400_and_adds_nothing(
    api: ShopApi, admin_token: str, form: bool
) -> None:
    customer = api.new_customer()
    sku = api.new_beer(admin_token)
    body: dict[str, Any] = {"data" if form else "json": {"sku": sku, "qty": 3}}
    response = requests.put(
        f"{api.orders_url}/api/orders/current", headers=customer.auth, timeout=TIMEOUT, **body
    )
    assert assert_problem(response, 400)["errors"] == UNKNOWN
    assert api.current_order_body(customer.token)["beers"] == []


def test_checking_out_with_a_body_field_is_400_and_checks_nothing_out(
    api: ShopApi, admin_token: str
) -> None:
    customer = api.new_customer()
    sku = api.new_beer(admin_token)
    assert api.add_to_order(customer.token, sku).status_code == 200
    response = requests.post(
        f"{api.orders_url}/api/orders/checkout",
        json={"qty": 3},
        headers=bearer(customer.token),
        timeout=TIMEOUT,
    )
    assert assert_problem(response, 400)["errors"] == UNKNOWN
    assert api.current_order_body(customer.token)["is_open"] is True
