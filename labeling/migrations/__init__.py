"""Alembic migrations of the review store (run by ``labeling.store.open_store``)."""
