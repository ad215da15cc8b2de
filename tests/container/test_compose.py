"""compose.yaml as it ships runs the shop: podman-compose brings up PostgreSQL,
sets up each database by its one-shot and starts the three services from the
image conftest.py builds; a customer walks
from registration to checkout, an administrator is made as the README says, a
service whose server dies is started again by its restart policy, and
`down -v` leaves nothing behind.

The secrets and the host ports come from the environment, as compose reads
them (the README's .env); every port is published on 127.0.0.1 only.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from launcher import free_port, wait_for
from tests.container.customer import (
    HTTP_TIMEOUT,
    login,
    register_and_login,
    walk_from_registration_to_checkout,
)
from tests.container.podman import ROOT, Podman, compose_file, run, tails, wait_until_ready

pytestmark = pytest.mark.container

SERVICES = ("users", "beers", "orders")
SETUPS = tuple(f"{service}-setup" for service in SERVICES)  # the one-shots
SHOP_UID = "10001"

# Every wait is bounded (seconds). A one-shot may start before PostgreSQL takes
# connections and is started again until it sets up: READY_TIMEOUT allows for that.
UP_TIMEOUT = 300
DOWN_TIMEOUT = 120
READY_TIMEOUT = 180


@dataclass(frozen=True)
class ComposeShop:
    podman: Podman
    command: list[str]  # podman-compose, this project, this file
    env: dict[str, str]
    project: str
    urls: dict[str, str]

    def __call__(self, *args: str, timeout: float = UP_TIMEOUT, check: bool = True) -> str:
        result = run([*self.command, *args], self.env, timeout, check)
        return result.stdout + result.stderr

    def container(self, service: str) -> str:
        """podman-compose's name for the service's one container."""
        return f"{self.project}_{service}_1"

    def inspect(self, service: str, field: str) -> str:
        return self.podman("inspect", "--format", field, self.container(service)).stdout.strip()

    def logs(self) -> str:
        """The end of each service's log, for a failure's message."""
        containers = {service: self.container(service) for service in (*SETUPS, *SERVICES)}
        return tails(self.podman, containers, lines=20)


def podman_compose() -> list[str]:
    """podman-compose from the virtualenv (requirements-dev.txt pins it), else PATH."""
    beside = Path(sys.executable).with_name("podman-compose")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("podman-compose")
    if found is None:
        pytest.fail("podman-compose is missing: pip install -r requirements-dev.txt")
    return [found]


def postgres_image() -> str:
    services = compose_file()["services"]
    assert isinstance(services, dict)
    return str(services["postgres"]["image"])


def wait_until_set_up(shop: ComposeShop) -> None:
    """Until each one-shot has set up its database and ended."""

    def done(setup: str) -> bool:
        return shop.inspect(setup, "{{.State.Status}} {{.State.ExitCode}}") == "exited 0"

    if not wait_for(lambda: all(done(setup) for setup in SETUPS), READY_TIMEOUT, interval=1):
        pytest.fail(f"the databases were not set up within {READY_TIMEOUT} s:\n{shop.logs()}")


def leftovers(shop: ComposeShop) -> list[str]:
    """The project's containers, volumes and networks still there."""
    listings = {
        "container": ("ps", "--all", "--format", "{{.Names}}"),
        "volume": ("volume", "ls", "--format", "{{.Name}}"),
        "network": ("network", "ls", "--format", "{{.Name}}"),
    }
    return [
        f"{kind} {name}"
        for kind, listing in listings.items()
        for name in shop.podman(*listing).stdout.split()
        if name.startswith(f"{shop.project}_")
    ]


