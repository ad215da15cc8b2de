"""Idempotency keys on orders' three writes: a retried request gets the first
answer, byte for byte, and nothing runs twice."""

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient

from orders import idempotency
from orders.models import IdempotencyKey, db
from servicekit.db import utcnow, writing
from tests.databases import fresh_app
from tests.fakes import FakeBeersClient, FakeUsersClient
from tests.orders.conftest import AddToOrder

from .conftest import ALICE, BOB


def key(value: str = "k-1", who: dict[str, str] = ALICE) -> dict[str, str]:
    return {**who, "Idempotency-Key": value}


def quantity_in_order(client: FlaskClient, who: dict[str, str] = ALICE) -> dict[str, int]:
    lines = client.get("/api/orders/current", headers=who).json["beers"]
    return {line["sku"]: line["quantity"] for line in lines}


def test_a_retried_add_gets_the_first_answer_byte_for_byte_and_adds_once(
    client: FlaskClient,
) -> None:
    first = client.put("/api/orders/current", json={"sku": "123456"}, headers=key())
    again = client.put("/api/orders/current", json={"sku": "123456"}, headers=key())

    assert first.status_code == again.status_code == 200
    assert again.get_data() == first.get_data()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert again.mimetype == "application/json"
    assert quantity_in_order(client) == {"123456": 1}


def test_json_and_a_form_with_the_same_fields_are_the_same_request(client: FlaskClient) -> None:
    client.put("/api/orders/current", json={"sku": "123456", "quantity": 2}, headers=key())
    again = client.put(
        "/api/orders/current", data={"quantity": "2", "sku": "123456"}, headers=key()
    )

    assert again.headers["Idempotent-Replayed"] == "true"
    assert quantity_in_order(client) == {"123456": 2}


def test_a_removal_by_body_and_by_query_are_the_same_request(
    client: FlaskClient, add: AddToOrder
) -> None:
    add("123456")
    first = client.delete("/api/orders/current", json={"sku": "123456"}, headers=key("rm"))
    add("123456")
    again = client.delete("/api/orders/current?sku=123456", headers=key("rm"))

    assert first.status_code == again.status_code == 204
    assert again.headers["Idempotent-Replayed"] == "true"
    assert quantity_in_order(client) == {"123456": 1}  # the second removal did not run


def test_the_same_key_with_a_different_request_is_422(client: FlaskClient) -> None:
    client.put("/api/orders/current", json={"sku": "123456"}, headers=key())

    response = client.put("/api/orders/current", json={"sku": "123457"}, headers=key())

    assert response.status_code == 422
    assert response.mimetype == "application/problem+json"
    assert quantity_in_order(client) == {"123456": 1}


def test_a_key_belongs_to_its_user_and_its_method_and_path(client: FlaskClient) -> None:
    client.put("/api/orders/current", json={"sku": "123456"}, headers=key(who=ALICE))
    bobs = client.put("/api/orders/current", json={"sku": "123456"}, headers=key(who=BOB))
    removal = client.delete("/api/orders/current?sku=123458", headers=key(who=ALICE))

    assert "Idempotent-Replayed" not in bobs.headers
    assert removal.status_code == 204 and "Idempotent-Replayed" not in removal.headers
    assert quantity_in_order(client, BOB) == {"123456": 1}


def test_the_same_key_on_another_beer_s_line_is_another_request(client: FlaskClient) -> None:
    first = client.put("/api/orders/current/beers/123456", json={"quantity": 2}, headers=key())
    other = client.put("/api/orders/current/beers/123457", json={"quantity": 2}, headers=key())

    assert first.status_code == other.status_code == 200
    assert "Idempotent-Replayed" not in other.headers
    assert quantity_in_order(client) == {"123456": 2, "123457": 2}


def test_a_path_with_or_without_its_trailing_slash_is_one_path(client: FlaskClient) -> None:
    first = client.put("/api/orders/current/beers/123456", json={"quantity": 2}, headers=key())
    again = client.put("/api/orders/current/beers/123456/", json={"quantity": 2}, headers=key())

    assert again.status_code == 200
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_data() == first.get_data()


