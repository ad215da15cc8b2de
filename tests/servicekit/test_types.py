from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from marshmallow import ValidationError
from sqlalchemy.dialects import sqlite

from servicekit.db import Cents, UTCDateTime
from servicekit.problem_json import flatten_validation_detail
from servicekit.schemas import Money, UtcTime


@pytest.mark.parametrize(
    "given, expected",
    [
        ("1.19", "1.19"),
        ("2", "2.00"),
        (1.5, "1.50"),
        (3, "3.00"),
        ("0.10", "0.10"),
    ],
)
def test_money_reads_strings_and_numbers_exactly(given: Any, expected: str) -> None:
    assert str(Money().deserialize(given)) == expected


@pytest.mark.parametrize(
    "given", ["1.999", "1.190", 0.001, "abc", "1e2", "NaN", "Infinity", None, True, []]
)
def test_money_refuses_what_it_would_have_to_round_or_guess(given: Any) -> None:
    with pytest.raises(ValidationError):
        Money(allow_none=False).deserialize(given)


def test_money_is_written_with_two_places() -> None:
    assert Money().serialize("p", {"p": Decimal("7")}) == "7.00"


def test_cents_store_exact_amounts() -> None:
    column, dialect = Cents(), sqlite.dialect()
    assert column.process_bind_param(Decimal("1.19"), dialect) == 119
    assert column.process_result_value(119, dialect) == Decimal("1.19")
    with pytest.raises(ValueError):
        column.process_bind_param(Decimal("1.191"), dialect)


def test_times_are_utc_with_an_offset_to_the_second() -> None:
    moment = datetime(2026, 11, 28, 2, 15, 36, 123456, tzinfo=UTC)
    assert UtcTime().serialize("t", {"t": moment}) == "2026-11-28T02:15:36+00:00"


def test_naive_datetimes_are_refused_by_the_column() -> None:
    with pytest.raises(ValueError):
        UTCDateTime().process_bind_param(datetime(2026, 1, 1), sqlite.dialect())


def test_validation_details_flatten_to_fields() -> None:
    detail = {
        "json_or_form": {"price": ["bad"], "_schema": ["Invalid input type."]},
        "query": {"sku": {"0": ["x"]}},
    }
    assert flatten_validation_detail(detail) == {
        "price": ["bad"],
        "body": ["Invalid input type."],
        "sku": ["x"],
    }
