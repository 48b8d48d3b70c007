"""What the operator sees: log lines always, a rich progress bar only when stderr is a terminal.

On a terminal, log lines are printed through the same rich console as the bar, so they
scroll above it instead of tearing it. Elsewhere logs are the house JSON lines, no bar.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import Any

Advance = Callable[[int], None]


class Display:
    """No progress bar: every method is a no-op."""

    def __enter__(self) -> "Display":
        return self

    def __exit__(self, *exc: Any) -> None:
        pass

    def task(self, description: str, total: int, *, as_bytes: bool = False) -> Advance:
        return lambda n: None

    def done(self) -> None:
        """Drop the current bars (the chunk is finished)."""


class RichDisplay(Display):
    def __init__(self, console: Any):
        from rich.progress import BarColumn, Progress, TextColumn

        self.console = console
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[detail]}"),
                                 console=console, transient=True)
        self._tasks: list[Any] = []

    def __enter__(self) -> "RichDisplay":
        self.progress.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.progress.stop()

    def task(self, description: str, total: int, *, as_bytes: bool = False) -> Advance:
        from rich.filesize import decimal

        def detail(done: float) -> str:
            return f"{decimal(int(done))} / {decimal(total)}" if as_bytes else f"{int(done)} / {total} files"

        tid = self.progress.add_task(description, total=total, detail=detail(0))
        self._tasks.append(tid)
        done = [0]

        def advance(n: int) -> None:
            done[0] += n
            self.progress.update(tid, completed=done[0], detail=detail(done[0]))

        return advance

    def done(self) -> None:
        for tid in self._tasks:
            self.progress.remove_task(tid)
        self._tasks.clear()


class _ConsoleFile:
    """A file for structlog's PrintLogger that prints through a rich console (above the bar)."""

    def __init__(self, console: Any):
        self.console = console

    def write(self, s: str) -> int:
        from rich.text import Text

        line = s.rstrip("\n")
        if line:
            self.console.print(Text.from_ansi(line), soft_wrap=True)
        return len(s)

    def flush(self) -> None:
        pass


def setup(level: str, stream: Any = None) -> Display:
    """Configure logging at ``level`` (DEBUG, INFO, …) and return the matching display."""
    import structlog

    from sluiceway.telemetry.logging import configure_logging

    stream = stream or sys.stderr
    configure_logging(level.lower(), "auto")
    if level != "DEBUG":
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request; ours say more
    if not stream.isatty():
        return Display()
    from rich.console import Console

    console = Console(file=stream)
    structlog.configure(logger_factory=structlog.PrintLoggerFactory(file=_ConsoleFile(console)))
    return RichDisplay(console)
