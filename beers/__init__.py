"""beers: the catalogue, keyed by SKU, with decimal prices."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apiflask import APIFlask

from servicekit.app import create_service_app
from servicekit.config import UpstreamConfig
from servicekit.upstream import UsersClient

from .models import db


class Config(UpstreamConfig):
    """beers asks users whether a caller may change the catalogue."""


def create_app(
    test_config: Mapping[str, Any] | None = None, *, users_client: UsersClient | None = None
) -> APIFlask:
    app = create_service_app(
        __name__,
        service="beers",
        description="The catalogue, keyed by SKU. Anyone may read it; administrators "
        "change it, which beers checks by asking the users service.",
        config=Config,
        db=db,
        test_config=test_config,
        users_client=users_client,
    )
    from .views import bp

    app.register_blueprint(bp)
    return app
