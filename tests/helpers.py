"""Shared test helpers: a gateway on a temp data dir with an httpx client, polling."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any, Awaitable, Callable

import httpx

from sluiceway.config import load_config
from sluiceway.http.app import create_app
from sluiceway.runtime.gateway import Gateway


def make_config(data_dir: Path, **tree: Any):
    from sluiceway.config.loader import validate_tree

    base: dict[str, Any] = {"data_dir": str(data_dir), "log": {"level": "warning", "format": "json"}}
    for k, v in tree.items():
        base[k] = v
    return validate_tree(base)


@contextlib.asynccontextmanager
async def running_gateway(config, role: str = "all"):
    gw = Gateway(config, role=role)  # type: ignore[arg-type]
    gw.access_log.enabled = False
    await gw.open()
    app = create_app(gw, manage_lifecycle=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        try:
            yield gw, client
        finally:
            await gw.aclose()


async def eventually(check: Callable[[], Awaitable[Any]], timeout: float = 20.0, interval: float = 0.05) -> Any:
    """Poll until ``check`` returns a truthy value (no assertions on timing: the limit is generous)."""
    deadline = time.monotonic() + timeout
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        await asyncio.sleep(interval)


__all__ = ["eventually", "load_config", "make_config", "running_gateway"]
