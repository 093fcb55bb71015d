"""The metadata database: engine, schema and migrations."""

from shipyard.stores.db.engine import SCHEMA_HEAD, Database

__all__ = ["SCHEMA_HEAD", "Database"]
