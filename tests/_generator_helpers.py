"""Builders shared by the generator tests: real PNG/JPEG files and hits over them."""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from mm_rag_plugin.types import Hit, ImageChunk, TextChunk


def write_png(
    path: Path, size: tuple[int, int] = (48, 32), color: tuple[int, int, int] = (200, 30, 30)
) -> Path:
    img = Image.new("RGB", size, color)
    ImageDraw.Draw(img).ellipse((4, 4, size[0] - 4, size[1] - 4), fill=(20, 20, 220))
    img.save(path, format="PNG")
    return path


def text_hit(id: str, text: str, source: str = "report.pdf", page: int | None = 1, score: float = 0.5) -> Hit:
    return Hit(TextChunk(id=id, text=text, source=source, page=page), score)


def image_hit(
    id: str,
    path: Path,
    source: str = "report.pdf",
    page: int | None = 2,
    caption: str = "",
    ocr_text: str = "",
    score: float = 0.4,
) -> Hit:
    chunk = ImageChunk(
        id=id,
        source=source,
        image_path=str(path),
        content_hash=id,
        page=page,
        caption=caption,
        ocr_text=ocr_text,
    )
    return Hit(chunk, score)
