"""The embedded backend: SQLite in WAL mode plus content-addressed blob files."""

from mailwright.store.sqlite.store import SQLiteStore

__all__ = ["SQLiteStore"]
