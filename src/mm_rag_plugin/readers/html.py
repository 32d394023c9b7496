"""HTML reader (BeautifulSoup + lxml).

Text is collected in document order and split at every heading; each chunk's ``section`` is the
heading path (``"Intro > Setup"``). ``<img>`` elements become image chunks with their ``alt`` text
and the ``<figcaption>`` of their ``<figure>`` (or ``title``) as caption. Scripts, styles and
templates are ignored.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .._optional import require
from ._base import BaseReader, ChunkBuilder
from ._refs import add_image_ref
from .text import read_text_file

__all__ = ["HtmlReader"]

_SKIP = frozenset(
    {"script", "style", "noscript", "template", "head", "svg", "iframe", "object", "button", "select"}
)
_HEADINGS = {f"h{i}": i for i in range(1, 7)}
_BLOCK = frozenset(
    {
        "p", "div", "section", "article", "main", "header", "footer", "nav", "aside", "li", "ul", "ol",
        "table", "tr", "blockquote", "pre", "dl", "dt", "dd", "figure", "form", "fieldset", "address", "hr",
    }
)  # fmt: skip
_CELL = frozenset({"td", "th"})
_SPACE = re.compile(r"[ \t\r\f\v\u00a0]+")


class HtmlReader(BaseReader):
    """Read HTML into text chunks (with heading sections) and image chunks (alt + caption).
    Remote images need ``allow_remote=True``; see :class:`ReaderConfig`."""

    kind = "html"

    def __init__(self, config: Any = None, **options: Any) -> None:
        super().__init__(config, **options)
        self._bs4 = require("bs4", extra="readers", package="beautifulsoup4")
        require("lxml", extra="readers")

    def _read(self, path: Path, out: ChunkBuilder) -> None:
        soup = self._bs4.BeautifulSoup(read_text_file(path), "lxml")
        walker = _Walker(self._bs4, path, out)
        walker.walk(soup.body or soup)
        walker.flush()


class _Walker:
    def __init__(self, bs4: Any, path: Path, out: ChunkBuilder) -> None:
        self.bs4 = bs4
        self.path = path
        self.out = out
        self.headings: list[tuple[int, str]] = []
        self.buf: list[str] = []
        self.n_images = 0

    @property
    def section(self) -> str | None:
        return " > ".join(t for _, t in self.headings) or None

    def flush(self) -> None:
        text = "".join(self.buf)
        text = re.sub(r"[ \t]*\n[ \t]*", "\n", text)
        text = re.sub(r"\n{3,}", "\n\n", text).strip()
        self.buf = []
        if text:
            self.out.add_text(text, section=self.section)

    def walk(self, node: Any, caption: str = "") -> None:
        for child in node.children:
            if isinstance(child, self.bs4.NavigableString):
                if type(child) is self.bs4.NavigableString or isinstance(child, self.bs4.element.CData):
                    self.buf.append(_SPACE.sub(" ", str(child)).replace("\n", " "))
                continue
            name = (child.name or "").lower()
            if name in _SKIP or name == "figcaption":
                continue
            if name in _HEADINGS:
                self._heading(_HEADINGS[name], child)
            elif name == "img":
                self._image(child, caption)
            elif name == "br":
                self.buf.append("\n")
            elif name == "figure":
                cap = child.find("figcaption")
                self.buf.append("\n\n")
                self.walk(child, cap.get_text(" ", strip=True) if cap else caption)
                self.buf.append("\n\n")
            elif name in _BLOCK:
                self.buf.append("\n\n" if name not in ("li", "tr", "dt", "dd") else "\n")
                self.walk(child, caption)
                self.buf.append("\n\n" if name not in ("li", "tr", "dt", "dd") else "\n")
            elif name in _CELL:
                self.walk(child, caption)
                self.buf.append(" | ")
            else:
                self.walk(child, caption)

    def _heading(self, level: int, tag: Any) -> None:
        self.flush()
        title = tag.get_text(" ", strip=True)
        while self.headings and self.headings[-1][0] >= level:
            self.headings.pop()
        if title:
            self.headings.append((level, title[:200]))
            self.buf.append(title + "\n\n")

    def _image(self, tag: Any, caption: str) -> None:
        src = tag.get("src") or tag.get("data-src") or ""
        if isinstance(src, list):
            src = src[0] if src else ""
        self.n_images += 1
        self.flush()
        alt = tag.get("alt") or ""
        add_image_ref(
            self.out,
            self.path,
            str(src),
            where=f"img {self.n_images}",
            section=self.section,
            alt_text=str(alt),
            caption=caption or str(tag.get("title") or ""),
        )
