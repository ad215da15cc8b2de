"""What every service does with its database, alike on SQLite and PostgreSQL:
column types, engine settings, the three ways to read and write (the ORM
session in `write_transaction`, Core in `writing`, a compiled `Query` through
`read`: the README's Developing map says which is for what) and URL checks."""

from __future__ import annotations

import os
import re
import threading
import weakref
from collections import namedtuple
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    URL,
    BigInteger,
    Connection,
    DateTime,
    Engine,
    Select,
    create_engine,
    event,
    exc,
    make_url,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import Session, scoped_session
from sqlalchemy.sql.expression import Executable
from sqlalchemy.types import TypeDecorator

CENT = Decimal("0.01")
# Constraint and index names that are the same on every database, so that
# migrations can name what they change.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
SQLITE_BEGIN = "sqlite_begin"  # execution option: how a SQLite transaction begins
# How long a write waits on SQLite for its worker's turn, and then again for
# the database's write lock (another worker's, an operator's open
# transaction): past either, the database counts as unavailable (503).
WRITE_WAIT_SECONDS = 5.0
# One writer at a time per worker and SQLite database (tune_sqlite makes it).
# The others wait here without a pooled connection, so reads always find one:
# writers waiting on the lock once held the whole pool, and reads failed too.
_write_turns: weakref.WeakKeyDictionary[Engine, threading.Lock] = weakref.WeakKeyDictionary()


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime, also on SQLite (which keeps no offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use datetime.now(UTC)")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Cents(TypeDecorator[Decimal]):
    """Money as a Decimal with two places, stored as whole cents.

    Integers are exact on every database; SQLite has no decimal type.
    """

    impl = BigInteger
    cache_ok = True

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> int | None:
        if value is None:
            return None
        cents = value * 100
        if cents != cents.to_integral_value():
            raise ValueError(f"{value} has more than two decimal places")
        return int(cents)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else (Decimal(int(value)) / 100).quantize(CENT)


def tune_sqlite(engine: Engine) -> None:
    """Let several worker processes share one SQLite file safely.

    WAL lets readers run beside the one writer; the busy timeout makes a writer
    wait its turn instead of failing (up to WRITE_WAIT_SECONDS; in a worker,
    writers take turns before they take a connection: `write_turn`).
    pysqlite's own implicit BEGIN is switched
    off so that a write transaction can start with BEGIN IMMEDIATE (see
    `write_transaction` and `writing`): it takes the write lock before its first
    read, so it can never find its snapshot stale halfway through and fail as
    "locked". Every write goes through one of those two.
    """
    if engine.dialect.name != "sqlite":
        return
    _write_turns[engine] = threading.Lock()
    if engine.url.database and engine.url.database != ":memory:":
        stay_with_the_file_opened(engine, engine.url.database)

    @event.listens_for(engine, "connect")
    def set_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(WRITE_WAIT_SECONDS * 1000)}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def begin(connection: Connection) -> None:
        # Reads run without BEGIN: each statement then sees the latest commit,
        # and a request that only reads costs two statements fewer.
        if connection.get_execution_options().get(SQLITE_BEGIN) == "IMMEDIATE":
            connection.exec_driver_sql("BEGIN IMMEDIATE")


FileIdentity = tuple[int, int]  # a file's device and inode
# Set by a server for its workers: the SQLite file as the server found it at
# start ("<device>:<inode>:<path>"), so that a worker loading later (slow to
# start, or replacing a dead one) knows a file made or put there since.
SERVED_FILE_VARIABLE = "SERVICEKIT_SQLITE_FILE"


def file_identity(path: str) -> FileIdentity | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def announce_the_served_file(url: str) -> None:
    """For the workers a server is about to start: the SQLite file at `url`
    (if it is one, and is there) is the one they serve."""
    database = make_url(url).database if url.startswith("sqlite") else None
    if not database or database == ":memory:":
        return
    path = os.path.abspath(database)
    identity = file_identity(path)
    if identity is not None:
        os.environ[SERVED_FILE_VARIABLE] = f"{identity[0]}:{identity[1]}:{path}"


def _announced_identity(path: str) -> FileIdentity | None:
    device, _, rest = os.environ.get(SERVED_FILE_VARIABLE, "").partition(":")
    inode, _, announced_path = rest.partition(":")
    if announced_path != os.path.abspath(path):
        return None
    return int(device), int(inode)


