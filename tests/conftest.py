"""Shared fixtures. Real servers (PostgreSQL, SeaweedFS) live in tests/fixtures/."""

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.seaweed",
]
