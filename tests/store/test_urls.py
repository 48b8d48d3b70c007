import pytest

from sluiceway.errors import ConfigError
from sluiceway.store.urls import parse_url


@pytest.mark.parametrize(
    ("raw", "driver", "dialect"),
    [
        ("sqlite:///data/sluice.db", "sqlite+aiosqlite", "sqlite"),
        ("sqlite:////abs/sluice.db", "sqlite+aiosqlite", "sqlite"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite", "sqlite"),
        ("postgresql://u:pw@db:5433/sluice", "postgresql+asyncpg", "postgresql"),
        ("postgres://u@db/sluice", "postgresql+asyncpg", "postgresql"),
        ("postgresql+asyncpg://u@db/sluice", "postgresql+asyncpg", "postgresql"),
    ],
)
def test_user_urls_become_async_urls(raw: str, driver: str, dialect: str) -> None:
    u = parse_url(raw)
    assert u.url.drivername == driver
    assert u.dialect == dialect


def test_paths_and_hosts_survive() -> None:
    assert parse_url("sqlite:////abs/sluice.db").url.database == "/abs/sluice.db"
    u = parse_url("postgresql://u:pw@db:5433/sluice").url
    assert (u.username, u.password, u.host, u.port, u.database) == ("u", "pw", "db", 5433, "sluice")


def test_memory_sqlite() -> None:
    assert parse_url("sqlite://").is_memory
    assert parse_url("sqlite:///:memory:").is_memory
    assert not parse_url("sqlite:///x.db").is_memory


def test_libpq_parameters_are_translated_for_asyncpg() -> None:
    u = parse_url("postgresql://u@db/s?sslmode=require&connect_timeout=3")
    assert dict(u.url.query) == {"ssl": "require"}
    assert u.connect_args["timeout"] == 3.0


def test_redacted_hides_the_password() -> None:
    assert "pw" not in parse_url("postgresql://u:pw@db/s").redacted()


@pytest.mark.parametrize("raw", ["mysql://u@db/s", "not a url", "postgresql+psycopg2://u@db/s"])
def test_unsupported_urls_are_config_errors(raw: str) -> None:
    with pytest.raises(ConfigError) as ei:
        parse_url(raw)
    assert "pw" not in str(ei.value)
