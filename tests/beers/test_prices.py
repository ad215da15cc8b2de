"""A beer's price field: Money (servicekit.schemas) held to beers' range."""

from typing import Any

import pytest
from marshmallow import ValidationError

from beers.schemas import price_field


@pytest.mark.parametrize("given", ["0", "0.00", "-1", "1000000", "999999.991"])
def test_a_price_is_more_than_zero_and_at_most_999999_99(given: Any) -> None:
    with pytest.raises(ValidationError):
        price_field().deserialize(given)


@pytest.mark.parametrize("given, expected", [("0.01", "0.01"), ("999999.99", "999999.99")])
def test_a_price_at_either_end_of_the_range_is_taken(given: str, expected: str) -> None:
    assert str(price_field().deserialize(given)) == expected
