"""Each service's migrations make exactly the schema its models describe, and
upgrading keeps the rows."""

import importlib
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from apiflask import APIFlask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy import Column, MetaData, String, inspect, text

from servicekit.db import UTCDateTime
from servicekit.migrations import (
    ROOT,
    MigrationTarget,
    UnknownRevision,
    UnversionedDatabase,
    drop_everything,
    migration_target,
    migrations_folder,
    new_revision,
    revision_history,
    step_to,
    upgrade,
    version_table,
)
from tests.databases import fresh_database_url


def service_app(service: str, folder: Path) -> tuple[APIFlask, SQLAlchemy]:
    url = fresh_database_url(f"test_migrations_{service}", folder)
    module = importlib.import_module(service)
    return module.create_app({"DATABASE_URL": url, "SECRET_KEY": "t"}), importlib.import_module(
        f"{service}.models"
    ).db


def current_revision(service: str, db: Any) -> str | None:
    """The revision the service's database is at; None for none (base)."""
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": version_table(service)}
        )
        return context.get_current_revision()


def head_revision(service: str, db: Any) -> str | None:
    """The last revision of the service's history."""
    return list(revision_history(service, db))[-1]


def insert_a_user_with_a_token(db: SQLAlchemy) -> None:
    """Rows written with plain SQL, as any revision of the users schema takes them."""
    with db.engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO users (id, username, email, username_key, email_key, "
                "password_hash, is_admin, time_registered, time_modified) VALUES "
                "(1, 'Ivan', 'i@example.com', 'ivan', 'i@example.com', 'x', false, "
                "'2026-01-01 00:00:00', '2026-01-01 00:00:00')"
            )
        )
        connection.execute(
            text(
                "INSERT INTO tokens (digest, user_id, time_created, expires_at) VALUES "
                "('d1', 1, '2026-01-01 00:00:00', '2999-01-01 00:00:00')"
            )
        )


@pytest.mark.parametrize("service", ["users", "beers", "orders"])
def test_the_migrations_make_the_schema_the_models_describe(tmp_path: Path, service: str) -> None:
    app, db = service_app(service, tmp_path)
    with app.app_context():
        upgrade(service, db)
        with db.engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"version_table": version_table(service), "compare_type": True}
            )
            differences = compare_metadata(context, db.metadata)
        assert current_revision(service, db) == head_revision(service, db)
        db.engine.dispose()
    assert differences == []


def test_upgrading_a_database_of_the_previous_revision_keeps_its_rows(tmp_path: Path) -> None:
    app, db = service_app("users", tmp_path)
    with app.app_context():
        upgrade("users", db, "0001")
        insert_a_user_with_a_token(db)
        upgrade("users", db)
        with db.engine.connect() as connection:
            users = connection.execute(text("SELECT username FROM users")).scalars().all()
            tokens = connection.execute(text("SELECT digest FROM tokens")).scalars().all()
            indexes = {index["name"] for index in inspect(connection).get_indexes("tokens")}
            tables = inspect(connection).get_table_names()
        assert current_revision("users", db) == head_revision("users", db)
        db.engine.dispose()
    assert users == ["Ivan"]
    assert tokens == ["d1"]
    assert "ix_tokens_expires_at" in indexes
    assert "login_failures" in tables


def test_setting_up_twice_changes_nothing(tmp_path: Path) -> None:
    app, db = service_app("beers", tmp_path)
    with app.app_context():
        upgrade("beers", db)
        with db.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO beers (sku, name, name_folded, price, time_created, "
                    "time_modified) VALUES ('1', 'x', 'x', 100, '2026-01-01', '2026-01-01')"
                )
            )
        upgrade("beers", db)
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM beers")).scalar() == 1
        db.engine.dispose()


def test_reset_starts_afresh(tmp_path: Path) -> None:
    app, db = service_app("orders", tmp_path)
    with app.app_context():
        upgrade("orders", db)
        drop_everything("orders", db)
        with db.engine.connect() as connection:
            assert inspect(connection).get_table_names() == []
        upgrade("orders", db)
        assert current_revision("orders", db) == head_revision("orders", db)
        db.engine.dispose()


