"""Each service's own Alembic history: step a database to any revision (the
latest, by default), and write the next revision from the models."""

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


class UnknownRevision(ValueError):
    """A revision the service's history does not have; the message names those it has."""


@dataclass(frozen=True)
class Migrated:
    """Where a migration left a database: the revision it is at, and the steps
    taken to get there (applied going up, undone going down), each by its id."""

    at: str | None  # None: no revision, as before the first (base)
    name: str  # the revision's file name without .py, "base" for none
    applied: tuple[str, ...] = ()
    undone: tuple[str, ...] = ()

    def __str__(self) -> str:
        where = f"at revision {self.name}"
        if self.applied:
            return f"{where} (applied {', '.join(self.applied)})"
        if self.undone:
            return f"{where} (undid {', '.join(self.undone)})"
        return where


def upgrade(
    service: str, db: Schema, revision: str = "head", *, folder: Path | None = None
) -> Migrated:
    """Bring the service's database up to `revision`, keeping every row."""
    return step_to(service, db, revision, folder=folder, down=False)


def step_to(
    service: str,
    db: Schema,
    revision: str,
    *,
    folder: Path | None = None,
    down: bool = True,
) -> Migrated:
    """Bring the service's database to `revision` (an id such as 0002, or head,
    or base: no tables at all), up or, when `down`, down as the history says.
    Going down runs each revision's downgrade, which may drop columns and their
    data. UnknownRevision when the history has no such revision."""
    history = revision_history(service, db, folder)
    wanted = _revision_in(history, service, revision)
    with migrating(service, db) as connection:
        before = _version_on(connection, service)
        tables = set(inspect(connection).get_table_names())
        if version_table(service) not in tables and tables & set(db.metadata.tables):
            raise UnversionedDatabase(
                f"{service}: the database has tables but no {version_table(service)}; "
                "it was not made by these migrations (setup --reset starts it afresh)"
            )
        ids = list(history)
        start, end = _position(ids, before, service), _position(ids, wanted, service)
        config = alembic_config(service, db, connection, folder)
        if end >= start:
            command.upgrade(config, wanted or "base")
            return Migrated(wanted, _name_in(history, wanted), tuple(ids[start + 1 : end + 1]))
        if not down:  # an upgrade (setup, serve) leaves a later revision as it is
            return Migrated(before, _name_in(history, before))
        command.downgrade(config, wanted or "base")
        undone = tuple(reversed(ids[end + 1 : start + 1]))
        return Migrated(wanted, _name_in(history, wanted), undone=undone)


def revision_history(service: str, db: Schema, folder: Path | None = None) -> dict[str, str]:
    """The service's revisions from the first to the head: each id and its file
    name without .py (0003: 0003_login_failures)."""
    scripts = ScriptDirectory.from_config(alembic_config(service, db, folder=folder))
    newest_first = list(scripts.walk_revisions())
    return {script.revision: Path(script.path).stem for script in reversed(newest_first)}


def _revision_in(history: dict[str, str], service: str, revision: str) -> str | None:
    """The id of `revision` (an id, a file name without .py, head or base) in
    the history; None for base."""
    if revision == "base":
        return None
    if revision == "head":
        return list(history)[-1] if history else None
    for id_, name in history.items():
        if revision in (id_, name):
            return id_
    known = ", ".join([*history, "head", "base"])
    raise UnknownRevision(f"{service} has no revision {revision!r}; it has {known}")


def _name_in(history: dict[str, str], revision: str | None) -> str:
    return history[revision] if revision is not None else "base"


def _position(ids: list[str], revision: str | None, service: str) -> int:
    """Where the revision stands in the history; -1 for base."""
    if revision is None:
        return -1
    if revision not in ids:  # the database was migrated by a newer release
        raise UnknownRevision(
            f"{service}: the database is at revision {revision}, which these migrations "
            f"do not have (they end at {ids[-1] if ids else 'base'})"
        )
    return ids.index(revision)


def _version_on(connection: Connection, service: str) -> str | None:
    context = MigrationContext.configure(connection, opts={"version_table": version_table(service)})
    return context.get_current_revision()


def drop_everything(service: str, db: Schema) -> None:
    """The service's tables and its migration record: gone (setup --reset)."""
    db.metadata.drop_all(db.engine)
    with db.engine.begin() as connection:
        if inspect(connection).has_table(version_table(service)):
            connection.exec_driver_sql(f"DROP TABLE {version_table(service)}")


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
