"""Logs sink: normalises pino / NestJS records (stream ``log``) into the ``logs`` table."""

from sluiceway.sinks.logs.sink import LogsSink, LogsSinkConfig

__all__ = ["LogsSink", "LogsSinkConfig"]
