"""The Grafana dashboard (deploy/grafana/shop.json) asks only for metrics the
three services really put on /metrics, and shows what an operator needs."""

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask_sqlalchemy import SQLAlchemy

import beers
import orders
import users
from beers.models import db as beers_db
from orders.models import db as orders_db
from tests.databases import fresh_app
from tests.fakes import FakeBeersClient, FakeUsersClient
from tests.metrics import metric_types
from users.models import db as users_db

DASHBOARD = Path(__file__).parents[2] / "deploy" / "grafana" / "shop.json"
# The samples each type of metric family has on /metrics.
SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
}
PROMETHEUS_OWN = {"up"}  # what Prometheus adds about each scrape
# What else a query may name: PromQL's functions and words, and our labels.
PROMQL = {"sum", "max", "by", "rate", "increase", "histogram_quantile"}
LABELS = {"job", "instance", "method", "endpoint", "status", "service", "outcome", "le"}
SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\{")
NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> set[str]:
    """Every sample name the three services' /metrics can hold."""
    names = set(PROMETHEUS_OWN)
    for text in metrics_texts(tmp_path_factory.mktemp("apps")):
        for family, kind in metric_types(text).items():
            names.update(family + suffix for suffix in SUFFIXES[kind])
    return names


def metrics_texts(folder: Path) -> Iterator[str]:
    fakes: dict[str, Any] = {"users_client": FakeUsersClient()}
    apps: list[tuple[Callable[..., Any], SQLAlchemy, str, dict[str, Any]]] = [
        (users.create_app, users_db, "users", {}),
        (beers.create_app, beers_db, "beers", fakes),
        (orders.create_app, orders_db, "orders", {**fakes, "beers_client": FakeBeersClient()}),
    ]
    for create_app, db, service, clients in apps:
        with fresh_app(create_app, db, service, folder, None, **clients) as app:
            yield app.test_client().get("/metrics").get_data(as_text=True)


def queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in panels(dashboard) for target in panel.get("targets", [])]


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def test_the_dashboard_asks_only_for_exported_metrics(exported: set[str]) -> None:
    assert len(queries()) > 20
    for query in queries():
        named = set(SELECTOR.findall(query))
        assert named, query
        assert named <= exported, (query, named - exported)
        # Nothing outside a selector names a metric (strings, matchers and ranges aside).
        bare = re.sub(r'"[^"]*"|\{[^}]*\}|\[[^\]]*\]', " ", query)
        leftover = set(NAME.findall(bare)) - named - PROMQL - LABELS
        assert not leftover, (query, leftover)


def test_the_dashboard_shows_rate_errors_duration_breakers_and_the_business() -> None:
    everything = "\n".join(queries())
    for metric in (
        "http_requests_total",
        'status=~"5.."',
        "http_request_duration_seconds_bucket",
        "upstream_breaker_open",
        "orders_checked_out_total",
        "orders_checked_out_amount_total",
        "users_logins_total",
        "orders_idempotent_replays_total",
        "worker_starts_total",
        "worker_cpu_seconds_total",
    ):
        assert metric in everything, metric
    assert "by (job, method, endpoint)" in everything  # per service and route
