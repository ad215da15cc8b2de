"""users: registration, login, logout, token checks and administrators."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apiflask import APIFlask

from servicekit.app import create_service_app
from servicekit.config import BaseConfig

from .models import db


class Config(BaseConfig):
    """users needs nothing beyond the shared settings (TOKEN_TTL_SECONDS among them)."""


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
