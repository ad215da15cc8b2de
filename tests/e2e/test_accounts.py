"""Accounts people manage themselves, and administrators managing users, over
real HTTP: tokens revoked on every service at once, ids never given twice, the
last administrator kept (also when two race), throttling, and input whose
case-fold outgrows its column."""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import requests

from tests.problems import assert_problem

from .api_client import PASSWORD, ShopApi, unique
from .services import ADMIN_PASSWORD, Service, StartService, create_admin

pytestmark = pytest.mark.e2e

NEW_PASSWORD = "a new and longer passphrase"
RACES = 4  # rounds of each race: few, since each is a handful of requests


@pytest.fixture(scope="module")
def lone_users(start_service: StartService) -> Service:
    """A users service of its own, whose administrators the tests may change freely
    (the shop's are shared), with a low login limit."""
    return start_service("users", LOGIN_MAX_FAILURES=2)


def users_api(users: Service) -> ShopApi:
    return ShopApi(users.url, "http://unused", "http://unused")


def new_admin(users: Service) -> tuple[int, str]:
    """An administrator made by the operator's command: its id and token."""
    username = unique("boss")
    create_admin(username, users.env)
    api = users_api(users)
    token = api.token_for(username, ADMIN_PASSWORD)
    user_id: int = api.me(token).json()["id"]
    return user_id, token


