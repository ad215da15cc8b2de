"""Alembic's environment, shared by the three services' migration histories.

servicekit.migrations hands in the connection, the service's metadata and
its own version table; each service keeps its revisions in <service>/migrations.
"""

from alembic import context

config = context.config
connection = config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=config.attributes["target_metadata"],
    version_table=config.attributes["version_table"],
    render_as_batch=True,  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
