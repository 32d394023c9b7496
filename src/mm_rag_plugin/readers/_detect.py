"""Content sniffing: which reader handles a file, decided by its bytes (the extension only breaks
ties between text formats)."""

from __future__ import annotations

import zipfile
from pathlib import Path

__all__ = ["IMAGE_EXTENSIONS", "MIME_EXTENSIONS", "detect_kind", "image_mime"]

_HEAD = 4096

#: mime type -> file extension used for blob files.
MIME_EXTENSIONS = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
    "image/bmp": "bmp",
    "image/tiff": "tif",
    "image/jp2": "jp2",
    "image/x-icon": "ico",
    "image/x-tga": "tga",
    "image/x-portable-anymap": "pnm",
}
IMAGE_EXTENSIONS = frozenset(
    {
        ".png",
        ".jpg",
        ".jpeg",
        ".gif",
        ".webp",
        ".bmp",
        ".tif",
        ".tiff",
        ".jp2",
        ".ico",
        ".tga",
        ".pnm",
        ".ppm",
        ".pgm",
    }
)
_HTML_EXT = frozenset({".html", ".htm", ".xhtml"})
_MD_EXT = frozenset({".md", ".markdown", ".mdown", ".mkd"})
_TEXT_EXT = frozenset({".txt", ".text", ".rst", ".log"})
_CSV_EXT = frozenset({".csv", ".tsv"})
#: OOXML packages: the part that marks each kind, and the extensions that name them.
_OOXML_PARTS = (("word/document.xml", "docx"), ("ppt/presentation.xml", "pptx"), ("xl/workbook.xml", "xlsx"))
_OOXML_EXT = {".docx": "docx", ".pptx": "pptx", ".xlsx": "xlsx", ".xlsm": "xlsx"}
_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_OLE_EXT = {
    ".docx": "docx", ".doc": "docx", ".pptx": "pptx", ".ppt": "pptx", ".xlsx": "xlsx", ".xlsm": "xlsx", ".xls": "xlsx",
}


def image_mime(head: bytes) -> str | None:
    """The image mime type announced by the magic bytes in *head*, or ``None``."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head.startswith(b"BM") and len(head) >= 14:
        return "image/bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    if head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n") or head.startswith(b"\xff\x4f\xff\x51"):
        return "image/jp2"
    if head[:4] == b"\x00\x00\x01\x00":
        return "image/x-icon"
    if head[:2] in (b"P1", b"P2", b"P3", b"P4", b"P5", b"P6") and len(head) > 2 and head[2:3].isspace():
        return "image/x-portable-anymap"
    return None


def _ooxml_kind(path: Path, ext: str) -> str | None:
    """The OOXML kind of a zip by its part names; a damaged zip goes by its extension, so that
    the reader names the damage rather than "unsupported"."""
    try:
        with zipfile.ZipFile(path) as zf:
            names = set(zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return _OOXML_EXT.get(ext)
    return next((kind for part, kind in _OOXML_PARTS if part in names), None)


def _looks_like_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:  # a multi-byte char may be cut at the end of the sample
        if exc.start < len(head) - 4:
            return False
    return True


def detect_kind(path: str | Path) -> str | None:
    """``"pdf"``, ``"docx"``, ``"pptx"``, ``"xlsx"``, ``"image"``, ``"html"``, ``"markdown"``,
    ``"csv"``, ``"text"`` or ``None`` (unsupported). Binary formats are recognised by content
    whatever the extension (OOXML by its part names); text files by a markup sniff, then by
    extension. Raises ``OSError`` if the file cannot be read."""
    path = Path(path)
    with path.open("rb") as fh:
        head = fh.read(_HEAD)
    ext = path.suffix.lower()
    if b"%PDF-" in head[:1024]:
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return _ooxml_kind(path, ext)
    if head.startswith(_OLE) and ext in _OLE_EXT:
        return _OLE_EXT[ext]  # a password-protected package or a legacy file: the reader says which
    if ext in _CSV_EXT and head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "csv"  # UTF-16 with a BOM (Excel's "Unicode text")
    if image_mime(head) is not None:
        return "image"
    if ext == ".tga" and head:  # TGA has no magic number
        return "image"
    if not head or not _looks_like_text(head):
        # Extensions of formats without reliable magic (TGA), or truncated images: let the image
        # reader produce a precise error rather than "unsupported".
        if head and ext in _CSV_EXT and b"\x00" not in head:
            return "csv"  # not UTF-8: the reader falls back to Windows-1252
        if head and ext in _OOXML_EXT and ext != ".docx":
            return _OOXML_EXT[ext]  # not a zip at all: the reader names the damage
        return "image" if ext in IMAGE_EXTENSIONS else ("pdf" if ext == ".pdf" else None)
    lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if lowered.startswith((b"<!doctype html", b"<html")) or ext in _HTML_EXT:
        return "html"
    if ext in _MD_EXT:
        return "markdown"
    if ext in _CSV_EXT:
        return "csv"
    if ext in _TEXT_EXT or not ext:
        return "text"
    if ext in IMAGE_EXTENSIONS or ext == ".pdf":  # text content under an image/PDF name
        return "image" if ext != ".pdf" else "pdf"
    if ext in _OOXML_EXT and ext != ".docx":  # text under a PPTX/XLSX name: the reader says so
        return _OOXML_EXT[ext]
    return None
