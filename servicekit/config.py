"""Configuration: defaults on a class, the environment on top, the test mapping last.
Each setting the environment may change is a `Setting` on the Config of the
service that uses it (BaseConfig: every service; UpstreamConfig: the callers)."""

from __future__ import annotations

import logging
import math
import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Generic, TypeVar, cast
from urllib.parse import urlsplit

from flask import Flask
from flask.sansio.scaffold import find_package

from .cors import web_origins
from .logs import LOG_FORMATS

log = logging.getLogger(__name__)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")

T = TypeVar("T")


class Setting(Generic[T]):
    """A config setting the environment variable of its name may change, read by
    `parse` (a ValueError says what would do; plain int, float and http-URL str
    get the readers below). On the class it reads as its default, a plain value
    of its type for Flask's from_object and mypy."""

    def __init__(self, default: T, parse: Callable[[str], T]) -> None:
        self.default = default
        self.parse = cast(Callable[[str], T], _reader_for(parse, default))
        self.name = ""  # the attribute's, given by __set_name__

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, instance: object, owner: type | None = None) -> T:
        return self.default


def whole_number(raw: str) -> int:
    """A count or a number of seconds: 0 or more, no fraction."""
    if not raw.strip().isdigit():
        raise ValueError("it is a whole number, 0 or more")
    return int(raw)


def number(raw: str) -> float:
    """A number of seconds: 0 or more, fractions allowed."""
    try:
        read = float(raw)
    except ValueError:
        read = -1.0
    if not math.isfinite(read) or read < 0:
        raise ValueError("it is a number, 0 or more (fractions allowed: 0.5)")
    return read


def http_url(raw: str) -> str:
    """Where another service is: http:// or https://, a host, perhaps a port."""
    try:
        parts = urlsplit(raw)
        port_ok = parts.port is None or parts.port > 0
    except ValueError:
        port_ok = False
    if parts.scheme not in ("http", "https") or not parts.hostname or not port_ok:
        raise ValueError("it is an http:// or https:// URL with a host, like http://users:5001")
    return raw


def log_level(raw: str) -> str:
    """One of logging's level names, in any case."""
    if raw.upper() not in LOG_LEVELS:
        raise ValueError(f"it is one of {', '.join(LOG_LEVELS)}")
    return raw.upper()


def host_and_port(raw: str) -> str:
    """A server name as Flask takes it: host or host:port, no scheme or path."""
    host, _, port = raw.partition(":")
    if not host or "/" in raw or (port and not port.isdigit()):
        raise ValueError("it is a host or host:port, like shop.example:5001 (no http://)")
    return raw


def _reader_for(parse: Callable[[str], Any], default: object) -> Callable[[str], Any]:
    """The reader that says what would do, for the plain types settings are declared with."""
    if parse is int:
        return whole_number
    if parse is float:
        return number
    if parse is str and isinstance(default, str) and default.startswith(("http://", "https://")):
        return http_url
    return parse


def on_or_off(raw: str) -> bool:
    """A yes-or-no setting: `true` or `false`."""
    if raw not in ("true", "false"):
        raise ValueError("it is true or false")
    return raw == "true"


def one_of(*choices: str) -> Callable[[str], str]:
    """A setting's reader that takes only these values."""

    def read(raw: str) -> str:
        if raw not in choices:
            raise ValueError(f"it is one of {', '.join(choices)}")
        return raw

    return read


class BaseConfig:
    """Settings every service shares; a service subclasses it for its own."""

    DATABASE_URL = Setting[str | None](None, str)  # None: a SQLite file in the instance folder
    SECRET_KEY = Setting[str | None](None, str)  # None: a random one per start
    FLASK_SERVER_NAME = Setting[str | None](None, host_and_port)
    LOG_LEVEL = Setting("INFO", log_level)
    LOG_FORMAT = Setting("text", one_of(*LOG_FORMATS))  # "json": one JSON object a line
    ACCESS_LOG = Setting(True, on_or_off)  # a line for every request (servicekit.observability)
    MAX_CONTENT_LENGTH = 1024 * 1024
    # Web pages on these origins may call the API (servicekit.cors); none: no CORS.
    CORS_ORIGINS = Setting[tuple[str, ...]]((), web_origins)
    # The server's front (servicekit.front): a body not whole this long after
    # its headers is a 408; what a worker's memory must stay under, a quarter
    # of it for request bodies held at once.
    BODY_TIMEOUT_SECONDS = Setting(30.0, float)
    WORKER_MEMORY_MIB = Setting(256, int)


