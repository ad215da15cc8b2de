"""What every service has in common, checked on the beers app."""

import logging
import os
import shutil
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any, NoReturn

import pytest
import sqlalchemy
from apiflask import APIFlask
from flask.testing import FlaskClient
from sqlalchemy.engine import make_url

import beers.domain
from beers import create_app
from beers.models import db
from servicekit import logs
from servicekit.db import SERVED_FILE_VARIABLE, announce_the_served_file
from tests.databases import POSTGRES_URL, fresh_app
from tests.fakes import FakeUsersClient
from tests.metrics import samples
from tests.problems import assert_problem


@pytest.fixture
def app(tmp_path: Path) -> Iterator[APIFlask]:
    with fresh_app(create_app, db, "beers", tmp_path, users_client=FakeUsersClient()) as app:
        yield app


@pytest.fixture
def client(app: APIFlask) -> FlaskClient:
    return app.test_client()


def test_an_unknown_path_is_a_problem(client: FlaskClient) -> None:
    assert_problem(client.get("/no/such/thing"), 404)


def test_a_wrong_method_is_a_problem(client: FlaskClient) -> None:
    assert_problem(client.patch("/api/beers/"), 405)


def test_a_huge_body_is_a_problem(client: FlaskClient) -> None:
    response = client.post(
        "/api/beers/",
        data="x" * (1024 * 1024 + 1),
        headers={"Authorization": "admin-token", "Content-Type": "application/json"},
    )
    assert_problem(response, 413)


def test_invalid_json_is_a_400_problem(client: FlaskClient) -> None:
    response = client.post(
        "/api/beers/",
        data="{nope",
        headers={"Authorization": "admin-token", "Content-Type": "application/json"},
    )
    assert_problem(response, 400)


def test_a_json_body_that_is_not_an_object_is_a_400_problem(client: FlaskClient) -> None:
    response = client.post("/api/beers/", json=[1, 2], headers={"Authorization": "admin-token"})
    assert_problem(response, 400)


