"""The Docker image runs the shop: built with podman, the three services run as
three containers of one pod, each with its own SQLite database in a volume of
its own, set up by a one-shot container of the image before the server starts
(as Kubernetes' init container does), reaching each other at the pod's
localhost; the host talks to them over HTTP through ports published on 127.0.0.1.

`pytest -m container tests/container` (CI does); conftest.py builds the image.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import requests

from launcher import free_port
from tests.container.customer import HTTP_TIMEOUT, walk_from_registration_to_checkout
from tests.container.podman import ULIMITS, Podman, tails, wait_until_ready

pytestmark = pytest.mark.container

SERVICES = {"users": 5001, "beers": 5002, "orders": 5003}
WORKERS = 2  # as compose.yaml runs them
SHOP_UID = "10001"

# Every wait is bounded (seconds).
READY_TIMEOUT = 90


@dataclass(frozen=True)
class Shop:
    pod: str
    urls: dict[str, str]

    def container(self, service: str) -> str:
        return f"{self.pod}-{service}"

    def volume(self, service: str) -> str:
        """Where the service's SQLite database lives: /app/instance."""
        return f"{self.pod}-{service}-instance"


def container_logs(podman: Podman, shop: Shop) -> str:
    containers = {service: shop.container(service) for service in SERVICES}
    return tails(podman, containers, lines=30)


def any_stopped(podman: Podman, shop: Shop) -> bool:
    """Whether a service's container is no longer running."""
    containers = [shop.container(service) for service in SERVICES]
    running = podman("container", "inspect", "--format", "{{.State.Running}}", *containers)
    return running.stdout.split() != ["true"] * len(containers)


def set_up(podman: Podman, image: str, shop: Shop, service: str) -> None:
    """The service's migrations, as the init container runs them: invoke, in
    place of the image's entrypoint (the server)."""
    podman(
        "run",
        "--rm",
        *ULIMITS,
        *("--volume", f"{shop.volume(service)}:/app/instance"),
        *("--entrypoint", "python"),
        image,
        *("-m", "invoke", service, "setup"),
    )


@pytest.fixture(scope="module")
def shop(podman: Podman, image: str) -> Iterator[Shop]:
    """The three services, one container each, in a pod, each database set up
    before its server starts; the demo catalogue seeded."""
    pod = f"shop-container-test-{secrets.token_hex(4)}"
    host_ports = {service: free_port() for service in SERVICES}
    shop = Shop(pod, {s: f"http://127.0.0.1:{p}" for s, p in host_ports.items()})
    published = [
        arg
        for service, port in SERVICES.items()
        for arg in ("--publish", f"127.0.0.1:{host_ports[service]}:{port}")
    ]
    try:
        podman("pod", "create", "--name", pod, *published)
        for service, port in SERVICES.items():
            set_up(podman, image, shop, service)
            podman(
                "run",
                "--detach",
                "--name",
                shop.container(service),
                "--pod",
                pod,
                *ULIMITS,
                *("--volume", f"{shop.volume(service)}:/app/instance"),
                "--env",
                f"SECRET_KEY={secrets.token_hex(32)}",
                "--env",
                f"USERS_URL=http://127.0.0.1:{SERVICES['users']}",
                "--env",
                f"BEERS_URL=http://127.0.0.1:{SERVICES['beers']}",
                image,  # its entrypoint is the server: the arguments are the server's
                *(service, "--host", "0.0.0.0", "--port", str(port)),
                *("--workers", str(WORKERS)),
            )
        wait_until_ready(
            shop.urls.values(),
            READY_TIMEOUT,
            lambda: container_logs(podman, shop),
            interval=0.5,
            stopped=lambda: any_stopped(podman, shop),
        )
        # The README's `inv beers setup --seed`, in the beers container, into its database.
        # It must exit 0; test_the_beers_container_serves_the_demo_catalogue checks what it added.
        podman(
            "exec", shop.container("beers"), "python", "-m", "invoke", "beers", "setup", "--seed"
        )
        yield shop
    finally:
        podman("pod", "rm", "--force", "--time", "2", pod, check=False)
        volumes = [shop.volume(service) for service in SERVICES]
        podman("volume", "rm", "--force", *volumes, check=False)


def test_every_service_runs_unprivileged_with_its_own_sqlite_database(
    podman: Podman, shop: Shop
) -> None:
    for service in SERVICES:
        container = shop.container(service)
        users = podman("top", container, "user").stdout.split()[1:]
        assert users and set(users) <= {SHOP_UID, "shop"}, f"{service} runs as {users}"

        files = podman("exec", container, "ls", "/app/instance").stdout.split()
        assert f"{service}.db" in files, f"{service}: {files}"
        others = {f"{other}.db" for other in SERVICES if other != service}
        assert not others & set(files), f"{service} holds another's database: {files}"


def test_the_beers_container_serves_the_demo_catalogue(shop: Shop) -> None:
    response = requests.get(f"{shop.urls['beers']}/api/beers/", timeout=HTTP_TIMEOUT)

    assert response.status_code == 200, response.text
    assert response.headers["X-Total-Count"] == "3"
    catalogue = {beer["sku"]: (beer["name"], beer["price"]) for beer in response.json()}
    assert catalogue == {
        "123456": ("Бургаско", "1.19"),
        "123457": ("Загорка", "2.00"),
        "123458": ("Tuborg", "1.50"),
    }


def test_a_customer_walks_from_registration_to_checkout(shop: Shop) -> None:
    # orders reaches users and beers inside the pod.
    walk_from_registration_to_checkout(shop.urls["users"], shop.urls["orders"])


def test_each_containers_first_process_is_the_server_itself(podman: Podman, shop: Shop) -> None:
    """The image's entrypoint is the server: no command line stands between it
    and the signals the engine sends the container."""
    for service in SERVICES:
        processes = podman("top", shop.container(service), "pid", "args").stdout.splitlines()
        (first,) = [line.split(maxsplit=1)[1] for line in processes[1:] if line.split()[0] == "1"]
        assert f"-m servicekit.serving {service} " in first, processes
