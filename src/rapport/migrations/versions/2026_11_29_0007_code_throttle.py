"""Throttles for mailed codes and sign-in per account and client.

Why: (to be written with the change).

Revision ID: 2026_11_29_0007
Revises: 2026_11_29_0006
Create Date: 2026-11-29
"""

from alembic import op
from sqlalchemy.util import await_only

revision = "2026_11_29_0007"
down_revision = "2026_11_29_0006"
branch_labels = None
depends_on = None


def run_sql(script: str) -> None:
    """Run a multi-statement script as one simple query (asyncpg prepares one statement at a time)."""
    await_only(op.get_bind().connection.driver_connection.execute(script))


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
