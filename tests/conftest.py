"""Shared fixtures. Real servers (PostgreSQL, SeaweedFS, NATS) live in tests/fixtures/."""

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.seaweed",
    "tests.fixtures.nats",
]
