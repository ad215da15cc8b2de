"""Administrators managing users: the list with its search and pages, one user,
and making or unmaking administrators, never the last."""

import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient

from tests.problems import assert_problem
from tests.users.conftest import Login, Register
from users.domain import promote_to_admin


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def boss(app: APIFlask, register: Register, login: Login) -> str:
    """An administrator's token."""
    register("boss", email="boss@example.com")
    with app.app_context():
        promote_to_admin("boss")
    return login("boss")


def test_administrators_list_users_in_id_order_with_the_total(
    client: FlaskClient, register: Register, boss: str
) -> None:
    for name in ("ivan", "petar", "maria"):
        register(name)

    response = client.get("/api/users/", headers=auth(boss))

    assert response.status_code == 200, response.json
    assert [user["username"] for user in response.json] == ["boss", "ivan", "petar", "maria"]
    assert response.headers["X-Total-Count"] == "4"
    assert "password_hash" not in response.json[0]


def test_the_list_comes_a_page_at_a_time(
    client: FlaskClient, register: Register, boss: str
) -> None:
    for name in ("ivan", "petar", "maria"):
        register(name)

    response = client.get("/api/users?limit=2&offset=1", headers=auth(boss))

    assert [user["username"] for user in response.json] == ["ivan", "petar"]
    assert response.headers["X-Total-Count"] == "4"


@pytest.mark.parametrize(
    "q, found",
    [
        ("IVAN", ["ivan", "ivanka"]),
        ("van", ["ivan", "ivanka"]),
        ("EXAMPLE.ORG", ["petar"]),
        ("nobody", []),
        ("%", []),
        ("_", ["under_score"]),
    ],
)
def test_q_keeps_the_users_whose_username_or_email_holds_it_in_any_case(
    client: FlaskClient, register: Register, boss: str, q: str, found: list[str]
) -> None:
    register("ivan")
    register("ivanka")
    register("petar", email="Petar@Example.org")
    register("under_score")

    response = client.get("/api/users/", query_string={"q": q}, headers=auth(boss))

    assert [user["username"] for user in response.json] == found
    assert response.headers["X-Total-Count"] == str(len(found))


@pytest.mark.parametrize(
    "query, field",
    [
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"q": ""}, "q"),
        ({"q": "x" * 256}, "q"),
    ],
)
def test_a_bad_page_or_search_is_400_naming_it(
    client: FlaskClient, boss: str, query: dict[str, str], field: str
) -> None:
    response = client.get("/api/users/", query_string=query, headers=auth(boss))

    assert field in assert_problem(response, 400)["errors"]


@pytest.mark.parametrize(
    "method, path", [("get", "/api/users/"), ("get", "/api/users/1"), ("patch", "/api/users/1")]
)
def test_managing_users_is_for_administrators_only(
    client: FlaskClient, register: Register, login: Login, method: str, path: str
) -> None:
    register("ivan")
    token = login("ivan")

    body = {"json": {"is_admin": True}} if method == "patch" else {}
    refused = getattr(client, method)(path, headers=auth(token), **body)
    anonymous = getattr(client, method)(path, **body)

    assert assert_problem(refused, 403)["detail"] == "Only administrators may manage users."
    assert_problem(anonymous, 401)
    assert client.get("/api/users/me", headers=auth(token)).json["is_admin"] is False


def test_an_administrator_reads_one_user(
    client: FlaskClient, register: Register, boss: str
) -> None:
    ivan = register("ivan")

    response = client.get(f"/api/users/{ivan['id']}", headers=auth(boss))

    assert response.status_code == 200
    assert response.json == ivan


@pytest.mark.parametrize("user_id", ["999", "99999999999999999999"])
def test_an_unknown_user_is_404(client: FlaskClient, boss: str, user_id: str) -> None:
    assert_problem(client.get(f"/api/users/{user_id}", headers=auth(boss)), 404)
    response = client.patch(f"/api/users/{user_id}", json={"is_admin": True}, headers=auth(boss))
    assert_problem(response, 404)


def test_an_administrator_makes_another_and_unmakes_them(
    client: FlaskClient, register: Register, login: Login, boss: str
) -> None:
    ivan = register("ivan")
    ivans = login("ivan")

    promoted = client.patch(f"/api/users/{ivan['id']}", json={"is_admin": True}, headers=auth(boss))
    assert promoted.status_code == 200, promoted.json
    assert promoted.json["is_admin"] is True
    assert client.get("/api/users/", headers=auth(ivans)).status_code == 200

    demoted = client.patch(
        f"/api/users/{ivan['id']}", data={"is_admin": "false"}, headers=auth(boss)
    )
    assert demoted.json["is_admin"] is False
    assert_problem(client.get("/api/users/", headers=auth(ivans)), 403)


def test_an_administrator_may_step_down_when_another_remains(
    client: FlaskClient, register: Register, login: Login, boss: str
) -> None:
    deputy = register("deputy")
    client.patch(f"/api/users/{deputy['id']}", json={"is_admin": True}, headers=auth(boss))
    me = client.get("/api/users/me", headers=auth(boss)).json

    response = client.patch(f"/api/users/{me['id']}", json={"is_admin": False}, headers=auth(boss))

    assert response.status_code == 200
    assert response.json["is_admin"] is False


def test_the_last_administrator_stays_one(client: FlaskClient, boss: str) -> None:
    me = client.get("/api/users/me", headers=auth(boss)).json

    response = client.patch(f"/api/users/{me['id']}", json={"is_admin": False}, headers=auth(boss))

    assert assert_problem(response, 409)["errors"] == {"is_admin": ["The last administrator."]}
    assert client.get("/api/users/me", headers=auth(boss)).json["is_admin"] is True


@pytest.mark.parametrize("body", [{}, {"is_admin": None}, {"is_admin": "perhaps"}])
def test_changing_a_user_without_a_boolean_is_admin_is_400(
    client: FlaskClient, register: Register, boss: str, body: dict[str, object]
) -> None:
    ivan = register("ivan")

    response = client.patch(f"/api/users/{ivan['id']}", json=body, headers=auth(boss))

    assert "is_admin" in assert_problem(response, 400)["errors"]


def test_the_last_administrators_409_is_the_documented_example(
    client: FlaskClient, boss: str
) -> None:
    me = client.get("/api/users/me", headers=auth(boss)).json
    operation = client.get("/api/openapi.json").json["paths"]["/api/users/{user_id}"]["patch"]

    response = client.patch(f"/api/users/{me['id']}", json={"is_admin": False}, headers=auth(boss))

    documented = operation["responses"]["409"]["content"]["application/problem+json"]
    assert response.json == documented["example"]
