"""Bodies and queries say what they mean, on every documented operation of
every service: a query parameter or body field it does not take is a 400
naming it, and JSON sent as a form is a 400 that says how to send it."""

import re
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import orjson
import pytest
import webargs.core
from flask.testing import FlaskClient

import beers
import orders
import users
from servicekit.apidocs import SPEC_PATH
from servicekit.intake import JSON_AS_FORM
from tests.databases import fresh_app
from tests.fakes import FakeBeersClient, FakeUsersClient
from tests.problems import assert_problem
from users.domain import register

SERVICES = {"users": users, "beers": beers, "orders": orders}
FAKE_CLIENTS: dict[str, dict[str, Any]] = {
    "users": {},
    "beers": {"users_client": FakeUsersClient()},
    "orders": {"users_client": FakeUsersClient(), "beers_client": FakeBeersClient()},
}
# The fakes' administrator (tests.fakes); users has a real one (the fixture).
FAKE_ADMIN = "admin-token"
UNKNOWN = {"qty": ["Unknown field."]}
Operation = tuple[str, str, str, bool]  # service, method, path, takes a body


def served_documents() -> dict[str, dict[str, Any]]:
    """The three OpenAPI documents, as the services serve them."""
    found = {}
    for name, service in SERVICES.items():
        app = service.create_app(
            {"DATABASE_URL": "sqlite://", "SECRET_KEY": "test"}, **FAKE_CLIENTS[name]
        )
        found[name] = app.test_client().get(SPEC_PATH).json
    return found


DOCUMENTS = served_documents()
OPERATIONS: list[Operation] = [
    (name, method, path, "requestBody" in operation)
    for name, document in DOCUMENTS.items()
    for path, item in document["paths"].items()
    for method, operation in item.items()
]
WITH_BODY = [operation for operation in OPERATIONS if operation[3]]
IDS = [f"{service} {method.upper()} {path}" for service, method, path, _ in OPERATIONS]
BODY_IDS = [f"{service} {method.upper()} {path}" for service, method, path, _ in WITH_BODY]


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, FlaskClient]]:
    with ExitStack() as stack:
        found = {}
        for name, service in SERVICES.items():
            app = stack.enter_context(
                fresh_app(
                    service.create_app,
                    service.models.db,
                    name,
                    tmp_path_factory.mktemp(name),
                    **FAKE_CLIENTS[name],
                )
            )
            found[name] = app.test_client()
        yield found


@pytest.fixture(scope="module")
def tokens(clients: dict[str, FlaskClient]) -> dict[str, str]:
    """An administrator's token for each service."""
    users_client = clients["users"]
    password = "a long secret of the boss"
    with users_client.application.app_context():
        register(
            {"username": "boss", "email": "boss@example.com", "password": password}, is_admin=True
        )
    login = users_client.post("/api/users/login", json={"username": "boss", "password": password})
    return {"users": login.json["token"], "beers": FAKE_ADMIN, "orders": FAKE_ADMIN}


def url_of(path: str) -> str:
    """The path with a value for each parameter: one that names nothing there is
    as good as any, since what the operation does not take is refused first."""
    return re.sub(r"\{[^}]+\}", "7", path)


def required_query(service: str, method: str, path: str) -> dict[str, str]:
    """A value for each query parameter the operation requires, so that the
    request is wrong in the one way a test means it to be."""
    parameters = DOCUMENTS[service]["paths"][path][method].get("parameters", [])
    return {
        parameter["name"]: "7"
        for parameter in parameters
        if parameter["in"] == "query" and parameter.get("required")
    }


@pytest.mark.parametrize("service, method, path, takes_body", OPERATIONS, ids=IDS)
def test_a_query_parameter_the_operation_does_not_take_is_a_400_naming_it(
    clients: dict[str, FlaskClient], service: str, method: str, path: str, takes_body: bool
) -> None:
    response = clients[service].open(url_of(path), method=method, query_string={"qty": "3"})
    assert assert_problem(response, 400)["errors"] == UNKNOWN


@pytest.mark.parametrize("service, method, path, takes_body", OPERATIONS, ids=IDS)
def test_a_body_field_the_operation_does_not_take_is_a_400_naming_it(
    clients: dict[str, FlaskClient],
    tokens: dict[str, str],
    service: str,
    method: str,
    path: str,
    takes_body: bool,
) -> None:
    headers = {"Authorization": f"Bearer {tokens[service]}"}
    query = required_query(service, method, path)
    for body in ({"json": {"qty": 3}}, {"data": {"qty": "3"}}):
        response = clients[service].open(
            url_of(path), method=method, headers=headers, query_string=query, **body
        )
        errors = assert_problem(response, 400)["errors"]
        assert errors["qty"] == UNKNOWN["qty"], (body, errors)


@pytest.mark.parametrize("service, method, path, takes_body", WITH_BODY, ids=BODY_IDS)
@pytest.mark.parametrize("content_type", ["application/x-www-form-urlencoded", None])
def test_json_sent_as_a_form_or_untyped_is_a_400_saying_how_to_send_it(
    clients: dict[str, FlaskClient],
    service: str,
    method: str,
    path: str,
    takes_body: bool,
    content_type: str | None,
) -> None:
    for text in ('{"sku": "123456", "quantity": 2}', '[{"sku": "123456"}]'):
        response = clients[service].open(
            url_of(path), method=method, data=text.encode(), content_type=content_type
        )
        problem = assert_problem(response, 400)
        assert problem["detail"] == JSON_AS_FORM
        assert "Content-Type: application/json" in problem["detail"]


@pytest.mark.parametrize("service, method, path, takes_body", OPERATIONS, ids=IDS)
def test_every_operation_documents_the_400_naming_what_it_does_not_take(
    service: str, method: str, path: str, takes_body: bool
) -> None:
    response = DOCUMENTS[service]["paths"][path][method]["responses"]["400"]
    media_type = response["content"]["application/problem+json"]
    examples = [media_type["example"]] if "example" in media_type else []
    examples += [named["value"] for named in media_type.get("examples", {}).values()]
    assert UNKNOWN in [example.get("errors") for example in examples]
    details = [example["detail"] for example in examples]
    assert (JSON_AS_FORM in details) is takes_body


@pytest.mark.parametrize(
    "service, method, path",
    [("beers", "delete", "/api/beers/123456"), ("orders", "post", "/api/orders/checkout")],
)
def test_without_a_valid_token_a_stray_body_field_is_401_first(
    clients: dict[str, FlaskClient], service: str, method: str, path: str
) -> None:
    response = clients[service].open(path, method=method, json={"qty": 3})
    assert_problem(response, 401)


@pytest.mark.parametrize("service, method, path, takes_body", WITH_BODY, ids=BODY_IDS)
def test_a_json_body_is_parsed_once_and_the_schema_loads_that_document(
    clients: dict[str, FlaskClient],
    tokens: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    service: str,
    method: str,
    path: str,
    takes_body: bool,
) -> None:
    parsed: list[bytes | str] = []
    parse = orjson.loads

    def counted(raw: bytes | str) -> Any:
        parsed.append(raw)
        return parse(raw)

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("webargs parsed the body again")

    monkeypatch.setattr(orjson, "loads", counted)
    monkeypatch.setattr(webargs.core, "parse_json", never)
    headers = {"Authorization": f"Bearer {tokens[service]}"}

    response = clients[service].open(url_of(path), method=method, headers=headers, json={"qty": 3})

    assert [parse(raw) for raw in parsed] == [{"qty": 3}]
    monkeypatch.undo()
    assert assert_problem(response, 400)["errors"]["qty"] == UNKNOWN["qty"]
