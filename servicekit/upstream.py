"""HTTP clients for the other services: one pooled session, timeouts, one error.

Nothing here imports Flask. The app factory hands each client a function that
gives the current request id (forwarded on every call) and one that records
each call in the metrics.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter

from .errors import ServiceUnavailable

RequestIdSource = Callable[[], str | None]
CallObserver = Callable[[str, str, str, float], None]  # service, endpoint, outcome, seconds


@dataclass(frozen=True)
class Timeouts:
    connect: float = 1.0
    read: float = 5.0


class ServiceClient:
    """Calls one other service; a dead, slow or 5xx answer raises ServiceUnavailable."""

    service = "upstream"

    def __init__(
        self,
        base_url: str,
        *,
        timeouts: Timeouts | None = None,
        request_id: RequestIdSource | None = None,
        observe: CallObserver | None = None,
        pool_size: int = 16,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeouts = timeouts or Timeouts()
        self._request_id = request_id or (lambda: None)
        self._observe = observe or (lambda *args: None)
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)

    def call(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        headers: Mapping[str, str] | None = None,
        params: Any = None,
    ) -> requests.Response:
        """Send one request; return any answer below 500, raise on the rest."""
        all_headers = {"Accept": "application/json", **(headers or {})}
        request_id = self._request_id()
        if request_id:
            all_headers["X-Request-ID"] = request_id
        started = time.perf_counter()
        outcome = "error"
        try:
            response = self.session.request(
                method,
                self.base_url + path,
                headers=all_headers,
                params=params,
                timeout=(self.timeouts.connect, self.timeouts.read),
            )
            outcome = str(response.status_code)
        except requests.Timeout as error:
            outcome = "timeout"
            raise ServiceUnavailable(self.service, "no answer in time") from error
        except requests.RequestException as error:
            raise ServiceUnavailable(self.service, "not reachable") from error
        finally:
            self._observe(self.service, endpoint, outcome, time.perf_counter() - started)
        if response.status_code >= 500:
            raise ServiceUnavailable(self.service, f"it answered {response.status_code}")
        return response

    def json_of(self, response: requests.Response) -> Any:
        """The body of an answer we rely on; garbage counts as the service failing."""
        try:
            return response.json()
        except ValueError as error:
            raise ServiceUnavailable(self.service, "it answered with no JSON") from error

    def unexpected(self, response: requests.Response) -> ServiceUnavailable:
        return ServiceUnavailable(self.service, f"it answered {response.status_code} unexpectedly")

    def close(self) -> None:
        self.session.close()


@dataclass(frozen=True)
class RemoteUser:
    """Who a token belongs to, as the users service says."""

    id: int
    username: str
    is_admin: bool


class UsersClient(ServiceClient):
    service = "users"

    def user_for_token(self, token: str) -> RemoteUser | None:
        """The token's user, or None when users says the token is not valid."""
        response = self.call(
            "POST",
            "/api/users/check_token",
            endpoint="check_token",
            headers={"Authorization": f"Bearer {token}"},
        )
        if response.status_code == 401:
            return None
        if response.status_code != 200:
            raise self.unexpected(response)
        body = self.json_of(response)
        try:
            return RemoteUser(
                id=int(body["id"]), username=str(body["username"]), is_admin=bool(body["is_admin"])
            )
        except (KeyError, TypeError, ValueError) as error:
            raise ServiceUnavailable(self.service, "it answered an unknown user shape") from error
