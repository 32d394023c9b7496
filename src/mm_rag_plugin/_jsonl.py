"""Read the JSON Lines files users hand the CLI (``eval`` queries, ``finetune`` pairs).

Every problem is an :class:`InvalidInputError` naming the file and the line (``line 7: ...``):
bytes that are not UTF-8 (with their byte offset), lines that are not JSON, JSON nested too deeply
to parse. Never a traceback, never a :class:`RecursionError`.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import InvalidInputError

__all__ = ["json_lines", "kind_of", "parse_json", "read_text"]


def read_text(file: Path) -> str:
    """The text of *file*, UTF-8 (a byte-order mark is allowed)."""
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise InvalidInputError("file not found", source=str(file)) from None
    except IsADirectoryError:
        raise InvalidInputError("is a folder, not a file", source=str(file)) from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read the file ({exc.strerror or exc})", source=str(file)) from None
    start = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    try:
        return data[start:].decode("utf-8")
    except UnicodeDecodeError as exc:
        at = start + exc.start
        line = data.count(b"\n", 0, at) + 1
        raise InvalidInputError(
            f"line {line}: not UTF-8 text (byte {at:,} is {data[at:at + 1]!r}); save the file as UTF-8",
            source=str(file),
        ) from None


def parse_json(text: str, where: str | None, file: Path) -> Any:
    """``json.loads(text)``; *where* (``"line 3"``) prefixes the error; ``None``: *text* is the
    whole file, and the error names the line it is on."""
    try:
        return json.loads(text)
    except RecursionError:
        where = where or f"line {_deep_line(text)}"
        raise InvalidInputError(f"{where}: JSON nested too deeply to read", source=str(file)) from None
    except ValueError as exc:  # JSONDecodeError, and numbers too long to convert
        where = where or f"line {getattr(exc, 'lineno', 1)}"
        raise InvalidInputError(f"{where}: not JSON ({exc})"[:300], source=str(file)) from None


_TOKENS = re.compile(r'"(?:[^"\\\n]|\\.)*"|[\[\]{}\n]')


def _deep_line(text: str, depth: int = 200) -> int:
    """The line of *text* where JSON nesting first goes *depth* levels deep (strings skipped)."""
    level, line = 0, 1
    for m in _TOKENS.finditer(text):
        c = m.group()
        if c == "\n":
            line += 1
        elif c in "[{":
            level += 1
            if level >= depth:
                return line
        elif c in "]}":
            level -= 1
    return 1


def json_lines(file: Path, text: str | None = None) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` of each non-blank line of the JSON Lines *file* (whose *text*, when
    already read)."""
    text = read_text(file) if text is None else text
    # "\n" only: str.splitlines() would also split at U+2028 and others, which JSON strings may hold
    for n, line in enumerate(text.split("\n"), 1):
        if line.strip():
            yield n, parse_json(line, f"line {n}", file)


def kind_of(value: Any) -> str:
    """What a JSON value is, in words (``"a string"``, ``"a list"``, ``"null"`` ...), for errors."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    for t, name in ((str, "a string"), (int, "a number"), (float, "a number"), (list, "a list"), (dict, "an object")):
        if isinstance(value, t):
            return name
    return type(value).__name__
