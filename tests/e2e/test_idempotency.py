"""Idempotency keys over real HTTP, with several workers: concurrent requests
with one key run once; the others get the kept answer or a 409."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from .api_client import TIMEOUT, ShopApi, unique

pytestmark = pytest.mark.e2e


def test_concurrent_requests_with_one_key_add_once(api: ShopApi, admin_token: str) -> None:
    sku = api.new_beer(admin_token)
    customer = api.new_customer()
    headers = {**customer.auth, "Idempotency-Key": unique("key")}

    def add() -> requests.Response:
        return requests.put(
            f"{api.orders_url}/api/orders/current",
            json={"sku": sku, "quantity": 1},
            headers=headers,
            timeout=TIMEOUT,
        )

    with ThreadPoolExecutor(max_workers=10) as pool:
        answers = list(pool.map(lambda _: add(), range(10)))

    statuses = sorted(answer.status_code for answer in answers)
    assert set(statuses) <= {200, 409}, statuses
    first = [a for a in answers if a.status_code == 200 and "Idempotent-Replayed" not in a.headers]
    assert len(first) == 1
    assert all(
        a.content == first[0].content for a in answers if a.headers.get("Idempotent-Replayed")
    )
    [line] = api.current_order_body(customer.token)["beers"]
    assert line["quantity"] == 1
    assert add().headers["Idempotent-Replayed"] == "true"  # and afterwards, a replay


def test_a_key_that_is_not_ascii_is_a_400_and_adds_nothing(api: ShopApi, admin_token: str) -> None:
    sku = api.new_beer(admin_token)
    customer = api.new_customer()
    headers: dict[str, str | bytes] = {**customer.auth, "Idempotency-Key": "ключ-1".encode()}

    answers = [
        requests.put(
            f"{api.orders_url}/api/orders/current",
            json={"sku": sku, "quantity": 1},
            headers=headers,
            timeout=TIMEOUT,
        )
        for _ in range(2)
    ]

    for answer in answers:
        assert answer.status_code == 400, answer.text
        assert "Idempotency-Key" in answer.json()["errors"]
    assert api.current_order_body(customer.token)["beers"] == []


def test_a_token_that_is_not_ascii_is_a_401_and_adds_nothing(
    api: ShopApi, admin_token: str
) -> None:
    """Not an anonymous request either: the header is there, its token unknown."""
    sku = api.new_beer(admin_token)
    customer = api.new_customer()
    headers: dict[str, str | bytes] = {
        "Authorization": f"Bearer {customer.token}ключ".encode(),
        "Idempotency-Key": unique("key"),
    }

    answer = requests.put(
        f"{api.orders_url}/api/orders/current",
        json={"sku": sku, "quantity": 1},
        headers=headers,
        timeout=TIMEOUT,
    )

    assert answer.status_code == 401, answer.text
    assert answer.json()["detail"] == "The token is unknown, expired or revoked."
    assert api.current_order_body(customer.token)["beers"] == []


def test_a_checkout_refused_for_a_stray_body_leaves_its_key_to_the_corrected_one(
    api: ShopApi, admin_token: str
) -> None:
    sku = api.new_beer(admin_token)
    customer = api.new_customer()
    headers = {**customer.auth, "Idempotency-Key": unique("key")}
    added = requests.put(
        f"{api.orders_url}/api/orders/current",
        json={"sku": sku},
        headers=customer.auth,
        timeout=TIMEOUT,
    )
    assert added.status_code == 200, added.text
    checkout = f"{api.orders_url}/api/orders/checkout"

    refused = requests.post(checkout, json={"x": 1}, headers=headers, timeout=TIMEOUT)
    corrected = requests.post(checkout, headers=headers, timeout=TIMEOUT)

    assert refused.status_code == 400, refused.text
    assert refused.json()["errors"] == {"x": ["Unknown field."]}
    assert corrected.status_code == 200, corrected.text
    assert "Idempotent-Replayed" not in corrected.headers
    assert corrected.json()["is_open"] is False


def test_one_key_on_two_beers_lines_sets_both(api: ShopApi, admin_token: str) -> None:
    skus = [api.new_beer(admin_token), api.new_beer(admin_token)]
    customer = api.new_customer()
    headers = {**customer.auth, "Idempotency-Key": unique("key")}

    answers = [
        requests.put(
            f"{api.orders_url}/api/orders/current/beers/{sku}",
            json={"quantity": 3},
            headers=headers,
            timeout=TIMEOUT,
        )
        for sku in skus
    ]
    replay = requests.put(
        f"{api.orders_url}/api/orders/current/beers/{skus[1]}/",
        json={"quantity": 3},
        headers=headers,
        timeout=TIMEOUT,
    )

    for answer in answers:
        assert answer.status_code == 200, answer.text
        assert "Idempotent-Replayed" not in answer.headers
    lines = api.current_order_body(customer.token)["beers"]
    assert {line["sku"]: line["quantity"] for line in lines} == dict.fromkeys(skus, 3)
    assert replay.headers["Idempotent-Replayed"] == "true"
    assert replay.content == answers[1].content
