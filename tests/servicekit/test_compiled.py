"""Reads compiled once and answers dumped by compiled schemas give exactly what
SQLAlchemy and marshmallow would: they are only faster."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from apiflask import APIFlask
from marshmallow import Schema, fields
from sqlalchemy import Executable, bindparam, select

import servicekit.db
import servicekit.output
from beers import create_app as create_beers_app
from beers.domain import BEER_BY_SKU, PAGE, PAGE_OF_ALL, seed_demo_catalogue
from beers.models import Beer, db
from beers.schemas import BeerOut
from orders.domain import LineView, OrderView
from orders.schemas import OrderOut
from servicekit.db import Query, read
from servicekit.output import compile_dumper, json_response
from servicekit.schemas import BaseSchema, Money, UtcTime
from tests.databases import fresh_app
from tests.fakes import FakeUsersClient
from users.schemas import ExistsOut, TokenOut, UserOut

MOMENT = datetime(2026, 11, 28, 2, 15, 36, 123456, tzinfo=UTC)


@pytest.fixture
def beers_app(tmp_path: Path) -> Iterator[APIFlask]:
    with fresh_app(create_beers_app, db, "beers", tmp_path, users_client=FakeUsersClient()) as app:
        with app.app_context():
            seed_demo_catalogue()
            yield app


def through_sqlalchemy(statement: Executable, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    with db.engine.connect() as connection:
        return [tuple(row) for row in connection.execute(statement, params)]


@pytest.mark.parametrize(
    ("query", "params"),
    [
        (BEER_BY_SKU, {"sku": "123456"}),
        (BEER_BY_SKU, {"sku": "no-such-sku"}),
        (PAGE_OF_ALL, {"limit": 2, "offset": 1}),
    ],
)
def test_a_compiled_read_gives_the_rows_sqlalchemy_gives(
    beers_app: APIFlask, query: Query, params: dict[str, Any]
) -> None:
    rows = read(db.engine, query, params)

    assert [tuple(row) for row in rows] == through_sqlalchemy(query.statement, params)


def test_a_compiled_read_converts_values_through_the_column_types(beers_app: APIFlask) -> None:
    [beer] = read(db.engine, BEER_BY_SKU, {"sku": "123456"})

    assert beer.price == Decimal("1.19") and isinstance(beer.price, Decimal)
    assert beer.time_created.tzinfo is not None
    assert beer._asdict()["sku"] == "123456"


def test_a_compiled_read_passes_bound_values_through_the_column_types(beers_app: APIFlask) -> None:
    newer = Query(select(Beer.sku).where(Beer.time_created > bindparam("since")))
    long_ago = datetime(2000, 1, 1, tzinfo=UTC)

    assert len(read(db.engine, newer, {"since": long_ago})) == 3
    assert read(db.engine, newer, {"since": datetime(2999, 1, 1, tzinfo=UTC)}) == []


def test_a_compiled_read_runs_on_a_connection_already_in_use(beers_app: APIFlask) -> None:
    with db.engine.connect() as connection:
        rows = read(connection, BEER_BY_SKU, {"sku": "123457"})

    assert rows[0].name == "Загорка"


def test_with_compiled_reads_off_a_query_gives_the_same_rows_through_sqlalchemy(
    beers_app: APIFlask, monkeypatch: pytest.MonkeyPatch
) -> None:
    compiled = read(db.engine, PAGE_OF_ALL, {"limit": 10, "offset": 0})
    monkeypatch.setattr(servicekit.db, "COMPILED_READS", False)
    monkeypatch.setattr(Query, "compiled", None)  # a compiled run would now fail

    plain = read(db.engine, PAGE_OF_ALL, {"limit": 10, "offset": 0})

    assert [tuple(row) for row in plain] == [tuple(row) for row in compiled]
    assert [row.price for row in plain] == [row.price for row in compiled]


def test_an_expanding_parameter_cannot_be_compiled_once(beers_app: APIFlask) -> None:
    with_skus = Query(PAGE.where(Beer.sku.in_(bindparam("skus", expanding=True))))

    with pytest.raises(ValueError, match="expanding"):
        read(db.engine, with_skus, {"skus": ["1"], "limit": 1, "offset": 0})


@dataclass
class Thing:
    id: int
    name: str
    price: Decimal
    when: datetime | None


class ThingOut(BaseSchema):
    id = fields.Integer()
    name = fields.String(data_key="title")
    price = Money()
    when = UtcTime(allow_none=True)


USER = {
    "id": 7,
    "username": "ivan",
    "email": "ivan@example.com",
    "first_name": None,
    "last_name": "Иванов",
    "is_admin": False,
    "time_registered": MOMENT,
    "time_modified": MOMENT,
    "password_hash": "never shown",
}
ORDER = OrderView(
    id=3,
    is_open=False,
    time_created=MOMENT,
    time_modified=MOMENT,
    time_checked_out=MOMENT,
    lines=[
        LineView("123456", "Бургаско", 2, Decimal("1.19")),
        LineView("123458", "Tuborg", 1, Decimal("1.50")),
    ],
)
EMPTY_ORDER = OrderView(None, True, None, None, None, [])


@pytest.mark.parametrize(
    ("schema", "obj"),
    [
        (ThingOut(), Thing(1, "a", Decimal("2.5"), MOMENT)),
        (ThingOut(), Thing(1, "a", Decimal("2.50"), None)),
        (
            ThingOut(many=True),
            [Thing(1, "a", Decimal("1"), MOMENT), Thing(2, "b", Decimal("3"), None)],
        ),
        (UserOut(), USER),
        (OrderOut(), ORDER),
        (OrderOut(), EMPTY_ORDER),
        (OrderOut(many=True), [ORDER, EMPTY_ORDER]),
        (ExistsOut(), {"username": "ivan", "exists": True}),
        (TokenOut(), {"token": "t0k", "token_type": "Bearer", "expires_at": MOMENT}),
    ],
    ids=lambda value: type(value).__name__,
)
def test_a_compiled_dumper_dumps_what_the_schema_dumps(schema: Schema, obj: object) -> None:
    assert compile_dumper(schema)(obj) == schema.dump(obj)


def test_a_compiled_dumper_dumps_rows_as_the_schema_does(beers_app: APIFlask) -> None:
    rows = read(db.engine, PAGE_OF_ALL, {"limit": 10, "offset": 0})

    assert compile_dumper(BeerOut(many=True))(rows) == BeerOut(many=True).dump(rows)


def test_with_compiled_dumps_off_answers_are_the_same_through_schema_dump(
    beers_app: APIFlask, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = beers_app.test_client()
    compiled = client.get("/api/beers/?limit=2").get_data()
    dumped: list[Any] = []
    schema_dump = Schema.dump

    def dump_counted(schema: Schema, obj: Any, **options: Any) -> Any:
        dumped.append(obj)
        return schema_dump(schema, obj, **options)

    monkeypatch.setattr(servicekit.output, "COMPILED_DUMPS", False)
    monkeypatch.setattr(Schema, "dump", dump_counted)

    plain = client.get("/api/beers/?limit=2").get_data()

    assert plain == compiled
    assert len(dumped) == 1


def test_json_answers_keep_non_ascii_and_end_in_a_newline() -> None:
    response = json_response({"name": "Загорка", "price": Decimal("2.00")}, 201)

    assert response.status_code == 201
    assert response.get_data() == '{"name":"Загорка","price":"2.00"}\n'.encode()
    assert response.mimetype == "application/json"
