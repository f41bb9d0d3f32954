"""Alembic's entry point: the store always hands it an open connection
(`database.upgrade`), so there is no offline mode and no alembic.ini."""

from __future__ import annotations

from alembic import context

from archon_gateway.store.schema import metadata


def run_migrations() -> None:
    connection = context.config.attributes["connection"]
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


# Alembic runs this file inside its environment; a plain import (a package walk) does not.
if hasattr(context, "config"):
    run_migrations()
