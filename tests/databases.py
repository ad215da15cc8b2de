"""Where a test keeps its data: a fresh SQLite file, or, when TEST_POSTGRES_URL
names a PostgreSQL server (`inv test --postgres`), a fresh PostgreSQL database."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Any

from flask_sqlalchemy import SQLAlchemy

POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "").rstrip("/")


def fresh_database_url(name: str, folder: Path) -> str:
    """An empty database called `name`: a file in `folder`, or made anew on PostgreSQL."""
    if not POSTGRES_URL:
        return f"sqlite:///{folder / name}.db"
    import psycopg

    with psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{name}"')
    return f"{POSTGRES_URL}/{name}"


def shared_database_url(name: str, folder: Path) -> str:
    """Like fresh_database_url, but on PostgreSQL one database serves every test
    (each drops its tables first: making a database costs more)."""
    if not POSTGRES_URL:
        return f"sqlite:///{folder / name}.db"
    return _made_once(name)


@cache
def _made_once(name: str) -> str:
    return fresh_database_url(name, Path())


@contextmanager
def fresh_app(
    create_app: Callable[..., Any],
    db: SQLAlchemy,
    service: str,
    folder: Path,
    settings: dict[str, Any] | None = None,
    **clients: Any,
) -> Iterator[Any]:
    """A service's app on empty tables, with these settings, the other services
    replaced by `clients`; its connections are closed afterwards."""
    from servicekit.migrations import drop_everything

    url = shared_database_url(f"test_{service}", folder)
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "test", **(settings or {})}, **clients)
    with app.app_context():
        drop_everything(service, db)
        db.create_all()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
