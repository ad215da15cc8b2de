"""What users adds to /metrics: logins by outcome, and password checks
waiting for their turn (servicekit.metrics has the rest)."""

from __future__ import annotations

from flask import current_app

from servicekit.metrics import Metrics

LOGIN_OUTCOMES = ("ok", "failed", "throttled")


class UsersMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self.logins = metrics.counter(
            "users_logins",
            "Logins by outcome: ok (200), failed (401: wrong username or password), "
            "throttled (429: too many failures).",
            ("outcome",),
        )
        for outcome in LOGIN_OUTCOMES:  # each a 0 from the start, not a gap
            self.logins.labels(outcome)
        self.passwords_waiting = metrics.gauge(
            "users_password_checks_waiting",
            "Requests waiting for their worker's one password check at a time, "
            "all workers together.",
        )


def users_metrics() -> UsersMetrics:
    metrics: UsersMetrics = current_app.extensions["users_metrics"]
    return metrics
