"""users: registration, login, logout, token checks and administrators."""

from __future__ import annotations

from collections.abc import Mapping
from ipaddress import IPv4Network, IPv6Network
from typing import Any

from apiflask import APIFlask

from servicekit.app import create_service_app
from servicekit.config import BaseConfig

from .models import db
from .throttling import trusted_networks


class Config(BaseConfig):
    """users' own settings: login throttling and password hashing (besides the
    shared ones, TOKEN_TTL_SECONDS among them)."""

    LOGIN_MAX_FAILURES = 10  # of one username from one address within the window
    LOGIN_MAX_FAILURES_PER_ADDRESS = 100  # from one address within the window
    LOGIN_WINDOW_SECONDS = 600
    TRUSTED_PROXIES: tuple[IPv4Network | IPv6Network, ...] = ()
    PASSWORD_WAIT_SECONDS = 1.0  # for this worker's one password check at a time
    SERVICE_ENVIRONMENT = {
        "LOGIN_MAX_FAILURES": int,
        "LOGIN_MAX_FAILURES_PER_ADDRESS": int,
        "LOGIN_WINDOW_SECONDS": int,
        "TRUSTED_PROXIES": trusted_networks,
        "PASSWORD_WAIT_SECONDS": float,
    }


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
    from .domain import stand_in_hash
    from .schemas import is_common_password
    from .views import bp

    app.register_blueprint(bp)
    stand_in_hash()  # now, not in the first unlucky login
    is_common_password("")  # the list read now, not in the first registration
    return app
