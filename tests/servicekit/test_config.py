"""Each service's Config owns its settings: the defaults on the class, each
setting's environment variable read as declared beside its default, the test
mapping last."""

import importlib
from collections.abc import Mapping
from ipaddress import ip_network
from typing import Any

import pytest
from apiflask import APIFlask

from servicekit.config import (
    BadSetting,
    BaseConfig,
    Setting,
    environment_settings,
    environment_values,
)

# Settings a service has, and settings it must not (they belong to another).
OWNED = {
    "users": {
        "TOKEN_TTL_SECONDS",
        "LOGIN_MAX_FAILURES",
        "LOGIN_MAX_FAILURES_PER_ADDRESS",
        "LOGIN_WINDOW_SECONDS",
        "TRUSTED_PROXIES",
        "PASSWORD_WAIT_SECONDS",
    },
    "beers": {
        "USERS_URL",
        "UPSTREAM_CONNECT_TIMEOUT",
        "UPSTREAM_READ_TIMEOUT",
        "UPSTREAM_BREAKER_FAILURES",
        "UPSTREAM_BREAKER_SECONDS",
    },
    "orders": {
        "USERS_URL",
        "BEERS_URL",
        "UPSTREAM_CONNECT_TIMEOUT",
        "UPSTREAM_READ_TIMEOUT",
        "UPSTREAM_BREAKER_FAILURES",
        "UPSTREAM_BREAKER_SECONDS",
        "IDEMPOTENCY_TTL_SECONDS",
    },
}
SHARED = {
    "DATABASE_URL",
    "SECRET_KEY",
    "FLASK_SERVER_NAME",
    "LOG_LEVEL",
    "LOG_FORMAT",
    "CORS_ORIGINS",
    "ACCESS_LOG",
    "BODY_TIMEOUT_SECONDS",
    "WORKER_MEMORY_MIB",
}


def service_app(service: str, settings: Mapping[str, Any] | None = None) -> APIFlask:
    app: APIFlask = importlib.import_module(service).create_app(
        {"DATABASE_URL": "sqlite://", **(settings or {})}
    )
    return app


@pytest.mark.parametrize("service", OWNED)
def test_a_service_reads_from_the_environment_its_own_settings_and_the_shared_ones(
    service: str,
) -> None:
    config = importlib.import_module(service).Config
    assert {setting.name for setting in environment_settings(config)} == OWNED[service] | SHARED


@pytest.mark.parametrize("service", OWNED)
def test_a_service_has_no_setting_of_another(service: str) -> None:
    others = set().union(*OWNED.values()) - OWNED[service]
    assert others.isdisjoint(service_app(service).config)


@pytest.mark.parametrize(
    ("service", "name", "default"),
    [
        ("users", "TOKEN_TTL_SECONDS", 86400),
        ("users", "LOGIN_MAX_FAILURES", 10),
        ("users", "LOGIN_MAX_FAILURES_PER_ADDRESS", 100),
        ("users", "LOGIN_WINDOW_SECONDS", 600),
        ("users", "TRUSTED_PROXIES", ()),
        ("users", "PASSWORD_WAIT_SECONDS", 1.0),
        ("beers", "USERS_URL", "http://127.0.0.1:5001"),
        ("beers", "UPSTREAM_CONNECT_TIMEOUT", 1.0),
        ("beers", "UPSTREAM_READ_TIMEOUT", 5.0),
        ("beers", "UPSTREAM_BREAKER_FAILURES", 5),
        ("beers", "UPSTREAM_BREAKER_SECONDS", 30.0),
        ("orders", "USERS_URL", "http://127.0.0.1:5001"),
        ("orders", "BEERS_URL", "http://127.0.0.1:5002"),
        ("orders", "IDEMPOTENCY_TTL_SECONDS", 86400),
        ("orders", "LOG_LEVEL", "INFO"),
        ("orders", "LOG_FORMAT", "text"),
    ],
)
def test_a_setting_left_alone_is_its_default(
    monkeypatch: pytest.MonkeyPatch, service: str, name: str, default: object
) -> None:
    monkeypatch.delenv(name, raising=False)
    assert service_app(service).config[name] == default


