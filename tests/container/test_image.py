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

from servicekit.launcher import answers_ready, free_port, wait_for
from tests.container.podman import ULIMITS, Podman

pytestmark = pytest.mark.container

SERVICES = {"users": 5001, "beers": 5002, "orders": 5003}
WORKERS = 2  # as compose.yaml runs them
SHOP_UID = "10001"

# Every wait is bounded (seconds).
READY_TIMEOUT = 90
HTTP_TIMEOUT = 10


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
    logs = []
    for service in SERVICES:
        result = podman("logs", "--tail", "30", shop.container(service), check=False)
        logs.append(f"--- {service} ---\n{result.stdout}{result.stderr}")
    return "\n".join(logs)


def wait_until_ready(podman: Podman, shop: Shop, service: str) -> None:
    """Until the service's /ready answers 200 from the host; fail at once if its
    container stops, or after READY_TIMEOUT."""
    url = f"{shop.urls[service]}/ready"

    def stopped() -> bool:
        state = podman(
            "container", "inspect", "--format", "{{.State.Running}}", shop.container(service)
        )
        return state.stdout.strip() != "true"

    if not wait_for(lambda: stopped() or answers_ready(url), READY_TIMEOUT, interval=0.5):
        pytest.fail(
            f"{url} was not ready within {READY_TIMEOUT} s:\n{container_logs(podman, shop)}"
        )
    if stopped():
        pytest.fail(f"the {service} container stopped:\n{container_logs(podman, shop)}")


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
        for service in SERVICES:
            wait_until_ready(podman, shop, service)
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
    users, orders = shop.urls["users"], shop.urls["orders"]
    username = f"ivan_{secrets.token_hex(4)}"
    password = "ivan-s-own-passphrase"

    registered = requests.post(
        f"{users}/api/users/register",
        json={"username": username, "email": f"{username}@example.com", "password": password},
        timeout=HTTP_TIMEOUT,
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["username"] == username
    assert registered.json()["is_admin"] is False

    login = requests.post(
        f"{users}/api/users/login",
        data={"username": username, "password": password},
        timeout=HTTP_TIMEOUT,
    )
    assert login.status_code == 200, login.text
    assert login.json()["token_type"] == "Bearer"
    auth = {"Authorization": f"Bearer {login.json()['token']}"}

    # orders asks users who the token is and beers what 123456 costs, inside the pod.
    added = requests.put(
        f"{orders}/api/orders/current",
        headers=auth,
        data={"sku": "123456", "quantity": "2"},
        timeout=HTTP_TIMEOUT,
    )
    assert added.status_code == 200, added.text
    line = {"sku": "123456", "name": "Бургаско", "quantity": 2, "unit_price": "1.19"}
    assert added.json()["is_open"] is True
    assert added.json()["beers"] == [{**line, "line_total": "2.38"}]

    checkout = requests.post(f"{orders}/api/orders/checkout", headers=auth, timeout=HTTP_TIMEOUT)
    assert checkout.status_code == 200, checkout.text
    order = checkout.json()
    assert order["is_open"] is False
    assert order["time_checked_out"] is not None
    assert order["beers"] == [{**line, "line_total": "2.38"}]
    assert order["total"] == "2.38"

    history = requests.get(f"{orders}/api/orders/", headers=auth, timeout=HTTP_TIMEOUT)
    assert history.status_code == 200, history.text
    assert [past["id"] for past in history.json()] == [order["id"]]
    assert history.json()[0]["is_open"] is False


def test_each_containers_first_process_is_the_server_itself(podman: Podman, shop: Shop) -> None:
    """The image's entrypoint is the server: no command line stands between it
    and the signals the engine sends the container."""
    for service in SERVICES:
        processes = podman("top", shop.container(service), "pid", "args").stdout.splitlines()
        (first,) = [line.split(maxsplit=1)[1] for line in processes[1:] if line.split()[0] == "1"]
        assert f"-m servicekit.serving {service} " in first, processes
