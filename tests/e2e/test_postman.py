"""The Postman collection (postman/) stays true: newman runs it against the real services.

The collection walks a new customer from registration to checkout and logout, and an
administrator through adding, repricing and deleting a beer. Its own `pm.test`s hold
the assertions; here newman must run every one of them and exit 0.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .services import ADMIN_PASSWORD, ROOT, Shop

POSTMAN = ROOT / "postman"
COLLECTION = POSTMAN / "shop.postman_collection.json"
ENVIRONMENT = POSTMAN / "shop.postman_environment.json"
NEWMAN = ROOT / "node_modules" / ".bin" / "newman"
SCHEMA_V21 = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
INV_UP_URLS = {
    "usersUrl": "http://127.0.0.1:5001",
    "beersUrl": "http://127.0.0.1:5002",
    "ordersUrl": "http://127.0.0.1:5003",
}
NEWMAN_TIMEOUT = 300


def load(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def requests_in(items: list[dict[str, Any]], folder: str = "") -> Iterator[tuple[str, dict]]:
    """Every request of the collection (leaves of the item tree), with its folder path."""
    for item in items:
        if "item" in item:
            yield from requests_in(item["item"], f"{folder}{item['name']}/")
        else:
            yield folder + item["name"], item


def scripts(item: dict[str, Any], listen: str) -> str:
    return "\n".join(
        "\n".join(event["script"]["exec"])
        for event in item.get("event", [])
        if event["listen"] == listen
    )


# The collection as a file: cheap, no services needed.


def test_the_collection_is_postman_v2_1_with_the_shop_walk_and_the_admin_folder() -> None:
    collection = load(COLLECTION)

    info = collection["info"]
    assert info["schema"] == SCHEMA_V21
    uuid.UUID(info["_postman_id"])
    assert info["name"]
    assert [folder["name"] for folder in collection["item"]] == [
        "Walk: registration to checkout",
        "Admin",
    ]
    methods = {"GET", "POST", "PUT", "PATCH", "DELETE"}
    for name, item in requests_in(collection["item"]):
        request = item["request"]
        assert request["method"] in methods, name
        url = request["url"]
        assert re.match(r"\{\{(usersUrl|beersUrl|ordersUrl)\}\}/api/", url["raw"]), name
        assert url["host"] == [url["raw"].split("/")[0]], name
        assert request["auth"]["type"] in {"bearer", "noauth"}, name
        body = request.get("body")
        if body is not None:
            assert body["mode"] in {"raw", "urlencoded"}, name
            if body["mode"] == "raw":
                json.loads(body["raw"])  # every raw body is JSON


def test_every_request_asserts_with_pm_test() -> None:
    collection = load(COLLECTION)

    found = list(requests_in(collection["item"]))

    assert len(found) >= 20
    for name, item in found:
        assert "pm.test(" in scripts(item, "test"), f"{name} has no pm.test"
        assert re.search(r"status\(\d{3}\)|expectProblem\(\d{3}\)", scripts(item, "test")), (
            f"{name} does not assert its status"
        )


def test_the_walk_goes_from_registration_to_checkout_and_logout_in_order() -> None:
    walk = load(COLLECTION)["item"][0]["item"]
    calls = [(item["request"]["method"], item["request"]["url"]["raw"]) for item in walk]

    expected = [
        ("POST", "{{usersUrl}}/api/users/register"),
        ("POST", "{{usersUrl}}/api/users/login"),
        ("GET", "{{usersUrl}}/api/users/me"),
        ("GET", "{{beersUrl}}/api/beers/"),
        ("GET", "{{beersUrl}}/api/beers/123456"),
        ("PUT", "{{ordersUrl}}/api/orders/current"),
        ("PUT", "{{ordersUrl}}/api/orders/current"),
        ("DELETE", "{{ordersUrl}}/api/orders/current?sku=123457"),
        ("GET", "{{ordersUrl}}/api/orders/current"),
        ("POST", "{{ordersUrl}}/api/orders/checkout"),
        ("GET", "{{ordersUrl}}/api/orders/"),
        ("POST", "{{usersUrl}}/api/users/logout"),
        ("GET", "{{usersUrl}}/api/users/me"),
    ]
    # Each expected call appears, in this order (other checks may stand between them).
    at = -1
    for call in expected:
        assert call in calls[at + 1 :], f"{call} missing after step {at}"
        at = calls.index(call, at + 1)


def test_the_base_urls_default_to_where_inv_up_serves() -> None:
    collection_variables = {v["key"]: v["value"] for v in load(COLLECTION)["variable"]}
    environment = load(ENVIRONMENT)
    environment_values = {v["key"]: v["value"] for v in environment["values"] if v["enabled"]}

    assert environment["_postman_variable_scope"] == "environment"
    for key, url in INV_UP_URLS.items():
        assert collection_variables[key] == url
        assert environment_values[key] == url
    for key in ("adminUsername", "adminPassword"):
        assert collection_variables[key]
        assert environment_values[key] == collection_variables[key]


def test_every_variable_the_collection_uses_is_declared() -> None:
    collection = load(COLLECTION)
    declared = {v["key"] for v in collection["variable"]}
    text = json.dumps(collection, ensure_ascii=False)

    used = set(re.findall(r"\{\{([^{}$]+)\}\}", text))
    set_by_scripts = set(re.findall(r"collectionVariables\.set\('([^']+)'", text))

    assert used <= declared, used - declared
    assert set_by_scripts <= declared, set_by_scripts - declared


# newman against the running shop.


@pytest.fixture(scope="module")
def demo_catalogue(shop: Shop) -> None:
    """The demo catalogue in the shop's beers database, loaded the way an operator does."""
    completed = subprocess.run(
        [sys.executable, "-m", "invoke", "beers", "setup", "--seed"],
        cwd=ROOT,
        env=dict(shop.beers.env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


def newman_or_skip() -> Path:
    if shutil.which("node") is None:
        pytest.skip("newman not installed: node is not on PATH (install Node.js, then `npm ci`)")
    if not NEWMAN.exists():
        pytest.skip("newman not installed: run `npm ci`")
    return NEWMAN


@pytest.mark.e2e
def test_newman_runs_the_whole_collection_against_the_shop(
    shop: Shop, demo_catalogue: None, tmp_path: Path
) -> None:
    newman = newman_or_skip()
    report = tmp_path / "newman.json"
    settings = {
        "usersUrl": shop.users.url,
        "beersUrl": shop.beers.url,
        "ordersUrl": shop.orders.url,
        "adminUsername": shop.admin_username,
        "adminPassword": ADMIN_PASSWORD,
    }

    completed = subprocess.run(
        [str(newman), "run", str(COLLECTION), "--environment", str(ENVIRONMENT)]
        + [arg for key, value in settings.items() for arg in ("--env-var", f"{key}={value}")]
        + ["--bail", "--color", "off", "--timeout-request", "15000"]
        + ["--reporters", "cli,json", "--reporter-json-export", str(report)],
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1", "FORCE_COLOR": "0"},
        capture_output=True,
        text=True,
        timeout=NEWMAN_TIMEOUT,
    )

    assert completed.returncode == 0, completed.stdout[-8000:] + completed.stderr[-2000:]
    # Exit 0 must mean every request ran and every assertion passed, not that none did.
    stats = load(report)["run"]["stats"]
    requests = list(requests_in(load(COLLECTION)["item"]))
    assert stats["requests"] == {"total": len(requests), "pending": 0, "failed": 0}
    assert stats["assertions"]["failed"] == 0
    assert stats["assertions"]["total"] >= 3 * len(requests)
