"""No surprise charges: checkout pays only the prices the open order shows."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest
from flask.testing import FlaskClient

from orders import domain
from orders.beers_client import CatalogueBeer
from servicekit.db import utcnow
from tests.fakes import ALICE as ALICE_USER
from tests.fakes import FakeBeersClient
from tests.orders.conftest import AddToOrder
from tests.problems import assert_problem

from .conftest import ALICE


def reprice(beers: FakeBeersClient, sku: str, price: str) -> None:
    beer = beers.catalogue[sku]
    beers.catalogue[sku] = CatalogueBeer(sku, beer.name, Decimal(price))


def test_a_price_changed_since_the_order_showed_it_is_a_409_naming_the_sku(
    client: FlaskClient, add: AddToOrder, beers: FakeBeersClient
) -> None:
    add("123456", 4)
    add("123457", 1)
    reprice(beers, "123456", "1.25")

    response = client.post("/api/orders/checkout", headers=ALICE)

    problem = assert_problem(response, 409)
    assert problem["errors"] == {"123456": ["The price changed from 1.19 to 1.25."]}
    assert problem["changed"] == [{"sku": "123456", "unit_price": "1.19", "price": "1.25"}]
    assert "123456" in problem["detail"]


def test_after_the_409_the_open_order_shows_the_current_prices_and_nothing_else_changed(
    client: FlaskClient, add: AddToOrder, beers: FakeBeersClient
) -> None:
    add("123456", 4)
    before = add("123457", 1)
    reprice(beers, "123456", "1.25")
    beers.catalogue["123456"] = CatalogueBeer("123456", "Бургаско светло", Decimal("1.25"))

    client.post("/api/orders/checkout", headers=ALICE)

    after = client.get("/api/orders/current", headers=ALICE).json
    assert after["id"] == before["id"]
    assert after["is_open"] is True
    assert after["time_checked_out"] is None
    assert after["beers"] == [
        {
            "sku": "123456",
            "name": "Бургаско",
            "quantity": 4,
            "unit_price": "1.25",
            "line_total": "5.00",
        },
        before["beers"][1],
    ]
    assert after["total"] == "7.00"


def test_the_repriced_order_s_time_modified_is_the_time_of_the_change(
    client: FlaskClient,
    add: AddToOrder,
    beers: FakeBeersClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    before = add("123456", 4)
    reprice(beers, "123456", "1.25")
    an_hour_later = utcnow() + timedelta(hours=1)
    monkeypatch.setattr(domain, "utcnow", lambda: an_hour_later)

    client.post("/api/orders/checkout", headers=ALICE)

    after = client.get("/api/orders/current", headers=ALICE).json
    assert after["time_created"] == before["time_created"]
    assert datetime.fromisoformat(after["time_modified"]) == an_hour_later.replace(microsecond=0)


def test_a_second_checkout_pays_the_prices_now_shown(
    client: FlaskClient, add: AddToOrder, beers: FakeBeersClient
) -> None:
    add("123456", 4)
    reprice(beers, "123456", "1.25")
    assert client.post("/api/orders/checkout", headers=ALICE).status_code == 409

    response = client.post("/api/orders/checkout", headers=ALICE)

    assert response.status_code == 200, response.json
    assert response.json["is_open"] is False
    assert response.json["total"] == "5.00"
    assert response.json["beers"][0]["unit_price"] == "1.25"


def test_a_price_changed_again_after_the_409_is_another_409(
    client: FlaskClient, add: AddToOrder, beers: FakeBeersClient
) -> None:
    add("123456", 4)
    reprice(beers, "123456", "1.25")
    client.post("/api/orders/checkout", headers=ALICE)
    reprice(beers, "123456", "1.30")

    response = client.post("/api/orders/checkout", headers=ALICE)

    problem = assert_problem(response, 409)
    assert problem["changed"] == [{"sku": "123456", "unit_price": "1.25", "price": "1.30"}]
    assert client.get("/api/orders/current", headers=ALICE).json["total"] == "5.20"


def test_a_price_that_went_down_is_not_charged_silently_either(
    client: FlaskClient, add: AddToOrder, beers: FakeBeersClient
) -> None:
    add("123457", 1)
    reprice(beers, "123457", "1.80")

    problem = assert_problem(client.post("/api/orders/checkout", headers=ALICE), 409)

    assert problem["errors"] == {"123457": ["The price changed from 2.00 to 1.80."]}


def test_a_beer_that_left_the_catalogue_wins_and_nothing_is_repriced(
    client: FlaskClient, add: AddToOrder, beers: FakeBeersClient
) -> None:
    add("123456", 4)
    before = add("123457", 1)
    reprice(beers, "123456", "1.25")
    del beers.catalogue["123457"]

    problem = assert_problem(client.post("/api/orders/checkout", headers=ALICE), 409)

    assert problem["skus"] == ["123457"]
    assert "changed" not in problem
    assert client.get("/api/orders/current", headers=ALICE).json == before


def test_prices_are_fetched_in_one_call_also_when_they_changed(
    client: FlaskClient, add: AddToOrder, beers: FakeBeersClient
) -> None:
    add("123456")
    add("123457")
    reprice(beers, "123456", "1.25")
    reprice(beers, "123457", "2.10")

    problem = assert_problem(client.post("/api/orders/checkout", headers=ALICE), 409)

    assert sorted(problem["errors"]) == ["123456", "123457"]
    assert beers.lookups == [("123456", "123457")]


def test_a_line_repriced_while_checkout_fetched_prices_is_charged_as_the_order_shows_it(
    client: FlaskClient, add: AddToOrder, beers: FakeBeersClient
) -> None:
    """The checkout's prices are older than the line: it fetches them again rather
    than charge (or show) a price the catalogue no longer asks."""
    add("123456", 1)

    def meanwhile() -> None:
        beers.during_lookup = None
        reprice(beers, "123456", "1.25")
        domain.set_quantity(ALICE_USER.id, beers.catalogue["123456"], 3)

    beers.during_lookup = meanwhile
    response = client.post("/api/orders/checkout", headers=ALICE)

    assert response.status_code == 200, response.json
    assert response.json["beers"][0]["quantity"] == 3
    assert response.json["beers"][0]["unit_price"] == "1.25"
    assert response.json["total"] == "3.75"
    assert len(beers.lookups) == 2


def test_a_beer_added_while_checkout_fetched_prices_is_priced_before_it_is_charged(
    client: FlaskClient, add: AddToOrder, beers: FakeBeersClient
) -> None:
    add("123456", 1)

    def meanwhile() -> None:
        beers.during_lookup = None
        domain.add_beer(ALICE_USER.id, beers.catalogue["123457"], 1)
        reprice(beers, "123457", "2.50")

    beers.during_lookup = meanwhile
    problem = assert_problem(client.post("/api/orders/checkout", headers=ALICE), 409)

    assert problem["changed"] == [{"sku": "123457", "unit_price": "2.00", "price": "2.50"}]
    assert beers.lookups == [("123456",), ("123456", "123457")]


def test_the_409_is_kept_for_its_idempotency_key_and_a_new_key_pays(
    client: FlaskClient, add: AddToOrder, beers: FakeBeersClient
) -> None:
    add("123456", 4)
    reprice(beers, "123456", "1.25")
    first = client.post("/api/orders/checkout", headers={**ALICE, "Idempotency-Key": "pay-1"})

    again = client.post("/api/orders/checkout", headers={**ALICE, "Idempotency-Key": "pay-1"})

    assert first.status_code == again.status_code == 409
    assert again.get_data() == first.get_data()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert client.get("/api/orders/current", headers=ALICE).json["is_open"] is True

    paid = client.post("/api/orders/checkout", headers={**ALICE, "Idempotency-Key": "pay-2"})

    assert paid.status_code == 200, paid.json
    assert paid.json["total"] == "5.00"
    assert "Idempotent-Replayed" not in paid.headers


def test_the_409_is_the_one_the_openapi_document_shows(
    client: FlaskClient, add: AddToOrder, beers: FakeBeersClient
) -> None:
    add("123456", 2)
    reprice(beers, "123456", "1.25")

    response = client.post("/api/orders/checkout", headers=ALICE)

    documented = client.get("/api/openapi.json").json["paths"]["/api/orders/checkout"]["post"]
    examples = documented["responses"]["409"]["content"]["application/problem+json"]["examples"]
    assert response.json in [example["value"] for example in examples.values()]
