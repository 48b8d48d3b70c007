"""A high-water mark for platforms that filter by a modification time.

Times have a coarse grain (Intercom: seconds), so "newer than the mark" alone either loses
items that share the mark's time but arrived after the run (``>``) or fetches the mark's own
items again every run (``>=``). The mark therefore keeps the ids seen *at* its time: an item
is new when its time is later, or equal and its id is not among them. Asking the platform
for ``>= mark`` and filtering with ``is_new`` gives every item (and every edit, which moves
its time forward) exactly once.

Cursor form: ``{<key>: <encoded time>, "ids_at": [ids seen at that time]}``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class HighWater:
    at: Any = None  # comparable time (datetime, int epoch…); None: nothing seen yet
    ids: set[str] = field(default_factory=set)

    @classmethod
    def from_cursor(cls, cursor: dict[str, Any], key: str, decode: Callable[[Any], Any] = lambda v: v) -> "HighWater":
        if cursor.get(key) is None:
            return cls()
        return cls(decode(cursor[key]), {str(i) for i in cursor.get("ids_at", [])})

    def to_cursor(self, key: str, encode: Callable[[Any], Any] = lambda v: v) -> dict[str, Any]:
        if self.at is None:
            return {}
        return {key: encode(self.at), "ids_at": sorted(self.ids)}

    def is_new(self, at: Any, id_: str) -> bool:
        return self.at is None or at > self.at or (at == self.at and id_ not in self.ids)

    def add(self, at: Any, id_: str) -> None:
        """Take a seen item into the mark (the mark only moves forward)."""
        if self.at is None or at > self.at:
            self.at, self.ids = at, {id_}
        elif at == self.at:
            self.ids.add(id_)

    def merged(self, other: "HighWater") -> "HighWater":
        """The later of two marks (their ids joined when they share a time)."""
        out = HighWater(self.at, set(self.ids))
        for id_ in other.ids:
            out.add(other.at, id_)
        return out
