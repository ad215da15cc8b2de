"""The Postman collection (postman/) stays true: newman runs it against the real services.

The collection walks a new customer from registration to checkout (a price changed under
the open order: 409, then paid as shown), a password change, logout and the account's
deletion; and an administrator through adding, repricing and deleting a beer, finding
users, making one an administrator and taking it back, the last administrator kept, and
anyone's orders. Its own `pm.test`s hold the assertions; here newman must run every one of
them and exit 0, twice on the same databases.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from .api_client import unique
from .services import ADMIN_PASSWORD, ROOT, Service, StartService, create_admin

POSTMAN = ROOT / "postman"
COLLECTION = POSTMAN / "shop.postman_collection.json"
ENVIRONMENT = POSTMAN / "shop.postman_environment.json"
NEWMAN = ROOT / "node_modules" / ".bin" / "newman"
README = ROOT / "README.md"
SCHEMA_V21 = "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"
INV_UP_URLS = {
    "usersUrl": "http://127.0.0.1:5001",
    "beersUrl": "http://127.0.0.1:5002",
    "ordersUrl": "http://127.0.0.1:5003",
}
NEWMAN_TIMEOUT = 300
RUNS = 2  # the second on the same databases: each run makes its own names


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


def readme_counts() -> tuple[int, int]:
    """How many requests, and checks in a run, the README's Postman section says there are."""
    said = re.search(r"in (\d+) requests\s+and (\d+) checks", README.read_text(encoding="utf-8"))
    assert said, "the README's Postman section no longer says how many requests and checks"
    return int(said[1]), int(said[2])


def assert_in_order(expected: list[tuple[str, str]], calls: list[tuple[str, str]]) -> None:
    """Each expected call appears, in this order (other checks may stand between them)."""
    at = -1
    for call in expected:
        assert call in calls[at + 1 :], f"{call} missing after step {at}"
        at = calls.index(call, at + 1)


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


def test_every_request_asserts_with_pm_test_under_a_name_of_its_own() -> None:
    collection = load(COLLECTION)

    found = list(requests_in(collection["item"]))

    assert len(found) == readme_counts()[0]
    # newman's report names requests without their folder: the names must tell them apart.
    names = [item["name"] for _, item in found]
    assert len(set(names)) == len(names), sorted(name for name in names if names.count(name) > 1)
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
        ("PATCH", "{{usersUrl}}/api/users/me"),
        ("GET", "{{beersUrl}}/api/beers/"),
        ("GET", "{{beersUrl}}/api/beers/?q=бУРГ"),
        ("GET", "{{beersUrl}}/api/beers/123456"),
        ("POST", "{{beersUrl}}/api/beers/"),
        ("PUT", "{{ordersUrl}}/api/orders/current"),
        ("PUT", "{{ordersUrl}}/api/orders/current"),
        ("PUT", "{{ordersUrl}}/api/orders/current/beers/123456"),
        ("DELETE", "{{ordersUrl}}/api/orders/current?sku=123457"),
        ("PUT", "{{ordersUrl}}/api/orders/current/beers/{{walkSku}}"),
        ("GET", "{{ordersUrl}}/api/orders/current"),
        # The price changes under the open order: checkout refuses, re-prices, then pays.
        ("PATCH", "{{beersUrl}}/api/beers/{{walkSku}}"),
        ("POST", "{{ordersUrl}}/api/orders/checkout"),
        ("GET", "{{ordersUrl}}/api/orders/current"),
        ("POST", "{{ordersUrl}}/api/orders/checkout"),
        ("GET", "{{ordersUrl}}/api/orders/"),
        ("GET", "{{ordersUrl}}/api/orders/?limit=10&offset=1"),
        ("PUT", "{{usersUrl}}/api/users/me/password"),
        ("POST", "{{usersUrl}}/api/users/login"),
        ("POST", "{{usersUrl}}/api/users/login"),
        ("POST", "{{usersUrl}}/api/users/logout"),
        ("GET", "{{usersUrl}}/api/users/me"),
        ("DELETE", "{{usersUrl}}/api/users/me"),
    ]
    assert_in_order(expected, calls)


def test_the_walks_checkouts_meet_a_changed_price_then_pay_then_find_nothing() -> None:
    walk = load(COLLECTION)["item"][0]["item"]

    checkouts = [
        scripts(item, "test")
        for item in walk
        if item["request"]["url"]["raw"] == "{{ordersUrl}}/api/orders/checkout"
    ]

    assert len(checkouts) == 3
    repriced, paid, empty = checkouts
    assert "expectProblem(409)" in repriced
    assert "problem.errors" in repriced and "problem.changed" in repriced
    assert "status(200)" in paid
    assert "expectProblem(409)" in empty


