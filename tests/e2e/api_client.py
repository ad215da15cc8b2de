"""Tiny clients for the three services, as a customer or an operator would call them."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import requests

TIMEOUT = 10.0
PASSWORD = "correct horse battery"


def unique(prefix: str) -> str:
    """A name no other test uses: usernames and SKUs share the services."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def encoded(encoding: str, fields: dict[str, Any]) -> dict[str, Any]:
    """requests' keyword for a body of these fields: "json", "urlencoded form" or
    "multipart form"."""
    if encoding == "json":
        return {"json": fields}
    if encoding == "urlencoded form":
        return {"data": fields}
    return {"files": {name: (None, str(value)) for name, value in fields.items()}}


def assert_utc_time(value: str) -> datetime:
    """An ISO 8601 time in UTC that carries its offset."""
    moment = datetime.fromisoformat(value)
    assert moment.utcoffset() == timedelta(0), value
    assert value.endswith("+00:00"), value
    return moment


@dataclass(frozen=True)
class Customer:
    id: int
    username: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return bearer(self.token)


@dataclass(frozen=True)
class ShopApi:
    """The three services' base URLs, and one method per call the tests make."""

    users_url: str
    beers_url: str
    orders_url: str

    # users

    def register(
        self,
        username: str | None = None,
        *,
        password: str = PASSWORD,
        email: str | None = None,
        email_field: str = "email",
        **fields: Any,
    ) -> requests.Response:
        username = username or unique("user")
        body = {
            "username": username,
            email_field: email or f"{username}@example.com",
            "password": password,
            **fields,
        }
        return requests.post(f"{self.users_url}/api/users/register", json=body, timeout=TIMEOUT)

    def login(self, username: str, password: str = PASSWORD) -> requests.Response:
        return requests.post(
            f"{self.users_url}/api/users/login",
            json={"username": username, "password": password},
            timeout=TIMEOUT,
        )

    def token_for(self, username: str, password: str = PASSWORD) -> str:
        response = self.login(username, password)
        assert response.status_code == 200, response.text
        token: str = response.json()["token"]
        return token

    def new_customer(self) -> Customer:
        """Register someone new and log them in."""
        username = unique("customer")
        registered = self.register(username)
        assert registered.status_code == 201, registered.text
        return Customer(registered.json()["id"], username, self.token_for(username))

    def logout(self, token: str) -> requests.Response:
        return requests.post(
            f"{self.users_url}/api/users/logout", headers=bearer(token), timeout=TIMEOUT
        )

    def me(self, token: str) -> requests.Response:
        return requests.get(
            f"{self.users_url}/api/users/me", headers=bearer(token), timeout=TIMEOUT
        )

    def change_me(self, token: str, **fields: Any) -> requests.Response:
        return requests.patch(
            f"{self.users_url}/api/users/me", json=fields, headers=bearer(token), timeout=TIMEOUT
        )

    def change_password(self, token: str, new: str, current: str = PASSWORD) -> requests.Response:
        return requests.put(
            f"{self.users_url}/api/users/me/password",
            json={"current_password": current, "new_password": new},
            headers=bearer(token),
            timeout=TIMEOUT,
        )

    def delete_me(self, token: str, password: str = PASSWORD) -> requests.Response:
        return requests.delete(
            f"{self.users_url}/api/users/me",
            json={"password": password},
            headers=bearer(token),
            timeout=TIMEOUT,
        )

    def list_users(self, token: str, params: Any = None) -> requests.Response:
        return requests.get(
            f"{self.users_url}/api/users/", params=params, headers=bearer(token), timeout=TIMEOUT
        )

    def user(self, token: str, user_id: Any) -> requests.Response:
        return requests.get(
            f"{self.users_url}/api/users/{user_id}", headers=bearer(token), timeout=TIMEOUT
        )

    def set_admin(self, token: str, user_id: Any, is_admin: Any) -> requests.Response:
        return requests.patch(
            f"{self.users_url}/api/users/{user_id}",
            json={"is_admin": is_admin},
            headers=bearer(token),
            timeout=TIMEOUT,
        )

    # beers

    def create_beer(
        self,
        token: str,
        sku: str | None = None,
        *,
        name: str = "Test lager",
        price: Any = "1.50",
        **fields: Any,
    ) -> requests.Response:
        body = {"sku": sku or unique("sku"), "name": name, "price": price, **fields}
        return requests.post(
            f"{self.beers_url}/api/beers/", json=body, headers=bearer(token), timeout=TIMEOUT
        )

    def new_beer(self, admin_token: str, *, price: str = "1.50", name: str = "Test lager") -> str:
        """Put a new beer in the catalogue; its SKU."""
        sku = unique("sku")
        response = self.create_beer(admin_token, sku, name=name, price=price)
        assert response.status_code == 201, response.text
        return sku

    def replace_beer(
        self, token: str, sku: str, *, name: str = "Test lager", price: Any = "1.50"
    ) -> requests.Response:
        return requests.put(
            f"{self.beers_url}/api/beers/{sku}",
            json={"name": name, "price": price},
            headers=bearer(token),
            timeout=TIMEOUT,
        )

    def delete_beer(self, token: str, sku: str) -> requests.Response:
        return requests.delete(
            f"{self.beers_url}/api/beers/{sku}", headers=bearer(token), timeout=TIMEOUT
        )

    def beer(self, sku: str) -> requests.Response:
        return requests.get(f"{self.beers_url}/api/beers/{sku}", timeout=TIMEOUT)

    def list_beers(self, params: Any = None) -> requests.Response:
        return requests.get(f"{self.beers_url}/api/beers/", params=params, timeout=TIMEOUT)

    # orders

    def add_to_order(
        self, token: str, sku: str, quantity: Any = 1, *, form: bool = False, bare: bool = False
    ) -> requests.Response:
        body = {"sku": sku, "quantity": quantity}
        headers = {"Authorization": token} if bare else bearer(token)
        return requests.put(
            f"{self.orders_url}/api/orders/current",
            data=body if form else None,
            json=None if form else body,
            headers=headers,
            timeout=TIMEOUT,
        )

    def remove_from_order(
        self, token: str, sku: str, *, in_query: bool = False
    ) -> requests.Response:
        return requests.delete(
            f"{self.orders_url}/api/orders/current",
            params={"sku": sku} if in_query else None,
            json=None if in_query else {"sku": sku},
            headers=bearer(token),
            timeout=TIMEOUT,
        )

    def set_quantity(
        self, token: str, sku: str, quantity: Any, *, key: str | None = None
    ) -> requests.Response:
        """Set the open order's line of a beer to exactly `quantity`."""
        headers = {**bearer(token), **({"Idempotency-Key": key} if key else {})}
        return requests.put(
            f"{self.orders_url}/api/orders/current/beers/{sku}",
            json={"quantity": quantity},
            headers=headers,
            timeout=TIMEOUT,
        )

    def current_order(self, token: str) -> requests.Response:
        return requests.get(
            f"{self.orders_url}/api/orders/current", headers=bearer(token), timeout=TIMEOUT
        )

    def current_order_body(self, token: str) -> dict[str, Any]:
        response = self.current_order(token)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def order_history(self, token: str, params: Any = None) -> requests.Response:
        return requests.get(
            f"{self.orders_url}/api/orders/", params=params, headers=bearer(token), timeout=TIMEOUT
        )

    def order(self, token: str, order_id: Any) -> requests.Response:
        return requests.get(
            f"{self.orders_url}/api/orders/{order_id}", headers=bearer(token), timeout=TIMEOUT
        )

    def checkout(self, token: str, *, key: str | None = None) -> requests.Response:
        headers = {**bearer(token), **({"Idempotency-Key": key} if key else {})}
        return requests.post(
            f"{self.orders_url}/api/orders/checkout", headers=headers, timeout=TIMEOUT
        )
