"""The container tests build an image and start containers: they run only when
asked for, by marker (`pytest -m container`) or by path (`pytest tests/container`),
never as part of a plain `pytest` or `inv test`, whatever else `-m` says."""

from __future__ import annotations

from pathlib import Path

import pytest

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
