"""Alembic schema migrations, applied by `python -m bot migrate`."""
