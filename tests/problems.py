"""The one check that an answer is an RFC 9457 problem, for the service tests
(Flask's test client) and the end-to-end tests (requests) alike."""

from __future__ import annotations

import json
from typing import Any

import requests
from werkzeug.test import TestResponse

PROBLEM_JSON = "application/problem+json"


def assert_problem(response: requests.Response | TestResponse, status: int) -> dict[str, Any]:
    """The response is a problem+json answer with this status; its body."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith(PROBLEM_JSON), response.headers
    body: dict[str, Any] = json.loads(response.text)
    assert {"type", "title", "status", "detail"} <= body.keys(), body
    assert body["status"] == status
    return body
