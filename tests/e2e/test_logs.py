"""What operators ship: with LOG_FORMAT=json every line a service writes is one
JSON object naming the time, level and service; a request's line also its id,
method, path (never the query) and status."""

from __future__ import annotations

import json

import pytest
import requests

from .api_client import TIMEOUT
from .services import StartService

pytestmark = pytest.mark.e2e


def test_json_logs_are_one_object_a_line_with_the_request_fields(
    start_service: StartService,
) -> None:
    beers = start_service("beers", LOG_FORMAT="json", LOG_LEVEL="DEBUG")
    answer = requests.get(
        f"{beers.url}/api/beers/no-such-sku?token=secret-token",
        headers={"X-Request-ID": "json-logs-1"},
        timeout=TIMEOUT,
    )
    assert answer.status_code == 400  # beers takes no `token` query parameter

    lines = [line for line in beers.output().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line, JSON
    for record in records:
        assert {"time", "level", "service", "logger", "message"} <= record.keys()
        assert record["time"].endswith("Z") and record["service"] == "beers"
    (access,) = [record for record in records if record.get("request_id") == "json-logs-1"]
    assert access["method"] == "GET"
    assert access["path"] == "/api/beers/no-such-sku"
    assert access["status"] == 400 and access["duration_ms"] >= 0
    assert access["route"] == "/api/beers/<sku>"
    assert "secret-token" not in beers.output()


def test_text_logs_name_the_service_on_every_line_in_one_time_format(
    start_service: StartService,
) -> None:
    users = start_service("users", LOG_LEVEL="DEBUG")
    requests.get(f"{users.url}/api/users/me", timeout=TIMEOUT)
    # Line breaks to some readers: NEL, the line and paragraph separators, RS.
    forged = "/api/users/a%C2%85b%E2%80%A8c%E2%80%A9d%1Ee%0Af"
    assert requests.get(f"{users.url}{forged}", timeout=TIMEOUT).status_code == 404

    output = users.output()
    lines = [line for line in output.splitlines() if line.strip()]  # splits at all of them
    assert lines
    for line in lines:
        time, level, service = line.split(" ", 3)[:3]
        assert time.endswith("Z") and "T" in time, line
        assert service == "users", line
    assert "GET /api/users/a\\x85b\\u2028c\\u2029d\\x1ee\\x0af 404" in output


def test_at_the_default_level_every_request_has_its_line_unless_access_log_is_false(
    start_service: StartService,
) -> None:
    chatty = start_service("beers", workers=1, LOG_LEVEL="INFO")
    quiet = start_service("beers", workers=1, LOG_LEVEL="INFO", ACCESS_LOG="false")
    for service in (chatty, quiet):
        answer = requests.get(
            f"{service.url}/api/beers/?limit=1", headers={"X-Request-ID": "ok-1"}, timeout=TIMEOUT
        )
        assert answer.status_code == 200

    assert "INFO beers servicekit.access [ok-1] GET /api/beers/ 200 " in chatty.output()
    assert "servicekit.access" not in quiet.output()
