from typing import Any

import pytest
from apiflask import APIFlask
from flask.testing import FlaskClient

from tests.users.conftest import Register
from users.models import User, db


def test_registering_returns_the_user_without_secrets(client: FlaskClient) -> None:
    response = client.post(
        "/api/users/register",
        json={
            "username": "ivan",
            "email": "ivan@example.com",
            "password": "ivan-s-own-passphrase",
            "first_name": "Иван",
        },
    )
    assert response.status_code == 201
    user = response.get_json() or {}
    assert set(user) == {
        "id",
        "username",
        "email",
        "first_name",
        "last_name",
        "is_admin",
        "time_registered",
        "time_modified",
    }
    assert user["username"] == "ivan"
    assert user["first_name"] == "Иван"
    assert user["is_admin"] is False
    assert user["time_registered"].endswith("+00:00")


def test_registering_with_a_form_works_like_json(client: FlaskClient) -> None:
    response = client.post(
        "/api/users/register",
        data={"username": "ivan", "email": "ivan@example.com", "password": "ivan-s-own-passphrase"},
    )
    assert response.status_code == 201
    assert response.json["email"] == "ivan@example.com"


def test_registering_with_a_multipart_form_works_like_json(client: FlaskClient) -> None:
    response = client.post(
        "/api/users/register",
        data={"username": "ivan", "email": "ivan@example.com", "password": "ivan-s-own-passphrase"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 201


def test_the_original_field_name_mail_is_accepted(client: FlaskClient) -> None:
    response = client.post(
        "/api/users/register",
        json={"username": "ivan", "mail": "ivan@example.com", "password": "ivan-s-own-passphrase"},
    )
    assert response.status_code == 201
    assert response.json["email"] == "ivan@example.com"


def test_the_password_is_stored_only_as_a_salted_hash(app: APIFlask, register: Register) -> None:
    register("ivan", "ivan-s-own-passphrase")
    register("olga", "ivan-s-own-passphrase")
    with app.app_context():
        hashes = [user.password_hash for user in db.session.scalars(db.select(User))]
    assert all("ivan-s-own-passphrase" not in hashed for hashed in hashes)
    assert hashes[0] != hashes[1]


@pytest.mark.parametrize(
    "body, bad_fields",
    [
        (
            {"username": "iv", "email": "a@example.com", "password": "ivan-s-own-passphrase"},
            {"username"},
        ),
        (
            {"username": "iv an", "email": "a@example.com", "password": "ivan-s-own-passphrase"},
            {"username"},
        ),
        (
            {"username": "x" * 65, "email": "a@example.com", "password": "ivan-s-own-passphrase"},
            {"username"},
        ),
        (
            {"username": "ivan", "email": "not-an-email", "password": "ivan-s-own-passphrase"},
            {"email"},
        ),
        ({"username": "ivan", "password": "ivan-s-own-passphrase"}, {"email"}),
        ({"username": "ivan", "email": "a@example.com", "password": "short"}, {"password"}),
        ({"username": "ivan", "email": "a@example.com", "password": "x" * 129}, {"password"}),
        ({"username": "ivan1234", "email": "a@example.com", "password": "IVAN1234"}, {"password"}),
        (
            {
                "username": "ivan",
                "email": "a@example.com",
                "password": "ivan-s-own-passphrase",
                "last_name": "x" * 256,
            },
            {"last_name"},
        ),
        ({"username": "!", "email": "nope", "password": "1"}, {"username", "email", "password"}),
        ({}, {"username", "email", "password"}),
    ],
)
def test_invalid_registrations_name_every_bad_field(
    client: FlaskClient, app: APIFlask, body: dict[str, Any], bad_fields: set[str]
) -> None:
    response = client.post("/api/users/register", json=body)
    assert response.status_code == 400
    assert response.mimetype == "application/problem+json"
    assert set(response.json["errors"]) == bad_fields
    with app.app_context():
        assert db.session.scalar(db.select(db.func.count(User.id))) == 0


@pytest.mark.parametrize(
    "second, taken",
    [
        ({"username": "IVAN", "email": "other@example.com"}, {"username"}),
        ({"username": "olga", "email": "IVAN@example.com"}, {"email"}),
        ({"username": "Ivan", "email": "Ivan@Example.com"}, {"username", "email"}),
    ],
)
def test_a_taken_username_or_email_is_a_conflict_whatever_the_case(
    client: FlaskClient, register: Register, second: dict[str, str], taken: set[str]
) -> None:
    register("ivan", email="ivan@example.com")
    response = client.post(
        "/api/users/register", json={**second, "password": "ivan-s-own-passphrase"}
    )
    assert response.status_code == 409
    assert set(response.json["errors"]) == taken


def test_nobody_registers_as_an_administrator(client: FlaskClient) -> None:
    response = client.post(
        "/api/users/register",
        json={
            "username": "ivan",
            "email": "ivan@example.com",
            "password": "ivan-s-own-passphrase",
            "is_admin": True,
        },
    )
    assert response.status_code == 400
    assert response.json["errors"] == {"is_admin": ["Unknown field."]}
    assert client.get("/api/users/exists?username=ivan").status_code == 404


def test_a_taken_username_shows_in_exists_whatever_the_case(
    client: FlaskClient, register: Register
) -> None:
    register("Ivan")
    response = client.get("/api/users/exists?username=ivan")
    assert response.status_code == 200
    assert response.json == {"username": "ivan", "exists": True}


def test_a_free_username_is_a_404_that_says_so(client: FlaskClient) -> None:
    response = client.get("/api/users/exists?username=nobody")
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
    assert response.json["username"] == "nobody"
    assert response.json["exists"] is False


def test_exists_without_a_username_is_a_400(client: FlaskClient) -> None:
    response = client.get("/api/users/exists")
    assert response.status_code == 400
    assert "username" in response.json["errors"]


def test_a_username_with_a_trailing_newline_is_refused(client: FlaskClient) -> None:
    response = client.post(
        "/api/users/register",
        json={"username": "nlx\n", "email": "n@example.com", "password": "ivan-s-own-passphrase"},
    )
    assert response.status_code == 400
    assert list(response.json["errors"]) == ["username"]


def test_a_bad_email_gets_one_clear_message(client: FlaskClient) -> None:
    response = client.post(
        "/api/users/register",
        json={"username": "ivan", "email": "nope", "password": "ivan-s-own-passphrase"},
    )
    assert response.json["errors"] == {"email": ["Not a valid email address."]}


def test_emails_are_unique_whatever_the_case_beyond_ascii_too(
    client: FlaskClient, register: Register
) -> None:
    register("ivan", email="Äb@example.com")
    response = client.post(
        "/api/users/register",
        json={"username": "olga", "email": "äb@example.com", "password": "ivan-s-own-passphrase"},
    )
    assert response.status_code == 409
    assert list(response.json["errors"]) == ["email"]


@pytest.mark.parametrize("password", ["12345678", "password", "Password", "QWERTYUIOP", "iloveyou"])
def test_one_of_the_10000_most_used_passwords_is_refused_naming_password(
    client: FlaskClient, password: str
) -> None:
    response = client.post(
        "/api/users/register",
        json={"username": "ivan", "email": "ivan@example.com", "password": password},
    )

    assert response.status_code == 400
    assert list(response.json["errors"]) == ["password"]
    assert "common" in response.json["errors"]["password"][0]
    assert client.get("/api/users/exists?username=ivan").status_code == 404


def test_the_list_of_common_passwords_is_the_10000_most_used() -> None:
    from users.schemas import COMMON_PASSWORDS, is_common_password

    listed = COMMON_PASSWORDS.read_text(encoding="utf-8").split()
    assert len(listed) == len(set(listed)) == 10000
    assert listed[:4] == ["123456", "123456789", "qwerty", "password"]
    assert not is_common_password("correct horse battery staple")
