"""SQL sink: records into a store's ``records`` table (SQLite or PostgreSQL), upserting on id."""

from sluiceway.sinks.sql.sink import SqlSink, SqlSinkConfig, classify

__all__ = ["SqlSink", "SqlSinkConfig", "classify"]