def test_an_unexpected_error_is_a_500_problem_without_a_trace(
    app: APIFlask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    import beers.domain

    def explode(*args: object, **kwargs: object) -> NoReturn:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(beers.domain, "find_beer", explode)
    response = client.get("/api/beers/123456")
    assert_problem(response, 500)
    assert b"secret internals" not in response.data
    assert b"Traceback" not in response.data


def test_a_request_id_is_echoed(client: FlaskClient) -> None:
    response = client.get("/health", headers={"X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"


def test_a_request_id_is_made_when_none_or_a_strange_one_is_sent(client: FlaskClient) -> None:
    first = client.get("/health").headers["X-Request-ID"]
    odd = client.get("/health", headers={"X-Request-ID": "bad id\twith junk"}).headers
    assert len(first) >= 16
    assert odd["X-Request-ID"] != "bad id\twith junk"


def test_log_lines_carry_the_request_id(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG")
    client.get("/api/beers/", headers={"X-Request-ID": "trace-me-7"})
    record = next(r for r in caplog.records if r.name == "servicekit.access")
    assert "GET /api/beers/" in record.getMessage()
    assert record.__dict__["request_id"] == "trace-me-7"


def test_health_and_ready(client: FlaskClient) -> None:
    assert client.get("/health").json == {"status": "ok"}
    assert client.get("/ready").json == {"status": "ok"}


def test_ready_is_a_503_when_the_database_does_not_answer(tmp_path: Path) -> None:
    app = create_app(
        {"DATABASE_URL": f"sqlite:///{tmp_path}/missing-dir/beers.db", "SECRET_KEY": "t"},
        users_client=FakeUsersClient(),
    )
    response = app.test_client().get("/ready")
    assert_problem(response, 503)
    assert app.test_client().get("/health").status_code == 200


@pytest.mark.skipif(bool(POSTGRES_URL), reason="a SQLite file")
@pytest.mark.parametrize("change", ["deleted", "replaced"])
def test_a_database_file_deleted_or_replaced_while_serving_is_not_ready_and_takes_no_writes(
    app: APIFlask, client: FlaskClient, tmp_path: Path, change: str
) -> None:
    assert client.get("/api/beers/").status_code == 200  # connections on the file opened
    path = Path(make_url(app.config["SQLALCHEMY_DATABASE_URI"]).database or "")
    if change == "deleted":
        path.unlink()
    else:  # a copy moved in over it, as a restored backup would be
        shutil.copy(path, tmp_path / "restored.db")
        os.replace(tmp_path / "restored.db", path)

    ready = client.get("/ready")
    added = client.post(
        "/api/beers/",
        json={"sku": "777", "name": "Шуменско", "price": "1.10"},
        headers={"Authorization": "admin-token"},
    )

    assert_problem(ready, 503)
    assert assert_problem(added, 503)["service"] == "beers-database"
    assert client.get("/health").status_code == 200
    if change == "deleted":
        assert not path.exists()  # no empty database made in its place either
    else:
        with closing(sqlite3.connect(path)) as replaced:
            assert replaced.execute("SELECT count(*) FROM beers").fetchone() == (0,)


@pytest.mark.skipif(bool(POSTGRES_URL), reason="a SQLite file")
def test_a_worker_made_after_its_server_s_file_was_deleted_is_not_ready_and_makes_none(
    app: APIFlask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = app.config["SQLALCHEMY_DATABASE_URI"]
    path = Path(make_url(url).database or "")
    monkeypatch.setenv(SERVED_FILE_VARIABLE, "")  # and unset after the test
    announce_the_served_file(url)  # as the server does before it starts its workers
    path.unlink()

    late = create_app({"DATABASE_URL": url, "SECRET_KEY": "t"}, users_client=FakeUsersClient())
    with late.app_context():
        assert_problem(late.test_client().get("/ready"), 503)
        db.engine.dispose()
    assert not path.exists()  # no empty database made in its place


def test_metrics_count_requests_by_endpoint_and_status(client: FlaskClient) -> None:
    client.get("/api/beers/nope")
    text = client.get("/metrics").get_data(as_text=True)
    not_found = {"endpoint": "/api/beers/<sku>", "method": "GET", "status": "404"}
    assert (not_found, 1.0) in samples(text, "http_requests_total")
    assert samples(text, "http_request_duration_seconds_bucket")


def test_the_openapi_document_says_bodies_are_json_or_forms_and_errors_problems(
    client: FlaskClient,
) -> None:
    spec = client.get("/api/openapi.json").json
    assert spec["openapi"].startswith("3.")
    post = spec["paths"]["/api/beers"]["post"]
    assert set(post["requestBody"]["content"]) == {
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    }
    assert "application/problem+json" in post["responses"]["400"]["content"]
    assert {"401", "403", "409"} <= set(post["responses"])
    price = spec["components"]["schemas"]["BeerIn"]["properties"]["price"]
    assert price["type"] == "string"


def test_the_docs_page_uses_swagger_files_served_here(client: FlaskClient) -> None:
    page = client.get("/api/docs").get_data(as_text=True)
    assert "/api/docs/assets/swagger-ui-bundle.js" in page
    assert "cdn" not in page.lower()
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "swagger-ui-standalone-preset.js"):
        with client.get(f"/api/docs/assets/{asset}") as response:
            assert response.status_code == 200


def test_a_plain_postgresql_url_gets_the_psycopg_driver() -> None:
    from servicekit.config import sqlalchemy_url

    assert sqlalchemy_url("postgresql://u:p@h/db") == "postgresql+psycopg://u:p@h/db"
    assert sqlalchemy_url("sqlite:///x.db") == "sqlite:///x.db"


@pytest.mark.parametrize(
    ("sent", "logged"),
    [
        ("NL%0Afake%20line", "NL\\x0afake line"),
        ("NEL%C2%85fake%20line", "NEL\\x85fake line"),  # U+0085, a line break to some
        ("LS%E2%80%A8fake%20line", "LS\\u2028fake line"),  # the line separator
        ("PS%E2%80%A9fake", "PS\\u2029fake"),
        ("RS%1Efake", "RS\\x1efake"),
        ("RLO%E2%80%AEfake", "RLO\\u202efake"),  # writes what follows right to left
    ],
)
def test_a_path_cannot_forge_a_log_line(
    client: FlaskClient, caplog: pytest.LogCaptureFixture, sent: str, logged: str
) -> None:
    caplog.set_level("DEBUG")
    client.get(f"/api/beers/{sent}")
    line = next(r for r in caplog.records if r.name == "servicekit.access").getMessage()
    assert len(line.splitlines()) == 1
    assert logged in line


def test_no_message_breaks_a_text_log_line_but_a_traceback_keeps_its_lines() -> None:
    formatter = logs._formatter("text")
    record = logging.LogRecord("x", logging.WARNING, "f.py", 1, "a\u2028b\x85c\nd", None, None)
    record.__dict__.update(service="beers", request_id="-", trace_fields="")
    try:
        raise ValueError("why")
    except ValueError:
        failed = logging.LogRecord("x", logging.ERROR, "f.py", 1, "it\u2029failed", None, None)
        failed.__dict__.update(service="beers", request_id="-", trace_fields="")
        failed.exc_info = sys.exc_info()

    line = formatter.format(record)
    lines = formatter.format(failed).split("\n")

    assert line.endswith(" a\\u2028b\\x85c\\x0ad")
    assert len(line.splitlines()) == 1
    assert lines[0].endswith(" it\\u2029failed")
    assert lines[1] == "Traceback (most recent call last):"
    assert lines[-1] == "ValueError: why"


def test_an_options_request_for_an_unknown_path_is_a_problem_with_its_type(
    client: FlaskClient,
) -> None:
    response = client.options("/no/such/thing")

    assert_problem(response, 404)
    assert response.headers["Content-Type"] == "application/problem+json"


def test_an_options_request_for_a_known_path_says_what_is_allowed_without_a_body(
    client: FlaskClient,
) -> None:
    response = client.options("/api/beers/")

    assert response.status_code == 200
    assert "GET" in response.headers["Allow"]
    assert "Content-Type" not in response.headers and response.data == b""


def test_every_operation_documents_a_problem_for_any_other_error(client: FlaskClient) -> None:
    spec = client.get("/api/openapi.json").json
    for path_item in spec["paths"].values():
        for operation in path_item.values():
            assert "application/problem+json" in operation["responses"]["default"]["content"]


def test_the_503_of_a_catalogue_change_documents_which_service(client: FlaskClient) -> None:
    spec = client.get("/api/openapi.json").json
    problem = spec["paths"]["/api/beers"]["post"]["responses"]["503"]["content"]
    assert "service" in problem["application/problem+json"]["schema"]["properties"]


def test_latency_is_measured_by_endpoint_and_status(client: FlaskClient) -> None:
    client.get("/api/beers/nope")
    text = client.get("/metrics").get_data(as_text=True)
    fastest = {"endpoint": "/api/beers/<sku>", "le": "0.005", "method": "GET", "status": "404"}
    buckets = samples(text, "http_request_duration_seconds_bucket")
    assert fastest in [labels for labels, _ in buckets]


# nothing about the server, no redirects, the security headers


@pytest.mark.parametrize("path", ["/api/beers/", "/no/such/thing", "/health", "/api/openapi.json"])
def test_every_answer_names_the_service_and_forbids_sniffing_and_framing(
    client: FlaskClient, path: str
) -> None:
    response = client.get(path)

    assert response.headers["Server"] == "beers"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert (
        response.headers["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    )


@pytest.mark.parametrize("path", ["/api/docs", "/api/docs/"])
def test_the_docs_page_allows_its_own_scripts_styles_and_fetches_only(
    client: FlaskClient, path: str
) -> None:
    response = client.get(path)

    assert response.status_code == 200
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self';" in policy
    assert "style-src 'self';" in policy  # Swagger UI needs no inline styles either
    assert "connect-src 'self'" in policy
    assert "frame-ancestors 'none'" in policy
    assert "<script>" not in response.get_data(as_text=True)  # nothing inline to allow


def test_the_docs_page_starts_swagger_ui_from_a_script_file(client: FlaskClient) -> None:
    page = client.get("/api/docs").get_data(as_text=True)
    start = client.get("/api/docs/start.js")

    assert '<script src="/api/docs/start.js"></script>' in page
    assert start.status_code == 200 and start.mimetype == "text/javascript"
    assert "SwaggerUIBundle" in start.get_data(as_text=True)


@pytest.mark.parametrize("path", ["//api/beers/", "/api//beers/", "//api/beers/123456"])
def test_a_path_with_a_double_slash_is_answered_where_it_is(client: FlaskClient, path: str) -> None:
    response = client.get(path, headers={"Host": "evil.example"})

    assert_problem(response, 404)
    assert "Location" not in response.headers


def test_the_access_log_never_shows_the_query(
    client: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level("DEBUG", logger="servicekit.access")

    client.get("/api/beers/?token=secret-token&limit=abc")

    assert "/api/beers/" in caplog.text
    assert "secret-token" not in caplog.text


def test_made_up_methods_cannot_grow_the_metrics(client: FlaskClient) -> None:
    for number in range(50):
        client.open("/api/beers/", method=f"BREW{number}")
    metrics = client.get("/metrics").get_data(as_text=True)

    methods = {labels["method"] for labels, _ in samples(metrics, "http_requests_total")}
    assert "BREW" not in metrics
    assert "other" in methods


# its own database down


@pytest.mark.parametrize(
    "failure",
    [
        lambda driver: sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("gone")),
        lambda driver: driver.OperationalError("the database cannot be reached"),
    ],
    ids=["through SQLAlchemy", "from the driver"],
)
def test_a_database_that_cannot_be_reached_is_a_503_naming_it(
    app: APIFlask,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    failure: Callable[[Any], Exception],
) -> None:
    with app.app_context():
        driver = db.engine.dialect.loaded_dbapi  # sqlite3 or psycopg

    def down(*args: object, **kwargs: object) -> NoReturn:
        raise failure(driver)

    monkeypatch.setattr(beers.domain, "read", down)

    response = client.get("/api/beers/123456")

    assert_problem(response, 503)
    assert response.json["service"] == "beers-database"
    assert response.headers["Retry-After"] == "1"
    unavailable = [r for r in caplog.records if "database is unavailable" in r.getMessage()]
    assert len(unavailable) == 1 and unavailable[0].exc_info is None


def test_the_root_names_the_service_and_links_to_its_documents(client: FlaskClient) -> None:
    response = client.get("/")

    assert response.status_code == 200
    assert response.json == {
        "service": "beers",
        "version": "1.0.0",
        "links": {
            "docs": "/api/docs",
            "openapi": "/api/openapi.json",
            "health": "/health",
            "ready": "/ready",
        },
    }


def test_an_in_memory_sqlite_database_needs_no_pool_settings() -> None:
    app = create_app({"DATABASE_URL": "sqlite://"}, users_client=FakeUsersClient())

    with app.app_context():
        assert db.engine.url.database in (None, "")
