"""What each optimisation in the code buys today, in one process: every hot
endpoint measured with it and without it (the plain way put back for the
measure only), in alternating rounds, the best round of each kept.

    python -m bench.paying

CPU per request through the WSGI app, no server (a server adds only noise to
these); orders is served with stand-in neighbours that answer at once. The
calls between services are measured apart, on the caller's side, against a
users server: pycurl next to requests and urllib3.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

from bench.inprocess import cpu_per_call, wsgi_call

ROUNDS = 5
CALLS_PER_ROUND = 1000
Switch = Callable[[], Any]  # the plain way in for a moment; gives back what undoes it


class StandInUsers:
    """Every token is the same ordinary user's."""

    def user_for_token(self, token: str) -> Any:
        from servicekit.upstream import RemoteUser

        return RemoteUser(id=1, username="bench0", is_admin=False)


class StandInBeers:
    """Every SKU is a beer at 4.50."""

    def beer(self, sku: str) -> Any:
        from orders.beers_client import CatalogueBeer

        return CatalogueBeer(sku=sku, name="Bench", price=Decimal("4.50"))

    def beers(self, skus: Iterable[str]) -> dict[str, Any]:
        return {sku: self.beer(sku) for sku in skus}


class JsonModule:
    """The standard library's json where servicekit.output writes orjson."""

    OPT_APPEND_NEWLINE = 1
    JSONDecodeError = json.JSONDecodeError

    @staticmethod
    def dumps(obj: Any, default: Any = None, option: int = 0) -> bytes:
        text = json.dumps(obj, default=default, separators=(",", ":"), ensure_ascii=False)
        return (text + "\n" if option & 1 else text).encode()

    @staticmethod
    def loads(raw: bytes | str) -> Any:
        return json.loads(raw)


@contextmanager
def json_not_orjson() -> Iterator[None]:
    """Answers written by the standard library's json."""
    import servicekit.output

    cached = servicekit.output.orjson
    servicekit.output.orjson = JsonModule  # type: ignore[assignment]
    try:
        yield
    finally:
        servicekit.output.orjson = cached


@contextmanager
def switched_off(module: Any, switch: str) -> Iterator[None]:
    """A module's switch (True by default) set to False for a moment."""
    setattr(module, switch, False)
    try:
        yield
    finally:
        setattr(module, switch, True)


def core_not_compiled_reads() -> Any:
    """Every Query run through SQLAlchemy Core's `connection.execute`."""
    import servicekit.db

    return switched_off(servicekit.db, "COMPILED_READS")


def schema_dump_not_compiled_dumpers() -> Any:
    """Every answer dumped by marshmallow's `schema.dump`."""
    import servicekit.output

    return switched_off(servicekit.output, "COMPILED_DUMPS")


OPTIMISATIONS: dict[str, Callable[[], Any]] = {
    "orjson for answers (servicekit.output)": json_not_orjson,
    "compiled reads (servicekit.db.Query), against Core": core_not_compiled_reads,
    "compiled dumpers (servicekit.output), against schema.dump": schema_dump_not_compiled_dumpers,
}


def endpoints(
    folder: Path, token: str, settings: dict[str, Any] | None = None
) -> dict[str, Callable[[], Any]]:
    import beers
    import orders
    import users

    auth = {"Authorization": f"Bearer {token}"}
    form: dict[str, Any] = {"content_type": "application/x-www-form-urlencoded"}
    users_app = users.create_app(
        {"DATABASE_URL": f"sqlite:///{folder / 'users'}.db", **(settings or {})}
    )
    beers_app = beers.create_app(
        {"DATABASE_URL": f"sqlite:///{folder / 'beers'}.db", **(settings or {})}
    )
    orders_app = orders.create_app(
        {"DATABASE_URL": f"sqlite:///{folder / 'orders'}.db", **(settings or {})},
        users_client=StandInUsers(),
        beers_client=StandInBeers(),
    )
    count = (CALLS_PER_ROUND + 300) * ROUNDS * 2 + 300  # an environ for every call
    return {
        "beers GET /api/beers/123456": wsgi_call(beers_app, "/api/beers/123456", count=count),
        "beers GET /api/beers/": wsgi_call(beers_app, "/api/beers/", count=count),
        "users GET /api/users/me": wsgi_call(users_app, "/api/users/me", headers=auth, count=count),
        "orders GET /api/orders/current": wsgi_call(
            orders_app, "/api/orders/current", headers=auth, count=count
        ),
        "orders PUT /api/orders/current": wsgi_call(
            orders_app,
            "/api/orders/current",
            "PUT",
            headers=auth,
            data="sku=123456&quantity=1",
            count=count,
            **form,
        ),
    }