def test_tables_made_without_migrations_are_not_silently_taken_over(tmp_path: Path) -> None:
    app, db = service_app("beers", tmp_path)
    with app.app_context():
        db.create_all()
        with pytest.raises(UnversionedDatabase):
            upgrade("beers", db)
        db.engine.dispose()


def test_a_batch_migration_of_a_parent_table_keeps_its_childrens_rows(tmp_path: Path) -> None:
    """SQLite rebuilds a table to alter it; the drop must not cascade to tokens."""
    from alembic.operations import Operations
    from sqlalchemy import String

    from servicekit.migrations import migrating

    app, db = service_app("users", tmp_path)
    with app.app_context():
        upgrade("users", db)
        insert_a_user_with_a_token(db)
        with migrating("users", db) as connection:
            with Operations.context(MigrationContext.configure(connection)) as op:
                with op.batch_alter_table("users") as batch:
                    batch.alter_column("first_name", type_=String(300))
        with db.engine.connect() as connection:
            tokens = connection.execute(text("SELECT count(*) FROM tokens")).scalar()
            foreign_keys = (
                connection.exec_driver_sql("PRAGMA foreign_keys").scalar()
                if (connection.dialect.name == "sqlite")
                else 1
            )
        db.engine.dispose()
    assert tokens == 1
    assert foreign_keys == 1


def copy_of_the_history(service: str, tmp_path: Path) -> Path:
    """The service's revisions in a folder of the test's own, to write the next one into."""
    folder = tmp_path / f"{service}_migrations"
    shutil.copytree(
        migrations_folder(service), folder, ignore=shutil.ignore_patterns("__pycache__")
    )
    return folder


def users_models_with(*columns: Column[Any]) -> MetaData:
    """A copy of the users models, the users table with these columns too."""
    models = importlib.import_module("users.models").db.metadata
    changed = MetaData(naming_convention=models.naming_convention)
    for table in models.tables.values():
        table.to_metadata(changed)
    for column in columns:
        changed.tables["users"].append_column(column)
    return changed


def differences(service: str, database_url: str, metadata: MetaData) -> list[Any]:
    """What the service's database at database_url lacks of (or has besides) metadata."""
    with migration_target(database_url, metadata) as target:
        with target.engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"version_table": version_table(service), "compare_type": True}
            )
            return compare_metadata(context, metadata)


@pytest.mark.parametrize("service", ["users", "beers", "orders"])
def test_a_revision_of_unchanged_models_is_not_written(tmp_path: Path, service: str) -> None:
    history = copy_of_the_history(service, tmp_path)
    # The revisions only: reading them may write __pycache__ beside them.
    before = sorted(history.glob("*.py"))

    written = new_revision(
        service, importlib.import_module(f"{service}.models").db.metadata, "nothing", history
    )

    assert written is None
    assert sorted(history.glob("*.py")) == before


def next_after(history: Path) -> tuple[str, str]:
    """The head revision of a history, and the one a new revision gets after it."""
    head = max(path.name[:4] for path in history.glob("[0-9][0-9][0-9][0-9]_*.py"))
    return head, f"{int(head) + 1:04d}"


def test_a_column_added_to_a_model_makes_the_next_revision_add_it(tmp_path: Path) -> None:
    history = copy_of_the_history("users", tmp_path)
    head, following = next_after(history)
    models = users_models_with(Column("nickname", String(32), nullable=True))

    written = new_revision("users", models, "add a nickname", history)

    assert written == history / f"{following}_add_a_nickname.py"
    source = written.read_text()
    assert source.startswith(f'"""add a nickname\n\nRevision ID: {following}\nRevises: {head}\n')
    assert f'revision = "{following}"\ndown_revision = "{head}"\n' in source
    assert 'batch_op.add_column(sa.Column("nickname", sa.String(length=32), nullable=True))' in (
        source
    )
    assert 'batch_op.drop_column("nickname")' in source


def test_the_written_revision_brings_a_database_to_the_changed_models(tmp_path: Path) -> None:
    history = copy_of_the_history("users", tmp_path)
    _, following = next_after(history)
    models = users_models_with(Column("nickname", String(32), nullable=True))
    new_revision("users", models, "add a nickname", history)
    url = fresh_database_url("test_migrations_written_revision", tmp_path)

    with migration_target(url, models) as target:
        upgrade("users", target, folder=history)
        assert current_revision("users", target) == following

    assert differences("users", url, models) == []
    assert new_revision("users", models, "again", history) is None


