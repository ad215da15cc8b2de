"""Who may do what: 401 without a valid token, 403 without the right, 404 for others' orders."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from tests.problems import assert_problem

from .api_client import TIMEOUT, ShopApi, bearer, unique
from .services import ADMIN_PASSWORD, Shop, create_admin

pytestmark = pytest.mark.e2e

ORDER_ENDPOINTS = [
    ("GET", "/api/orders/"),
    ("GET", "/api/orders/current"),
    ("PUT", "/api/orders/current"),
    ("DELETE", "/api/orders/current"),
    ("POST", "/api/orders/checkout"),
    ("GET", "/api/orders/1"),
]
CATALOGUE_CHANGES = [
    ("POST", "/api/beers/"),
    ("PUT", "/api/beers/{sku}"),
    ("DELETE", "/api/beers/{sku}"),
]
NOT_A_VALID_TOKEN = {
    "no header": {},
    "empty bearer": {"Authorization": "Bearer "},
    "garbage bearer": {"Authorization": "Bearer not-a-token"},
    "garbage bare": {"Authorization": "not-a-token"},
}


def send(method: str, url: str, headers: dict[str, str], **kwargs: Any) -> requests.Response:
    return requests.request(method, url, headers=headers, timeout=TIMEOUT, **kwargs)


def assert_unauthorized(response: requests.Response) -> None:
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("headers", NOT_A_VALID_TOKEN.values(), ids=NOT_A_VALID_TOKEN.keys())
@pytest.mark.parametrize(("method", "path"), ORDER_ENDPOINTS)
def test_orders_without_a_valid_token_is_401_asking_for_a_bearer_token(
    api: ShopApi, method: str, path: str, headers: dict[str, str]
) -> None:
    response = send(method, api.orders_url + path, headers, json={"sku": "123456"})

    assert_unauthorized(response)


@pytest.mark.parametrize("headers", NOT_A_VALID_TOKEN.values(), ids=NOT_A_VALID_TOKEN.keys())
@pytest.mark.parametrize(("method", "path"), CATALOGUE_CHANGES)
def test_changing_the_catalogue_without_a_valid_token_is_401_and_changes_nothing(
    api: ShopApi, admin_token: str, method: str, path: str, headers: dict[str, str]
) -> None:
    existing = api.new_beer(admin_token, price="1.50")
    new_sku = unique("sku")
    body = {"sku": new_sku, "name": "Sneaky", "price": "0.01"}

    response = send(method, api.beers_url + path.format(sku=existing), headers, json=body)

    assert_unauthorized(response)
    assert api.beer(existing).json()["price"] == "1.50"
    assert api.beer(new_sku).status_code == 404


def test_a_logged_out_token_is_refused_by_orders(api: ShopApi) -> None:
    customer = api.new_customer()
    assert api.logout(customer.token).status_code == 204

    response = api.current_order(customer.token)

    assert_unauthorized(response)


def test_a_logged_out_token_is_refused_by_beers(api: ShopApi, shop: Shop) -> None:
    admin_token = api.token_for(shop.admin_username, ADMIN_PASSWORD)
    assert api.logout(admin_token).status_code == 204

    response = api.create_beer(admin_token)

    assert_unauthorized(response)


@pytest.mark.parametrize(("method", "path"), CATALOGUE_CHANGES)
def test_changing_the_catalogue_as_a_customer_is_403_and_changes_nothing(
    api: ShopApi, admin_token: str, method: str, path: str
) -> None:
    existing = api.new_beer(admin_token, price="1.50")
    customer = api.new_customer()
    new_sku = unique("sku")
    body = {"sku": new_sku, "name": "Sneaky", "price": "0.01"}

    response = send(
        method, api.beers_url + path.format(sku=existing), bearer(customer.token), json=body
    )

    assert_problem(response, 403)
    assert api.beer(existing).json()["price"] == "1.50"
    assert api.beer(new_sku).status_code == 404


def test_someone_elses_order_is_404(api: ShopApi, admin_token: str) -> None:
    sku = api.new_beer(admin_token)
    owner, stranger = api.new_customer(), api.new_customer()
    order_id = api.add_to_order(owner.token, sku, 1).json()["id"]

    response = api.order(stranger.token, order_id)

    assert_problem(response, 404)
    assert api.order(owner.token, order_id).status_code == 200


def test_someone_elses_orders_are_not_in_my_history(api: ShopApi, admin_token: str) -> None:
    sku = api.new_beer(admin_token)
    owner, stranger = api.new_customer(), api.new_customer()
    api.add_to_order(owner.token, sku, 1)

    assert api.order_history(stranger.token).json() == []
    assert api.current_order_body(stranger.token)["beers"] == []


@pytest.mark.parametrize(
    "order_id", ["999999999", "0", "-1", "not-a-number", "99999999999999999999"]
)
def test_an_unknown_order_id_is_404(api: ShopApi, order_id: str) -> None:
    customer = api.new_customer()

    response = api.order(customer.token, order_id)

    assert_problem(response, 404)


def test_an_operator_can_promote_a_registered_user_to_administrator(
    api: ShopApi, shop: Shop
) -> None:
    customer = api.new_customer()
    assert api.create_beer(customer.token).status_code == 403

    create_admin(customer.username, shop.users.env)

    response = api.create_beer(customer.token)
    assert response.status_code == 201, response.text
    assert api.me(customer.token).json()["is_admin"] is True


def test_creating_an_administrator_prints_no_secret(shop: Shop) -> None:
    assert shop.admin_username in shop.admin_output
    assert ADMIN_PASSWORD not in shop.admin_output
