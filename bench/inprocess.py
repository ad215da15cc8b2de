"""Where a request's time goes inside one service, without a server: each
endpoint called through the WSGI app in this process, and the CPU it costs.

    python -m bench.inprocess      (or: inv bench --in-process)

Together with `inv bench`, whose CPU per request includes the HTTP server,
this splits each scenario's cost into server, framework and application. The
neighbours orders asks run as real servers (granian), as in production.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from werkzeug.test import EnvironBuilder

ROUNDS = 3000
WARMUP = 300


def cpu_per_call(call: Callable[[], Any], rounds: int = ROUNDS) -> float:
    """Microseconds of this process's CPU per call."""
    for _ in range(WARMUP):
        call()
    started = time.process_time()
    for _ in range(rounds):
        call()
    return (time.process_time() - started) / rounds * 1e6


def wsgi_call(
    app: Any, path: str, method: str = "GET", count: int = WARMUP + ROUNDS, **options: Any
) -> Callable[[], Any]:
    """One request through the app, each of the `count` calls with an environ of
    its own (as a server gives), made before the clock starts."""
    environs = [
        EnvironBuilder(path=path, method=method, **options).get_environ() for _ in range(count)
    ]

    def start_response(status: str, headers: Any, exc_info: Any = None) -> None:
        if not status.startswith("2"):
            raise RuntimeError(f"{method} {path}: {status}")

    def call() -> None:
        for _ in app(environs.pop(), start_response):
            pass

    return call


def main() -> None:
    from bench.run import Settings, make_users, running_shop

    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})  # the servers are on core 0
    with tempfile.TemporaryDirectory(prefix="shop-inprocess-") as tmp:
        folder = Path(tmp)
        with running_shop(Settings(), folder) as shop:
            os.environ.update(USERS_URL=shop.urls["users"], BEERS_URL=shop.urls["beers"])
            token = make_users(folder, 1)[0]
            rows = measure(folder, token)
    print("| request, in one process | CPU µs |\n|---|---:|")
    for name, micros in rows:
        print(f"| {name} | {micros:.0f} |")


def measure(folder: Path, token: str) -> list[tuple[str, float]]:
    import beers
    import bench.hello
    import orders
    import users
    from servicekit.upstream import HttpUsersClient

    auth = {"Authorization": f"Bearer {token}"}
    form: dict[str, Any] = {"content_type": "application/x-www-form-urlencoded"}
    apps = {
        "hello": bench.hello.create_app(),
        "users": users.create_app({"DATABASE_URL": f"sqlite:///{folder / 'users'}.db"}),
        "beers": beers.create_app({"DATABASE_URL": f"sqlite:///{folder / 'beers'}.db"}),
        "orders": orders.create_app({"DATABASE_URL": f"sqlite:///{folder / 'orders'}.db"}),
    }
    client = HttpUsersClient(os.environ["USERS_URL"])
    calls = {
        "bare Flask: GET /": wsgi_call(apps["hello"], "/"),
        "users: GET /health": wsgi_call(apps["users"], "/health"),
        "users: GET /api/users/me": wsgi_call(apps["users"], "/api/users/me", headers=auth),
        "users: POST /api/users/check_token": wsgi_call(
            apps["users"], "/api/users/check_token", "POST", headers=auth
        ),
        "beers: GET /api/beers/123456": wsgi_call(apps["beers"], "/api/beers/123456"),
        "beers: GET /api/beers/": wsgi_call(apps["beers"], "/api/beers/"),
        "orders: a call to users (pycurl), the caller's side": lambda: client.user_for_token(token),
        "orders: GET /api/orders/current, orders' side": wsgi_call(
            apps["orders"], "/api/orders/current", headers=auth
        ),
        "orders: PUT /api/orders/current, orders' side": wsgi_call(
            apps["orders"],
            "/api/orders/current",
            "PUT",
            headers=auth,
            data="sku=123456&quantity=1",
            **form,
        ),
    }
    return [(name, cpu_per_call(call)) for name, call in calls.items()]


if __name__ == "__main__":
    main()