@pytest.fixture(scope="module")
def compose_shop(podman: Podman, image: str) -> Iterator[ComposeShop]:
    """`podman-compose up -d`, the demo catalogue loaded as the README says;
    afterwards `down -v`, and nothing of the project is left."""
    podman.ensure_image(postgres_image(), "standin-postgres-image")
    project = f"shop-compose-test-{secrets.token_hex(4)}"
    ports = {service: free_port() for service in SERVICES}
    env = {
        **podman.env,
        "SECRET_KEY": secrets.token_hex(32),
        "POSTGRES_PASSWORD": secrets.token_hex(16),
        **{f"{service.upper()}_PORT": str(port) for service, port in ports.items()},
    }
    command = [*podman_compose(), "--project-name", project, "--file", str(ROOT / "compose.yaml")]
    urls = {service: f"http://127.0.0.1:{port}" for service, port in ports.items()}
    shop = ComposeShop(podman, command, env, project, urls)
    try:
        shop("up", "--detach", "--no-build")  # conftest.py has built the image compose names
        wait_until_set_up(shop)
        wait_until_ready(shop.urls.values(), READY_TIMEOUT, shop.logs, interval=1)
        # The README's `docker compose run --rm beers-setup beers setup --seed`.
        shop("run", "--rm", "beers-setup", "beers", "setup", "--seed")
        yield shop
    finally:
        shop("down", "--volumes", "--timeout", "5", timeout=DOWN_TIMEOUT, check=False)
    assert leftovers(shop) == []


def test_every_service_runs_unprivileged_read_only_within_its_limits(
    compose_shop: ComposeShop,
) -> None:
    for service in SERVICES:
        users = compose_shop.podman("top", compose_shop.container(service), "user").stdout
        assert set(users.split()[1:]) <= {SHOP_UID, "shop"}, f"{service} runs as {users}"
        assert compose_shop.inspect(service, "{{.HostConfig.ReadonlyRootfs}}") == "true"
        assert compose_shop.inspect(service, "{{.HostConfig.Memory}}") == str(512 * 2**20)
        assert compose_shop.inspect(service, "{{.HostConfig.RestartPolicy.Name}}") == (
            "unless-stopped"
        )
        # Published on the loopback address only.
        ports = compose_shop.podman("port", compose_shop.container(service)).stdout
        published = [line.split(" -> ")[1] for line in ports.splitlines() if line]
        assert published and all(at.startswith("127.0.0.1:") for at in published), ports


def test_a_customer_walks_from_registration_to_checkout(compose_shop: ComposeShop) -> None:
    walk_from_registration_to_checkout(compose_shop.urls["users"], compose_shop.urls["orders"])


def test_an_administrator_made_as_the_readme_says_changes_the_catalogue(
    compose_shop: ComposeShop,
) -> None:
    username, password = f"boss_{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    # The README's `docker compose exec users python -m invoke users create-admin
    # --username ... --email ...`, with the password given instead of asked for.
    compose_shop(
        "exec",
        "-T",
        "users",
        *("python", "-m", "invoke", "users", "create-admin"),
        *("--username", username, "--email", f"{username}@example.com", "--password", password),
        timeout=60,
    )
    auth = login(compose_shop.urls["users"], username, password)

    sku = f"boss{secrets.token_hex(3)}"
    added = requests.post(
        f"{compose_shop.urls['beers']}/api/beers/",
        headers=auth,
        json={"sku": sku, "name": "Каменица", "price": "1.75"},
        timeout=HTTP_TIMEOUT,
    )
    assert added.status_code == 201, added.text
    listed = requests.get(f"{compose_shop.urls['beers']}/api/beers/{sku}", timeout=HTTP_TIMEOUT)
    assert listed.json()["name"] == "Каменица"


def test_a_service_whose_server_dies_is_started_again(compose_shop: ComposeShop) -> None:
    orders = compose_shop.urls["orders"]
    auth = register_and_login(
        compose_shop.urls["users"], f"olga_{secrets.token_hex(4)}", "olga-s-own-passphrase"
    )
    added = requests.put(
        f"{orders}/api/orders/current", headers=auth, data={"sku": "123458"}, timeout=HTTP_TIMEOUT
    )
    assert added.status_code == 200, added.text
    restarts = int(compose_shop.inspect("orders", "{{.RestartCount}}"))

    # As the kernel's OOM killer would: the container's first process, at once.
    os.kill(int(compose_shop.inspect("orders", "{{.State.Pid}}")), signal.SIGKILL)

    assert wait_for(
        lambda: int(compose_shop.inspect("orders", "{{.RestartCount}}")) > restarts,
        READY_TIMEOUT,
        interval=0.5,
    ), compose_shop.logs()
    wait_until_ready(compose_shop.urls.values(), READY_TIMEOUT, compose_shop.logs, interval=1)
    order = requests.get(f"{orders}/api/orders/current", headers=auth, timeout=HTTP_TIMEOUT)
    assert order.status_code == 200, order.text
    assert [line["sku"] for line in order.json()["beers"]] == ["123458"]
