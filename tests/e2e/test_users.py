"""Registration, login, tokens and the user shape, over real HTTP."""

from __future__ import annotations

import statistics
import time
from typing import Any

import pytest
import requests

from tests.problems import assert_problem

from .api_client import PASSWORD, TIMEOUT, ShopApi, assert_utc_time, encoded, unique
from .services import Service, StartService

pytestmark = pytest.mark.e2e

USER_FIELDS = {
    "id",
    "username",
    "email",
    "first_name",
    "last_name",
    "is_admin",
    "time_registered",
    "time_modified",
}


def test_registering_answers_201_with_the_new_user(api: ShopApi) -> None:
    username = unique("Ivan")

    response = api.register(
        username, email=f"{username}@example.com", first_name="Иван", last_name="Петров"
    )

    assert response.status_code == 201, response.text
    user = response.json()
    assert user.keys() == USER_FIELDS
    assert user["username"] == username
    assert user["email"] == f"{username}@example.com"
    assert (user["first_name"], user["last_name"]) == ("Иван", "Петров")
    assert user["is_admin"] is False
    assert_utc_time(user["time_registered"])


def test_registering_accepts_the_original_mail_field_for_the_email(api: ShopApi) -> None:
    username = unique("mailer")

    response = api.register(username, email=f"{username}@example.org", email_field="mail")

    assert response.status_code == 201, response.text
    assert response.json()["email"] == f"{username}@example.org"


@pytest.mark.parametrize("body", ["urlencoded form", "multipart form"])
def test_registering_accepts_a_form(api: ShopApi, body: str) -> None:
    username = unique("former")
    fields = {"username": username, "email": f"{username}@example.com", "password": PASSWORD}

    response = requests.post(
        f"{api.users_url}/api/users/register", timeout=TIMEOUT, **encoded(body, fields)
    )

    assert response.status_code == 201, response.text
    assert api.login(username).status_code == 200


def test_registering_a_taken_username_in_another_case_is_409(api: ShopApi) -> None:
    username = unique("taken")
    api.register(username)

    response = api.register(username.upper(), email=f"other-{username}@example.com")

    problem = assert_problem(response, 409)
    assert "username" in problem["errors"]
    assert api.login(username.upper()).json()["token"]  # still the first user's password works


def test_registering_a_taken_email_in_another_case_is_409(api: ShopApi) -> None:
    first = unique("first")
    api.register(first, email=f"{first}@example.com")

    response = api.register(unique("second"), email=f"{first.upper()}@EXAMPLE.com")

    problem = assert_problem(response, 409)
    assert "email" in problem["errors"]


def test_exists_says_200_for_a_taken_username_whatever_its_case(api: ShopApi) -> None:
    username = unique("exists")
    api.register(username)

    response = requests.get(
        f"{api.users_url}/api/users/exists",
        params={"username": username.upper()},
        timeout=TIMEOUT,
    )

    assert response.status_code == 200
    assert response.json() == {"username": username.upper(), "exists": True}


def test_exists_says_404_as_a_problem_naming_a_free_username(api: ShopApi) -> None:
    username = unique("free")

    response = requests.get(
        f"{api.users_url}/api/users/exists", params={"username": username}, timeout=TIMEOUT
    )

    problem = assert_problem(response, 404)
    assert problem["username"] == username
    assert problem["exists"] is False


def test_exists_without_a_username_is_400(api: ShopApi) -> None:
    response = requests.get(f"{api.users_url}/api/users/exists", timeout=TIMEOUT)

    problem = assert_problem(response, 400)
    assert "username" in problem["errors"]


def test_logging_in_gives_a_bearer_token_with_its_expiry(api: ShopApi) -> None:
    username = unique("login")
    api.register(username)

    response = api.login(username)

    assert response.status_code == 200, response.text
    body = response.json()
    assert body.keys() == {"token", "token_type", "expires_at"}
    assert body["token_type"] == "Bearer"
    assert len(body["token"]) >= 43  # 256 bits, url-safe base64
    assert_utc_time(body["expires_at"])


def test_logging_in_accepts_a_form(api: ShopApi) -> None:
    username = unique("formlogin")
    api.register(username)

    response = requests.post(
        f"{api.users_url}/api/users/login",
        data={"username": username, "password": PASSWORD},
        timeout=TIMEOUT,
    )

    assert response.status_code == 200, response.text
    assert api.me(response.json()["token"]).json()["username"] == username


