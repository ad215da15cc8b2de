"""User ids never reused: the users table AUTOINCREMENT on SQLite.

SQLite without AUTOINCREMENT gives the largest id again once its row is
deleted, and orders keep only that number. The table is rebuilt (batch mode
copies every row, ids kept); PostgreSQL's sequences never go back, so there
nothing changes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    _rebuild_users(autoincrement=True)


def downgrade() -> None:
    _rebuild_users(autoincrement=False)


def _rebuild_users(*, autoincrement: bool) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    with op.batch_alter_table(
        "users", recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
    ):
        pass
