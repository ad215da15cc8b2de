"""What the service tests share: a fresh app on a fresh database per test."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from flask_sqlalchemy import SQLAlchemy


@contextmanager
def fresh_app(
    create_app: Callable[..., Any], db: SQLAlchemy, database_url: str, **clients: Any
) -> Iterator[Any]:
    """A service's app with its tables made, the other services replaced by
    `clients`; its connections are closed afterwards."""
    app = create_app({"DATABASE_URL": database_url, "SECRET_KEY": "test"}, **clients)
    with app.app_context():
        db.create_all()
    yield app
    with app.app_context():
        db.engine.dispose()
