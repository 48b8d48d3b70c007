"""Shared test helpers: a gateway on a temp data dir with an httpx client, polling."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
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


SLUICE = [sys.executable, "-m", "sluiceway.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn(args: list[str], log: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """``sluice <args>`` in its own session, output appended to ``log``."""
    with open(log, "ab") as f:
        return subprocess.Popen([*SLUICE, *args], stdout=f, stderr=subprocess.STDOUT, start_new_session=True,
                                env={**os.environ, **(env or {})})


def wait_up(port: int, proc: subprocess.Popen, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"sluice exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"sluice did not become ready:\n{log.read_text()[-4000:]}")


def stop(proc: subprocess.Popen, timeout: float = 60) -> int | None:
    """SIGTERM a ``sluice`` process and wait; its exit code, or None if it had to be killed."""
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return None


__all__ = ["SLUICE", "eventually", "free_port", "load_config", "make_config", "running_gateway", "spawn", "stop", "wait_up"]


def spec_links(spec: dict[str, Any]) -> dict[tuple[str, str, str], tuple[str, str]]:
    """Every OpenAPI link of ``spec``: (path, method, link name) -> the (path, method) its
    ``operationRef`` names, which must be an operation of the same document."""
    from urllib.parse import unquote

    out = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            for response in op.get("responses", {}).values():
                for name, link in response.get("links", {}).items():
                    ref = link["operationRef"]
                    assert ref.startswith("#/paths/"), ref
                    target_path, target_method = (unquote(p).replace("~1", "/").replace("~0", "~")
                                                  for p in ref[len("#/paths/"):].split("/"))
                    assert target_method in spec["paths"][target_path], ref
                    out[(path, method, name)] = (target_path, target_method)
    return out