class UpstreamConfig(BaseConfig):
    """Settings of a service that calls others (servicekit.app.upstream_client):
    where users is (every caller asks it about tokens: servicekit.auth), how long
    to wait, and when to stop trying for a while. The service's own Config adds
    the URLs of the others it calls."""

    USERS_URL = Setting("http://127.0.0.1:5001", str)
    UPSTREAM_CONNECT_TIMEOUT = Setting(1.0, float)
    UPSTREAM_READ_TIMEOUT = Setting(5.0, float)
    UPSTREAM_BREAKER_FAILURES = Setting(5, int)  # failed calls in a row: the neighbour is down
    # ... first for 1 s, doubled after each failed trial call up to this
    UPSTREAM_BREAKER_SECONDS = Setting(30.0, float)


def share_a_secret_key() -> None:
    """Without SECRET_KEY, one random key for all the workers started from this
    process (`inv up`: all three services'), said once here rather than by each."""
    if os.environ.get("SECRET_KEY"):
        return
    os.environ["SECRET_KEY"] = secrets.token_hex(32)  # the workers inherit it
    log.warning(
        "SECRET_KEY is not set: the workers share a random key until the server stops. "
        "Nothing is lost at a restart: the shop signs nothing with it (tokens are random "
        "and kept in the users database; there are no sessions or cookies). Flask "
        "requires a key for its sessions, so set one (see the README) before a feature "
        "uses them."
    )


def environment_settings(config: type[BaseConfig]) -> list[Setting[Any]]:
    """Every Setting of the class and its bases, a subclass's winning."""
    declared: dict[str, Setting[Any]] = {}
    for klass in reversed(config.__mro__):
        declared.update(
            (name, value) for name, value in vars(klass).items() if isinstance(value, Setting)
        )
    return list(declared.values())


class BadSetting(ValueError):
    """An environment variable its setting cannot be read from."""


def environment_values(config: type[BaseConfig]) -> dict[str, Any]:
    """The settings the environment gives, read; BadSetting names one that will not do."""
    values = {}
    for setting in environment_settings(config):
        raw = os.environ.get(setting.name)
        if raw:
            try:
                values[setting.name] = setting.parse(raw)
            except ValueError as error:
                default = setting.default
                says = "" if default in (None, ()) else f"; the default is {default}"
                raise BadSetting(f"{setting.name}={raw!r} will not do: {error}{says}") from None
    return values


def log_settings() -> tuple[str, str]:
    """LOG_LEVEL and LOG_FORMAT as every service reads them, for a process that
    logs before any app exists (the command line, the server's master);
    BadSetting if one will not do."""
    given = environment_values(BaseConfig)
    return (
        given.get("LOG_LEVEL", BaseConfig.LOG_LEVEL),
        given.get("LOG_FORMAT", BaseConfig.LOG_FORMAT),
    )


def load_config(
    app: Flask,
    defaults: type[BaseConfig],
    database_name: str,
    test_config: Mapping[str, Any] | None,
) -> None:
    """Fill app.config from the class, then the environment, then test_config."""
    app.config.from_object(defaults)
    app.config.update(environment_values(defaults))
    if test_config:
        app.config.update(test_config)

    if not app.config["SECRET_KEY"]:  # the server warned of it, once (share_a_secret_key)
        app.config["SECRET_KEY"] = secrets.token_hex(32)
    if app.config["FLASK_SERVER_NAME"]:
        app.config["SERVER_NAME"] = app.config["FLASK_SERVER_NAME"]
    app.config["SQLALCHEMY_DATABASE_URI"] = sqlalchemy_url(
        app.config["DATABASE_URL"] or default_sqlite_url(Path(app.instance_path), database_name)
    )


def sqlalchemy_url(url: str) -> str:
    """Accept a plain postgresql:// URL as given by choosing the psycopg 3 driver."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain) :]
    return url


def default_sqlite_url(instance: Path, database_name: str) -> str:
    """A SQLite file in the app's instance folder (made if missing)."""
    instance.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{instance / database_name}"


def service_database_url(service: str, configured: str | None = None) -> str:
    """The SQLAlchemy URL of the service's database as its app finds it, without
    making the app: `configured`, else $DATABASE_URL, else `<service>.db` in the
    instance folder Flask gives the service's package."""
    return sqlalchemy_url(
        configured
        or os.environ.get("DATABASE_URL")
        or default_sqlite_url(instance_folder(service), f"{service}.db")
    )


def instance_folder(import_name: str) -> Path:
    """Flask's instance folder for an app of this package (Flask's own rule)."""
    prefix, package_path = find_package(import_name)
    if prefix is None:
        return Path(package_path) / "instance"
    return Path(prefix) / "var" / f"{import_name}-instance"
