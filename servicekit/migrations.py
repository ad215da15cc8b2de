"""Each service's own Alembic history: upgrade a database to the latest schema,
and write the next revision from the models."""

from __future__ import annotations

import importlib.util
import logging
import subprocess
import sys
import zlib
from argparse import Namespace
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any, Protocol

from alembic import command
from alembic.config import Config
from alembic.operations.ops import MigrationScript
from alembic.runtime.migration import MigrationContext
from alembic.script import Script, ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, inspect, text

from .db import SQLITE_BEGIN, open_engine

log = logging.getLogger(__name__)

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


def migrations_folder(service: str) -> Path:
    """Where the service keeps its revisions."""
    return ROOT / service / "migrations"


def alembic_config(
    service: str, db: Schema, connection: Connection | None = None, folder: Path | None = None
) -> Config:
    """Alembic's settings for the service's history (its revisions in `folder`,
    by default its own migrations folder)."""
    # quiet: Alembic prints no progress of its own; our callers say what happened.
    config = Config(cmd_opts=Namespace(quiet=True))
    config.set_main_option("script_location", str(ROOT / "servicekit" / "alembic"))
    config.set_main_option("version_locations", str(folder or migrations_folder(service)))
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
                    key = zlib.crc32(f"shop-migrations-{service}".encode())
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
                yield connection
                if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first():
                    raise RuntimeError(f"{service}: the migration broke foreign keys")
        finally:
            if sqlite:
                connection.execution_options(**{SQLITE_BEGIN: None})  # no BEGIN: see above
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def upgrade(
    service: str, db: Schema, revision: str = "head", *, folder: Path | None = None
) -> None:
    """Bring the service's database to `revision`, keeping every row."""
    with migrating(service, db) as connection:
        tables = set(inspect(connection).get_table_names())
        if version_table(service) not in tables and tables & set(db.metadata.tables):
            raise UnversionedDatabase(
                f"{service}: the database has tables but no {version_table(service)}; "
                "it was not made by these migrations (setup --reset starts it afresh)"
            )
        command.upgrade(alembic_config(service, db, connection, folder), revision)


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


def new_revision(
    service: str, metadata: MetaData, message: str, folder: Path | None = None
) -> Path | None:
    """Write the next revision of the service's history (in `folder`, by default
    its migrations folder): what `metadata` has that a scratch SQLite database
    upgraded to the head lacks, through servicekit/alembic/script.py.mako.
    None, and no file, when the models and the migrations already agree."""
    with TemporaryDirectory(prefix=f"{service}-revision-") as scratch:
        with migration_target(f"sqlite:///{Path(scratch) / 'head.db'}", metadata) as target:
            upgrade(service, target, folder=folder)
            with target.engine.connect() as connection:
                config = alembic_config(service, target, connection, folder)
                written = command.revision(
                    config,
                    message,
                    autogenerate=True,
                    rev_id=next_revision_id(config),
                    process_revision_directives=_nothing_when_unchanged,
                )
    if not isinstance(written, Script):  # none: the directives were emptied
        return None
    path = Path(written.path)
    _format_as_ours(path)
    return path


def next_revision_id(config: Config) -> str:
    """The revision after the head, numbered as the others are: 0001, 0002, ..."""
    head = ScriptDirectory.from_config(config).get_current_head()
    return f"{int(head or 0) + 1:04d}"


def _nothing_when_unchanged(
    context: MigrationContext, revision: Any, directives: list[MigrationScript]
) -> None:
    """Alembic writes an empty revision when it finds no change; we write none."""
    if all(script.upgrade_ops is None or script.upgrade_ops.is_empty() for script in directives):
        directives.clear()


def _format_as_ours(path: Path) -> None:
    """Alembic renders code its own way (single quotes, long lines): the revision
    gets the import order and format of the hand-written ones."""
    if importlib.util.find_spec("ruff") is None:  # requirements-dev.txt brings it
        log.warning("ruff is not installed: %s is as Alembic wrote it", path.name)
        return
    settings = ("--config", str(ROOT / "pyproject.toml"), "--quiet")
    for ruff in (("check", "--select", "I", "--fix"), ("format",)):
        subprocess.run([sys.executable, "-m", "ruff", *ruff, *settings, str(path)], check=True)
