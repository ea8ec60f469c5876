"""Alembic migrations for the stepsaga tables, shipped inside the package."""