def test_the_admin_folder_manages_the_catalogue_then_users_then_reads_orders() -> None:
    admin = load(COLLECTION)["item"][1]["item"]
    calls = [(item["request"]["method"], item["request"]["url"]["raw"]) for item in admin]

    expected = [
        ("POST", "{{usersUrl}}/api/users/login"),
        ("POST", "{{beersUrl}}/api/beers/"),
        ("PATCH", "{{beersUrl}}/api/beers/{{adminSku}}"),
        ("DELETE", "{{beersUrl}}/api/beers/{{adminSku}}"),
        ("GET", "{{usersUrl}}/api/users/?q={{otherQuery}}"),
        ("GET", "{{usersUrl}}/api/users/{{otherId}}"),
        ("PATCH", "{{usersUrl}}/api/users/{{otherId}}"),
        ("PATCH", "{{usersUrl}}/api/users/{{otherId}}"),
        ("PATCH", "{{usersUrl}}/api/users/{{adminId}}"),
        ("GET", "{{ordersUrl}}/api/orders/?user_id={{customerId}}"),
        ("GET", "{{ordersUrl}}/api/orders/{{orderId}}"),
        ("POST", "{{usersUrl}}/api/users/logout"),
    ]
    assert_in_order(expected, calls)


def test_the_last_administrator_is_demoted_only_where_it_is_the_only_one() -> None:
    """Sent where another administrator exists, that PATCH would succeed: it must be skipped."""
    admin = load(COLLECTION)["item"][1]["item"]
    (last,) = [item for item in admin if item["request"]["url"]["raw"].endswith("{{adminId}}")]

    guard = scripts(last, "prerequest")

    assert json.loads(last["request"]["body"]["raw"]) == {"is_admin": False}
    assert "pm.execution.skipRequest()" in guard
    assert "administrators !== 1" in guard
    assert "expectProblem(409)" in scripts(last, "test")


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


# newman against a running shop.


@dataclass
class FreshShop:
    """A shop on databases of its own, as `inv up` leaves fresh ones: one administrator
    (the session's shared shop has more, which the last-administrator 409 cannot show)
    and the demo catalogue."""

    users: Service
    beers: Service
    orders: Service
    admin_username: str


def seed_demo_catalogue(beers: Service) -> None:
    """The demo catalogue in beers' database, loaded the way an operator does."""
    completed = subprocess.run(
        [sys.executable, "-m", "invoke", "beers", "setup", "--seed"],
        cwd=ROOT,
        env=dict(beers.env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr


@pytest.fixture(scope="module")
def fresh_shop(start_service: StartService) -> FreshShop:
    # Two workers each: newman sends one request at a time.
    users = start_service("users", workers=2)
    admin_username = unique("boss")
    create_admin(admin_username, users.env)
    beers = start_service("beers", workers=2, USERS_URL=users.url)
    seed_demo_catalogue(beers)
    orders = start_service("orders", workers=2, USERS_URL=users.url, BEERS_URL=beers.url)
    return FreshShop(users, beers, orders, admin_username)


@pytest.fixture(scope="module")
def newman() -> Path:
    if shutil.which("node") is None:
        pytest.skip("newman not installed: node is not on PATH (install Node.js, then `npm ci`)")
    if not NEWMAN.exists():
        pytest.skip("newman not installed: run `npm ci`")
    return NEWMAN


def run_newman(newman: Path, shop: FreshShop, report: Path) -> subprocess.CompletedProcess[str]:
    settings = {
        "usersUrl": shop.users.url,
        "beersUrl": shop.beers.url,
        "ordersUrl": shop.orders.url,
        "adminUsername": shop.admin_username,
        "adminPassword": ADMIN_PASSWORD,
    }
    return subprocess.run(
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


@pytest.mark.e2e
def test_newman_runs_the_whole_collection_twice_on_the_same_shop(
    newman: Path, fresh_shop: FreshShop, tmp_path: Path
) -> None:
    names = {item["name"] for _, item in requests_in(load(COLLECTION)["item"])}

    for run in range(1, RUNS + 1):
        report = tmp_path / f"newman-{run}.json"
        completed = run_newman(newman, fresh_shop, report)

        assert completed.returncode == 0, (
            f"run {run}:\n" + completed.stdout[-8000:] + completed.stderr[-2000:]
        )
        # Exit 0 must mean every request ran and asserted (none skipped: the shop has one
        # administrator) and every script ran, not that none did.
        outcome = load(report)["run"]
        stats = outcome["stats"]
        assert stats["items"] == {"total": len(names), "pending": 0, "failed": 0}, run
        assert stats["scripts"]["failed"] == 0, run
        assert stats["assertions"]["failed"] == 0, run
        assert stats["assertions"]["total"] == readme_counts()[1], run
        asserted = {
            execution["item"]["name"]
            for execution in outcome["executions"]
            if execution.get("assertions")
        }
        assert asserted == names, (run, names - asserted)
