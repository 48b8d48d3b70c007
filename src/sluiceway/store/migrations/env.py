"""Alembic environment for the sluiceway store.

The store runs migrations itself (``sluiceway.store.migrate``): it opens an async
connection and hands its sync face to Alembic through ``config.attributes["connection"]``.
Offline mode (``--sql``) renders SQL for the dialect named by ``sqlalchemy.url``.
"""

from __future__ import annotations

from alembic import context

from sluiceway.store.schema import metadata

config = context.config


def run_offline() -> None:
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=metadata,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        raise RuntimeError(
            "sluiceway migrations need a connection in config.attributes['connection']; "
            "use `sluice db upgrade` or sluiceway.store.migrate"
        )
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
