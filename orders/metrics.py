"""What orders adds to /metrics: the business (servicekit.metrics has the rest)."""

from __future__ import annotations

from decimal import Decimal

from flask import current_app

from servicekit.metrics import Metrics


class OrdersMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self.checked_out = metrics.counter("orders_checked_out", "Orders checked out (paid).")
        self.money = metrics.counter(
            "orders_checked_out_amount",
            "The totals of the orders checked out, in the shop's currency units (1.19 is 1.19).",
        )
        self.replays = metrics.counter(
            "orders_idempotent_replays",
            "Requests answered with the kept answer of an earlier one with the same "
            "Idempotency-Key (Idempotent-Replayed: true).",
        )

    def checked_out_order(self, total: Decimal) -> None:
        self.checked_out.inc()
        self.money.inc(float(total))


def orders_metrics() -> OrdersMetrics:
    metrics: OrdersMetrics = current_app.extensions["orders_metrics"]
    return metrics
