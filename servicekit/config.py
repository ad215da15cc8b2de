"""Configuration: defaults on a class, the environment on top, the test mapping last."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from flask import Flask
from flask.sansio.scaffold import find_package


class BaseConfig:
    """Settings every service shares; a service subclasses it for its own."""

    DATABASE_URL: str | None = None  # None: a SQLite file in the instance folder
    SECRET_KEY: str | None = None  # None: a random one per start
    USERS_URL = "http://127.0.0.1:5001"
    BEERS_URL = "http://127.0.0.1:5002"
    UPSTREAM_CONNECT_TIMEOUT = 1.0
    UPSTREAM_READ_TIMEOUT = 5.0
    UPSTREAM_BREAKER_FAILURES = 5
    UPSTREAM_BREAKER_SECONDS = 30.0
    TOKEN_TTL_SECONDS = 86400
    FLASK_SERVER_NAME: str | None = None
    LOG_LEVEL = "INFO"
    LOG_FORMAT = "text"  # or "json": one JSON object a line
    MAX_CONTENT_LENGTH = 1024 * 1024
    # APIFlask and the OpenAPI document.
    VALIDATION_ERROR_STATUS_CODE = 400
    VALIDATION_ERROR_DESCRIPTION = "Invalid input"
    SECURITY_SCHEMES = {
        "BearerAuth": {
            "type": "http",
            "scheme": "bearer",
            "description": "`Authorization: Bearer <token>`; the bare token is accepted too.",
        }
    }
    SPEC_FORMAT = "json"
    SYNC_LOCAL_SPEC = False
    # A service's own environment variables -> how to read each (besides ENVIRONMENT's).
    SERVICE_ENVIRONMENT: dict[str, Callable[[str], Any]] = {}


# Environment variable -> how to read it; every one is optional.
ENVIRONMENT: dict[str, Callable[[str], Any]] = {
    "DATABASE_URL": str,
    "SECRET_KEY": str,
    "USERS_URL": str,
    "BEERS_URL": str,
    "UPSTREAM_CONNECT_TIMEOUT": float,
    "UPSTREAM_READ_TIMEOUT": float,
    "UPSTREAM_BREAKER_FAILURES": int,
    "UPSTREAM_BREAKER_SECONDS": float,
    "TOKEN_TTL_SECONDS": int,
    "FLASK_SERVER_NAME": str,
    "LOG_LEVEL": str,
    "LOG_FORMAT": str,
}


def load_config(
    app: Flask,
    defaults: type[BaseConfig],
    database_name: str,
    test_config: Mapping[str, Any] | None,
) -> None:
    """Fill app.config from the class, then the environment, then test_config."""
    app.config.from_object(defaults)
    for name, parse in {**ENVIRONMENT, **defaults.SERVICE_ENVIRONMENT}.items():
        raw = os.environ.get(name)
        if raw:
            app.config[name] = parse(raw)
    if test_config:
        app.config.update(test_config)

    if not app.config["SECRET_KEY"]:  # the server warns of it, once (servicekit.serving)
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
