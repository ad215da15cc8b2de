"""What operators rely on: health, readiness, metrics, request ids and the API docs."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable
from functools import partial

import pytest
import requests

from tests.metrics import metric_types, samples

from .api_client import TIMEOUT, ShopApi, bearer
from .services import SERVICES, Service, Shop

pytestmark = pytest.mark.e2e

EXPECTED_PATHS = {
    "users": [
        "/api/users/register",
        "/api/users/exists",
        "/api/users/login",
        "/api/users/logout",
        "/api/users/check_token",
        "/api/users/me",
    ],
    # Collections without their slash: both are served, linters want this one.
    "beers": ["/api/beers", "/api/beers/{sku}"],
    "orders": [
        "/api/orders",
        "/api/orders/current",
        "/api/orders/checkout",
        "/api/orders/{order_id}",
    ],
}


def service(shop: Shop, name: str) -> Service:
    found: Service = getattr(shop, name)
    return found


def eventually(check: Callable[[], bool], seconds: float = 5.0) -> bool:
    """Whether check() comes true within so many seconds (logs and metrics may lag)."""
    deadline = time.monotonic() + seconds
    while True:
        if check():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)


def has_logged(service: Service, text: str) -> bool:
    return text in service.output()


def scrape(url: str) -> str:
    response = requests.get(f"{url}/metrics", timeout=TIMEOUT)
    assert response.status_code == 200
    return response.text


# health and readiness


@pytest.mark.parametrize("name", SERVICES)
def test_health_says_ok_while_the_process_serves(shop: Shop, name: str) -> None:
    response = requests.get(f"{service(shop, name).url}/health", timeout=TIMEOUT)

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize("name", SERVICES)
def test_ready_says_200_when_the_database_answers(shop: Shop, name: str) -> None:
    response = requests.get(f"{service(shop, name).url}/ready", timeout=TIMEOUT)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")


# request ids


@pytest.mark.parametrize("name", SERVICES)
def test_a_request_id_sent_is_echoed(shop: Shop, name: str) -> None:
    request_id = f"e2e-{uuid.uuid4().hex}"

    response = requests.get(
        f"{service(shop, name).url}/health", headers={"X-Request-ID": request_id}, timeout=TIMEOUT
    )

    assert response.headers["X-Request-ID"] == request_id


@pytest.mark.parametrize("name", SERVICES)
def test_a_request_id_is_made_up_when_none_is_sent(shop: Shop, name: str) -> None:
    first = requests.get(f"{service(shop, name).url}/health", timeout=TIMEOUT)
    second = requests.get(f"{service(shop, name).url}/no/such/path", timeout=TIMEOUT)

    assert first.headers["X-Request-ID"]
    assert second.headers["X-Request-ID"]
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


def test_the_request_id_sent_to_orders_reaches_users_and_beers(
    shop: Shop, api: ShopApi, admin_token: str
) -> None:
    sku = api.new_beer(admin_token)
    customer = api.new_customer()
    request_id = f"e2e-{uuid.uuid4().hex}"

    response = requests.put(
        f"{api.orders_url}/api/orders/current",
        json={"sku": sku, "quantity": 1},
        headers={**bearer(customer.token), "X-Request-ID": request_id},
        timeout=TIMEOUT,
    )

    assert response.status_code == 200
    assert response.headers["X-Request-ID"] == request_id
    for logged in (shop.users, shop.beers, shop.orders):
        assert eventually(partial(has_logged, logged, request_id)), logged.name


# metrics


@pytest.mark.parametrize("name", SERVICES)
def test_metrics_are_prometheus_text_counting_requests(shop: Shop, name: str) -> None:
    url = service(shop, name).url
    for _ in range(4):
        requests.get(f"{url}/health", timeout=TIMEOUT)

    response = requests.get(f"{url}/metrics", timeout=TIMEOUT)

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    types = metric_types(response.text)
    assert types["http_requests"] == "counter"
    assert types["http_request_duration_seconds"] == "histogram"

    def health_is_counted() -> bool:
        counts = samples(scrape(url), "http_requests_total")
        return any(labels["endpoint"] == "/health" and value > 0 for labels, value in counts)

    # Each worker may keep its own counts: scrape until one shows them.
    assert eventually(health_is_counted)


@pytest.mark.parametrize("name", SERVICES)
def test_metrics_count_every_request_whichever_worker_served_it(shop: Shop, name: str) -> None:
    url = service(shop, name).url
    health = {"endpoint": "/health", "method": "GET", "status": "200"}

    def health_count() -> float:
        counts = samples(scrape(url), "http_requests_total")
        return sum(value for labels, value in counts if labels == health)

    before = health_count()
    for _ in range(20):
        requests.get(f"{url}/health", timeout=TIMEOUT)
    after = [health_count() for _ in range(4)]

    assert after == [before + 20] * 4


def test_orders_metrics_count_its_calls_to_the_other_services(
    shop: Shop, api: ShopApi, admin_token: str
) -> None:
    sku = api.new_beer(admin_token)
    customer = api.new_customer()
    assert api.add_to_order(customer.token, sku, 1).status_code == 200

    def upstream_services() -> set[str]:
        found = samples(scrape(shop.orders.url), "upstream_requests_total")
        return {labels["service"] for labels, value in found if value > 0}

    # Each worker may keep its own counts: scrape until one shows them.
    assert eventually(lambda: upstream_services() >= {"users", "beers"})


# the API documents


@pytest.mark.parametrize("name", SERVICES)
def test_the_openapi_document_is_openapi_3_with_every_path(shop: Shop, name: str) -> None:
    response = requests.get(f"{service(shop, name).url}/api/openapi.json", timeout=TIMEOUT)

    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert set(EXPECTED_PATHS[name]) <= document["paths"].keys()


@pytest.mark.parametrize("name", SERVICES)
def test_the_openapi_document_names_no_host_whoever_asked_first(shop: Shop, name: str) -> None:
    url = f"{service(shop, name).url}/api/openapi.json"
    # Enough requests to reach every worker: each makes its document once.
    asked_as = [f"client-{number}.example" for number in range(12)]

    documents = [
        requests.get(url, headers={"Host": host}, timeout=TIMEOUT).json() for host in asked_as
    ]

    assert all(document["servers"] == [{"url": "/"}] for document in documents)
    assert not any(host in json.dumps(documents) for host in asked_as)


@pytest.mark.parametrize("name", SERVICES)
def test_every_operation_has_an_id_a_tag_and_examples_of_its_own_statuses(
    shop: Shop, name: str
) -> None:
    document = requests.get(f"{service(shop, name).url}/api/openapi.json", timeout=TIMEOUT).json()
    operations = [op for path_item in document["paths"].values() for op in path_item.values()]

    ids = [operation["operationId"] for operation in operations]
    assert len(ids) == len(set(ids))
    for operation in operations:
        assert operation["tags"], operation["operationId"]
        for status, response in operation["responses"].items():
            if status[0] in "45":
                media_type = response["content"]["application/problem+json"]
                shown = [media_type["example"]] if "example" in media_type else []
                shown += [named["value"] for named in media_type.get("examples", {}).values()]
                assert shown and all(body["status"] == int(status) for body in shown), (
                    f"{operation['operationId']} {status}"
                )
    assert "\\Z" not in json.dumps(document)


@pytest.mark.parametrize("name", SERVICES)
def test_the_docs_page_loads_its_assets_from_the_service_itself(shop: Shop, name: str) -> None:
    url = service(shop, name).url

    page = requests.get(f"{url}/api/docs", timeout=TIMEOUT)

    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:css|js|png))"', page.text)
    assert any(asset.endswith(".css") for asset in assets), page.text
    assert any(asset.endswith(".js") for asset in assets), page.text
    for asset in assets:
        assert asset.startswith("/") and not asset.startswith("//"), asset
        loaded = requests.get(url + asset, timeout=TIMEOUT)
        assert loaded.status_code == 200, asset
        assert len(loaded.content) > 100, asset
    for cdn in ("unpkg", "jsdelivr", "cdnjs", "googleapis"):
        assert cdn not in page.text


@pytest.mark.parametrize("name", SERVICES)
def test_the_docs_page_reads_the_services_own_openapi_document(shop: Shop, name: str) -> None:
    page = requests.get(f"{service(shop, name).url}/api/docs", timeout=TIMEOUT)

    assert '"/api/openapi.json"' in page.text
