"""Markdown reader (markdown-it-py, CommonMark + tables).

Text is split at headings (``section`` is the heading path); image links become image chunks with
their alt text (and title as caption), local paths resolved relative to the Markdown file.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .._optional import require
from ._base import BaseReader, ChunkBuilder
from ._refs import add_image_ref
from .text import read_text_file

__all__ = ["MarkdownReader"]


class MarkdownReader(BaseReader):
    kind = "markdown"

    def __init__(self, config: Any = None, **options: Any) -> None:
        super().__init__(config, **options)
        mdit = require("markdown_it", extra="readers", package="markdown-it-py")
        self._md = mdit.MarkdownIt("commonmark", {"html": False}).enable("table")

    def _read(self, path: Path, out: ChunkBuilder) -> None:
        tokens = self._md.parse(read_text_file(path))
        headings: list[tuple[int, str]] = []
        buf: list[str] = []
        n_images = 0
        heading_level = 0

        def section() -> str | None:
            return " > ".join(t for _, t in headings) or None

        def flush() -> None:
            text = re.sub(r"\n{3,}", "\n\n", "".join(buf)).strip()
            buf.clear()
            if text:
                out.add_text(text, section=section())

        for tok in tokens:
            if tok.type == "heading_open":
                flush()
                heading_level = int(tok.tag[1:])
            elif tok.type == "heading_close":
                heading_level = 0
            elif tok.type == "inline":
                text_parts: list[str] = []
                for child in tok.children or []:
                    if child.type == "image":
                        n_images += 1
                        if text_parts:
                            buf.append("".join(text_parts))
                            text_parts = []
                        flush()
                        alt = "".join(c.content for c in (child.children or [])) or child.content
                        add_image_ref(
                            out,
                            path,
                            str(child.attrGet("src") or ""),
                            where=f"image {n_images}",
                            section=section(),
                            alt_text=alt,
                            caption=str(child.attrGet("title") or ""),
                        )
                    elif child.type in ("text", "code_inline", "html_inline"):
                        text_parts.append(child.content)
                    elif child.type in ("softbreak", "hardbreak"):
                        text_parts.append("\n")
                line = "".join(text_parts)
                if heading_level:
                    while headings and headings[-1][0] >= heading_level:
                        headings.pop()
                    if line.strip():
                        headings.append((heading_level, line.strip()[:200]))
                    buf.append(line + "\n\n")
                elif tok.map is not None or line:
                    buf.append(line)
            elif tok.type in ("fence", "code_block"):
                buf.append(tok.content + "\n")
            elif tok.type in ("paragraph_close", "bullet_list_close", "ordered_list_close", "table_close"):
                buf.append("\n\n")
            elif tok.type in ("list_item_close", "tr_close"):
                buf.append("\n")
            elif tok.type in ("th_close", "td_close"):
                buf.append(" | ")
        flush()