def stay_with_the_file_opened(engine: Engine, path: str) -> None:
    """Use only the SQLite file the engine first opened at `path`. Deleted or
    replaced while serving, a connection to it would go on writing into an
    unlinked file (or a new one would create an empty database there): each
    checkout compares the file at `path` with the one opened, and a stale
    connection is dropped; a new one is refused as the database being
    unavailable (503, and /ready 503) until the service is restarted.

    The file is the one its server found when it started (SERVED_FILE_VARIABLE),
    else the one there when the app is made, else the one its first connection
    makes (a test's fresh database)."""

    def identity() -> FileIdentity | None:
        return file_identity(path)

    there = _announced_identity(path) or identity()
    opened: list[FileIdentity] = [there] if there else []

    @event.listens_for(engine, "do_connect")
    def refuse_another_file(dialect: Dialect, record: Any, cargs: Any, cparams: Any) -> None:
        if opened and identity() != opened[0]:
            raise dialect.loaded_dbapi.OperationalError(
                f"{path} is no longer the database file this service opened (deleted or replaced)"
            )

    @event.listens_for(engine, "connect")
    def remember_the_file(dbapi_connection: Any, record: Any) -> None:
        if not opened and (found := identity()) is not None:
            opened.append(found)

    @event.listens_for(engine, "checkout")
    def still_the_same_file(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        if opened and identity() != opened[0]:
            raise exc.DisconnectionError("the database file was deleted or replaced")


@contextmanager
def write_transaction(session: Session | scoped_session[Any]) -> Iterator[None]:
    """A transaction that writes: committed at the end, rolled back on error.

    It starts the session's transaction (ending one that only read); on SQLite
    it holds the write lock from its first statement (on PostgreSQL row locks
    and constraints do that job).
    """
    real = session() if isinstance(session, scoped_session) else session
    if real.new or real.dirty or real.deleted:
        raise RuntimeError("changes were made outside a write transaction")
    if real.in_transaction():
        real.commit()  # (and its connection goes back to the pool while we wait)
    with write_turn(real.get_bind()):
        real.connection(execution_options={SQLITE_BEGIN: "IMMEDIATE"})
        try:
            yield
            real.commit()
        except BaseException:
            real.rollback()
            raise


@contextmanager
def write_turn(bind: Engine | Connection) -> Iterator[None]:
    """This worker's turn to write to its SQLite database, waited for at most
    WRITE_WAIT_SECONDS (then sqlalchemy's TimeoutError: a 503). Nothing to wait
    for elsewhere: PostgreSQL has row locks."""
    engine = bind.engine
    turn = _write_turns.get(engine)
    if turn is None:
        yield
        return
    if not turn.acquire(timeout=WRITE_WAIT_SECONDS):
        raise exc.TimeoutError(f"no turn to write within {WRITE_WAIT_SECONDS:g} s")
    try:
        yield
    finally:
        turn.release()


# False runs every Query through SQLAlchemy Core instead (rows alike, slower):
# the switch for measuring what compiled reads buy.
COMPILED_READS = True


class Query:
    """A hot read, built once and compiled once per database dialect, then run on
    the driver's own cursor: SQLAlchemy's per-execution machinery (connection
    and result objects, events, caches) costs several times the statement itself.
    Values still pass through the columns' own types, both ways, so rows hold
    what an ORM read would (Decimal prices, aware datetimes).

    It stands on SQLAlchemy's documented API only: a compiled statement's
    `string`, `binds` and `positiontup`, and each type's `dialect_impl`,
    `bind_processor` and `result_processor`; tests/servicekit/test_compiled.py
    holds its rows to what SQLAlchemy's own execution gives, on the installed
    version. Only for plain SELECTs whose bind parameters are not expanding.
    """

    def __init__(self, statement: Select[*tuple[Any, ...]]) -> None:
        self.statement = statement
        self._compiled: dict[str, _CompiledQuery] = {}

    def compiled(self, dialect: Dialect) -> _CompiledQuery:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = _CompiledQuery(self.statement, dialect)
        return compiled


class _CompiledQuery:
    """A Query's SQL for one dialect, with how its values are converted."""

    def __init__(self, statement: Select[*tuple[Any, ...]], dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        if any(bind.expanding for bind in compiled.binds.values()):
            raise ValueError("expanding parameters cannot be compiled once")
        self.sql = compiled.string
        self.positions = compiled.positiontup  # None for a named paramstyle
        self.binds: dict[str, Callable[[Any], Any]] = {
            bind.key: process
            for bind in compiled.binds.values()
            if (process := bind.type.dialect_impl(dialect).bind_processor(dialect))
        }
        columns = statement.selected_columns
        self.results = [
            (index, process)
            for index, column in enumerate(columns)
            if (process := column.type.dialect_impl(dialect).result_processor(dialect, None))
        ]
        self.row: Any = namedtuple("Row", list(columns.keys()), rename=True)  # type: ignore[misc]

    def parameters(self, params: dict[str, Any]) -> Any:
        values = {
            name: self.binds[name](value) if name in self.binds else value
            for name, value in params.items()
        }
        if self.positions is None:
            return values
        return tuple(values[name] for name in self.positions)

    def run(self, dbapi_connection: Any, params: dict[str, Any]) -> list[Any]:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(self.sql, self.parameters(params))
            rows = cursor.fetchall()
        finally:
            cursor.close()
        if self.results:
            converted = []
            for raw in rows:
                row = list(raw)
                for index, process in self.results:
                    row[index] = process(row[index])
                converted.append(row)
            rows = converted
        return [self.row._make(row) for row in rows]


def read(
    source: Engine | Connection, statement: Query | Executable, params: dict[str, Any] | None = None
) -> list[Any]:
    """Rows of a read, outside the ORM session, on a pooled connection or on one
    already in use. A Query runs on the driver's cursor; anything else (a read
    with an expanding IN list, say) through SQLAlchemy Core."""
    params = params or {}
    if isinstance(statement, Query):
        if not COMPILED_READS:
            return read(source, statement.statement, params)
        return _run_compiled(source, statement.compiled(source.dialect), params)
    if isinstance(source, Connection):
        return list(source.execute(statement, params).all())
    with source.connect() as connection:
        return list(connection.execute(statement, params).all())


def _run_compiled(
    source: Engine | Connection, compiled: _CompiledQuery, params: dict[str, Any]
) -> list[Any]:
    if isinstance(source, Connection):
        return compiled.run(source.connection.dbapi_connection, params)
    pooled = source.raw_connection()
    try:
        return compiled.run(pooled.dbapi_connection, params)
    except source.dialect.loaded_dbapi.Error:
        pooled.invalidate()  # it may be broken: it must not go back to the pool
        raise
    finally:
        pooled.close()


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """A write transaction on a connection of its own, outside the ORM session:
    committed at the end, rolled back on error (BEGIN IMMEDIATE on SQLite,
    once it is this worker's turn to write)."""
    with write_turn(engine), engine.connect() as connection:
        connection.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
        with connection.begin():
            yield connection


def unavailability_errors(engine: Engine) -> tuple[type[Exception], ...]:
    """What the database raises when it cannot be reached or used right now:
    SQLAlchemy's errors, and the driver's own (compiled reads raise those)."""
    driver = engine.dialect.loaded_dbapi
    return (
        exc.OperationalError,
        exc.InterfaceError,
        exc.TimeoutError,
        driver.OperationalError,
        driver.InterfaceError,
    )


def end_session(session: scoped_session[Any], errors: tuple[type[Exception], ...]) -> None:
    """End a request's ORM session. When the database went away after the
    request's last statement (a restart), the closing rollback fails: the
    answer is already made and the connection is dropped, so it is no error of
    the request's (raised from Flask's teardown it would be a traceback in the
    log, and spoil the answer)."""
    try:
        session.remove()
    except errors:
        session.remove()


def database_answers(engine: Engine) -> bool:
    """True when a trivial query succeeds: the readiness check."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:  # any failure means "not ready", whatever the driver raised
        return False
    return True


class DatabaseProblem(Exception):
    """A service's database cannot be used as configured. The message is one line
    an operator can act on, with the password left out."""


class UnsupportedDatabaseURL(DatabaseProblem):
    """The URL names no database, or one the shop does not run on."""


class DatabaseUnreachable(DatabaseProblem):
    """The database server does not answer, or refuses the credentials."""


@dataclass(frozen=True)
class Driver:
    """A database the shop runs on: SQLAlchemy's backend and driver names."""

    backend: str
    driver: str
    example: str

    def installed(self) -> bool:
        try:
            make_url(f"{self.backend}+{self.driver}://").get_dialect().import_dbapi()
        except ImportError:
            return False
        return True


# Only these: the migrations and the hot reads are written and tested for them.
SUPPORTED_DRIVERS = (
    Driver("sqlite", "pysqlite", "sqlite:///path/to/file.db"),
    Driver("postgresql", "psycopg", "postgresql://user:password@host:5432/name"),
)
CONNECT_TIMEOUT_SECONDS = 3
# `scheme://user:password@`, for hiding the password of a URL that does not
# parse: up to the last @, as the password may hold one.
_CREDENTIALS = re.compile(r"(://[^:/@]*:).*@")


def printable_url(url: str | URL) -> str:
    """The URL with its password replaced by ***, even when it does not parse
    or its password holds an @ that is not percent-encoded."""
    try:
        parsed = make_url(url)
    except (exc.ArgumentError, ValueError):
        return _CREDENTIALS.sub(r"\1***@", str(url))
    if "@" in (parsed.host or ""):  # the password's own @ split it early
        return _CREDENTIALS.sub(r"\1***@", str(url))
    return parsed.render_as_string(hide_password=True)


def installed_drivers() -> str:
    """The supported drivers that are installed, each with an example URL."""
    installed = [driver for driver in SUPPORTED_DRIVERS if driver.installed()]
    return ", ".join(f"{driver.backend} ({driver.example})" for driver in installed) or "none"


def supported_url(url: str) -> URL:
    """The parsed URL, if it names a database the shop runs on with a driver
    that is installed; UnsupportedDatabaseURL otherwise."""
    try:
        parsed = make_url(url)
    except (exc.ArgumentError, ValueError) as error:
        raise UnsupportedDatabaseURL(
            f"{printable_url(url)!r} is not a database URL; "
            f"the installed drivers are {installed_drivers()}"
        ) from error
    if "@" in (parsed.host or ""):  # SQLAlchemy reads the password up to its first @
        raise UnsupportedDatabaseURL(
            f"{printable_url(url)}: the password holds an @, which ends it in a URL; "
            "write it percent-encoded, @ as %40 (and % as %25)"
        )
    backends = {driver.backend: driver for driver in SUPPORTED_DRIVERS}
    supported = backends.get(parsed.get_backend_name())
    if (
        supported is None
        or parsed.get_driver_name() != supported.driver
        or not supported.installed()
    ):
        raise UnsupportedDatabaseURL(
            f"{printable_url(parsed)}: {parsed.drivername} is not supported; "
            f"the installed drivers are {installed_drivers()}"
        )
    return parsed


def engine_options(url: str | URL) -> dict[str, Any]:
    """How every engine is made, the services' and the migrations' alike: bound
    values (password hashes, tokens) never written into error logs; PostgreSQL
    given a connect timeout, so that /ready answers instead of hanging."""
    options: dict[str, Any] = {"hide_parameters": True}
    parsed = make_url(url)
    if not (parsed.get_backend_name() == "sqlite" and parsed.database in (None, "", ":memory:")):
        # A request waits at most 5 s for a pooled connection: then the database
        # counts as unavailable (503), rather than holding a thread for 30 s.
        # (An in-memory SQLite database has one connection and no such pool.)
        options["pool_timeout"] = 5
    if parsed.get_backend_name() == "postgresql":
        options["connect_args"] = {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
        options["pool_pre_ping"] = True
    return options


def open_engine(url: str) -> Engine:
    """An engine on the database at `url`, once it has answered: a supported
    driver (UnsupportedDatabaseURL), a server that takes the credentials
    (DatabaseUnreachable). Tuned as the services tune theirs."""
    checked = supported_url(url)
    engine = create_engine(checked, **engine_options(checked))
    tune_sqlite(engine)
    try:
        with engine.connect():
            pass
    except exc.DBAPIError as error:
        engine.dispose()
        reason = first_line(error.orig or error, checked)
        message = f"cannot connect to {printable_url(checked)}: {reason}"
        raise DatabaseUnreachable(message) from error
    return engine


def first_line(error: BaseException, url: URL | None = None) -> str:
    """An error's own reason in one line (else its type's name), without the
    database's password should it quote it."""
    message = str(error).strip()
    reason = message.splitlines()[0] if message else ""
    if url is not None and url.password:
        reason = reason.replace(str(url.password), "***")
    return reason or type(error).__name__