@pytest.mark.parametrize(
    ("service", "name", "raw", "read"),
    [
        ("users", "TOKEN_TTL_SECONDS", "60", 60),
        ("users", "LOGIN_WINDOW_SECONDS", "30", 30),
        (
            "users",
            "TRUSTED_PROXIES",
            "10.0.0.0/8, 192.168.1.1",
            (ip_network("10.0.0.0/8"), ip_network("192.168.1.1/32")),
        ),
        ("users", "PASSWORD_WAIT_SECONDS", "0.5", 0.5),
        ("beers", "USERS_URL", "http://users:8000", "http://users:8000"),
        ("beers", "UPSTREAM_BREAKER_FAILURES", "2", 2),
        ("orders", "BEERS_URL", "http://beers:8000", "http://beers:8000"),
        ("orders", "UPSTREAM_READ_TIMEOUT", "2.5", 2.5),
        ("orders", "IDEMPOTENCY_TTL_SECONDS", "3600", 3600),
        ("beers", "LOG_LEVEL", "DEBUG", "DEBUG"),
    ],
)
def test_the_environment_variable_of_a_setting_is_read_as_declared(
    monkeypatch: pytest.MonkeyPatch, service: str, name: str, raw: str, read: object
) -> None:
    monkeypatch.setenv(name, raw)
    assert service_app(service).config[name] == read


def test_the_test_mapping_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TOKEN_TTL_SECONDS", "60")
    assert service_app("users", {"TOKEN_TTL_SECONDS": 5}).config["TOKEN_TTL_SECONDS"] == 5


def test_an_empty_environment_variable_leaves_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDEMPOTENCY_TTL_SECONDS", "")
    assert service_app("orders").config["IDEMPOTENCY_TTL_SECONDS"] == 86400


def test_a_subclass_declaring_a_setting_again_wins() -> None:
    class Base(BaseConfig):
        WAIT = Setting(1, int)

    class Own(Base):
        WAIT = Setting(2, int)

    waits = [setting for setting in environment_settings(Own) if setting.name == "WAIT"]
    assert [wait.default for wait in waits] == [2]


@pytest.mark.parametrize(
    ("service", "name", "raw", "wanted"),
    [
        (
            "users",
            "LOGIN_MAX_FAILURES",
            "ten",
            "it is a whole number, 0 or more; the default is 10",
        ),
        ("users", "TOKEN_TTL_SECONDS", "-5", "it is a whole number, 0 or more"),
        ("users", "PASSWORD_WAIT_SECONDS", "nan", "it is a number, 0 or more"),
        ("beers", "UPSTREAM_READ_TIMEOUT", "-1", "it is a number, 0 or more"),
        ("beers", "USERS_URL", "not-a-url", "it is an http:// or https:// URL with a host"),
        ("orders", "BEERS_URL", "ftp://beers", "it is an http:// or https:// URL with a host"),
        ("orders", "BEERS_URL", "http://beers:port", "it is an http:// or https:// URL"),
        ("orders", "LOG_LEVEL", "LOUD", "it is one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("orders", "LOG_FORMAT", "xml", "it is one of text, json"),
        ("users", "FLASK_SERVER_NAME", "http://shop.example", "it is a host or host:port"),
    ],
)
def test_a_setting_of_the_wrong_shape_is_refused_naming_what_would_do(
    monkeypatch: pytest.MonkeyPatch, service: str, name: str, raw: str, wanted: str
) -> None:
    monkeypatch.setenv(name, raw)

    with pytest.raises(BadSetting) as refused:
        environment_values(importlib.import_module(service).Config)

    assert str(refused.value).startswith(f"{name}={raw!r} will not do: {wanted}")


@pytest.mark.parametrize("service", OWNED)
def test_every_setting_says_what_would_do_when_refused(
    monkeypatch: pytest.MonkeyPatch, service: str
) -> None:
    """Settings added later too: none is read by a bare int or float, nor a URL by str."""
    for setting in environment_settings(importlib.import_module(service).Config):
        if setting.parse is str:
            assert not str(setting.default).startswith("http"), setting.name
            continue
        monkeypatch.setenv(setting.name, "-/ of no shape")
        with pytest.raises(BadSetting) as refused:
            environment_values(importlib.import_module(service).Config)
        monkeypatch.delenv(setting.name)
        assert "invalid literal" not in str(refused.value), setting.name  # int's own words
        assert "could not convert" not in str(refused.value), setting.name  # float's


def test_a_log_level_is_read_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG_LEVEL", "debug")
    assert service_app("users").config["LOG_LEVEL"] == "DEBUG"
