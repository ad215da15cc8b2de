"""users: registration, login, logout, token checks and administrators."""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from apiflask import APIFlask

from servicekit.app import create_service_app
from servicekit.config import BaseConfig, Setting

from .metrics import UsersMetrics
from .models import db
from .throttling import trusted_networks


class Config(BaseConfig):
    """users' settings: how long a token lives, login throttling, password checks."""

    TOKEN_TTL_SECONDS = Setting(86400, int)
    LOGIN_MAX_FAILURES = Setting(10, int)  # of one username from one address within the window
    LOGIN_MAX_FAILURES_PER_ADDRESS = Setting(100, int)  # from one address within the window
    LOGIN_WINDOW_SECONDS = Setting(600, int)
    TRUSTED_PROXIES = Setting[tuple[IPv4Network | IPv6Network, ...]]((), trusted_networks)
    # How long a request waits for its worker's one password check at a time.
    PASSWORD_WAIT_SECONDS = Setting(1.0, float)


def create_app(test_config: Mapping[str, Any] | None = None) -> APIFlask:
    app = create_service_app(
        __name__,
        service="users",
        description="Users, their passwords and bearer tokens. The other services ask "
        "`GET /api/users/me` who a token belongs to.",
        config=Config,
        db=db,
        test_config=test_config,
    )
    app.extensions["users_metrics"] = UsersMetrics(app.extensions["metrics"])
    from .domain import stand_in_hash
    from .schemas import is_common_password
    from .views import bp

    app.register_blueprint(bp)
    stand_in_hash()  # now, not in the first unlucky login
    is_common_password("")  # the list read now, not in the first registration
    return app
