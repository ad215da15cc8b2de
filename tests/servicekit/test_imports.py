"""The clients for the other services, and the errors they raise, are plain Python:
importing them loads no web framework."""

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
