"""Fixtures for the ship agent: a data dir, a fake ingress, a config builder."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from sluiceway.agent.config import ShipConfig, load_ship_config
from tests.agent.fake_ingress import FakeIngress


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "export"
    d.mkdir()
    return d


@pytest.fixture
def ingress():
    with FakeIngress() as fake:
        yield fake


def make_cfg(data_dir: Path, url: str = "http://127.0.0.1:9/upload", **overrides: Any) -> ShipConfig:
    """Fast settings for tests: no settle wait, tiny retry delays and timeouts."""
    base: dict[str, Any] = {
        "data_dir": str(data_dir), "service_id": "ols", "ingress_server_url": url,
        "ingress_server_auth_token": "sekret", "identity_id": "test-instance", "settle_time": 0,
        "retry_initial": 0.01, "retry_interval": 0.05, "ingress_connection_timeout": 2,
    }
    return load_ship_config(None, env={}, overrides={**base, **overrides})


def write(path: Path, text: str = '{"a": 1}', age: float = 60.0) -> Path:
    """Create a file whose mtime is ``age`` seconds in the past (so it counts as settled)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    t = time.time() - age
    os.utime(path, (t, t))
    return path
