"""What a sink may use besides its own config."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sluiceway.store import Store


@dataclass
class SinkContext:
    data_dir: Path
    store: "Store"
    # Names of every ``attachments`` sink: a spooled blob is deleted once all have stored it.
    attachment_sinks: tuple[str, ...] = field(default_factory=tuple)
