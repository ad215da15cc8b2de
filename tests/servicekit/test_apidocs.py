"""The OpenAPI documents: every answer shown by a true example, every operation
named and tagged, patterns that JavaScript reads as Python does, and the
docs decorators of servicekit.auth."""

import json
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from apiflask import APIBlueprint, APIFlask
from flask.testing import FlaskClient
from marshmallow import ValidationError
from werkzeug.test import TestResponse

import beers
import orders
import users
import users.domain
from beers.docs import ADMIN_RESPONSES
from beers.domain import seed_demo_catalogue
from servicekit import apidocs
from servicekit.apidocs import SPEC_PATH, problem_doc
from servicekit.auth import ADMIN as ADMIN_ROLE
from servicekit.auth import USER_RESPONSES, users_auth
from servicekit.config import BaseConfig
from servicekit.errors import NotFound
from servicekit.front import body_timeout_answer
from servicekit.schemas import SKU_PATTERN, Sku
from tests.databases import fresh_app
from tests.fakes import FakeBeersClient, FakeUsersClient
from users.schemas import USERNAME

SERVICES = {"users": users, "beers": beers, "orders": orders}
CLIENTS: dict[str, dict[str, Any]] = {
    "users": {},
    "beers": {"users_client": FakeUsersClient()},
    "orders": {"users_client": FakeUsersClient(), "beers_client": FakeBeersClient()},
}
# Each service's OpenAPI document by the service's name
Documents = dict[str, dict[str, Any]]
# Regular expression syntax Python reads and JavaScript refuses or reads otherwise.
PYTHON_ONLY = re.compile(r"\\[AZz]|\(\?P|\(\?#|\(\?[aiLmsux]+[):]|\*\+|\+\+|\?\+")
ADMIN = {"Authorization": "Bearer admin-token"}
FORM = "application/x-www-form-urlencoded"
ALICE = {"Authorization": "Bearer alice-token"}
BOSS = {"Authorization": "Bearer boss-token"}  # users' only administrator in users_client
IVAN = {"Authorization": "Bearer ivan-token"}  # a customer there
BOSS_PASSWORD = "the boss's own passphrase"
IVANS_PASSWORD = "ivan's own passphrase"


@pytest.fixture(scope="module")
def documents() -> Documents:
    """Each service's OpenAPI document, as it serves it."""
    found = {}
    for name, service in SERVICES.items():
        app = service.create_app(
            {"DATABASE_URL": "sqlite://", "SECRET_KEY": "test"}, **CLIENTS[name]
        )
        found[name] = app.test_client().get(SPEC_PATH).json
    return found


