"""What a sink may use besides its own config."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sluiceway.store import Store


@dataclass
class SinkContext:
    data_dir: Path
    store: "Store"
