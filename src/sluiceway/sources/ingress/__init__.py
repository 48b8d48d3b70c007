"""Red Hat insights-ingress compatible upload endpoint (receiver side of ``sluice ship``)."""

from sluiceway.sources.ingress.config import IngressSourceConfig
from sluiceway.sources.ingress.receiver import IngressReceiver

__all__ = ["IngressReceiver", "IngressSourceConfig"]
