"""Running one feedback source: decrypt its credentials, build its connector, pull, record.

Shared by the scheduler and ``sluice sources run``. Items are appended to the journal (the
caller's ``append``) page by page before the connector's cursor moves; the outcome of the
run is written to the source's row (``last_run_at``, ``last_status``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from sluiceway import __version__
from sluiceway.feedback.connectors import connector_class
from sluiceway.feedback.item import FeedbackItem, encode_items
from sluiceway.feedback.pull import PullError, PullHttp, RunResult, run_pull
from sluiceway.http.ingest import now_rfc3339
from sluiceway.secrets import SecretBox
from sluiceway.telemetry.logging import get_logger

if TYPE_CHECKING:
    import httpx

    from sluiceway.store import Store
    from sluiceway.store.tenants import SourceRow

log = get_logger("sluiceway.feedback")
AppendRecords = Callable[[list[bytes]], Awaitable[Any]]


async def run_source(store: "Store", row: "SourceRow", append_records: AppendRecords, *,
                     box: SecretBox | None = None, http_timeout: float = 30.0, max_attempts: int = 6,
                     max_wait: float = 900.0, on_page: Callable[[int], None] | None = None,
                     transport: httpx.AsyncBaseTransport | None = None) -> RunResult:
    box = box or SecretBox.from_env()
    cls = connector_class(row.type)
    try:
        settings = cls.Settings.model_validate(row.settings)
        secrets = cls.Secrets.model_validate(box.decrypt(row.secrets))
    except Exception as e:  # noqa: BLE001 - a source that cannot be built is a failed run
        await store.save_source_run(row.id, status=f"error: {e}")
        raise PullError(f"source {row.tenant}/{row.name}: {e}", permanent=True) from None
    import httpx  # here, not at the top: HTTP workers import this module but never pull

    headers = {"User-Agent": f"sluiceway/{__version__}"}
    async with httpx.AsyncClient(timeout=http_timeout, headers=headers, transport=transport) as client:
        connector = cls(settings, secrets, PullHttp(client, max_attempts=max_attempts, max_wait=max_wait))
        source = f"{row.type}:{row.name}"

        async def append(items: list[FeedbackItem]) -> None:
            await append_records(encode_items(items, tenant=row.tenant, source=source, received_at=now_rfc3339()))

        async def save(cursor: dict[str, Any]) -> None:
            await store.save_source_run(row.id, status="running", cursor=cursor)

        try:
            result = await run_pull(connector, row.cursor or {}, append, save, on_page)
        except Exception as e:
            await store.save_source_run(row.id, status=f"error: {e}"[:2000])
            log.warning("pull failed", tenant=row.tenant, source=row.name, type=row.type, error=str(e))
            raise
    await store.save_source_run(row.id, status=f"ok: {result.items} items in {result.pages} pages")
    log.info("pull done", tenant=row.tenant, source=row.name, type=row.type, items=result.items, pages=result.pages)
    return result
