"""The container tests build an image and start containers: they run only when
asked for, by marker (`pytest -m container`) or by path (`pytest tests/container`),
never as part of a plain `pytest` or `inv test`, whatever else `-m` says.

The fixtures here are podman with this machine's flags and the shop's image,
built once for all of them under the name compose.yaml gives it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.container.podman import (
    BUILD_TIMEOUT,
    CONTAINERS_CONF,
    ROOT,
    ULIMITS,
    Podman,
    default_base_image,
    shop_image_name,
)

HERE = Path(__file__).resolve().parent


def _asked_for(config: pytest.Config) -> bool:
    if "container" in (config.getoption("markexpr") or ""):
        return True  # -m container, or -m "not container": pytest's own -m decides
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _asked_for(config):
        return
    deselected = [item for item in items if item.get_closest_marker("container")]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if not item.get_closest_marker("container")]


@pytest.fixture(scope="session")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Podman:
    if shutil.which("podman") is None:
        reason = "no container engine: podman is not on PATH (apt-get install podman runc)"
        if os.environ.get("CONTAINER_TEST_REQUIRED") == "1":
            pytest.fail(reason)
        pytest.skip(reason)
    conf = tmp_path_factory.mktemp("podman") / "containers.conf"
    conf.write_text(CONTAINERS_CONF)
    return Podman(conf)


@pytest.fixture(scope="session")
def image(podman: Podman) -> str:
    """The shop's image, built from the repository (podman reuses cached layers),
    named as compose.yaml and the manifests name it."""
    base = os.environ.get("PYTHON_IMAGE") or default_base_image("PYTHON_IMAGE")
    podman.ensure_image(base, "standin-python-image")
    name = shop_image_name()
    podman(
        "build",
        *ULIMITS,
        "--build-arg",
        f"PYTHON_IMAGE={base}",
        "--tag",
        name,
        str(ROOT),
        timeout=BUILD_TIMEOUT,
    )
    return name
