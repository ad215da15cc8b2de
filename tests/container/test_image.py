"""The Docker image runs the shop: built with podman, the three services run as
three containers of one pod, each with its own SQLite database inside its
container, reaching each other at the pod's localhost; the host talks to them
over HTTP through ports published on 127.0.0.1.

`pytest -m container tests/container` (CI does). The base image is the
Dockerfile's default, or `PYTHON_IMAGE`; where podman's store lacks it and
../shared/tools/standin-python-image exists, that script builds a stand-in
first. Skipped where podman is missing, unless CONTAINER_TEST_REQUIRED=1.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from servicekit.launcher import answers_ready, free_port, wait_for

pytestmark = pytest.mark.container

ROOT = Path(__file__).resolve().parents[2]
STANDIN_SCRIPT = ROOT.parent / "shared" / "tools" / "standin-python-image"
IMAGE = "localhost/shop:container-test"
SERVICES = {"users": 5001, "beers": 5002, "orders": 5003}
WORKERS = 2  # as compose.yaml runs them
SHOP_UID = "10001"

# Every wait is bounded (seconds).
STANDIN_TIMEOUT = 1200
BUILD_TIMEOUT = 1200
COMMAND_TIMEOUT = 120
READY_TIMEOUT = 90
HTTP_TIMEOUT = 10

# Machines like CI's forbid raising limits, and podman would raise them to the
# host's maximum: every container gets these instead. `podman pod create` has no
# --ulimit for the pod's infra container, so a containers.conf of our own sets
# them (and the runtime) for all of them.
ULIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=1024:1024"]
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=1024:1024"]

[engine]
runtime = "runc"
"""


class Podman:
    """podman with this machine's flags, every call bounded in time."""

    def __init__(self, conf: Path) -> None:
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def __call__(
        self, *args: str, timeout: float = COMMAND_TIMEOUT, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            ["podman", "--runtime", "runc", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"podman {' '.join(args)} exited with {result.returncode}:\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
            )
        return result


@dataclass(frozen=True)
class Shop:
    pod: str
    urls: dict[str, str]

    def container(self, service: str) -> str:
        return f"{self.pod}-{service}"


def default_python_image() -> str:
    """The Dockerfile's default base image (its `ARG PYTHON_IMAGE=`)."""
    match = re.search(r"^ARG PYTHON_IMAGE=(\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    assert match, "the Dockerfile names no default PYTHON_IMAGE"
    return match.group(1)


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    if shutil.which("podman") is None:
        reason = "no container engine: podman is not on PATH (apt-get install podman runc)"
        if os.environ.get("CONTAINER_TEST_REQUIRED") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    return Podman(conf)


@pytest.fixture(scope="module")
def image(podman: Podman) -> str:
    """The shop's image, built from the repository (podman reuses cached layers)."""
    base = os.environ.get("PYTHON_IMAGE") or default_python_image()
    if podman("image", "exists", base, check=False).returncode != 0 and STANDIN_SCRIPT.exists():
        standin = subprocess.run(
            [str(STANDIN_SCRIPT), base],
            env=podman.env,
            capture_output=True,
            text=True,
            timeout=STANDIN_TIMEOUT,
            check=False,
        )
        assert standin.returncode == 0, f"{STANDIN_SCRIPT}:\n{standin.stdout}\n{standin.stderr}"
    podman(
        "build",
        *ULIMITS,
        "--build-arg",
        f"PYTHON_IMAGE={base}",
        "--tag",
        IMAGE,
        str(ROOT),
        timeout=BUILD_TIMEOUT,
    )
    return IMAGE


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


@pytest.fixture(scope="module")
def shop(podman: Podman, image: str) -> Iterator[Shop]:
    """The three services, one container each, in a pod; the demo catalogue seeded."""
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
            podman(
                "run",
                "--detach",
                "--name",
                shop.container(service),
                "--pod",
                pod,
                *ULIMITS,
                "--env",
                f"SECRET_KEY={secrets.token_hex(32)}",
                "--env",
                f"USERS_URL=http://127.0.0.1:{SERVICES['users']}",
                "--env",
                f"BEERS_URL=http://127.0.0.1:{SERVICES['beers']}",
                image,
                *(service, "serve", "--host", "0.0.0.0", "--port", str(port)),
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
