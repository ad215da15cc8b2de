"""Each service's own Alembic history: upgrade a database to the latest schema."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, inspect, text

from .db import SQLITE_BEGIN, open_engine

ROOT = Path(__file__).resolve().parent.parent


class Schema(Protocol):
    """A service's database and the tables it should hold: Flask-SQLAlchemy's
    `db` inside an app context, or a MigrationTarget, which needs no app."""

    @property
    def engine(self) -> Engine: ...

    @property
    def metadata(self) -> MetaData: ...


@dataclass(frozen=True)
class MigrationTarget:
    """A service's database to migrate, with no app around it."""

    engine: Engine
    metadata: MetaData


@contextmanager
def migration_target(url: str, metadata: MetaData) -> Iterator[MigrationTarget]:
    """The database at `url`, to migrate towards `metadata`, without the
    service's app (and so without its clients for the other services). Raises
    servicekit.db's DatabaseProblem if it cannot be used; disposed after."""
    engine = open_engine(url)
    try:
        yield MigrationTarget(engine, metadata)
    finally:
        engine.dispose()


def alembic_config(service: str, db: Schema, connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(ROOT / "servicekit" / "alembic"))
    config.set_main_option("version_locations", str(ROOT / service / "migrations"))
    config.set_main_option("path_separator", "os")
    config.attributes["connection"] = connection
    config.attributes["target_metadata"] = db.metadata
    # One version table per service, so the three may even share a database.
    config.attributes["version_table"] = version_table(service)
    return config


def version_table(service: str) -> str:
    return f"alembic_version_{service}"


class UnversionedDatabase(RuntimeError):
    """The service's tables exist, but no migration ever recorded making them."""


@contextmanager
def migrating(service: str, db: Schema) -> Iterator[Connection]:
    """A connection to change the schema on, in one transaction (SQLite and
    PostgreSQL both roll back DDL).

    On SQLite, foreign keys are off meanwhile and checked before commit: batch
    mode rebuilds a table by dropping it, which would otherwise cascade to its
    children's rows. On PostgreSQL an advisory lock makes migrators that start
    together (pods of one rollout) take turns.
    """
    with db.engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:  # only outside a transaction does this pragma take effect
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
            connection.commit()
        connection.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
        try:
            with connection.begin():
                if not sqlite:
                    key = zlib.crc32(f"beers-migrations-{service}".encode())
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
                yield connection
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise RuntimeError(f"{service}: the migration broke foreign keys")
        finally:
            if sqlite:
                connection.execution_options(**{SQLITE_BEGIN: None})  # no BEGIN: see above
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def upgrade(service: str, db: Schema, revision: str = "head") -> None:
    """Bring the service's database to `revision`, keeping every row."""
    with migrating(service, db) as connection:
        tables = set(inspect(connection).get_table_names())
        if version_table(service) not in tables and tables & set(db.metadata.tables):
            raise UnversionedDatabase(
                f"{service}: the database has tables but no {version_table(service)}; "
                "it was not made by these migrations (setup --reset starts it afresh)"
            )
        command.upgrade(alembic_config(service, db, connection), revision)


def drop_everything(service: str, db: Schema) -> None:
    """The service's tables and its migration record: gone (setup --reset)."""
    db.metadata.drop_all(db.engine)
    with db.engine.begin() as connection:
        if inspect(connection).has_table(version_table(service)):
            connection.exec_driver_sql(f"DROP TABLE {version_table(service)}")


def current_revision(service: str, db: Schema) -> str | None:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": version_table(service)}
        )
        return context.get_current_revision()


def head_revision(service: str, db: Schema) -> str | None:
    return ScriptDirectory.from_config(alembic_config(service, db)).get_current_head()
