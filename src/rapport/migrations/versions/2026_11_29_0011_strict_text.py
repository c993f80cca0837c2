"""Checks for text the edge now refuses.

Why: (to be written with the change).

Revision ID: 2026_11_29_0011
Revises: 2026_11_29_0010
Create Date: 2026-11-29
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_29_0011"
down_revision = "2026_11_29_0010"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    await_only(op.get_bind().connection.driver_connection.execute(script))


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
