"""Input no service can process is the client's fault: a 4xx problem, never a
5xx, and nothing written. Over real HTTP, on every endpoint that takes input."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from tests.problems import PROBLEM_JSON

from .api_client import TIMEOUT, Customer, ShopApi, bearer, unique

pytestmark = pytest.mark.e2e

JSON = {"Content-Type": "application/json"}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
DEEP = "[" * 40 + "]" * 40
HUGE_INTEGER = "9" * 5000

# Bodies that cannot be read at all: 400 before anything else, the token included.
UNREADABLE_BODIES = {
    "JSON nested 40 deep": (JSON, '{"sku": "x", "name": ' + DEEP + "}"),
    "a 5000-digit integer": (JSON, '{"sku": "x", "quantity": ' + HUGE_INTEGER + "}"),
    "a lone surrogate": (JSON, '{"sku": "x", "name": "\\ud800"}'),
    "not JSON": (JSON, '{"sku": '),
    "a form not in UTF-8": (FORM, "sku=x&name=%FF%FE"),
    "a form with an encoded lone surrogate": (FORM, "sku=x&name=%ED%A0%80"),
}


def send(method: str, url: str, headers: dict[str, str], body: Any = None) -> requests.Response:
    return requests.request(method, url, headers=headers, data=body, timeout=TIMEOUT)


def assert_client_error(response: requests.Response, *statuses: int) -> dict[str, Any]:
    assert response.status_code in statuses, (response.status_code, response.text)
    assert response.headers["Content-Type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def customer(api: ShopApi) -> Customer:
    return api.new_customer()


@pytest.fixture(scope="module")
def sku(api: ShopApi, admin_token: str) -> str:
    return api.new_beer(admin_token)


def body_endpoints(api: ShopApi, token: str, sku: str) -> Iterator[tuple[str, str]]:
    """Every endpoint that reads a body: method and URL."""
    yield "POST", f"{api.users_url}/api/users/register"
    yield "POST", f"{api.users_url}/api/users/login"
    yield "POST", f"{api.users_url}/api/users/logout"
    yield "POST", f"{api.users_url}/api/users/check_token"
    yield "POST", f"{api.beers_url}/api/beers/"
    yield "PUT", f"{api.beers_url}/api/beers/{sku}"
    yield "PUT", f"{api.orders_url}/api/orders/current"
    yield "DELETE", f"{api.orders_url}/api/orders/current"


@pytest.mark.parametrize("body", UNREADABLE_BODIES, ids=list(UNREADABLE_BODIES))
@pytest.mark.parametrize("with_token", [True, False], ids=["with a token", "without a token"])
def test_an_unreadable_body_is_400_everywhere_before_the_token_is_looked_at(
    api: ShopApi, customer: Customer, admin_token: str, sku: str, body: str, with_token: bool
) -> None:
    content_type, text = UNREADABLE_BODIES[body]
    token = admin_token if with_token else "no-such-token"
    for method, url in body_endpoints(api, token, sku):
        headers = {**content_type, **bearer(token)}
        problem = assert_client_error(send(method, url, headers, text.encode()), 400)
        assert "body" in problem["errors"], (method, url, problem)


def test_a_chunked_body_over_1_mib_is_413_and_the_client_reads_the_answer(
    api: ShopApi, admin_token: str
) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"sku": "' + b"x" * (1536 * 1024) + b'"}'

    response = requests.post(
        f"{api.beers_url}/api/beers/",
        data=chunks(),  # no length: sent chunked
        headers={**JSON, **bearer(admin_token)},
        timeout=TIMEOUT,
    )

    assert_client_error(response, 413)


Field = tuple[str, str]  # (field, bad value)
BAD_BEER_FIELDS: list[Field] = [
    ("name", "Ale\x00"),
    ("price", "１.１９"),  # fullwidth digits
    ("price", "٣"),  # Arabic-Indic three
    ("price", "1" * 27),
    ("image", "http://example.com/\x00.png"),
]


@pytest.mark.parametrize(("field", "value"), BAD_BEER_FIELDS)
@pytest.mark.parametrize("as_form", [False, True], ids=["json", "form"])
def test_a_hostile_beer_field_is_400_naming_it_and_nothing_is_written(
    api: ShopApi, admin_token: str, field: str, value: str, as_form: bool
) -> None:
    new_sku = unique("hostile")
    fields = {"sku": new_sku, "name": "Ale", "price": "1.50", field: value}
    response = requests.post(
        f"{api.beers_url}/api/beers/",
        **({"data": fields} if as_form else {"json": fields}),  # type: ignore[arg-type]
        headers=bearer(admin_token),
        timeout=TIMEOUT,
    )

    problem = assert_client_error(response, 400)
    assert field in problem["errors"], problem
    assert api.beer(new_sku).status_code == 404


@pytest.mark.parametrize(
    ("field", "value"),
    [("username", "ivan\x00"), ("password", "secret\x00words"), ("first_name", "I\x00")],
)
def test_a_hostile_registration_field_is_400_naming_it_and_nobody_is_registered(
    api: ShopApi, field: str, value: str
) -> None:
    username = unique("hostile")
    fields = {"username": username, "password": "a fine password", field: value}
    response = requests.post(
        f"{api.users_url}/api/users/register",
        json={**fields, "email": f"{username}@example.com"},
        timeout=TIMEOUT,
    )

    problem = assert_client_error(response, 400)
    assert field in problem["errors"], problem
    for name in (username, value):
        exists = requests.get(
            f"{api.users_url}/api/users/exists", params={"username": name}, timeout=TIMEOUT
        )
        assert exists.status_code in (400, 404)


@pytest.mark.parametrize("quantity", ["٣", "３", "1" * 150, HUGE_INTEGER, "2.5", "true"])
def test_a_hostile_quantity_is_400_and_the_order_is_unchanged(
    api: ShopApi, customer: Customer, sku: str, quantity: str
) -> None:
    before = api.current_order_body(customer.token)

    response = requests.put(
        f"{api.orders_url}/api/orders/current",
        data={"sku": sku, "quantity": quantity},
        headers=customer.auth,
        timeout=TIMEOUT,
    )

    problem = assert_client_error(response, 400)
    assert "quantity" in problem["errors"], problem
    assert api.current_order_body(customer.token) == before


QueryCall = Callable[[ShopApi, str], requests.Response]
QUERIES: dict[str, tuple[str, str, str]] = {
    # name: (service URL attribute, path, raw query)
    "exists, NUL": ("users_url", "/api/users/exists", "username=ivan%00"),
    "exists, not UTF-8": ("users_url", "/api/users/exists", "username=%FF%FE"),
    "beers, NUL in a SKU": ("beers_url", "/api/beers/", "sku=1%00"),
    "beers, fullwidth limit": ("beers_url", "/api/beers/", "limit=%EF%BC%93"),
    "beers, Arabic-Indic offset": ("beers_url", "/api/beers/", "offset=%D9%A3"),
    "beers, a 5000-digit limit": ("beers_url", "/api/beers/", "limit=" + HUGE_INTEGER),
    "orders, NUL in the SKU to remove": ("orders_url", "/api/orders/current", "sku=1%00"),
}


@pytest.mark.parametrize("query", QUERIES, ids=list(QUERIES))
def test_a_hostile_query_is_400(api: ShopApi, customer: Customer, query: str) -> None:
    base, path, raw = QUERIES[query]
    method = "DELETE" if base == "orders_url" else "GET"

    response = send(method, f"{getattr(api, base)}{path}?{raw}", customer.auth)

    assert_client_error(response, 400)


@pytest.mark.parametrize(
    ("base", "path"),
    [
        ("beers_url", "/api/beers/1%00"),
        ("beers_url", "/api/beers/%FF%FE"),
        ("orders_url", "/api/orders/1%00"),
        ("orders_url", "/api/orders/" + HUGE_INTEGER),
    ],
)
def test_a_hostile_path_is_a_4xx_problem(
    api: ShopApi, customer: Customer, base: str, path: str
) -> None:
    response = send("GET", f"{getattr(api, base)}{path}", customer.auth)

    assert_client_error(response, 400, 404)


def test_a_line_holds_at_most_100000_of_a_beer(api: ShopApi, sku: str) -> None:
    buyer = api.new_customer()
    for _ in range(10):
        assert api.add_to_order(buyer.token, sku, 10000).status_code == 200

    response = api.add_to_order(buyer.token, sku, 1)

    problem = assert_client_error(response, 409)
    assert "100000" in problem["detail"]
    [line] = api.current_order_body(buyer.token)["beers"]
    assert line["quantity"] == 100000


def raw_exchange(url: str, head: bytes) -> tuple[int, bytes]:
    """Send a request head exactly as given (no client library tidies it), and
    read the status and body of the answer."""
    address = urlsplit(url)
    with socket.create_connection((address.hostname, address.port), timeout=TIMEOUT) as sock:
        sock.sendall(head)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    return int(status_line.split()[1]), rest.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize(
    "query", [b"sku=\xd0\xb6", b"limit=\xd0\xb6", b"offset=\xff"], ids=["sku", "limit", "not UTF-8"]
)
def test_a_raw_non_ascii_query_is_answered_not_a_5xx(api: ShopApi, query: bytes) -> None:
    # Clients percent-encode; a raw request need not, and the server passes it on.
    status, body = raw_exchange(
        api.beers_url,
        b"GET /api/beers/?" + query + b" HTTP/1.1\r\nHost: shop\r\nConnection: close\r\n\r\n",
    )

    assert status in (200, 400), body
