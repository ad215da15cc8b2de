"""Every endpoint that takes a body takes it as JSON or as either kind of form."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.problems import assert_problem

from .api_client import PASSWORD, TIMEOUT, ShopApi, bearer, encoded, unique

pytestmark = pytest.mark.e2e

ENCODINGS = ["json", "urlencoded form", "multipart form"]


@dataclass
class Call:
    """One request to send, and what must be true once it has been answered."""

    method: str
    url: str
    fields: dict[str, str]
    status: int
    took_effect: Callable[[], bool] | None  # None: nothing to see but the answer
    headers: dict[str, str] | None = None


def current(api: ShopApi, token: str) -> list[dict[str, Any]]:
    lines: list[dict[str, Any]] = api.current_order_body(token)["beers"]
    return lines


def register(api: ShopApi, admin_token: str) -> Call:
    username = unique("body")
    return Call(
        "POST",
        f"{api.users_url}/api/users/register",
        {"username": username, "email": f"{username}@example.com", "password": PASSWORD},
        201,
        lambda: api.login(username).status_code == 200,
    )


def login(api: ShopApi, admin_token: str) -> Call:
    customer = api.new_customer()
    return Call(
        "POST",
        f"{api.users_url}/api/users/login",
        {"username": customer.username, "password": PASSWORD},
        200,
        None,
    )


def check_token(api: ShopApi, admin_token: str) -> Call:
    customer = api.new_customer()
    return Call(
        "POST", f"{api.users_url}/api/users/check_token", {"token": customer.token}, 200, None
    )


def logout(api: ShopApi, admin_token: str) -> Call:
    customer = api.new_customer()
    return Call(
        "POST",
        f"{api.users_url}/api/users/logout",
        {"token": customer.token},
        204,
        lambda: api.me(customer.token).status_code == 401,
    )


def add_beer_to_catalogue(api: ShopApi, admin_token: str) -> Call:
    sku = unique("body")
    return Call(
        "POST",
        f"{api.beers_url}/api/beers/",
        {"sku": sku, "name": "Body ale", "price": "2.40"},
        201,
        lambda: api.beer(sku).json().get("price") == "2.40",
        bearer(admin_token),
    )


def replace_beer(api: ShopApi, admin_token: str) -> Call:
    sku = api.new_beer(admin_token, price="1.00")
    return Call(
        "PUT",
        f"{api.beers_url}/api/beers/{sku}",
        {"name": "Renamed", "price": "1.25"},
        200,
        lambda: api.beer(sku).json()["price"] == "1.25",
        bearer(admin_token),
    )


def add_beer_to_order(api: ShopApi, admin_token: str) -> Call:
    sku = api.new_beer(admin_token)
    customer = api.new_customer()
    return Call(
        "PUT",
        f"{api.orders_url}/api/orders/current",
        {"sku": sku, "quantity": "3"},
        200,
        lambda: (
            [(line["sku"], line["quantity"]) for line in current(api, customer.token)] == [(sku, 3)]
        ),
        bearer(customer.token),
    )


def remove_beer_from_order(api: ShopApi, admin_token: str) -> Call:
    sku = api.new_beer(admin_token)
    customer = api.new_customer()
    api.add_to_order(customer.token, sku, 1)
    return Call(
        "DELETE",
        f"{api.orders_url}/api/orders/current",
        {"sku": sku},
        204,
        lambda: current(api, customer.token) == [],
        bearer(customer.token),
    )


ENDPOINTS = [
    register,
    login,
    check_token,
    logout,
    add_beer_to_catalogue,
    replace_beer,
    add_beer_to_order,
    remove_beer_from_order,
]


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.__name__ for e in ENDPOINTS])
def test_a_body_is_read_alike_as_json_or_either_form(
    api: ShopApi, admin_token: str, endpoint: Callable[[ShopApi, str], Call], encoding: str
) -> None:
    call = endpoint(api, admin_token)

    response = requests.request(
        call.method,
        call.url,
        headers=call.headers,
        timeout=TIMEOUT,
        **encoded(encoding, call.fields),
    )

    assert response.status_code == call.status, response.text
    assert call.took_effect is None or call.took_effect()


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.__name__ for e in ENDPOINTS])
def test_a_body_that_is_neither_json_nor_a_form_is_refused_as_a_problem(
    api: ShopApi, admin_token: str, endpoint: Callable[[ShopApi, str], Call]
) -> None:
    call = endpoint(api, admin_token)

    response = requests.request(
        call.method,
        call.url,
        headers={**(call.headers or {}), "Content-Type": "text/plain"},
        data="&".join(f"{name}={value}" for name, value in call.fields.items()),
        timeout=TIMEOUT,
    )

    assert 400 <= response.status_code < 500, response.text
    assert_problem(response, response.status_code)
    assert call.took_effect is None or not call.took_effect()


@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", None])
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=[e.__name__ for e in ENDPOINTS])
def test_json_sent_as_a_form_or_untyped_is_400_saying_to_send_it_as_json(
    api: ShopApi,
    admin_token: str,
    endpoint: Callable[[ShopApi, str], Call],
    content_type: str | None,
) -> None:
    """What `curl -d '{...}'` sends: JSON labelled a form (or, from other
    clients, not labelled at all)."""
    call = endpoint(api, admin_token)
    headers = {**(call.headers or {}), **({"Content-Type": content_type} if content_type else {})}

    response = requests.request(
        call.method,
        call.url,
        headers=headers,
        data=json.dumps(call.fields).encode(),
        timeout=TIMEOUT,
    )

    problem = assert_problem(response, 400)
    assert "send it with Content-Type: application/json" in problem["detail"], problem
    assert call.took_effect is None or not call.took_effect()