def test_a_stray_body_refused_by_checkout_claims_no_key(
    app: APIFlask, client: FlaskClient, add: AddToOrder
) -> None:
    add("123456")
    refused = client.post("/api/orders/checkout", json={"x": 1}, headers=key("pay"))
    kept_after_the_refusal = keys_kept(app)
    corrected = client.post("/api/orders/checkout", headers=key("pay"))

    assert refused.status_code == 400 and refused.json["errors"] == {"x": ["Unknown field."]}
    assert kept_after_the_refusal == 0
    assert corrected.status_code == 200 and "Idempotent-Replayed" not in corrected.headers
    assert corrected.json["is_open"] is False


@pytest.mark.parametrize(
    ("method", "path", "refused", "corrected", "status"),
    [
        ("put", "/api/orders/current", {"sku": "123456", "qty": 2}, {"sku": "123456"}, 200),
        ("put", "/api/orders/current", {"sku": "123456", "quantity": 0}, {"sku": "123456"}, 200),
        ("put", "/api/orders/current/beers/123456", {"quantity": "x"}, {"quantity": 1}, 200),
        ("delete", "/api/orders/current", {}, {"sku": "123456"}, 204),
    ],
)
def test_input_refused_claims_no_key_and_the_corrected_request_runs(
    app: APIFlask,
    client: FlaskClient,
    method: str,
    path: str,
    refused: dict[str, Any],
    corrected: dict[str, Any],
    status: int,
) -> None:
    send = getattr(client, method)
    first = send(path, json=refused, headers=key())
    kept_after_the_refusal = keys_kept(app)
    second = send(path, json=corrected, headers=key())

    assert first.status_code == 400
    assert kept_after_the_refusal == 0
    assert second.status_code == status and "Idempotent-Replayed" not in second.headers


def test_a_path_no_sku_is_spelt_as_is_404_and_claims_no_key(
    app: APIFlask, client: FlaskClient
) -> None:
    response = client.put(
        f"/api/orders/current/beers/{'x' * 300}", json={"quantity": 1}, headers=key()
    )

    assert response.status_code == 404
    assert response.json["errors"] == {"sku": ["Not in the catalogue."]}
    assert keys_kept(app) == 0


# Alice's claim of a checkout, as a request with no body makes it.
CHECKOUT_CLAIM = {
    "user_id": 2,
    "method": "POST",
    "path": "/api/orders/checkout",
    "key": "k-1",
    "fingerprint": "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
}


def insert_keys(app: APIFlask, rows: list[dict[str, Any]]) -> None:
    with app.app_context(), writing(db.engine) as connection:
        connection.execute(IdempotencyKey.__table__.insert(), rows)


def claim_by_a_request_still_running(app: APIFlask, seconds_ago: int) -> None:
    insert_keys(
        app, [{**CHECKOUT_CLAIM, "time_created": utcnow() - timedelta(seconds=seconds_ago)}]
    )


def test_the_same_key_while_its_first_request_runs_is_409_and_runs_nothing(
    app: APIFlask, client: FlaskClient, add: AddToOrder
) -> None:
    add("123456")
    claim_by_a_request_still_running(app, seconds_ago=1)

    response = client.post("/api/orders/checkout", headers=key())

    assert response.status_code == 409
    assert "still running" in response.json["detail"]
    assert client.get("/api/orders/current", headers=ALICE).json["is_open"] is True


def test_a_claim_whose_request_never_finished_is_released_after_60_seconds(
    app: APIFlask, client: FlaskClient, add: AddToOrder
) -> None:
    add("123456")
    claim_by_a_request_still_running(app, seconds_ago=61)

    response = client.post("/api/orders/checkout", headers=key())

    assert response.status_code == 200
    assert response.json["is_open"] is False


def test_a_retried_checkout_never_closes_a_second_order(
    client: FlaskClient, add: AddToOrder
) -> None:
    add("123456")
    first = client.post("/api/orders/checkout", headers=key("pay"))
    add("123457")  # a new open order

    again = client.post("/api/orders/checkout", headers=key("pay"))

    assert again.get_data() == first.get_data()
    assert client.get("/api/orders/current", headers=ALICE).json["is_open"] is True
    assert quantity_in_order(client) == {"123457": 1}


