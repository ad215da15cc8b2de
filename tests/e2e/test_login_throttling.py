"""Login throttling over real HTTP: failures counted in the users database are
seen by every worker, and a flood of logins cannot starve the other endpoints."""

from __future__ import annotations

import statistics
import threading
import time

import pytest
import requests

from tests.problems import assert_problem

from .api_client import TIMEOUT, ShopApi, unique
from .services import Service, StartService

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def users(start_service: StartService) -> Service:
    return start_service("users", LOGIN_MAX_FAILURES=3, LOGIN_WINDOW_SECONDS=600)


def test_failures_count_across_workers_until_logins_are_429(users: Service) -> None:
    api = ShopApi(users.url, "http://unused", "http://unused")
    username = unique("guessed")
    api.register(username)

    failures = [api.login(username, "a wrong guess") for _ in range(3)]
    refused = api.login(username)  # the right password, too late

    assert [f.status_code for f in failures] == [401, 401, 401]
    assert [f.headers["RateLimit"].split(";")[1] for f in failures] == ["r=2", "r=1", "r=0"]
    assert_problem(refused, 429)
    assert int(refused.headers["Retry-After"]) > 500
    assert refused.headers["RateLimit-Policy"] == '"login";q=3;w=600'


def test_a_login_flood_does_not_starve_the_other_endpoints(start_service: StartService) -> None:
    # No address limit here: every guess is a password check, one at a time per worker.
    users = start_service("users", LOGIN_MAX_FAILURES_PER_ADDRESS=1_000_000)
    api = ShopApi(users.url, "http://unused", "http://unused")
    username = unique("busy")
    api.register(username)
    token = api.token_for(username)
    stop = threading.Event()

    def flood() -> None:
        while not stop.is_set():
            try:
                api.login(unique("nobody"), "a wrong guess")
            except requests.RequestException:
                pass

    flooders = [threading.Thread(target=flood) for _ in range(16)]
    for flooder in flooders:
        flooder.start()
    try:
        time.sleep(0.5)
        me_seconds, login_seconds = [], []
        for _ in range(20):
            started = time.monotonic()
            assert api.me(token).status_code == 200
            me_seconds.append(time.monotonic() - started)
            started = time.monotonic()
            assert api.login(unique("nobody"), "a wrong guess").status_code in (401, 503)
            login_seconds.append(time.monotonic() - started)
    finally:
        stop.set()
        for flooder in flooders:
            flooder.join(TIMEOUT)

    # Relative, so that a loaded machine, which slows both, cannot fail it: a
    # login waits its turn behind the flood's password checks, and a request
    # that needs none does not.
    me, login = statistics.median(me_seconds), statistics.median(login_seconds)
    assert me < login / 3, (me_seconds, login_seconds)
