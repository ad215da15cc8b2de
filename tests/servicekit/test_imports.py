"""What importing a module loads: the clients for the other services and the
errors they raise are plain Python, with no web framework; the server loads no
metrics library before its workers share a metrics folder."""

import subprocess
import sys

import pytest

WEB_FRAMEWORK = ("flask", "apiflask", "werkzeug")


@pytest.mark.parametrize("module", ["servicekit.errors", "servicekit.upstream"])
def test_importing_loads_no_web_framework(module: str) -> None:
    # A fresh interpreter: this one has Flask loaded by the other tests.
    check = f"import {module}, sys; print(sorted({set(WEB_FRAMEWORK)!r} & set(sys.modules)))"

    loaded = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True
    ).stdout

    assert loaded.strip() == "[]"


def test_the_server_imports_no_prometheus_before_its_workers_share_a_metrics_folder() -> None:
    # prometheus_client picks per-process or shared-file metrics once, on
    # import: imported by the master before PROMETHEUS_MULTIPROC_DIR is set,
    # every worker it forks would keep its counts to itself.
    check = "import servicekit.serving, sys; print([m for m in sys.modules if 'prometheus' in m])"

    loaded = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, check=True
    ).stdout

    assert loaded.strip() == "[]"
