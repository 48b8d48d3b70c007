"""HTML → plain text for feedback bodies (Intercom ``source.body``, Discourse ``cooked``).

Block elements become line breaks, ``<br>`` a newline (line breaks in the source are spaces,
as a browser shows them, except inside ``<pre>``), list items start with "- ", entities
are decoded, ``<script>``/``<style>`` are dropped and white space is folded. Never raises on
malformed markup: the parser is the standard library's lenient one.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK = frozenset({"p", "div", "section", "article", "blockquote", "pre", "ul", "ol", "table", "tr",
                    "h1", "h2", "h3", "h4", "h5", "h6", "hr", "aside", "details", "summary", "figure"})
_SKIP = frozenset({"script", "style", "head", "template"})


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0
        self.pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIP:
            self.skipping += 1
            return
        if tag == "pre":
            self.pre += 1
        if tag == "br":
            self.out.append("\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag in _BLOCK:
            self.out.append("\n\n")
        elif tag in ("td", "th"):
            self.out.append(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag not in _SKIP:
            self.handle_starttag(tag, attrs)

    def handle_endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skipping = max(0, self.skipping - 1)
            return
        if tag == "pre":
            self.pre = max(0, self.pre - 1)
        if tag in _BLOCK:
            self.out.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(data if self.pre else re.sub(r"\s+", " ", data))  # source newlines are spaces


def html_to_text(html: str | None) -> str | None:
    """Readable plain text of an HTML fragment (None stays None)."""
    if html is None:
        return None
    if "<" not in html and "&" not in html:
        return html.strip()
    p = _Text()
    p.feed(html)
    p.close()
    lines = [re.sub(r"[ \t\r\f\v\xa0]+", " ", line).strip() for line in "".join(p.out).split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()
