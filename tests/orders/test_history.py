"""The order history a page at a time, and what administrators may read."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.fakes import ALICE as ALICE_USER
from tests.orders.conftest import AddToOrder
from tests.problems import assert_problem

from .conftest import ALICE, BOB

ADMIN = {"Authorization": "Bearer admin-token"}


def order_history(client: FlaskClient, count: int, headers: dict[str, str] = ALICE) -> list[int]:
    """Check out `count` orders of one beer each; their ids, oldest first."""
    ids = []
    for _ in range(count):
        client.put("/api/orders/current", json={"sku": "123456"}, headers=headers)
        ids.append(client.post("/api/orders/checkout", headers=headers).json["id"])
    return ids


def listed(client: FlaskClient, headers: dict[str, str] = ALICE, **query: Any) -> Any:
    response = client.get("/api/orders/", query_string=query, headers=headers)
    assert response.status_code == 200, response.json
    return response


def test_the_history_is_a_page_oldest_first_with_the_total_count(client: FlaskClient) -> None:
    ids = order_history(client, 5)

    response = listed(client, limit=2, offset=1)

    assert [order["id"] for order in response.json] == ids[1:3]
    assert response.headers["X-Total-Count"] == "5"


def test_a_page_holds_every_line_of_its_orders(client: FlaskClient, add: AddToOrder) -> None:
    order_history(client, 1)
    add("123456", 2)
    add("123457", 1)
    add("123458", 3)

    (page,) = listed(client, limit=1, offset=1).json

    assert [(line["sku"], line["quantity"]) for line in page["beers"]] == [
        ("123456", 2),
        ("123457", 1),
        ("123458", 3),
    ]


def test_by_default_a_page_holds_100_orders_from_the_first(client: FlaskClient) -> None:
    ids = order_history(client, 3)

    response = listed(client)

    assert [order["id"] for order in response.json] == ids
    assert response.headers["X-Total-Count"] == "3"


def test_a_page_past_the_end_is_empty_and_still_counts(client: FlaskClient) -> None:
    order_history(client, 2)

    response = listed(client, offset=5)

    assert response.json == []
    assert response.headers["X-Total-Count"] == "2"


def test_no_orders_is_an_empty_page_of_a_count_of_0(client: FlaskClient) -> None:
    response = listed(client)
    assert response.json == []
    assert response.headers["X-Total-Count"] == "0"


def test_the_count_is_of_the_callers_orders_only(client: FlaskClient) -> None:
    order_history(client, 2)
    order_history(client, 1, headers=BOB)

    assert listed(client, headers=BOB).headers["X-Total-Count"] == "1"


@pytest.mark.parametrize(
    "query, field",
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "x"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "1.5"}, "offset"),
        ({"user_id": "0"}, "user_id"),
        ({"user_id": "me"}, "user_id"),
    ],
)
def test_a_bad_page_is_a_400_naming_the_parameter(
    client: FlaskClient, query: dict[str, str], field: str
) -> None:
    response = client.get("/api/orders/", query_string=query, headers=ADMIN)
    assert list(assert_problem(response, 400)["errors"]) == [field]


def test_an_administrator_lists_any_users_orders(client: FlaskClient) -> None:
    ids = order_history(client, 3)

    response = listed(client, headers=ADMIN, user_id=ALICE_USER.id, limit=2)

    assert [order["id"] for order in response.json] == ids[:2]
    assert response.headers["X-Total-Count"] == "3"


def test_an_administrator_without_user_id_lists_their_own(client: FlaskClient) -> None:
    order_history(client, 1)
    assert listed(client, headers=ADMIN).json == []


@pytest.mark.parametrize("whose", [ALICE_USER.id, 3], ids=["own id", "another's id"])
def test_user_id_from_anyone_but_an_administrator_is_a_403(client: FlaskClient, whose: int) -> None:
    order_history(client, 1, headers=BOB)

    response = client.get("/api/orders/", query_string={"user_id": whose}, headers=ALICE)

    assert "administrator" in assert_problem(response, 403)["detail"]


def test_an_administrator_reads_any_order(client: FlaskClient, add: AddToOrder) -> None:
    order = add("123456", 2)

    response = client.get(f"/api/orders/{order['id']}", headers=ADMIN)

    assert response.status_code == 200
    assert response.json == order


def test_an_order_that_does_not_exist_is_404_to_an_administrator_too(
    client: FlaskClient,
) -> None:
    response = client.get("/api/orders/7", headers=ADMIN)
    assert assert_problem(response, 404)["detail"] == "There is no order 7."
    assert client.get("/api/orders/99999999999999999999", headers=ADMIN).status_code == 404


def test_to_anyone_else_another_users_order_is_404(client: FlaskClient, add: AddToOrder) -> None:
    order = add("123456", 2)
    assert_problem(client.get(f"/api/orders/{order['id']}", headers=BOB), 404)
