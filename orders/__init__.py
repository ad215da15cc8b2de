"""orders: each user's open order, checkout with frozen prices, order history."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from apiflask import APIFlask

from servicekit.app import create_service_app, upstream_client
from servicekit.config import Setting, UpstreamConfig
from servicekit.upstream import UsersClient

from .beers_client import BeersClient, HttpBeersClient
from .metrics import OrdersMetrics
from .models import db


class Config(UpstreamConfig):
    """orders asks users who calls and beers what beers cost, and keeps the
    answers of writes sent with an Idempotency-Key for a while."""

    BEERS_URL = Setting("http://127.0.0.1:5002", str)
    IDEMPOTENCY_TTL_SECONDS = Setting(86400, int)  # a day


def create_app(
    test_config: Mapping[str, Any] | None = None,
    *,
    users_client: UsersClient | None = None,
    beers_client: BeersClient | None = None,
) -> APIFlask:
    app = create_service_app(
        __name__,
        service="orders",
        description="Each user's open order and order history. Every request asks the "
        "users service who the token belongs to; adding a beer and checking out ask the "
        "beers service whether the SKUs exist and what they cost.",
        config=Config,
        db=db,
        test_config=test_config,
        users_client=users_client,
    )
    app.extensions["beers_client"] = beers_client or upstream_client(
        app, HttpBeersClient, "BEERS_URL"
    )
    app.extensions["orders_metrics"] = OrdersMetrics(app.extensions["metrics"])
    from .views import bp

    app.register_blueprint(bp)
    return app
