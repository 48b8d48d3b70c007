"""Helpers of the LDO receiver tests: a gateway with the ldo source, tokens, uploads."""

from __future__ import annotations

from typing import Any

import orjson

from tests.helpers import make_config


def config(tmp_path, sinks: list[dict[str, Any]] | None = None, **source: Any):
    tree: dict[str, Any] = {"sources": [{"type": "ldo", **source}]}
    if sinks is not None:
        tree["sinks"] = sinks
    return make_config(tmp_path / "data", **tree)


async def auth(gw, tenant: str = "org1", scopes=("ingest", "read")) -> dict[str, str]:
    _, secret = await gw.store.create_token(tenant, list(scopes))
    return {"Authorization": f"Bearer {secret}"}


def upload(c, headers, metadata: Any = None, data: bytes | None = None, *, field: str = "video",
           filename: str = "clip.mp4", ctype: str = "video/mp4", path: str = "/ingest/ldo", **kw):
    """POST an LDO; ``metadata`` (not str/bytes) is sent as JSON; None leaves the part out."""
    form = {} if metadata is None else {
        "metadata": metadata if isinstance(metadata, (str, bytes)) else orjson.dumps(metadata).decode()}
    files: dict[str, Any] = {field: (filename, data, ctype)} if data is not None else {}
    if not files:  # still multipart/form-data: metadata as a part without a file name
        files = {k: (None, v) for k, v in form.items()} or {"other": (None, "x")}
        form = {}
    return c.post(path, headers=headers, data=form, files=files, **kw)