def operations(document: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for path, path_item in document["paths"].items():
        for method, operation in path_item.items():
            yield f"{method.upper()} {path}", operation


def every_operation(documents: Documents) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, document in documents.items():
        for where, operation in operations(document):
            yield f"{name}: {where}", operation


def problem_examples(response: dict[str, Any]) -> list[Any]:
    media_type = response["content"]["application/problem+json"]
    if "example" in media_type:
        return [media_type["example"]]
    return [named["value"] for named in media_type.get("examples", {}).values()]


def patterns(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "pattern" and isinstance(value, str):
                yield value
            else:
                yield from patterns(value)
    elif isinstance(node, list):
        for value in node:
            yield from patterns(value)


def example_of(schema: dict[str, Any], components: dict[str, Any]) -> Any:
    """The example Swagger UI shows for a schema: its properties' examples, and
    None where a property has none (Swagger UI would show "string" or 0)."""
    if "$ref" in schema:
        return example_of(components[schema["$ref"].rsplit("/", 1)[1]], components)
    if schema.get("type") == "array":
        return [example_of(schema["items"], components)]
    if "properties" in schema:
        return {name: example_of(prop, components) for name, prop in schema["properties"].items()}
    return schema.get("example", "no example")


# Every response shows an example of its own status.


def test_every_error_response_is_a_problem_with_examples_of_its_own_status(
    documents: Documents,
) -> None:
    for where, operation in every_operation(documents):
        documented = {status for status in operation["responses"] if status != "default"}
        for status, response in operation["responses"].items():
            if not status.startswith(("4", "5")) and status != "default":
                continue
            examples = problem_examples(response)
            assert examples, f"{where} {status}"
            for example in examples:
                assert {"type", "title", "status", "detail"} <= example.keys(), where
                if status == "default":
                    assert str(example["status"]) not in documented, f"{where}: {example}"
                else:
                    assert example["status"] == int(status), f"{where} {status}: {example}"


def test_no_problem_shows_the_example_of_another(documents: Documents) -> None:
    bad_price = "Invalid input: price."
    for where, operation in every_operation(documents):
        for status, response in operation["responses"].items():
            if status.startswith(("4", "5")) and status != "400":
                details = [example["detail"] for example in problem_examples(response)]
                assert bad_price not in details, f"{where} {status}"


def test_the_401_names_the_missing_token_and_the_503_the_neighbour(documents: Documents) -> None:
    post = documents["beers"]["paths"]["/api/beers"]["post"]["responses"]

    assert "A valid bearer token is required." in [
        e["detail"] for e in problem_examples(post["401"])
    ]
    services = {example["service"] for example in problem_examples(post["503"])}
    assert services == {"users", "beers-database"}
    enum = post["503"]["content"]["application/problem+json"]["schema"]["properties"]["service"]
    assert enum["enum"] == ["users", "beers-database"]


def test_success_bodies_and_requests_show_an_example_for_every_field(documents: Documents) -> None:
    for name, document in documents.items():
        components = document["components"]["schemas"]
        for where, operation in operations(document):
            bodies = [
                *operation.get("requestBody", {}).get("content", {}).values(),
                *(
                    media_type
                    for status, response in operation["responses"].items()
                    if status.startswith("2")
                    for media_type in response.get("content", {}).values()
                ),
            ]
            for media_type in bodies:
                shown = json.dumps(example_of(media_type["schema"], components))
                assert "no example" not in shown, f"{name}: {where}: {shown}"
            for parameter in operation.get("parameters", []):
                assert "example" in parameter or "example" in parameter["schema"], (
                    f"{name}: {where}: {parameter['name']}"
                )


def test_beers_are_shown_from_the_demo_catalogue(documents: Documents) -> None:
    document = documents["beers"]
    components = document["components"]["schemas"]
    post = document["paths"]["/api/beers"]["post"]

    beer_in = example_of(post["requestBody"]["content"]["application/json"]["schema"], components)
    beer_out = example_of(
        post["responses"]["201"]["content"]["application/json"]["schema"], components
    )

    for shown in (beer_in, beer_out):
        assert (shown["sku"], shown["name"], shown["price"]) == ("123456", "Бургаско", "1.19")


def test_an_order_line_is_shown_with_a_real_quantity(documents: Documents) -> None:
    document = documents["orders"]
    components = document["components"]["schemas"]
    put = document["paths"]["/api/orders/current"]["put"]

    asked = example_of(put["requestBody"]["content"]["application/json"]["schema"], components)
    order = example_of(put["responses"]["200"]["content"]["application/json"]["schema"], components)

    assert asked == {"sku": "123456", "quantity": 2}
    assert order["beers"] == [
        {
            "sku": "123456",
            "name": "Бургаско",
            "quantity": 2,
            "unit_price": "1.19",
            "line_total": "2.38",
        }
    ]
    assert order["total"] == "2.38"


# The examples are what the services answer.


@pytest.fixture
def beers_client(tmp_path: Path) -> Iterator[FlaskClient]:
    create = beers.create_app
    with fresh_app(
        create, beers.models.db, "beers", tmp_path, users_client=FakeUsersClient()
    ) as app:
        with app.app_context():
            seed_demo_catalogue()
        yield app.test_client()


@pytest.fixture
def orders_client(tmp_path: Path) -> Iterator[FlaskClient]:
    clients = CLIENTS["orders"]
    with fresh_app(orders.create_app, orders.models.db, "orders", tmp_path, **clients) as app:
        yield app.test_client()


@pytest.fixture
def users_client(tmp_path: Path) -> Iterator[FlaskClient]:
    """users with boss, its only administrator, and ivan, each holding the
    token of the headers BOSS and IVAN."""
    with fresh_app(users.create_app, users.models.db, "users", tmp_path) as app:
        client = app.test_client()
        for name, password in (("boss", BOSS_PASSWORD), ("ivan", IVANS_PASSWORD)):
            body = {"username": name, "email": f"{name}@example.com", "password": password}
            assert client.post("/api/users/register", json=body).status_code == 201
        with app.app_context():
            users.domain.promote_to_admin("boss")
            for name, token in (("boss", "boss-token"), ("ivan", "ivan-token")):
                user = users.domain.find_user(name)
                assert user is not None
                users.models.db.session.add(
                    users.models.Token(
                        digest=users.domain.token_digest(token),
                        user_id=user.id,
                        expires_at=datetime.now(UTC) + timedelta(days=1),
                    )
                )
            users.models.db.session.commit()
        yield client


# A value for each path parameter, one that names nothing there.
PATH_VALUES = {"{sku}": "999999", "{order_id}": "7", "{user_id}": "7"}


def assert_answer_documented(
    documents: Documents,
    service: str,
    client: FlaskClient,
    method: str,
    path: str,
    request_kwargs: dict[str, Any],
) -> None:
    """The service's answer to the request is an example of the operation's
    response with that status."""
    url = path
    for parameter, value in PATH_VALUES.items():
        url = url.replace(parameter, value)
    response: TestResponse = getattr(client, method)(url, **request_kwargs)
    operation = documents[service]["paths"][path][method]
    documented = operation["responses"][str(response.status_code)]
    assert response.json in problem_examples(documented), response.json


@pytest.mark.parametrize(
    "method, path, request_kwargs",
    [
        ("post", "/api/beers", {"json": {"sku": "9", "name": "Ариана", "price": "1.50"}}),
        ("post", "/api/beers", {"json": {"name": "Ариана", "price": "1.50"}, "headers": ALICE}),
        (
            "post",
            "/api/beers",
            {"json": {"sku": "123456", "name": "Бургаско", "price": "1.19"}, "headers": ADMIN},
        ),
        (
            "post",
            "/api/beers",
            {"json": {"sku": "9", "name": "Ариана", "price": "1.199"}, "headers": ADMIN},
        ),
        ("post", "/api/beers", {"data": '{"sku": "123456"', "content_type": "application/json"}),
        ("post", "/api/beers", {"data": '{"sku": "9"}', "content_type": FORM}),
        (
            "post",
            "/api/beers",
            {"json": {"sku": "9", "name": "Ариана", "price": "1.50", "qty": 3}, "headers": ADMIN},
        ),
        ("get", "/api/beers/{sku}", {"query_string": {"qty": "3"}}),
        ("delete", "/api/beers/{sku}", {"json": {"qty": 3}}),
        ("get", "/api/beers/{sku}", {}),
        ("delete", "/api/beers/{sku}", {"headers": ADMIN}),
        ("get", "/api/beers", {"query_string": {"limit": "0"}}),
    ],
)
def test_the_beers_examples_are_what_beers_answers(
    documents: Documents,
    beers_client: FlaskClient,
    method: str,
    path: str,
    request_kwargs: dict[str, Any],
) -> None:
    assert_answer_documented(documents, "beers", beers_client, method, path, request_kwargs)


@pytest.mark.parametrize(
    "method, path, request_kwargs",
    [
        ("get", "/api/orders", {}),
        ("get", "/api/orders", {"query_string": {"limit": "0"}, "headers": ALICE}),
        ("get", "/api/orders", {"query_string": {"user_id": "3"}, "headers": ALICE}),
        ("put", "/api/orders/current", {"json": {"sku": "999999"}, "headers": ALICE}),
        ("put", "/api/orders/current", {"json": {"sku": "1", "quantity": 0}, "headers": ALICE}),
        ("delete", "/api/orders/current", {"headers": ALICE}),
        ("post", "/api/orders/checkout", {"headers": ALICE}),
        (
            "post",
            "/api/orders/checkout",
            {"headers": {**ALICE, "Idempotency-Key": "ключ"}},
        ),
        (
            "post",
            "/api/orders/checkout",
            {"json": {"qty": 1}, "headers": {**ALICE, "Idempotency-Key": "k-1"}},
        ),
        ("get", "/api/orders/{order_id}", {"headers": ALICE}),
        ("get", "/api/orders/{order_id}", {"headers": ADMIN}),
        ("put", "/api/orders/current/beers/{sku}", {"json": {"quantity": 1}, "headers": ALICE}),
        ("put", "/api/orders/current/beers/{sku}", {"json": {"quantity": 0}, "headers": ALICE}),
    ],
)
def test_the_orders_examples_are_what_orders_answers(
    documents: Documents,
    orders_client: FlaskClient,
    method: str,
    path: str,
    request_kwargs: dict[str, Any],
) -> None:
    assert_answer_documented(documents, "orders", orders_client, method, path, request_kwargs)


def test_the_408_is_what_the_front_answers_to_a_body_not_whole_in_time(
    documents: Documents,
) -> None:
    _, headers, body = body_timeout_answer(BaseConfig.BODY_TIMEOUT_SECONDS)
    takes_body = 0
    for where, operation in every_operation(documents):
        if "requestBody" not in operation:
            assert "408" not in operation["responses"], where
            continue
        takes_body += 1
        response = operation["responses"]["408"]
        assert problem_examples(response) == [json.loads(body)], where
        assert response["headers"]["Connection"]["example"] == dict(headers)["Connection"]
    assert takes_body >= 5  # registration, login, a beer, an add, a set at least


@pytest.mark.parametrize(
    "method, path, request_kwargs",
    [
        ("get", "/api/users/exists", {"query_string": {"username": "petar"}}),
        ("get", "/api/users/exists", {}),
        ("post", "/api/users/login", {"json": {"username": "petar"}}),
        ("post", "/api/users/login", {"json": {"username": "petar", "password": "not his"}}),
        (
            "post",
            "/api/users/register",
            {"json": {"username": "petar", "email": "petar@example.com", "password": "password1"}},
        ),
        ("get", "/api/users/me", {}),
        ("get", "/api/users/me", {"headers": {"Authorization": "Bearer made-up"}}),
        ("patch", "/api/users/me", {"json": {}, "headers": IVAN}),
        ("patch", "/api/users/me", {"json": {"email": "not an email"}, "headers": IVAN}),
        ("patch", "/api/users/me", {"json": {"email": "BOSS@example.com"}, "headers": IVAN}),
        (
            "put",
            "/api/users/me/password",
            {
                "json": {"current_password": "not his", "new_password": "a new passphrase"},
                "headers": IVAN,
            },
        ),
        (
            "put",
            "/api/users/me/password",
            {
                "json": {"current_password": IVANS_PASSWORD, "new_password": "password1"},
                "headers": IVAN,
            },
        ),
        ("delete", "/api/users/me", {"json": {"password": "not his"}, "headers": IVAN}),
        ("delete", "/api/users/me", {"json": {"password": BOSS_PASSWORD}, "headers": BOSS}),
        ("get", "/api/users", {"query_string": {"limit": "0"}, "headers": BOSS}),
        ("get", "/api/users", {"headers": IVAN}),
        ("get", "/api/users/{user_id}", {"headers": BOSS}),
        ("patch", "/api/users/{user_id}", {"json": {}, "headers": BOSS}),
        ("patch", "/api/users/{user_id}", {"json": {"is_admin": True}, "headers": BOSS}),
    ],
)
def test_the_users_examples_are_what_users_answers(
    documents: Documents,
    users_client: FlaskClient,
    method: str,
    path: str,
    request_kwargs: dict[str, Any],
) -> None:
    assert_answer_documented(documents, "users", users_client, method, path, request_kwargs)


# Names, tags, servers, paths.


def test_every_operation_has_a_unique_id_and_a_declared_tag(documents: Documents) -> None:
    for name, document in documents.items():
        declared = {tag["name"] for tag in document["tags"]}
        ids = [operation["operationId"] for _, operation in operations(document)]
        assert len(ids) == len(set(ids)), name
        for where, operation in operations(document):
            assert operation["tags"] and set(operation["tags"]) <= declared, where


# Where the contract lets the token come in the body instead of the header.
TOKEN_HEADER_OR_BODY = {"users: POST /api/users/logout", "users: POST /api/users/check_token"}


# The 403 of an operation for administrators only: it asks for their role.
NOT_AN_ADMINISTRATOR = "The caller is not an administrator."


def token_security(where: str, operation: dict[str, Any]) -> list[dict[str, list[str]]]:
    """The security of an operation that needs a token."""
    if where in TOKEN_HEADER_OR_BODY:
        return [{"BearerAuth": []}, {}]
    if operation["responses"].get("403", {}).get("description") == NOT_AN_ADMINISTRATOR:
        return [{"BearerAuth": ["admin"]}]
    return [{"BearerAuth": []}]


def test_every_operation_says_whether_it_needs_a_token(documents: Documents) -> None:
    for where, operation in every_operation(documents):
        expected = token_security(where, operation)
        needs_token = operation["security"] == expected
        if where != "users: POST /api/users/login":  # whose 401 is a wrong password
            assert needs_token == ("401" in operation["responses"]), where
        assert needs_token or operation["security"] == [], where


@pytest.mark.parametrize("name", SERVICES)
def test_the_servers_are_relative_whoever_asked_first(name: str) -> None:
    app = SERVICES[name].create_app(
        {"DATABASE_URL": "sqlite://", "SECRET_KEY": "test"}, **CLIENTS[name]
    )
    client = app.test_client()

    first = client.get(SPEC_PATH, headers={"Host": "first.example:8080"}).json
    then = client.get(SPEC_PATH, headers={"Host": "127.0.0.1:5002"}).json

    assert first["servers"] == then["servers"] == [{"url": "/"}]


def test_no_path_ends_in_a_slash(documents: Documents) -> None:
    for name, document in documents.items():
        for path in document["paths"]:
            assert not path.endswith("/"), f"{name}: {path}"


# Patterns that JavaScript reads as Python does.


def test_no_pattern_uses_python_only_syntax(documents: Documents) -> None:
    for name, document in documents.items():
        for pattern in patterns(document):
            assert not PYTHON_ONLY.search(pattern), f"{name}: {pattern}"


NODE = shutil.which("node") or ""


@pytest.mark.skipif(not NODE, reason="needs node, to ask JavaScript itself")
def test_every_pattern_compiles_in_javascript(documents: Documents) -> None:
    found = sorted({pattern for document in documents.values() for pattern in patterns(document)})
    script = "for (const p of JSON.parse(process.argv[1])) new RegExp(p, 'u');"

    done = subprocess.run([NODE, "-e", script, json.dumps(found)], capture_output=True, text=True)

    assert found and done.returncode == 0, done.stderr


SAMPLES = ["123456", "beer_1.5-x", ".", "..", "...", "123456\n", "\n123456", "", "a" * 65, "ab"]


@pytest.mark.skipif(not NODE, reason="needs node, to ask JavaScript itself")
@pytest.mark.parametrize(
    "pattern, validator", [(SKU_PATTERN, Sku().validators[0]), (USERNAME.regex.pattern, USERNAME)]
)
def test_javascript_and_the_service_take_the_same_values(
    pattern: str, validator: Callable[[str], object]
) -> None:
    script = (
        "const re = new RegExp(process.argv[1], 'u');"
        "console.log(JSON.stringify(JSON.parse(process.argv[2]).map((s) => re.test(s))));"
    )
    done = subprocess.run(
        [NODE, "-e", script, pattern, json.dumps(SAMPLES)],
        capture_output=True,
        text=True,
        check=True,
    )

    assert json.loads(done.stdout) == [accepts(validator, sample) for sample in SAMPLES]


def accepts(validator: Callable[[str], object], value: str) -> bool:
    try:
        validator(value)
    except Exception:
        return False
    return True


@pytest.mark.parametrize("value", ["123456\n", "123456\r\n", ".", "..", "", "a" * 65])
def test_a_sku_with_a_final_newline_or_a_dot_name_is_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        Sku().deserialize(value)


@pytest.mark.parametrize("value", ["ivan\n", "iv", "ivan petrov"])
def test_a_username_with_a_final_newline_is_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        USERNAME(value)


# auth_required documents its security; the auth responses sit beside the view's own.


def tiny_app() -> APIFlask:
    app = APIFlask(__name__)
    apidocs.configure_api_docs(app, "tiny", "A tiny service.")
    bp = APIBlueprint("tiny", __name__, tag="tiny")

    @bp.get("/mine")
    @bp.auth_required(users_auth)
    @bp.doc(
        responses={
            **USER_RESPONSES,
            404: problem_doc("None of mine.", NotFound("Nothing is yours.")),
        }
    )
    def mine() -> dict[str, Any]:
        return {}

    @bp.delete("/everything")
    @bp.auth_required(users_auth, roles=[ADMIN_ROLE])
    @bp.doc(responses=ADMIN_RESPONSES)
    def everything() -> dict[str, Any]:
        return {}

    @bp.get("/public")
    def public() -> dict[str, Any]:
        return {}

    app.register_blueprint(bp)
    return app


def test_a_users_view_has_bearer_auth_401_and_503_beside_its_own() -> None:
    spec = tiny_app().spec
    mine = spec["paths"]["/mine"]["get"]

    assert mine["security"] == [{"BearerAuth": []}]
    assert spec["components"]["securitySchemes"]["BearerAuth"]["scheme"] == "bearer"
    assert {"401", "404", "503"} <= mine["responses"].keys()
    assert "403" not in mine["responses"]
    assert "WWW-Authenticate" in mine["responses"]["401"]["headers"]


def test_an_administrators_view_asks_for_the_role_and_has_403_too() -> None:
    spec = tiny_app().spec
    everything = spec["paths"]["/everything"]["delete"]

    assert everything["security"] == [{"BearerAuth": ["admin"]}]
    assert {"401", "403", "503"} <= everything["responses"].keys()


def test_a_view_without_them_is_public() -> None:
    spec = tiny_app().spec
    public = spec["paths"]["/public"]["get"]

    assert public["security"] == []
    assert "401" not in public["responses"]


# The linter inv check runs.


def test_the_documents_are_written_as_the_services_serve_them(
    tmp_path: Path, documents: Documents
) -> None:
    written = apidocs.write_documents(list(SERVICES), tmp_path)

    assert [path.name for path in written] == ["users.json", "beers.json", "orders.json"]
    assert json.loads((tmp_path / "beers.json").read_text("utf-8")) == documents["beers"]


@pytest.mark.skipif(not apidocs.REDOCLY.exists(), reason="needs Redocly's CLI: npm ci")
def test_the_documents_pass_redocly_lint(tmp_path: Path) -> None:
    assert apidocs.lint(apidocs.write_documents(list(SERVICES), tmp_path)) == 0


def test_the_docs_page_is_still_served_under_the_health_blueprint() -> None:
    # servicekit.observability gives the endpoint health.docs its own policy.
    app = beers.create_app(
        {"DATABASE_URL": "sqlite://", "SECRET_KEY": "test"}, users_client=FakeUsersClient()
    )
    endpoints = {rule.rule: rule.endpoint for rule in app.url_map.iter_rules()}

    assert endpoints["/api/docs"] == endpoints["/api/docs/"] == "health.docs"


def docstrings_by_operation(name: str) -> dict[str, str]:
    """Each operation's view's docstring, by the operationId APIFlask gives it."""
    app = SERVICES[name].create_app(
        {"DATABASE_URL": "sqlite://", "SECRET_KEY": "test"}, **CLIENTS[name]
    )
    found = {}
    for rule in app.url_map.iter_rules():
        for method in rule.methods or ():
            operation_id = f"{method.lower()}_{rule.endpoint.replace('.', '_')}"
            found[operation_id] = app.view_functions[rule.endpoint].__doc__ or ""
    return found


def words(text: str) -> list[str]:
    return sorted(re.findall(r"[\w`'-]+", text.lower()))


def test_every_summary_is_one_whole_short_sentence_and_the_description_the_rest(
    documents: Documents,
) -> None:
    for name, document in documents.items():
        docstrings = docstrings_by_operation(name)
        for where, operation in operations(document):
            summary = operation["summary"]
            assert "\n" not in summary and len(summary) <= apidocs.SUMMARY_LENGTH, where
            assert summary[:1].isupper() and summary.endswith("."), (where, summary)
            docstring = docstrings[operation["operationId"]]
            told = f"{summary} {operation.get('description', '')}"
            assert words(told) == words(docstring), (where, told)


def test_a_summary_cut_at_the_end_of_a_line_is_made_whole() -> None:
    operation = {
        "summary": "Change some of a beer (administrators only): only the",
        "description": "fields sent change. SKUs never change.\n\nMore, on its own.",
    }

    apidocs._summary_of_one_sentence(operation)

    assert operation == {
        "summary": "Change some of a beer (administrators only): only the fields sent change.",
        "description": "SKUs never change.\n\nMore, on its own.",
    }
