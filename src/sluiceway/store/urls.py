"""User-facing database URLs → SQLAlchemy async URLs.

Accepted: ``sqlite:///relative.db``, ``sqlite:////abs/path.db``, ``sqlite://`` (memory),
``postgresql://user:pw@host:port/db``, ``postgres://…`` and the explicit async forms
``sqlite+aiosqlite://`` / ``postgresql+asyncpg://``. libpq-style ``sslmode`` and
``connect_timeout`` query parameters are translated for asyncpg.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from sluiceway.errors import ConfigError

_SQLITE = {"sqlite", "sqlite+aiosqlite"}
_POSTGRES = {"postgresql", "postgres", "postgresql+asyncpg", "postgres+asyncpg"}


@dataclass(frozen=True)
class DatabaseURL:
    url: URL  # the async SQLAlchemy URL
    dialect: str  # "sqlite" | "postgresql"
    connect_args: dict[str, Any] = field(default_factory=dict)

    @property
    def is_memory(self) -> bool:
        return self.dialect == "sqlite" and self.url.database in (None, "", ":memory:")

    def redacted(self) -> str:
        return self.url.render_as_string(hide_password=True)


def parse_url(raw: str) -> DatabaseURL:
    try:
        url = make_url(raw)
    except ArgumentError:
        raise ConfigError(f"not a database URL: {_redact(raw)!r}") from None
    driver = url.drivername.lower()
    if driver in _SQLITE:
        return DatabaseURL(url.set(drivername="sqlite+aiosqlite"), "sqlite")
    if driver in _POSTGRES:
        query = dict(url.query)
        connect_args: dict[str, Any] = {"timeout": 10.0}
        if "sslmode" in query:
            query["ssl"] = query.pop("sslmode")
        if "connect_timeout" in query:
            value = query.pop("connect_timeout")
            try:
                connect_args["timeout"] = float(value if isinstance(value, str) else value[0])
            except ValueError:
                raise ConfigError(f"connect_timeout must be a number of seconds, got {value!r}") from None
        return DatabaseURL(
            url.set(drivername="postgresql+asyncpg", query=query), "postgresql", connect_args
        )
    raise ConfigError(
        f"unsupported database URL scheme {url.drivername!r}; "
        "use sqlite:///path/to/file.db or postgresql://user@host:5432/db"
    )


def driver_kwargs(db: DatabaseURL) -> dict[str, Any]:
    """Keyword arguments for ``aiosqlite.connect`` / ``asyncpg.connect``: the ones
    SQLAlchemy's dialect would pass (``LiteStore`` connects without SQLAlchemy)."""
    args, kwargs = db.url.get_dialect()().create_connect_args(db.url)
    if db.dialect == "sqlite":
        kwargs["database"] = args[0]
    return {**kwargs, **db.connect_args}


def _redact(raw: str) -> str:
    if "@" in raw and "://" in raw:
        scheme, rest = raw.split("://", 1)
        return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"
    return raw
