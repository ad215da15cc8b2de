"""Start the three services as real processes, the way an operator does, once per session.

Each service runs `python -m invoke <svc> serve --workers 4` (granian) on a free
port with its own SQLite file; the tests talk to them over real HTTP.
"""

from __future__ import annotations

from collections.abc import Generator, Iterator

import pytest

from launcher import free_port

from .api_client import ShopApi, unique
from .services import (
    ADMIN_PASSWORD,
    SERVICES,
    WORKERS,
    Service,
    Shop,
    StartService,
    create_admin,
    launch,
    service_environment,
)


@pytest.fixture(scope="session")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shop]:
    directory = tmp_path_factory.mktemp("shop")
    ports = {name: free_port() for name in SERVICES}
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    neighbours = {"USERS_URL": urls["users"], "BEERS_URL": urls["beers"]}
    envs = {name: service_environment(name, directory, **neighbours) for name in SERVICES}

    started: list[Service] = []
    try:
        # beers and orders start while the administrator is created in users' database.
        for name in ("beers", "orders"):
            started.append(launch(name, ports[name], envs[name], directory))
        admin_username = unique("admin")
        admin = create_admin(admin_username, envs["users"])
        started.append(launch("users", ports["users"], envs["users"], directory))
        for service in started:
            service.wait_until_ready()
        by_name = {service.name: service for service in started}
        yield Shop(
            users=by_name["users"],
            beers=by_name["beers"],
            orders=by_name["orders"],
            api=ShopApi(urls["users"], urls["beers"], urls["orders"]),
            admin_username=admin_username,
            admin_output=admin.stdout + admin.stderr,
        )
    finally:
        for service in started:
            service.stop()


@pytest.fixture(scope="session")
def api(shop: Shop) -> ShopApi:
    return shop.api


@pytest.fixture(scope="session")
def admin_token(shop: Shop) -> str:
    return shop.api.token_for(shop.admin_username, ADMIN_PASSWORD)


@pytest.fixture(scope="module")
def start_service(shop: Shop, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartService]:
    """Start an extra process of a service with its own database and these settings
    (USERS_URL and BEERS_URL default to the shop's); all stop when the module ends."""
    started: list[Service] = []

    def start(service: str, workers: int = WORKERS, **settings: str | int | float) -> Service:
        directory = tmp_path_factory.mktemp(service)
        settings = {"USERS_URL": shop.users.url, "BEERS_URL": shop.beers.url, **settings}
        env = service_environment(service, directory, **settings)
        process = launch(service, free_port(), env, directory, workers)
        started.append(process)
        process.wait_until_ready()
        return process

    try:
        yield start
    finally:
        for process in started:
            process.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Show the end of every service's log under a failing test that used them."""
    report = yield
    shop = getattr(item, "funcargs", {}).get("shop")
    if report.failed and isinstance(shop, Shop):
        report.sections.extend(shop.logs())
    return report