def test_a_503_is_not_kept_so_the_client_may_retry_with_the_same_key(
    client: FlaskClient, beers: FakeBeersClient
) -> None:
    beers.down = True
    unavailable = client.put("/api/orders/current", json={"sku": "123456"}, headers=key())
    beers.down = False
    retried = client.put("/api/orders/current", json={"sku": "123456"}, headers=key())

    assert unavailable.status_code == 503
    assert retried.status_code == 200 and "Idempotent-Replayed" not in retried.headers
    assert quantity_in_order(client) == {"123456": 1}


def test_a_401_is_not_kept(client: FlaskClient) -> None:
    refused = client.put(
        "/api/orders/current",
        json={"sku": "123456"},
        headers={"Authorization": "Bearer nope", "Idempotency-Key": "k-1"},
    )
    accepted = client.put("/api/orders/current", json={"sku": "123456"}, headers=key())

    assert refused.status_code == 401
    assert accepted.status_code == 200 and "Idempotent-Replayed" not in accepted.headers


def test_a_kept_error_is_replayed_too(client: FlaskClient) -> None:
    first = client.put("/api/orders/current", json={"sku": "no-such"}, headers=key())
    again = client.put("/api/orders/current", json={"sku": "no-such"}, headers=key())

    assert first.status_code == again.status_code == 404
    assert again.get_data() == first.get_data()
    assert again.mimetype == "application/problem+json"


@pytest.mark.parametrize("bad", ["", "x" * 256, "tab\there", "ключ"])
def test_an_invalid_key_is_400_naming_it(client: FlaskClient, bad: str) -> None:
    response = client.put(
        "/api/orders/current", json={"sku": "123456"}, headers={**ALICE, "Idempotency-Key": bad}
    )

    assert response.status_code == 400
    assert "Idempotency-Key" in response.json["errors"]
    assert quantity_in_order(client) == {}


def test_a_kept_answer_is_forgotten_after_its_time(
    tmp_path: Path, users: FakeUsersClient, beers: FakeBeersClient
) -> None:
    from orders import create_app

    settings = {"IDEMPOTENCY_TTL_SECONDS": 1}
    with fresh_app(
        create_app, db, "orders", tmp_path, settings, users_client=users, beers_client=beers
    ) as app:
        client = app.test_client()
        client.put("/api/orders/current", json={"sku": "123456"}, headers=key())
        time.sleep(1.1)
        again = client.put("/api/orders/current", json={"sku": "123456"}, headers=key())

        assert "Idempotent-Replayed" not in again.headers
        assert quantity_in_order(client) == {"123456": 2}


def test_without_a_key_nothing_changes(client: FlaskClient) -> None:
    client.put("/api/orders/current", json={"sku": "123456"}, headers=ALICE)
    client.put("/api/orders/current", json={"sku": "123456"}, headers=ALICE)

    assert quantity_in_order(client) == {"123456": 2}


def expired_keys(app: APIFlask, count: int) -> None:
    """`count` kept answers past IDEMPOTENCY_TTL_SECONDS."""
    long_ago = utcnow() - timedelta(seconds=app.config["IDEMPOTENCY_TTL_SECONDS"] + 1)
    kept = {**CHECKOUT_CLAIM, "time_created": long_ago, "status": 200}
    insert_keys(app, [{**kept, "key": f"old-{number}-{long_ago}"} for number in range(count)])


def keys_kept(app: APIFlask) -> int:
    with app.app_context():
        return db.session.query(IdempotencyKey).count()


def test_expired_keys_are_swept_a_batch_at_a_time_and_only_now_and_then(
    app: APIFlask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(idempotency, "SWEEP_BATCH", 2)
    expired_keys(app, 3)

    client.put("/api/orders/current", json={"sku": "123456"}, headers=key("first"))
    after_the_sweep = keys_kept(app)
    expired_keys(app, 1)
    client.put("/api/orders/current", json={"sku": "123456"}, headers=key("second"))

    assert after_the_sweep == 1 + 1  # one expired left over, and the new key
    assert keys_kept(app) == 2 + 1 + 1  # no sweep this soon after the last
