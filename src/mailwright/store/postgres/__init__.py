"""The shared backend: PostgreSQL (psycopg 3, async) for several Mailwright nodes."""

from mailwright.store.postgres.store import PostgresStore

__all__ = ["PostgresStore"]
