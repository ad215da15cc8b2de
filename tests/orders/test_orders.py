from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient
from sqlalchemy.exc import IntegrityError

from orders.beers_client import CatalogueBeer
from orders.models import Line, Order, db
from tests.fakes import FakeBeersClient, FakeUsersClient
from tests.orders.conftest import AddToOrder

from .conftest import ALICE, BOB


def count(app: APIFlask, model: type[Any]) -> int | None:
    with app.app_context():
        return db.session.scalar(db.select(db.func.count()).select_from(model))


def test_a_user_with_no_open_order_sees_an_empty_one_that_is_not_stored(
    app: APIFlask, client: FlaskClient
) -> None:
    response = client.get("/api/orders/current", headers=ALICE)
    assert response.status_code == 200
    assert response.json["beers"] == []
    assert response.json["total"] == "0.00"
    assert response.json["is_open"] is True
    assert response.json["id"] is None
    assert count(app, Order) == 0


def test_adding_a_beer_opens_an_order_with_a_priced_line(client: FlaskClient) -> None:
    response = client.put(
        "/api/orders/current", json={"sku": "123456", "quantity": 3}, headers=ALICE
    )
    assert response.status_code == 200
    order = response.json
    assert order["is_open"] is True
    assert order["beers"] == [
        {
            "sku": "123456",
            "name": "Бургаско",
            "quantity": 3,
            "unit_price": "1.19",
            "line_total": "3.57",
        }
    ]
    assert order["total"] == "3.57"
    assert order["time_checked_out"] is None
    assert datetime.fromisoformat(order["time_created"]).utcoffset().total_seconds() == 0


def test_adding_with_a_form_and_no_quantity_adds_one(client: FlaskClient) -> None:
    response = client.put("/api/orders/current", data={"sku": "123457"}, headers=ALICE)
    assert response.status_code == 200
    assert response.json["beers"][0]["quantity"] == 1


def test_adding_the_same_beer_twice_adds_up(add: AddToOrder) -> None:
    add("123456", 2)
    order = add("123456", 5)
    assert [(line["sku"], line["quantity"]) for line in order["beers"]] == [("123456", 7)]


def test_the_line_takes_the_catalogue_price_when_last_added(
    add: AddToOrder, beers: FakeBeersClient
) -> None:
    add("123456", 1)
    beers.catalogue["123456"] = CatalogueBeer("123456", "Бургаско", Decimal("1.25"))
    order = add("123456", 1)
    assert order["beers"][0]["unit_price"] == "1.25"
    assert order["total"] == "2.50"


def test_the_total_is_the_sum_of_the_line_totals(add: AddToOrder) -> None:
    add("123456", 3)
    order = add("123457", 2)
    assert order["total"] == "7.57"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"sku": "123456", "quantity": 0}, "quantity"),
        ({"sku": "123456", "quantity": 10001}, "quantity"),
        ({"sku": "123456", "quantity": "abc"}, "quantity"),
        ({"sku": "123456", "quantity": 2.5}, "quantity"),
        ({"sku": "123456", "quantity": True}, "quantity"),
        ({"quantity": 1}, "sku"),
        ({"sku": "bad sku!"}, "sku"),
    ],
)
def test_bad_additions_are_a_400_naming_the_field_and_write_nothing(
    app: APIFlask, client: FlaskClient, body: dict[str, Any], field: str
) -> None:
    response = client.put("/api/orders/current", json=body, headers=ALICE)
    assert response.status_code == 400
    assert list(response.json["errors"]) == [field]
    assert count(app, Order) == 0


def test_an_unknown_sku_is_a_404_and_writes_nothing(app: APIFlask, client: FlaskClient) -> None:
    response = client.put("/api/orders/current", json={"sku": "999999"}, headers=ALICE)
    assert response.status_code == 404
    assert count(app, Order) == 0


def test_removing_a_beer_by_body_or_query_drops_its_line(
    client: FlaskClient, add: AddToOrder
) -> None:
    add("123456")
    add("123457")
    add("123458")
    assert (
        client.delete("/api/orders/current", json={"sku": "123456"}, headers=ALICE).status_code
        == 204
    )
    assert client.delete("/api/orders/current?sku=123457", headers=ALICE).status_code == 204
    order = client.get("/api/orders/current", headers=ALICE).json
    assert [line["sku"] for line in order["beers"]] == ["123458"]


def test_removing_a_beer_that_is_not_there_is_fine(client: FlaskClient, add: AddToOrder) -> None:
    add("123456")
    assert client.delete("/api/orders/current?sku=123457", headers=ALICE).status_code == 204
    assert client.delete("/api/orders/current?sku=123457", headers=BOB).status_code == 204


def test_removing_without_a_sku_is_a_400(client: FlaskClient) -> None:
    response = client.delete("/api/orders/current", headers=ALICE)
    assert response.status_code == 400
    assert list(response.json["errors"]) == ["sku"]


def test_checkout_freezes_the_prices_the_order_shows(
    client: FlaskClient, add: AddToOrder, beers: FakeBeersClient
) -> None:
    add("123456", 2)
    add("123457", 1)
    response = client.post("/api/orders/checkout", headers=ALICE)
    assert response.status_code == 200
    order = response.json
    assert order["is_open"] is False
    assert order["time_checked_out"] is not None
    assert order["total"] == "4.38"
    assert beers.lookups == [("123456", "123457")]  # one call for all SKUs

    beers.catalogue["123456"] = CatalogueBeer("123456", "Бургаско", Decimal("9.99"))
    again = client.get(f"/api/orders/{order['id']}", headers=ALICE).json
    assert again["total"] == "4.38"
    assert again["beers"][0]["unit_price"] == "1.19"


