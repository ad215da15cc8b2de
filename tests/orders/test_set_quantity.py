"""PUT /api/orders/current/beers/<sku>: a line set to exactly so many."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient

from orders.beers_client import CatalogueBeer
from orders.models import Line, Order, db
from tests.fakes import FakeBeersClient
from tests.orders.conftest import AddToOrder
from tests.problems import assert_problem

from .conftest import ALICE, BOB


def set_line(
    client: FlaskClient, sku: str, quantity: Any, headers: dict[str, str] = ALICE, **kwargs: Any
) -> Any:
    return client.put(
        f"/api/orders/current/beers/{sku}", json={"quantity": quantity}, headers=headers, **kwargs
    )


def rows(app: APIFlask, model: type[Any]) -> int | None:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(model))


def test_setting_a_line_opens_an_order_with_exactly_that_many(client: FlaskClient) -> None:
    response = set_line(client, "123456", 4)

    assert response.status_code == 200
    assert response.json["is_open"] is True
    assert response.json["beers"] == [
        {
            "sku": "123456",
            "name": "Бургаско",
            "quantity": 4,
            "unit_price": "1.19",
            "line_total": "4.76",
        }
    ]
    assert response.json["total"] == "4.76"


def test_setting_a_line_replaces_its_quantity_rather_than_adding(
    client: FlaskClient, add: AddToOrder
) -> None:
    first = add("123456", 7)
    add("123457", 1)

    response = set_line(client, "123456", 2)

    assert response.json["id"] == first["id"]
    assert [(line["sku"], line["quantity"]) for line in response.json["beers"]] == [
        ("123456", 2),
        ("123457", 1),
    ]


def test_setting_a_line_twice_leaves_the_same_order(client: FlaskClient) -> None:
    first = set_line(client, "123456", 3).json
    second = set_line(client, "123456", 3).json

    assert {key: value for key, value in second.items() if key != "time_modified"} == {
        key: value for key, value in first.items() if key != "time_modified"
    }


def test_a_set_line_takes_the_catalogue_price_now(
    client: FlaskClient, add: AddToOrder, beers: FakeBeersClient
) -> None:
    add("123456", 1)
    beers.catalogue["123456"] = CatalogueBeer("123456", "Бургаско", Decimal("1.25"))

    response = set_line(client, "123456", 4)

    assert response.json["beers"][0]["unit_price"] == "1.25"
    assert response.json["total"] == "5.00"


def test_a_form_body_sets_a_line_too(client: FlaskClient) -> None:
    response = client.put("/api/orders/current/beers/123457", data={"quantity": "2"}, headers=ALICE)
    assert response.status_code == 200
    assert response.json["beers"][0]["quantity"] == 2


def test_the_most_a_line_holds_can_be_set(client: FlaskClient) -> None:
    assert set_line(client, "123456", 100000).json["beers"][0]["quantity"] == 100000


@pytest.mark.parametrize("quantity", [0, -1, 100001, "abc", 2.5, True, None])
def test_a_bad_quantity_is_a_400_naming_it_and_writes_nothing(
    app: APIFlask, client: FlaskClient, add: AddToOrder, quantity: Any
) -> None:
    before = add("123456", 2)

    problem = assert_problem(set_line(client, "123456", quantity), 400)

    assert list(problem["errors"]) == ["quantity"]
    assert client.get("/api/orders/current", headers=ALICE).json == before


def test_a_missing_quantity_is_a_400_and_opens_no_order(app: APIFlask, client: FlaskClient) -> None:
    response = client.put("/api/orders/current/beers/123456", json={}, headers=ALICE)

    assert list(assert_problem(response, 400)["errors"]) == ["quantity"]
    assert rows(app, Order) == 0


def test_a_sku_not_in_the_catalogue_is_a_404_and_writes_nothing(
    app: APIFlask, client: FlaskClient
) -> None:
    problem = assert_problem(set_line(client, "999999", 1), 404)

    assert problem["errors"] == {"sku": ["Not in the catalogue."]}
    assert rows(app, Order) == 0


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer junk"}])
def test_setting_a_line_needs_a_valid_token(client: FlaskClient, headers: dict[str, str]) -> None:
    response = set_line(client, "123456", 1, headers=headers)
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_when_beers_is_down_setting_a_line_is_a_503_and_writes_nothing(
    app: APIFlask, client: FlaskClient, beers: FakeBeersClient
) -> None:
    beers.down = True

    assert assert_problem(set_line(client, "123456", 1), 503)["service"] == "beers"
    assert rows(app, Order) == rows(app, Line) == 0


def test_setting_a_line_touches_only_the_callers_order(
    client: FlaskClient, add: AddToOrder
) -> None:
    bobs = add("123456", 5, headers=BOB)

    set_line(client, "123456", 1)

    assert client.get("/api/orders/current", headers=BOB).json == bobs


def test_a_retried_set_with_its_idempotency_key_is_replayed(client: FlaskClient) -> None:
    headers = {**ALICE, "Idempotency-Key": "set-1"}
    first = set_line(client, "123456", 3, headers=headers)
    set_line(client, "123456", 5)  # another request changed the line meanwhile

    again = set_line(client, "123456", 3, headers=headers)

    assert again.get_data() == first.get_data()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert client.get("/api/orders/current", headers=ALICE).json["beers"][0]["quantity"] == 5


def test_the_same_key_on_another_quantity_of_the_line_is_422(client: FlaskClient) -> None:
    """Another beer's line is another path, so another request: see test_idempotency."""
    headers = {**ALICE, "Idempotency-Key": "set-1"}
    set_line(client, "123456", 3, headers=headers)

    assert_problem(set_line(client, "123456", 4, headers=headers), 422)


def test_a_set_line_is_checked_out_at_its_price(client: FlaskClient) -> None:
    set_line(client, "123456", 4)
    set_line(client, "123457", 1)

    response = client.post("/api/orders/checkout", headers=ALICE)

    assert response.status_code == 200
    assert response.json["total"] == "6.76"


@pytest.mark.parametrize("sku", ["a" * 65, "..", "bad%20sku", "x" * 5000])
def test_a_sku_no_beer_can_have_is_a_404_without_asking_beers(
    app: APIFlask, client: FlaskClient, beers: FakeBeersClient, sku: str
) -> None:
    beers.down = True  # were it asked, the answer would be a 503

    assert_problem(set_line(client, sku, 1), 404)
    assert rows(app, Order) == 0
