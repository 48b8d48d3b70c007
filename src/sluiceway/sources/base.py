"""What a source is, for the runtime: a config class and an implementation that either
serves HTTP routes (a receiver) or runs a task (connectors, collectors; later issues).

A receiver contributes ``routes()``: ``(method, path, asgi_endpoint)`` triples that the app
puts in front of its own routes (so a source can answer ``GET /health`` in its own dialect).
Its endpoints answer every error themselves and append to the journal through the gateway:
``await gateway.append(items)`` returns only once the entries are fsynced.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Awaitable, Callable

from sluiceway.config.types import StrictModel

if TYPE_CHECKING:
    from sluiceway.runtime.gateway import Gateway

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


class SourceConfigBase(StrictModel):
    """Fields every source has. A source's own config subclasses this and sets ``type``."""

    name: str
    type: str
    tenant: str = "default"  # tenant of the records this source produces

    def streams(self) -> list[str]:
        """Streams this source writes (for validation of ``server.streams``)."""
        return []

    @property
    def produces_attachments(self) -> bool:
        """True if records of this source carry blobs that an ``attachments`` sink uploads."""
        return False


class Source:
    name: str

    def __init__(self, name: str, config: SourceConfigBase, gateway: "Gateway"):
        self.name = name
        self.config = config
        self.gateway = gateway

    def routes(self) -> list[tuple[str, str, ASGIApp]]:
        return []

    def openapi_paths(self) -> dict[str, Any]:
        """OpenAPI path items documenting ``routes()``."""
        return {}