def test_after_checkout_the_next_addition_opens_a_new_order(
    client: FlaskClient, add: AddToOrder
) -> None:
    first = add("123456")
    client.post("/api/orders/checkout", headers=ALICE)
    second = add("123456")
    assert second["id"] != first["id"]
    history = client.get("/api/orders/", headers=ALICE).json
    assert [(o["id"], o["is_open"]) for o in history] == [
        (first["id"], False),
        (second["id"], True),
    ]


def test_checking_out_an_empty_order_is_a_conflict(client: FlaskClient, add: AddToOrder) -> None:
    assert client.post("/api/orders/checkout", headers=ALICE).status_code == 409
    add("123456")
    client.delete("/api/orders/current?sku=123456", headers=ALICE)
    response = client.post("/api/orders/checkout", headers=ALICE)
    assert response.status_code == 409
    assert response.mimetype == "application/problem+json"


def test_checkout_names_beers_that_left_the_catalogue_and_keeps_the_order_open(
    client: FlaskClient, add: AddToOrder, beers: FakeBeersClient
) -> None:
    add("123456")
    add("123457")
    del beers.catalogue["123457"]
    response = client.post("/api/orders/checkout", headers=ALICE)
    assert response.status_code == 409
    assert response.json["skus"] == ["123457"]
    assert "123457" in response.json["detail"]
    current = client.get("/api/orders/current", headers=ALICE).json
    assert current["is_open"] is True
    assert len(current["beers"]) == 2


def test_checkout_is_post_only(client: FlaskClient) -> None:
    assert client.get("/api/orders/checkout", headers=ALICE).status_code == 405


def test_someone_elses_order_is_not_found(client: FlaskClient, add: AddToOrder) -> None:
    order = add("123456")
    response = client.get(f"/api/orders/{order['id']}", headers=BOB)
    assert response.status_code == 404
    assert client.get("/api/orders/", headers=BOB).json == []


def test_an_unknown_order_is_not_found(client: FlaskClient) -> None:
    assert client.get("/api/orders/12345", headers=ALICE).status_code == 404


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/api/orders/"),
        ("get", "/api/orders/current"),
        ("put", "/api/orders/current"),
        ("delete", "/api/orders/current"),
        ("post", "/api/orders/checkout"),
        ("get", "/api/orders/1"),
    ],
)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer junk"}])
def test_every_orders_endpoint_needs_a_valid_token(
    client: FlaskClient, method: str, path: str, headers: dict[str, str]
) -> None:
    response = getattr(client, method)(path, headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_the_bare_token_is_accepted(client: FlaskClient) -> None:
    response = client.get("/api/orders/current", headers={"Authorization": "alice-token"})
    assert response.status_code == 200


def test_when_users_is_down_orders_answers_503_naming_it(
    client: FlaskClient, users: FakeUsersClient
) -> None:
    users.down = True
    response = client.get("/api/orders/current", headers=ALICE)
    assert response.status_code == 503
    assert response.json["service"] == "users"


def test_when_beers_is_down_adding_is_a_503_and_writes_nothing(
    app: APIFlask, client: FlaskClient, beers: FakeBeersClient
) -> None:
    beers.down = True
    response = client.put("/api/orders/current", json={"sku": "123456"}, headers=ALICE)
    assert response.status_code == 503
    assert response.json["service"] == "beers"
    assert count(app, Order) == 0


def test_when_beers_is_down_checkout_is_a_503_and_the_order_stays_open(
    app: APIFlask, client: FlaskClient, add: AddToOrder, beers: FakeBeersClient
) -> None:
    add("123456")
    beers.down = True
    response = client.post("/api/orders/checkout", headers=ALICE)
    assert response.status_code == 503
    beers.down = False
    assert client.get("/api/orders/current", headers=ALICE).json["is_open"] is True


def test_gets_change_nothing(app: APIFlask, client: FlaskClient, add: AddToOrder) -> None:
    add("123456")
    with app.app_context():
        before = [(o.version, o.time_modified) for o in db.session.scalars(db.select(Order))]
    for path in ("/api/orders/", "/api/orders/current", "/api/orders/1"):
        client.get(path, headers=ALICE)
    with app.app_context():
        after = [(o.version, o.time_modified) for o in db.session.scalars(db.select(Order))]
    assert before == after


def test_a_user_can_never_hold_two_open_orders(app: APIFlask, add: AddToOrder) -> None:
    add("123456")
    with app.app_context():
        db.session.add(Order(user_id=2, is_open=True))
        with pytest.raises(IntegrityError):
            db.session.commit()
        db.session.rollback()
    assert count(app, Line) == 1


def test_an_order_id_beyond_any_database_integer_is_just_not_found(client: FlaskClient) -> None:
    response = client.get("/api/orders/99999999999999999999", headers=ALICE)
    assert response.status_code == 404


def test_the_orders_collection_without_a_slash_is_the_same_resource(
    client: FlaskClient, add: AddToOrder
) -> None:
    add("123456")
    assert (
        client.get("/api/orders", headers=ALICE).json
        == client.get("/api/orders/", headers=ALICE).json
    )
    assert client.put("/api/orders", headers=ALICE).status_code == 405