def test_a_type_of_our_own_is_written_as_the_type_it_is_stored_as(tmp_path: Path) -> None:
    history = copy_of_the_history("users", tmp_path)
    models = users_models_with(Column("time_seen", UTCDateTime(), nullable=True))

    written = new_revision("users", models, "add time seen", history)

    assert written is not None
    source = written.read_text()

    assert 'sa.Column("time_seen", sa.DateTime(timezone=True), nullable=True)' in source
    assert "servicekit" not in source


def test_a_written_revision_passes_the_linters_as_it_is(tmp_path: Path) -> None:
    history = copy_of_the_history("users", tmp_path)
    models = users_models_with(Column("nickname", String(32), nullable=True))
    written = new_revision("users", models, "add a nickname", history)
    assert written is not None

    for ruff in (("check",), ("format", "--check")):
        linted = subprocess.run(
            [
                sys.executable,
                "-m",
                "ruff",
                *ruff,
                "--config",
                str(ROOT / "pyproject.toml"),
                written,
            ],
            capture_output=True,
            text=True,
        )
        assert linted.returncode == 0, linted.stdout


def schema_of(target: MigrationTarget, service: str) -> dict[str, Any]:
    """Every table of the service with its columns, indexes and unique constraints."""
    with target.engine.connect() as connection:
        found = inspect(connection)
        return {
            table: (
                sorted(column["name"] for column in found.get_columns(table)),
                sorted(str(index["name"]) for index in found.get_indexes(table)),
                sorted(str(unique["name"]) for unique in found.get_unique_constraints(table)),
            )
            for table in found.get_table_names()
            if table != version_table(service)
        }


@pytest.mark.parametrize("service", ["users", "beers", "orders"])
def test_every_revision_steps_down_to_the_schema_before_it_and_up_again(
    tmp_path: Path, service: str
) -> None:
    """Each downgrade undoes its upgrade, whatever revisions the history holds."""
    metadata = importlib.import_module(f"{service}.models").db.metadata
    url = fresh_database_url(f"test_migrations_steps_{service}", tmp_path)
    with migration_target(url, metadata) as target:
        ids = list(revision_history(service, target))
        schemas: dict[str | None, dict[str, Any]] = {None: schema_of(target, service)}
        for upwards in ids:
            step_to(service, target, upwards)
            schemas[upwards] = schema_of(target, service)

        downwards: list[str | None] = [*reversed(ids[:-1]), None]
        for revision in downwards:
            migrated = step_to(service, target, revision or "base")
            assert migrated.at == current_revision(service, target) == revision
            assert schema_of(target, service) == schemas[revision], revision

        assert schemas[None] == {}
        assert step_to(service, target, "head").applied == tuple(ids)
    assert differences(service, url, metadata) == []


def test_a_step_says_where_it_left_the_database_and_what_it_ran(tmp_path: Path) -> None:
    metadata = importlib.import_module("users.models").db.metadata
    url = fresh_database_url("test_migrations_step_words", tmp_path)
    with migration_target(url, metadata) as target:
        names = revision_history("users", target)

        up = step_to("users", target, "0002")
        down = step_to("users", target, "0001_initial_schema")
        again = step_to("users", target, "0001")
        kept = upgrade("users", target, "base")  # setup never steps down

    assert str(up) == f"at revision {names['0002']} (applied 0001, 0002)"
    assert str(down) == "at revision 0001_initial_schema (undid 0002)"
    assert str(again) == str(kept) == "at revision 0001_initial_schema"


def test_a_revision_the_history_lacks_is_refused_naming_those_it_has(tmp_path: Path) -> None:
    metadata = importlib.import_module("beers.models").db.metadata
    url = fresh_database_url("test_migrations_unknown_revision", tmp_path)
    with migration_target(url, metadata) as target:
        with pytest.raises(UnknownRevision) as refused:
            step_to("beers", target, "0999")
        assert current_revision("beers", target) is None

    assert str(refused.value).startswith("beers has no revision '0999'; it has 0001")
    assert str(refused.value).endswith(", head, base")
