"""Rapport: a PostgreSQL-native backend for people-to-people applications."""

__version__ = "0.1.0"
