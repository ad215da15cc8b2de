"""Each service's migrations make exactly the schema its models describe, and
upgrading keeps the rows."""

import importlib

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from servicekit.migrations import (
    UnversionedDatabase,
    current_revision,
    drop_everything,
    head_revision,
    upgrade,
    version_table,
)
from tests.databases import fresh_database_url


def service_app(service, folder):
    url = fresh_database_url(f"test_migrations_{service}", folder)
    module = importlib.import_module(service)
    return module.create_app({"DATABASE_URL": url, "SECRET_KEY": "t"}), importlib.import_module(
        f"{service}.models"
    ).db


def insert_a_user_with_a_token(db):
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
def test_the_migrations_make_the_schema_the_models_describe(tmp_path, service):
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


def test_upgrading_a_database_of_the_previous_revision_keeps_its_rows(tmp_path):
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
        assert current_revision("users", db) == head_revision("users", db) == "0003"
        db.engine.dispose()
    assert users == ["Ivan"]
    assert tokens == ["d1"]
    assert "ix_tokens_expires_at" in indexes
    assert "login_failures" in tables


def test_setting_up_twice_changes_nothing(tmp_path):
    app, db = service_app("beers", tmp_path)
    with app.app_context():
        upgrade("beers", db)
        with db.engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO beers (sku, name, price, time_created, time_modified) "
                    "VALUES ('1', 'x', 100, '2026-01-01', '2026-01-01')"
                )
            )
        upgrade("beers", db)
        with db.engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM beers")).scalar() == 1
        db.engine.dispose()


def test_reset_starts_afresh(tmp_path):
    app, db = service_app("orders", tmp_path)
    with app.app_context():
        upgrade("orders", db)
        drop_everything("orders", db)
        with db.engine.connect() as connection:
            assert inspect(connection).get_table_names() == []
        upgrade("orders", db)
        assert current_revision("orders", db) == head_revision("orders", db)
        db.engine.dispose()


def test_tables_made_without_migrations_are_not_silently_taken_over(tmp_path):
    app, db = service_app("beers", tmp_path)
    with app.app_context():
        db.create_all()
        with pytest.raises(UnversionedDatabase):
            upgrade("beers", db)
        db.engine.dispose()


def test_a_batch_migration_of_a_parent_table_keeps_its_childrens_rows(tmp_path):
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
