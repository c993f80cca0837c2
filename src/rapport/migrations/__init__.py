"""Alembic environment and the one linear history of Rapport's schema."""