def side_by_side(call: Callable[[], Any], plain: Callable[[], Any]) -> tuple[float, float]:
    """The best round's CPU µs per call, with the optimisation and without."""
    kept, without = [], []
    for _ in range(ROUNDS):
        kept.append(cpu_per_call(call, CALLS_PER_ROUND))
        with plain():
            without.append(cpu_per_call(call, CALLS_PER_ROUND))
    return min(kept), min(without)


def access_line(folder: Path, token: str) -> list[tuple[str, float, float]]:
    """CPU µs per request with the access line (ACCESS_LOG, on by default) and without."""
    with_line, without_line = (
        endpoints(folder, token),
        endpoints(folder, token, {"ACCESS_LOG": False}),
    )
    rows = []
    for request, call in with_line.items():
        on, off = [], []
        for _ in range(ROUNDS):
            on.append(cpu_per_call(call, CALLS_PER_ROUND))
            off.append(cpu_per_call(without_line[request], CALLS_PER_ROUND))
        rows.append((request, min(on), min(off)))
    return rows


def calls_between_services(users_url: str, token: str) -> list[tuple[str, float]]:
    """CPU µs on the caller's side of one `GET /api/users/me`, by client."""
    import requests
    import urllib3

    from servicekit.upstream import HttpUsersClient

    url, headers = users_url + "/api/users/me", {"Authorization": f"Bearer {token}"}
    pycurl_client = HttpUsersClient(users_url)
    session = requests.Session()
    pool = urllib3.PoolManager()
    clients = {
        "pycurl (servicekit.upstream)": lambda: pycurl_client.user_for_token(token),
        "requests (a Session)": lambda: session.get(url, headers=headers).json(),
        "urllib3 (a PoolManager)": lambda: json.loads(
            pool.request("GET", url, headers=headers).data
        ),
    }
    best = {
        name: min(cpu_per_call(call, 300) for _ in range(ROUNDS)) for name, call in clients.items()
    }
    return list(best.items())


def main() -> None:
    from bench.run import make_users
    from launcher import (
        free_port,
        server_argv,
        server_env,
        setup_service,
        wait_until_ready,
    )

    with tempfile.TemporaryDirectory(prefix="shop-paying-") as tmp:
        folder = Path(tmp)
        for service in ("users", "beers", "orders"):
            setup_service(service, database_url=f"sqlite:///{folder / service}.db", seed="yes")
        token = make_users(folder, 1)[0]
        print("| optimisation | request | CPU µs with it | without | it saves |")
        print("|---|---|---:|---:|---:|")
        for optimisation, plain in OPTIMISATIONS.items():
            calls = endpoints(folder, token)  # environs of their own, used once each
            for request, call in calls.items():
                kept, without = side_by_side(call, plain)
                print(
                    f"| {optimisation} | {request} | {kept:.1f} | {without:.1f} "
                    f"| {(without - kept) / without:.1%} |",
                    flush=True,
                )
        print("\n| request | CPU µs with the access line | without | the line costs |")
        print("|---|---:|---:|---:|")
        for request, on, off in access_line(folder, token):
            print(f"| {request} | {on:.1f} | {off:.1f} | {on - off:.1f} |", flush=True)
        port = free_port()
        users_url = f"sqlite:///{folder / 'users'}.db"
        server = subprocess.Popen(
            server_argv("users", "127.0.0.1", port, 1),
            env=server_env(users_url),
            stderr=subprocess.DEVNULL,
        )
        try:
            wait_until_ready(f"http://127.0.0.1:{port}/ready", server, timeout=120)
            print("\n| client, one call to users | CPU µs, caller's side |\n|---|---:|")
            for name, micros in calls_between_services(f"http://127.0.0.1:{port}", token):
                print(f"| {name} | {micros:.1f} |")
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    if (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {1})
    main()
