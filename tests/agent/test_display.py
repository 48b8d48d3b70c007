from __future__ import annotations

import io

from rich.console import Console

from sluiceway.agent.display import Display, RichDisplay, _ConsoleFile
from sluiceway.agent.runner import Shipper
from tests.agent.conftest import make_cfg, write


def test_progress_bar_on_a_terminal_does_not_disturb_the_cycle(data_dir, ingress):
    for i in range(3):
        write(data_dir / f"f{i}.json")
    buf = io.StringIO()
    console = Console(file=buf, force_terminal=True, width=100)
    display = RichDisplay(console)
    with display:
        assert Shipper(make_cfg(data_dir, ingress.url), display=display).run_cycle().ok
        assert display.progress.tasks == []  # bars dropped after each chunk
    assert len(ingress.accepted) == 1


def test_console_file_prints_log_lines():
    buf = io.StringIO()
    f = _ConsoleFile(Console(file=buf, force_terminal=False, width=200))
    f.write("\x1b[1mhello\x1b[0m [not markup]")
    f.write("\n")
    assert buf.getvalue() == "hello [not markup]\n"


def test_plain_display_is_inert():
    with Display() as d:
        d.task("x", 3)(1)
        d.done()
