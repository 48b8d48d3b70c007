"""The status of one upload, for ``GET <mount>/track/<request_id>``.

Delivery is derived, not stored: a sink has delivered the upload once its journal cursor on
the upload's partition has passed the upload's last offset, unless some of those offsets
are in its dead letters. Sinks whose ``streams`` exclude both the upload stream and the
service are left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sluiceway.runtime.gateway import Gateway


async def track_status(row: dict[str, Any], gw: "Gateway", upload_stream: str) -> dict[str, Any]:
    """``row`` of the ``uploads`` table; ``upload_stream`` holds the upload's own record."""
    info = row["info"]
    out: dict[str, Any] = {
        "request_id": row["request_id"], "status": row["status"], "http_status": row["http_status"],
        "received_at": row["received_at"], "error": row["error"], **{k: v for k, v in info.items() if k != "request_id"},
    }
    if row["status"] != "accepted" or row["partition"] is None:
        return out
    part, first, last = row["partition"], row["first_offset"], row["last_offset"]
    relevant = {info.get("service"), upload_stream}
    dead = await gw.store.dead_letter_counts(part, first, last)
    sinks: dict[str, str] = {}
    for cfg in gw.config.sinks:
        if cfg.streams and not relevant & set(cfg.streams):
            continue
        if dead.get(cfg.name):
            sinks[cfg.name] = f"dead_lettered ({dead[cfg.name]} records; see sluice deadletters list)"
            continue
        cursor = await gw.journal.cursor(part, cfg.name)
        sinks[cfg.name] = "delivered" if cursor.acked >= last else "pending"
    out["sinks"] = sinks
    out["delivered"] = all(v == "delivered" for v in sinks.values())
    return out
