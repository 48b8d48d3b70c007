"""What a source is, for the runtime: a config class and an implementation that either
serves HTTP routes (a receiver) or runs a task (connectors, collectors; later issues).

A receiver contributes ``routes()``: ``(method, path, asgi_endpoint)`` triples that the app
puts in front of its own routes (so a source can answer ``GET /health`` in its own dialect).
Its endpoints answer every error themselves and append to the journal through the gateway:
``await gateway.accept(items, stream)`` returns only once the entries are fsynced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable, ClassVar

from sluiceway.config.types import Name, StrictModel

if TYPE_CHECKING:
    from sluiceway.http.protocol import Route
    from sluiceway.runtime.gateway import Gateway

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class SourceConfigBase(StrictModel):
    """Fields every source has. A source's own config subclasses this and sets ``type``."""

    name: str
    type: str
    tenant: Name = "default"  # tenant of the records this source produces

    def streams(self) -> list[str]:
        """Streams this source writes (for validation of ``server.streams``)."""
        return []

    def needs_sinks(self) -> list[str]:
        """Sink types without which this source's data would go nowhere (e.g. ``attachments``
        for blobs). The defaults gain one of each; an explicit ``sinks`` list must have them."""
        return []

    def blob_streams(self) -> list[str]:
        """Streams whose records carry blobs from the spool: an ``attachments`` sink must take
        each of them, or their blobs would never leave the spool."""
        return []

    def check_sinks(self, sinks: list[Any]) -> None:
        """Raise ``ConfigError`` when the validated ``sinks`` cannot serve this source (checked
        by ``sluice validate`` and at start-up alike)."""

    # Runs a task in the delivering process (Source.start/aclose), not only routes.
    background: ClassVar[bool] = False


class Source:
    name: str

    def __init__(self, name: str, config: SourceConfigBase, gateway: "Gateway"):
        self.name = name
        self.config = config
        self.gateway = gateway

    def routes(self) -> list[tuple[str, str, ASGIApp]]:
        return []

    def direct_routes(self) -> list[tuple[str, str, "Route"]]:
        """(method, exact path, route) of requests that ``http.protocol`` may answer from its
        callbacks: ``route(scope)`` gives a request's handler once its headers are in (see
        ``http.protocol``); each path is also in ``routes()``, which answers what it leaves."""
        return []

    def openapi_paths(self) -> dict[str, Any]:
        """OpenAPI path items documenting ``routes()``."""
        return {}

    async def start(self) -> None:
        """Background work, in the process that delivers (only if the config's ``background``)."""

    async def aclose(self) -> None:
        """Stop background work. Safe to call twice."""