def test_a_wrong_password_and_an_unknown_user_get_the_same_401(api: ShopApi) -> None:
    username = unique("known")
    api.register(username)

    wrong_password = api.login(username, "not the password")
    unknown_user = api.login(unique("unknown"), "not the password")

    assert assert_problem(wrong_password, 401) == assert_problem(unknown_user, 401)


def test_logging_in_takes_about_as_long_for_an_unknown_user_as_for_a_wrong_password(
    api: ShopApi,
) -> None:
    username = unique("timed")
    api.register(username)

    def median_seconds(name: str) -> float:
        times = []
        for _ in range(5):
            started = time.perf_counter()
            assert api.login(name, "not the password").status_code == 401
            times.append(time.perf_counter() - started)
        return statistics.median(times)

    wrong_password, unknown_user = median_seconds(username), median_seconds(unique("ghost"))

    assert 0.5 < unknown_user / wrong_password < 2.0, (unknown_user, wrong_password)


def test_every_login_issues_a_new_token(api: ShopApi) -> None:
    username = unique("twice")
    api.register(username)

    assert api.token_for(username) != api.token_for(username)


@pytest.mark.parametrize("via", ["Bearer header", "bare header", "json field", "form field"])
def test_check_token_tells_whose_token_it_is(api: ShopApi, via: str) -> None:
    customer = api.new_customer()
    sent: dict[str, Any] = {
        "Bearer header": {"headers": {"Authorization": f"Bearer {customer.token}"}},
        "bare header": {"headers": {"Authorization": customer.token}},
        "json field": {"json": {"token": customer.token}},
        "form field": {"data": {"token": customer.token}},
    }[via]

    response = requests.post(f"{api.users_url}/api/users/check_token", timeout=TIMEOUT, **sent)

    assert response.status_code == 200, response.text
    assert response.json()["id"] == customer.id
    assert response.json()["username"] == customer.username


@pytest.mark.parametrize("sent", [{}, {"json": {"token": "not-a-token"}}], ids=["none", "garbage"])
def test_check_token_without_a_valid_token_is_401(api: ShopApi, sent: dict[str, Any]) -> None:
    response = requests.post(f"{api.users_url}/api/users/check_token", timeout=TIMEOUT, **sent)

    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_me_is_the_tokens_user(api: ShopApi) -> None:
    customer = api.new_customer()

    response = api.me(customer.token)

    assert response.status_code == 200
    assert response.json()["id"] == customer.id
    assert response.json().keys() == USER_FIELDS


def test_me_without_a_token_is_401(api: ShopApi) -> None:
    response = requests.get(f"{api.users_url}/api/users/me", timeout=TIMEOUT)

    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_logging_out_revokes_the_token(api: ShopApi) -> None:
    customer = api.new_customer()

    response = api.logout(customer.token)

    assert response.status_code == 204
    assert response.content == b""
    assert_problem(api.me(customer.token), 401)
    assert_problem(api.logout(customer.token), 401)


def test_logging_out_with_the_token_in_the_body_revokes_it(api: ShopApi) -> None:
    customer = api.new_customer()

    response = requests.post(
        f"{api.users_url}/api/users/logout", json={"token": customer.token}, timeout=TIMEOUT
    )

    assert response.status_code == 204
    assert_problem(api.me(customer.token), 401)


def test_logging_out_revokes_only_the_token_presented(api: ShopApi) -> None:
    customer = api.new_customer()
    other_session = api.token_for(customer.username)

    api.logout(customer.token)

    assert api.me(other_session).status_code == 200


def test_no_user_answer_carries_a_password_or_token(api: ShopApi) -> None:
    username = unique("secretive")
    password = "a very secret password"
    registered = api.register(username, password=password)
    token = api.token_for(username, password)
    answers = [
        registered,
        api.me(token),
        requests.post(
            f"{api.users_url}/api/users/check_token", json={"token": token}, timeout=TIMEOUT
        ),
    ]

    for answer in answers:
        assert answer.status_code in (200, 201), answer.text
        assert answer.json().keys() == USER_FIELDS
        assert password not in answer.text
        assert token not in answer.text
        assert "password" not in answer.text
        assert "token" not in answer.text


@pytest.fixture(scope="module")
def short_lived_tokens(start_service: StartService) -> Service:
    """A second users process, on its own database, whose tokens live one second."""
    return start_service("users", TOKEN_TTL_SECONDS=1)


def test_an_expired_token_is_401(short_lived_tokens: Service) -> None:
    api = ShopApi(short_lived_tokens.url, "", "")
    customer = api.new_customer()
    assert api.me(customer.token).status_code == 200

    time.sleep(2.1)

    response = api.me(customer.token)
    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
