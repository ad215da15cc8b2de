"""Beer names case-folded for search: the column search compares, filled for
the beers already in the catalogue.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

BEERS = sa.table(
    "beers", sa.column("id", sa.Integer()), sa.column("name"), sa.column("name_folded")
)


def upgrade() -> None:
    op.add_column("beers", sa.Column("name_folded", sa.String(length=765), nullable=True))
    # Folded by Python, as the model folds a name it is given (str.casefold):
    # neither database folds every alphabet alike.
    connection = op.get_bind()
    for beer_id, name in connection.execute(sa.select(BEERS.c.id, BEERS.c.name)).all():
        connection.execute(
            BEERS.update().where(BEERS.c.id == beer_id).values(name_folded=name.casefold())
        )
    with op.batch_alter_table("beers", schema=None) as batch_op:
        batch_op.alter_column("name_folded", existing_type=sa.String(length=765), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("beers", schema=None) as batch_op:
        batch_op.drop_column("name_folded")
