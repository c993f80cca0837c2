"""The metadata every domain's tables hang on, with one naming convention for
constraints (the migrations spell the same names)."""

from sqlalchemy import Column, DateTime, MetaData

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


def timestamp(name: str, *, nullable: bool = True) -> Column:
    """A `timestamptz` column: every time Rapport stores has a zone."""
    return Column(name, DateTime(timezone=True), nullable=nullable)
