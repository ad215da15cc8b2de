"""Failed logins, counted per username and address for login throttling.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "login_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username_key", sa.String(length=255), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_failures")),
    )
    op.create_index(
        "ix_login_failures_username_address_time",
        "login_failures",
        ["username_key", "address", "time"],
    )
    op.create_index("ix_login_failures_address_time", "login_failures", ["address", "time"])
    op.create_index("ix_login_failures_time", "login_failures", ["time"])


def downgrade() -> None:
    op.drop_table("login_failures")
