"""A collector as a source: runs ``Collector`` in the delivering process (``background``)."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING

from sluiceway.sources.base import Source

if TYPE_CHECKING:
    from sluiceway.objectstore import ObjectStore
    from sluiceway.sources.collect.collector import Collector
    from sluiceway.sources.collect.config import CollectorConfig


class CollectorSource(Source, abc.ABC):
    """Subclasses say where the files are (``objects``); the rest is shared."""

    config: "CollectorConfig"
    collector: "Collector | None" = None

    @abc.abstractmethod
    def objects(self) -> "ObjectStore":
        """The store the files are listed and read from."""

    def build(self) -> "Collector":
        from sluiceway.sources.collect.collector import Collector

        gw = self.gateway
        return Collector(self.config, gw.store, self.objects(),  # type: ignore[arg-type]
                         lambda items: gw.accept(items, self.config.stream))

    async def start(self) -> None:
        self.collector = self.build()
        await self.collector.start()

    async def aclose(self) -> None:
        collector, self.collector = self.collector, None
        if collector is not None:
            await collector.aclose()
