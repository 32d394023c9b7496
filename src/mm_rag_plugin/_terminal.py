"""Text from files made safe for a terminal, and secrets kept out of everything the CLI prints.

Document text and file names are untrusted: raw, they can clear the screen, set the window title,
write the clipboard (OSC 52), hide text, or reverse the order of what follows (U+202E makes
``gpj.txt`` read as ``txt.jpg``). :func:`terminal_safe` writes every control character (except
newline and tab) and every bidirectional or invisible formatting character as a visible escape,
``\\x1b`` or ``\\u202e``; so are lone surrogates (a file name that is not UTF-8, as ``os.fsdecode``
gives it), ``\\udce9``, which no terminal encoding could write. :func:`one_line` also escapes
newlines, carriage returns and tabs, for names printed where one line is expected (a crafted name
must not forge a second result or a summary line). JSON output is already exact and safe
(``json.dump`` escapes them).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TextIO

__all__ = ["SafeStream", "one_line", "redact", "terminal_safe"]

#: C0 controls but tab and newline, DEL and C1 controls; bidi embeddings, overrides and isolates;
#: zero-width and invisible formatting characters; line and paragraph separators; lone surrogates.
_UNSAFE = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u115f\u1160\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\u3164"
    "\ud800-\udfff\ufe00-\ufe0f\ufeff\ufff9-\ufffb]"
)
_LINE_BREAKS = str.maketrans({"\n": "\\n", "\r": "\\r", "\t": "\\t"})


def _escape(m: re.Match[str]) -> str:
    code = ord(m.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: str) -> str:
    """*text* with control, bidi and invisible characters written as visible escapes."""
    return _UNSAFE.sub(_escape, text)


def one_line(text: object) -> str:
    """*text* (a file name, source or title) as one terminal-safe line: newline, carriage return
    and tab written as ``\\n``, ``\\r``, ``\\t``, everything else as :func:`terminal_safe` does."""
    return terminal_safe(str(text).translate(_LINE_BREAKS))


def redact(text: str, secrets: Iterable[str]) -> str:
    """*text* with every secret (at least 6 characters long) replaced by ``[redacted]``."""
    for s in secrets:
        if s and len(s) >= 6:
            text = text.replace(s, "[redacted]")
    return text


class SafeStream:
    """A text stream that writes through :func:`redact` and :func:`terminal_safe`."""

    def __init__(self, stream: TextIO, secrets: Iterable[str] = ()) -> None:
        self._stream = stream
        self._secrets = sorted({s for s in secrets if s and len(s) >= 6}, key=len, reverse=True)

    def write(self, text: str) -> int:
        self._stream.write(terminal_safe(redact(text, self._secrets)))
        return len(text)

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return bool(getattr(self._stream, "isatty", lambda: False)())

    def __getattr__(self, name: str):  # encoding, fileno ... of the wrapped stream
        return getattr(self._stream, name)
