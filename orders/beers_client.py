"""What orders asks the beers service: does a SKU exist, and what does it cost."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol
from urllib.parse import quote

from servicekit.errors import ServiceUnavailable
from servicekit.upstream import ServiceClient

# Production servers cap a request line at about 4 KiB: an order with more
# SKUs than fit in this much query string is asked about in several calls
# (every real order fits in one).
MAX_QUERY_LENGTH = 3000


@dataclass(frozen=True)
class CatalogueBeer:
    sku: str
    name: str
    price: Decimal


class BeersClient(Protocol):
    """What orders asks the beers service: which SKUs exist, what they cost. The
    HTTP client is one; service tests hand create_app a fake."""

    def beer(self, sku: str) -> CatalogueBeer | None:
        """The beer with this SKU, or None when it is not in the catalogue."""

    def beers(self, skus: Iterable[str]) -> dict[str, CatalogueBeer]:
        """The beers among these SKUs that are in the catalogue, by SKU."""


class HttpBeersClient(ServiceClient, BeersClient):
    """Asks the beers service over HTTP."""

    service = "beers"

    def beer(self, sku: str) -> CatalogueBeer | None:
        """The beer with this SKU, or None when it is not in the catalogue."""
        response = self.call("GET", f"/api/beers/{quote(sku, safe='')}", endpoint="get_beer")
        if response.status == 404:
            return None
        return self._beer_of(self.json_of(response))

    def beers(self, skus: Iterable[str]) -> dict[str, CatalogueBeer]:
        """The beers among these SKUs that are in the catalogue, by SKU."""
        found: dict[str, CatalogueBeer] = {}
        for batch in _batches(sorted(set(skus))):
            response = self.call(
                "GET",
                "/api/beers/",
                endpoint="list_beers",
                params={"sku": batch, "limit": len(batch)},
            )
            body = self.json_of(response)
            if not isinstance(body, list):
                raise ServiceUnavailable(self.service, "it answered a list that is no list")
            for item in body:
                beer = self._beer_of(item)
                found[beer.sku] = beer
        return found

    def _beer_of(self, body: Any) -> CatalogueBeer:
        try:
            return CatalogueBeer(
                sku=str(body["sku"]), name=str(body["name"]), price=Decimal(body["price"])
            )
        except (KeyError, TypeError, InvalidOperation) as error:
            raise ServiceUnavailable(self.service, "it answered an unknown beer shape") from error


def _batches(skus: list[str]) -> Iterator[list[str]]:
    """The SKUs in groups whose `sku=...&sku=...` query fits MAX_QUERY_LENGTH."""
    batch: list[str] = []
    length = 0
    for sku in skus:
        cost = len("sku=&") + len(quote(sku, safe=""))
        if batch and length + cost > MAX_QUERY_LENGTH:
            yield batch
            batch, length = [], 0
        batch.append(sku)
        length += cost
    if batch:
        yield batch
