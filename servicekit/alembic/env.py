"""Alembic's environment, shared by the three services' histories: servicekit.migrations
hands in the connection, the service's metadata and its own version table."""

from typing import Any, Literal

from alembic import context
from alembic.autogenerate.api import AutogenContext
from sqlalchemy.types import TypeDecorator


def render_item(kind: str, item: Any, autogen_context: AutogenContext) -> str | Literal[False]:
    """A type of our own (servicekit.db's UTCDateTime, Cents) as the SQLAlchemy
    type it is stored as: a revision must not import code that changes after it."""
    if kind == "type" and isinstance(item, TypeDecorator):
        return f"sa.{item.impl_instance!r}"
    return False  # Alembic's own rendering


config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=config.attributes["target_metadata"],
    version_table=config.attributes["version_table"],
    render_as_batch=True,  # SQLite alters tables by copying them
    compare_type=True,
    render_item=render_item,
)
with context.begin_transaction():
    context.run_migrations()
