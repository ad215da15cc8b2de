"""A customer's calls to a shop the container tests started (a pod in
test_image.py, podman-compose in test_compose.py), over HTTP from the host:
the same walk from registration to checkout proves either runs the shop."""

from __future__ import annotations

import secrets

import requests

HTTP_TIMEOUT = 10  # seconds


def register_and_login(users: str, username: str, password: str) -> dict[str, str]:
    """A new customer's Authorization header."""
    registered = requests.post(
        f"{users}/api/users/register",
        json={"username": username, "email": f"{username}@example.com", "password": password},
        timeout=HTTP_TIMEOUT,
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["username"] == username
    assert registered.json()["is_admin"] is False
    return login(users, username, password)


def login(users: str, username: str, password: str) -> dict[str, str]:
    """The Authorization header of a new token, logging in with a form."""
    answer = requests.post(
        f"{users}/api/users/login",
        data={"username": username, "password": password},
        timeout=HTTP_TIMEOUT,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["token_type"] == "Bearer"
    return {"Authorization": f"Bearer {answer.json()['token']}"}


def walk_from_registration_to_checkout(users: str, orders: str) -> None:
    """Register, log in, add two Бургаско of the demo catalogue and check out:
    the history then holds that one order, closed."""
    auth = register_and_login(users, f"ivan_{secrets.token_hex(4)}", "ivan-s-own-passphrase")

    # orders asks users who the token is and beers what 123456 costs.
    added = requests.put(
        f"{orders}/api/orders/current",
        headers=auth,
        data={"sku": "123456", "quantity": "2"},
        timeout=HTTP_TIMEOUT,
    )
    assert added.status_code == 200, added.text
    line = {"sku": "123456", "name": "Бургаско", "quantity": 2, "unit_price": "1.19"}
    assert added.json()["is_open"] is True
    assert added.json()["beers"] == [{**line, "line_total": "2.38"}]

    checkout = requests.post(f"{orders}/api/orders/checkout", headers=auth, timeout=HTTP_TIMEOUT)
    assert checkout.status_code == 200, checkout.text
    order = checkout.json()
    assert order["is_open"] is False
    assert order["time_checked_out"] is not None
    assert order["beers"] == [{**line, "line_total": "2.38"}]
    assert order["total"] == "2.38"

    history = requests.get(f"{orders}/api/orders/", headers=auth, timeout=HTTP_TIMEOUT)
    assert history.status_code == 200, history.text
    assert [past["id"] for past in history.json()] == [order["id"]]
    assert history.json()[0]["is_open"] is False
