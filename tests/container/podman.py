"""podman as this machine needs it, and what the container tests build and run
with it: the shop's image and the base images it stands on; waiting for the
containers they start to answer, and their logs when they do not."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Collection, Mapping
from pathlib import Path

import pytest
import yaml

from launcher import answers_ready, wait_for

ROOT = Path(__file__).resolve().parents[2]
SHARED_TOOLS = ROOT.parent / "shared" / "tools"

# Every wait is bounded (seconds).
STANDIN_TIMEOUT = 1200
BUILD_TIMEOUT = 1200
COMMAND_TIMEOUT = 120

# Machines like CI's forbid raising limits, and podman would raise them to the
# host's maximum: every container gets these instead. `podman pod create` has no
# --ulimit for the pod's infra container, so a containers.conf of our own sets
# them (and the runtime) for all of them, those podman-compose starts included.
ULIMITS = ["--ulimit", "nofile=4096:4096", "--ulimit", "nproc=1024:1024"]
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=4096:4096", "nproc=1024:1024"]

[engine]
runtime = "runc"
"""


def compose_file() -> dict[str, object]:
    loaded = yaml.safe_load((ROOT / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def shop_image_name() -> str:
    """The image compose.yaml runs the services from (one name everywhere)."""
    services = compose_file()["services"]
    assert isinstance(services, dict)
    (name,) = {service["image"] for service in services.values() if "build" in service}
    return str(name)


def default_base_image(argument: str) -> str:
    """The Dockerfile's default for a base image's build argument."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    match = re.search(rf"^ARG {argument}=(\S+)", dockerfile, re.M)
    assert match, f"the Dockerfile names no default {argument}"
    return match.group(1)


class Podman:
    """podman with this machine's flags, every call bounded in time."""

    def __init__(self, conf: Path) -> None:
        self.env = {**os.environ, "CONTAINERS_CONF": str(conf)}

    def __call__(
        self, *args: str, timeout: float = COMMAND_TIMEOUT, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return run(["podman", "--runtime", "runc", *args], self.env, timeout, check)

    def ensure_image(self, name: str, standin: str) -> None:
        """The image in podman's store: there already, or a stand-in built from
        Debian's packages by ../shared/tools/<standin> where that script exists."""
        if self("image", "exists", name, check=False).returncode == 0:
            return
        script = SHARED_TOOLS / standin
        if script.exists():
            run([str(script), name], self.env, STANDIN_TIMEOUT, check=True)


def run(
    argv: list[str], env: Mapping[str, str], timeout: float, check: bool
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"{' '.join(argv)} exited with {result.returncode}:\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )
    return result


def tails(podman: Podman, containers: Mapping[str, str], lines: int) -> str:
    """The end of each container's log under its name (a service's, or a
    one-shot's), for a failure's message."""
    found = []
    for name, container in containers.items():
        tail = podman("logs", "--tail", str(lines), container, check=False)
        found.append(f"--- {name} ---\n{tail.stdout}{tail.stderr}")
    return "\n".join(found)


def wait_until_ready(
    urls: Collection[str],
    seconds: float,
    logs: Callable[[], str],
    *,
    interval: float,
    stopped: Callable[[], bool] = lambda: False,
) -> None:
    """Until each service's /ready answers 200 from the host; fail with the logs
    after so many seconds, or at once when stopped() says a container stopped."""
    ready = [f"{url}/ready" for url in urls]
    if not wait_for(lambda: stopped() or all(map(answers_ready, ready)), seconds, interval):
        pytest.fail(f"{', '.join(ready)} were not ready within {seconds} s:\n{logs()}")
    if stopped():
        pytest.fail(f"a container stopped:\n{logs()}")