def at_once(*calls: Callable[[], requests.Response]) -> list[requests.Response]:
    """Each call on a thread of its own, all released together; their answers in order."""
    start = threading.Barrier(len(calls))
    answers: list[requests.Response | None] = [None] * len(calls)

    def run(index: int) -> None:
        start.wait(timeout=10)
        answers[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert all(answer is not None for answer in answers), answers
    return [answer for answer in answers if answer is not None]


def is_admin(api: ShopApi, token: str) -> bool:
    me = api.me(token)
    assert me.status_code == 200, me.text
    admin: bool = me.json()["is_admin"]
    return admin


# A user's own account


def test_changing_my_details_over_http(api: ShopApi) -> None:
    customer = api.new_customer()
    other = api.new_customer()

    changed = api.change_me(customer.token, first_name="Иван", last_name="")
    taken = api.change_me(customer.token, email=f"{other.username.upper()}@EXAMPLE.COM")

    assert changed.status_code == 200, changed.text
    assert (changed.json()["first_name"], changed.json()["last_name"]) == ("Иван", None)
    assert assert_problem(taken, 409)["errors"] == {"email": ["Already taken."]}
    assert api.me(customer.token).json()["email"] == f"{customer.username}@example.com"


def test_changing_my_password_revokes_my_other_tokens_on_users_and_orders_at_once(
    api: ShopApi,
) -> None:
    customer = api.new_customer()
    other_token = api.token_for(customer.username)
    assert api.current_order(other_token).status_code == 200

    response = api.change_password(customer.token, NEW_PASSWORD)

    assert response.status_code == 204, response.text
    assert_problem(api.current_order(other_token), 401)
    assert_problem(api.me(other_token), 401)
    assert api.current_order(customer.token).status_code == 200
    assert api.me(customer.token).status_code == 200
    assert_problem(api.login(customer.username), 401)
    assert api.login(customer.username, NEW_PASSWORD).status_code == 200


def test_a_new_password_of_spaces_is_400_naming_it(api: ShopApi) -> None:
    customer = api.new_customer()

    response = api.change_password(customer.token, " " * 8)

    assert "new_password" in assert_problem(response, 400)["errors"]
    assert api.login(customer.username).status_code == 200


def test_registering_with_a_password_of_spaces_is_400_naming_it(api: ShopApi) -> None:
    response = api.register(unique("spaces"), password=" " * 8)

    assert assert_problem(response, 400)["errors"] == {
        "password": ["Must hold something besides spaces."]
    }


def test_a_deleted_account_is_gone_with_its_tokens_and_its_names_are_free(api: ShopApi) -> None:
    customer = api.new_customer()
    other_token = api.token_for(customer.username)

    response = api.delete_me(customer.token)

    assert response.status_code == 204, response.text
    for token in (customer.token, other_token):
        assert_problem(api.me(token), 401)
        assert_problem(api.current_order(token), 401)
    assert_problem(api.login(customer.username), 401)
    assert api.register(customer.username).status_code == 201


def test_a_deleted_users_id_and_orders_never_pass_to_the_next_user(
    api: ShopApi, admin_token: str
) -> None:
    sku = api.new_beer(admin_token)
    leaver = api.new_customer()
    api.add_to_order(leaver.token, sku, 2)
    order = api.checkout(leaver.token)
    assert order.status_code == 200, order.text
    assert api.delete_me(leaver.token).status_code == 204

    newcomer = api.new_customer()

    assert newcomer.id > leaver.id
    assert api.order_history(newcomer.token).json() == []
    assert api.current_order_body(newcomer.token)["beers"] == []
    assert_problem(api.order(newcomer.token, order.json()["id"]), 404)


def test_a_wrong_password_deletes_nothing(api: ShopApi) -> None:
    customer = api.new_customer()

    response = api.delete_me(customer.token, "not my password")

    assert assert_problem(response, 400)["errors"] == {"password": ["Wrong password."]}
    assert api.me(customer.token).status_code == 200


def test_changing_my_password_or_deleting_me_while_throttled_is_429(lone_users: Service) -> None:
    api = users_api(lone_users)
    username = unique("guessed")
    assert api.register(username).status_code == 201
    token = api.token_for(username)
    wrong = [api.change_password(token, NEW_PASSWORD, "a wrong guess") for _ in range(2)]

    changing = api.change_password(token, NEW_PASSWORD)  # the right password, too late
    deleting = api.delete_me(token)

    assert [answer.status_code for answer in wrong] == [400, 400]
    for refused in (changing, deleting):
        assert_problem(refused, 429)
        assert int(refused.headers["Retry-After"]) > 0
    assert api.me(token).status_code == 200
    assert_problem(api.login(username), 429)  # the failures were counted as logins


# Administrators managing users


def test_an_administrator_finds_lists_and_reads_users(api: ShopApi, admin_token: str) -> None:
    customer = api.new_customer()

    found = api.list_users(admin_token, {"q": customer.username.upper()})
    one = api.user(admin_token, customer.id)

    assert found.status_code == 200, found.text
    assert [user["id"] for user in found.json()] == [customer.id]
    assert found.headers["X-Total-Count"] == "1"
    assert one.json()["username"] == customer.username
    assert_problem(api.list_users(customer.token), 403)
    assert_problem(api.user(customer.token, customer.id), 403)


def test_a_promotion_and_a_demotion_count_on_beers_at_once(api: ShopApi, admin_token: str) -> None:
    customer = api.new_customer()

    promoted = api.set_admin(admin_token, customer.id, True)
    added = api.create_beer(customer.token)
    demoted = api.set_admin(admin_token, customer.id, False)
    refused = api.create_beer(customer.token)

    assert promoted.json()["is_admin"] is True
    assert added.status_code == 201, added.text
    assert demoted.json()["is_admin"] is False
    assert_problem(refused, 403)


def only_admin(api: ShopApi, token: str) -> int:
    """Make the token's administrator the only one; its id."""
    my_id: int = api.me(token).json()["id"]
    for user in api.list_users(token, {"limit": 1000}).json():
        if user["is_admin"] and user["id"] != my_id:
            assert api.set_admin(token, user["id"], False).status_code == 200
    return my_id


def test_the_last_administrator_is_kept(lone_users: Service) -> None:
    api = users_api(lone_users)
    boss_id, boss = new_admin(lone_users)
    only_admin(api, boss)

    demoting = api.set_admin(boss, boss_id, False)
    deleting = api.delete_me(boss, ADMIN_PASSWORD)

    assert assert_problem(demoting, 409)["errors"] == {"is_admin": ["The last administrator."]}
    assert_problem(deleting, 409)
    assert is_admin(api, boss)


def test_two_administrators_demoting_each_other_at_once_leave_one(lone_users: Service) -> None:
    api = users_api(lone_users)
    first_id, first = new_admin(lone_users)
    only_admin(api, first)
    second_id, second = new_admin(lone_users)

    for _ in range(RACES):
        answers = at_once(
            partial(api.set_admin, first, second_id, False),
            partial(api.set_admin, second, first_id, False),
        )

        statuses = sorted(answer.status_code for answer in answers)
        assert statuses in ([200, 403], [200, 409]), [answer.text for answer in answers]
        still = [token for token in (first, second) if is_admin(api, token)]
        assert len(still) == 1
        (winner,) = still
        loser_id = second_id if winner == first else first_id
        assert api.set_admin(winner, loser_id, True).status_code == 200


def test_two_last_administrators_leaving_at_once_leave_one(lone_users: Service) -> None:
    api = users_api(lone_users)
    _, keeper = new_admin(lone_users)
    for _ in range(RACES):
        only_admin(api, keeper)
        _, other = new_admin(lone_users)

        answers = at_once(
            partial(api.delete_me, keeper, ADMIN_PASSWORD),
            partial(api.delete_me, other, ADMIN_PASSWORD),
        )

        statuses = sorted(answer.status_code for answer in answers)
        assert statuses == [204, 409], [answer.text for answer in answers]
        keeper = keeper if answers[0].status_code == 409 else other
        assert is_admin(api, keeper)


# Input whose case-fold outgrows its column: 400 on SQLite and PostgreSQL alike


def test_logging_in_as_128_sharp_s_is_400_naming_the_username(api: ShopApi) -> None:
    response = api.login("ß" * 128, "whatever it is")

    assert "username" in assert_problem(response, 400)["errors"]


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"username": "ß" * 128}, "username"),
        ({"email": "ß" * 125 + "@example.com"}, "email"),
    ],
)
def test_registering_with_sharp_s_past_the_column_is_400_naming_it(
    api: ShopApi, fields: dict[str, Any], field: str
) -> None:
    body = {"username": unique("sharp"), **fields}

    response = api.register(**body)

    assert field in assert_problem(response, 400)["errors"]


def test_changing_my_email_to_sharp_s_past_the_column_is_400(api: ShopApi) -> None:
    customer = api.new_customer()

    response = api.change_me(customer.token, email="ß" * 125 + "@example.com")

    assert "email" in assert_problem(response, 400)["errors"]
    assert api.me(customer.token).json()["email"] == f"{customer.username}@example.com"


def test_registering_and_logging_in_still_work_for_plain_names(api: ShopApi) -> None:
    username = unique("plain")
    assert api.register(username, password=PASSWORD).status_code == 201
    assert api.login(username.upper()).status_code == 200
