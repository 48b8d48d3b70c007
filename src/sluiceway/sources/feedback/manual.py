"""``sluice sources run``: one pull of one source, now, from the command line.

The items go into the data dir's journal through a partition of their own (``cli``), so a
running gateway delivers them like any others (and a stopped one at its next start); the
source's cursor and status move exactly as in a scheduled run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from sluiceway.errors import NotFound
from sluiceway.feedback.pull import RunResult
from sluiceway.sources.feedback.config import FeedbackSourceConfig
from sluiceway.sources.feedback.runner import run_source

if TYPE_CHECKING:
    from sluiceway.config import Config


async def run_once(config: "Config", tenant: str, name: str, on_page: Callable[[int], None] | None = None,
                   ) -> RunResult:
    from sluiceway.journal import build_journal
    from sluiceway.store import Store

    hub = next((s for s in config.sources if isinstance(s, FeedbackSourceConfig)),
               FeedbackSourceConfig(name="feedback"))
    config.data_dir.mkdir(parents=True, exist_ok=True)
    store = Store.from_url(config.store_url)
    await store.open(migrate=True)
    journal = build_journal(config, writer=True, writer_name="cli")
    try:
        row = await store.get_source(tenant, name)
        if row is None:
            raise NotFound(f"tenant {tenant!r} has no source named {name!r} (sluice sources list)")
        await journal.open([s.name for s in config.sinks])
        writer = journal.writer()
        return await run_source(store, row, writer.append, http_timeout=hub.http_timeout,
                                max_attempts=hub.max_attempts, max_wait=hub.max_wait, on_page=on_page)
    finally:
        await journal.aclose()
        await store.aclose()
