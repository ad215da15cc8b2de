"""A user's own account: changing their details and password, deleting it; ids
never given twice; passwords of spaces and input whose case-fold outgrows its
column refused."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient
from sqlalchemy import text
from werkzeug.test import TestResponse

from servicekit.migrations import upgrade
from tests.databases import fresh_app
from tests.problems import assert_problem
from tests.users.conftest import Login, Register
from users import create_app
from users.domain import promote_to_admin
from users.models import LoginFailure, Token, User, db

PASSWORD = "ivan-s-own-passphrase"
NEW_PASSWORD = "a new and longer passphrase"
LIMITS = {"LOGIN_MAX_FAILURES": 3, "LOGIN_MAX_FAILURES_PER_ADDRESS": 100}


@pytest.fixture
def app(tmp_path: Path) -> Iterator[APIFlask]:
    with fresh_app(create_app, db, "users", tmp_path, settings=LIMITS) as app:
        yield app


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def change_password(
    client: FlaskClient, token: str, current: str = PASSWORD, new: str = NEW_PASSWORD
) -> TestResponse:
    return client.put(
        "/api/users/me/password",
        json={"current_password": current, "new_password": new},
        headers=auth(token),
    )


def delete_me(client: FlaskClient, token: str, password: str = PASSWORD) -> TestResponse:
    return client.delete("/api/users/me", json={"password": password}, headers=auth(token))


def log_in(client: FlaskClient, username: str = "ivan", password: str = PASSWORD) -> TestResponse:
    return client.post("/api/users/login", json={"username": username, "password": password})


# PATCH /api/users/me


def test_changing_my_details_changes_only_the_fields_sent(
    client: FlaskClient, register: Register, login: Login
) -> None:
    before = register(first_name="Иван", last_name="Петров")

    response = client.patch(
        "/api/users/me", json={"email": "Ivan.Petrov@example.com"}, headers=auth(login())
    )

    assert response.status_code == 200, response.json
    after = response.json
    assert after["email"] == "Ivan.Petrov@example.com"
    assert (after["first_name"], after["last_name"]) == ("Иван", "Петров")
    assert after["id"] == before["id"] and after["username"] == "ivan"


@pytest.mark.parametrize("removed", ["", None])
def test_an_empty_or_null_name_removes_it(
    client: FlaskClient, register: Register, login: Login, removed: str | None
) -> None:
    register(first_name="Иван", last_name="Петров")

    response = client.patch(
        "/api/users/me", json={"first_name": removed, "last_name": "Иванов"}, headers=auth(login())
    )

    assert response.status_code == 200, response.json
    assert (response.json["first_name"], response.json["last_name"]) == (None, "Иванов")


def test_changing_my_details_accepts_a_form(
    client: FlaskClient, register: Register, login: Login
) -> None:
    register()

    response = client.patch("/api/users/me", data={"last_name": "Петров"}, headers=auth(login()))

    assert response.status_code == 200, response.json
    assert response.json["last_name"] == "Петров"


def test_changing_nothing_is_400(client: FlaskClient, register: Register, login: Login) -> None:
    register()

    response = client.patch("/api/users/me", json={}, headers=auth(login()))

    assert "body" in assert_problem(response, 400)["errors"]


@pytest.mark.parametrize(
    "body, field",
    [
        ({"email": "not an email"}, "email"),
        ({"email": None}, "email"),
        ({"first_name": "x" * 256}, "first_name"),
    ],
)
def test_bad_details_are_400_naming_the_field_and_change_nothing(
    client: FlaskClient, register: Register, login: Login, body: dict[str, Any], field: str
) -> None:
    register(first_name="Иван")
    token = login()

    response = client.patch("/api/users/me", json=body, headers=auth(token))

    assert field in assert_problem(response, 400)["errors"]
    me = client.get("/api/users/me", headers=auth(token)).json
    assert (me["email"], me["first_name"]) == ("ivan@example.com", "Иван")


def test_an_email_someone_else_has_in_another_case_is_409(
    client: FlaskClient, register: Register, login: Login
) -> None:
    register("ivan")
    register("petar", email="petar@example.com")
    token = login("ivan")

    response = client.patch(
        "/api/users/me", json={"email": "PETAR@example.com", "last_name": "X"}, headers=auth(token)
    )

    assert assert_problem(response, 409)["errors"] == {"email": ["Already taken."]}
    me = client.get("/api/users/me", headers=auth(token)).json
    assert (me["email"], me["last_name"]) == ("ivan@example.com", None)


def test_my_own_email_in_another_case_is_mine_to_take(
    client: FlaskClient, register: Register, login: Login
) -> None:
    register("ivan")

    response = client.patch(
        "/api/users/me", json={"email": "IVAN@example.com"}, headers=auth(login())
    )

    assert response.status_code == 200, response.json
    assert response.json["email"] == "IVAN@example.com"


def test_an_email_i_gave_up_is_free_for_others(
    client: FlaskClient, register: Register, login: Login
) -> None:
    register("ivan")
    client.patch("/api/users/me", json={"email": "ivan2@example.com"}, headers=auth(login()))

    register("petar", email="ivan@example.com")


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("patch", "/api/users/me", {"email": "not an email"}),
        ("put", "/api/users/me/password", {"new_password": "short"}),
        ("delete", "/api/users/me", {"password": 5}),
    ],
)
@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer made-up"}])
def test_my_account_without_a_valid_token_is_401_before_any_word_on_the_body(
    client: FlaskClient, method: str, path: str, body: dict[str, Any], headers: dict[str, str]
) -> None:
    response = getattr(client, method)(path, json=body, headers=headers)

    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"


# PUT /api/users/me/password


def test_changing_my_password_keeps_the_token_presented_and_revokes_the_others(
    client: FlaskClient, register: Register, login: Login
) -> None:
    register()
    kept, other, another = login(), login(), login()

    response = change_password(client, kept)

    assert response.status_code == 204
    assert client.get("/api/users/me", headers=auth(kept)).status_code == 200
    for revoked in (other, another):
        assert_problem(client.get("/api/users/me", headers=auth(revoked)), 401)
    assert_problem(log_in(client), 401)
    assert log_in(client, password=NEW_PASSWORD).status_code == 200


def test_changing_my_password_leaves_other_users_tokens_alone(
    client: FlaskClient, register: Register, login: Login
) -> None:
    register("ivan")
    register("petar")
    petars = login("petar")

    assert change_password(client, login("ivan")).status_code == 204

    assert client.get("/api/users/me", headers=auth(petars)).status_code == 200


def test_a_wrong_current_password_is_400_naming_it_and_counts_as_a_failed_login(
    app: APIFlask, client: FlaskClient, register: Register, login: Login
) -> None:
    register()
    token = login()

    response = change_password(client, token, current="not my password")

    assert assert_problem(response, 400)["errors"] == {"current_password": ["Wrong password."]}
    assert response.headers["RateLimit"] == '"login";r=2;t=600'
    with app.app_context():
        assert db.session.scalars(db.select(LoginFailure.username_key)).all() == ["ivan"]
    assert log_in(client).status_code == 200  # the password is unchanged


def test_changing_my_password_while_throttled_is_429_and_checks_no_password(
    client: FlaskClient, register: Register, login: Login
) -> None:
    register()
    token = login()
    for _ in range(3):
        assert change_password(client, token, current="a wrong guess").status_code == 400

    response = change_password(client, token)  # the right one, too late

    assert_problem(response, 429)
    assert int(response.headers["Retry-After"]) > 0
    assert client.get("/api/users/me", headers=auth(token)).status_code == 200
    assert_problem(log_in(client, password=NEW_PASSWORD), 429)  # throttled, not changed


@pytest.mark.parametrize(
    "new, message",
    [
        (" " * 8, "Must hold something besides spaces."),
        ("\t" * 10, "Must hold something besides spaces."),
        ("password1", "Too common: one of the 10000 most used passwords."),
        ("Xq7!zr", "Length must be between 8 and 128."),
        ("Xq7!zr" * 22, "Length must be between 8 and 128."),
    ],
)
def test_a_new_password_follows_the_rules_of_registration(
    client: FlaskClient, register: Register, login: Login, new: str, message: str
) -> None:
    register()

    response = change_password(client, login(), new=new)

    assert message in assert_problem(response, 400)["errors"]["new_password"]
    assert log_in(client).status_code == 200


def test_a_new_password_may_not_be_the_username(
    client: FlaskClient, register: Register, login: Login
) -> None:
    register("ivan-the-great")

    response = change_password(client, login("ivan-the-great"), new="IVAN-the-great")

    errors = assert_problem(response, 400)["errors"]
    assert errors == {"new_password": ["Must not be the username."]}


def test_changing_my_password_without_both_passwords_is_400_naming_them(
    client: FlaskClient, register: Register, login: Login
) -> None:
    register()

    response = client.put("/api/users/me/password", json={}, headers=auth(login()))

    assert assert_problem(response, 400)["errors"].keys() == {"current_password", "new_password"}


# DELETE /api/users/me


def test_deleting_my_account_removes_me_and_my_tokens_and_frees_my_names(
    app: APIFlask, client: FlaskClient, register: Register, login: Login
) -> None:
    ivan = register("ivan")
    token, other = login(), login()

    assert delete_me(client, token).status_code == 204

    for gone in (token, other):
        assert_problem(client.get("/api/users/me", headers=auth(gone)), 401)
    assert_problem(log_in(client), 401)
    with app.app_context():
        assert db.session.scalars(db.select(Token)).all() == []
        assert db.session.get(User, ivan["id"]) is None
    again = register("IVAN", email="IVAN@example.com")
    assert again["id"] != ivan["id"]


def test_deleting_my_account_with_a_wrong_password_is_400_and_counts(
    client: FlaskClient, register: Register, login: Login
) -> None:
    register()
    token = login()

    response = delete_me(client, token, "not my password")

    assert assert_problem(response, 400)["errors"] == {"password": ["Wrong password."]}
    assert response.headers["RateLimit"] == '"login";r=2;t=600'
    assert client.get("/api/users/me", headers=auth(token)).status_code == 200


def test_deleting_my_account_while_throttled_is_429_and_deletes_nothing(
    client: FlaskClient, register: Register, login: Login
) -> None:
    register()
    token = login()
    for _ in range(3):
        assert_problem(log_in(client, password="a wrong guess"), 401)

    response = delete_me(client, token)

    assert_problem(response, 429)
    assert client.get("/api/users/me", headers=auth(token)).status_code == 200


def test_the_last_administrator_cannot_delete_their_account(
    app: APIFlask, client: FlaskClient, register: Register, login: Login
) -> None:
    register("boss")
    with app.app_context():
        promote_to_admin("boss")
    token = login("boss")

    response = delete_me(client, token)

    assert assert_problem(response, 409)["errors"] == {"is_admin": ["The last administrator."]}
    assert client.get("/api/users/me", headers=auth(token)).json["is_admin"] is True


def test_an_administrator_with_another_beside_them_may_go(
    app: APIFlask, client: FlaskClient, register: Register, login: Login
) -> None:
    register("boss")
    register("deputy")
    with app.app_context():
        promote_to_admin("boss")
        promote_to_admin("deputy")

    assert delete_me(client, login("boss")).status_code == 204

    assert client.get("/api/users/me", headers=auth(login("deputy"))).json["is_admin"] is True


# Ids, on every database


def test_a_deleted_users_id_is_never_given_to_the_next_user(
    client: FlaskClient, register: Register, login: Login
) -> None:
    register("first")
    last = register("last")
    assert delete_me(client, login("last")).status_code == 204

    after = register("next")

    assert after["id"] > last["id"]


def test_upgrading_keeps_the_users_and_gives_no_id_twice_after(tmp_path: Path) -> None:
    with fresh_app(create_app, db, "users", tmp_path) as app, app.app_context():
        db.drop_all()  # the schema as migrations 0001 to 0003 made it
        upgrade("users", db, "0003")
        with db.engine.begin() as connection:
            for name in ("u1", "u2"):
                connection.execute(
                    text(
                        "INSERT INTO users (username, email, username_key, email_key, "
                        "password_hash, is_admin, time_registered, time_modified) VALUES "
                        f"('{name}', '{name}@example.com', '{name}', '{name}@example.com', 'x', "
                        "false, '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                    )
                )
            connection.execute(
                text(
                    "INSERT INTO tokens (digest, user_id, time_created, expires_at) "
                    "SELECT 'd2', id, '2026-01-01 00:00:00', '2999-01-01 00:00:00' "
                    "FROM users WHERE username = 'u2'"
                )
            )

        upgrade("users", db)

        with db.engine.begin() as connection:
            kept = connection.execute(text("SELECT id, username FROM users ORDER BY id")).all()
            tokens = connection.execute(text("SELECT digest, user_id FROM tokens")).all()
            connection.execute(text("DELETE FROM users WHERE id = 2"))
        response = app.test_client().post(
            "/api/users/register",
            json={"username": "newcomer", "email": "n@example.com", "password": PASSWORD},
        )
    assert [tuple(row) for row in kept] == [(1, "u1"), (2, "u2")]
    assert [tuple(row) for row in tokens] == [("d2", 2)]
    assert response.status_code == 201, response.json
    assert response.json["id"] == 3


# Passwords of spaces, and input whose case-fold outgrows its column


@pytest.mark.parametrize("password", [" " * 8, " " * 128, "\u00a0" * 8, " \t \n \r  "])
def test_a_password_of_nothing_but_spaces_is_refused_at_registration(
    client: FlaskClient, password: str
) -> None:
    response = client.post(
        "/api/users/register",
        json={"username": "ivan", "email": "ivan@example.com", "password": password},
    )

    errors = assert_problem(response, 400)["errors"]
    assert errors == {"password": ["Must hold something besides spaces."]}


def test_a_password_with_something_besides_spaces_is_fine(register: Register) -> None:
    register(password="   a   b   ")


def test_logging_in_as_a_username_whose_case_fold_outgrows_its_column_is_400(
    app: APIFlask, client: FlaskClient
) -> None:
    response = log_in(client, "ß" * 128, "whatever it is")

    assert "username" in assert_problem(response, 400)["errors"]
    with app.app_context():
        assert db.session.scalars(db.select(LoginFailure)).all() == []


def test_the_longest_username_that_folds_into_its_column_is_a_plain_401(
    client: FlaskClient,
) -> None:
    assert_problem(log_in(client, "ß" * 127 + "s", "whatever it is"), 401)  # folds to 255


@pytest.mark.parametrize("field", ["email", "mail"])
def test_registering_an_email_whose_case_fold_outgrows_its_column_is_400(
    client: FlaskClient, field: str
) -> None:
    email = "ß" * 125 + "@example.com"  # 137 characters, 262 case-folded
    response = client.post(
        "/api/users/register", json={"username": "ivan", field: email, "password": PASSWORD}
    )

    assert field in assert_problem(response, 400)["errors"]


def test_registering_a_username_of_sharp_s_is_400(client: FlaskClient) -> None:
    response = client.post(
        "/api/users/register",
        json={"username": "ß" * 128, "email": "ivan@example.com", "password": PASSWORD},
    )

    assert "username" in assert_problem(response, 400)["errors"]


def test_changing_my_email_to_one_whose_case_fold_outgrows_its_column_is_400(
    client: FlaskClient, register: Register, login: Login
) -> None:
    register()
    email = "ß" * 125 + "@example.com"

    response = client.patch("/api/users/me", json={"email": email}, headers=auth(login()))

    assert "email" in assert_problem(response, 400)["errors"]
