"""HTML, Markdown, DOCX and text readers on small files built here (OCR off: unit speed)."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import pytest
from PIL import Image

from mm_rag_plugin.errors import InvalidInputError
from mm_rag_plugin.ids import content_hash
from mm_rag_plugin.readers import DocxReader, HtmlReader, MarkdownReader, TextReader
from mm_rag_plugin.types import ImageChunk, TextChunk


def _png_bytes(color: str = "red", size: tuple[int, int] = (64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def docs(tmp_path: Path) -> Path:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "blue.png").write_bytes(_png_bytes("blue"))
    (tmp_path / "img" / "tiny.png").write_bytes(_png_bytes("green", (8, 8)))
    uri = "data:image/png;base64," + base64.b64encode(_png_bytes("red")).decode()
    (tmp_path / "page.html").write_text(
        f"""<!doctype html><html><head><title>t</title><style>.x{{}}</style></head><body>
        <h1>Intro</h1><p>First paragraph. It has two sentences.</p><script>steal()</script>
        <h2>Setup</h2><p>Install the package.</p>
        <figure><img src="img/blue.png" alt="a blue square"><figcaption>Figure 1: blue</figcaption></figure>
        <img src="{uri}" alt="red data"><img src="https://example.invalid/x.png" alt="remote">
        <img src="../outside.png"><img src="img/missing.png"><img src="img/tiny.png">
        <h1>Results</h1><table><tr><th>k</th><th>v</th></tr><tr><td>alpha</td><td>1</td></tr></table>
        <img src="img/blue.png" alt="again"></body></html>"""
    )
    (tmp_path / "notes.md").write_text(
        '# Title\n\nSome *emphasis* text.\n\n## Pictures\n\n![a blue square](img/blue.png "the caption")\n\n'
        f"| a | b |\n|---|---|\n| 1 | 2 |\n\n![red]({uri})\n\n```\ncode block\n```\n"
    )
    return tmp_path


def test_html_sections_images_and_refusals(docs: Path, tmp_path: Path) -> None:
    res = HtmlReader(ocr=False, blob_dir=str(tmp_path / "blobs")).read(docs / "page.html")
    texts = res.texts
    assert texts[0].text.startswith("Intro") and "First paragraph" in texts[0].text
    assert "steal" not in " ".join(t.text for t in texts) and ".x{}" not in " ".join(t.text for t in texts)
    assert any(t.section == "Intro > Setup" and "Install" in t.text for t in texts)
    assert any(t.section == "Results" and "alpha" in t.text for t in texts)
    imgs = res.images
    assert [i.alt_text for i in imgs] == ["a blue square", "red data", "again"]
    blue = imgs[0]
    assert blue.caption == "Figure 1: blue" and blue.section == "Intro > Setup"
    assert blue.image_path == str(docs / "img" / "blue.png")  # original file, not a copy
    red = imgs[1]
    assert Path(red.image_path).parent == tmp_path / "blobs"
    assert Path(red.image_path).name == f"{red.content_hash}.png"
    assert imgs[2].metadata["duplicate_of"] == blue.id  # same bytes within the document
    reasons = " ".join(e.error for e in res.errors)
    assert "outside" in reasons and "not found" in reasons
    assert len(res.errors) == 2  # remote skipped (allowed only on request), tiny image skipped


def test_ids_stable_and_neighbours_linked(docs: Path, tmp_path: Path) -> None:
    reader = HtmlReader(ocr=False, blob_dir=str(tmp_path / "blobs"))
    a, b = reader.read(docs / "page.html"), reader.read(docs / "page.html")
    assert [c.id for c in a.chunks] == [c.id for c in b.chunks]
    assert len({c.id for c in a.chunks}) == len(a.chunks)
    for prev, nxt in zip(a.chunks, a.chunks[1:], strict=False):
        assert prev.next_id == nxt.id and nxt.prev_id == prev.id
    assert a.chunks[0].prev_id is None and a.chunks[-1].next_id is None
    assert [c.position for c in a.chunks] == list(range(len(a.chunks)))


def test_markdown_reader(docs: Path, tmp_path: Path) -> None:
    res = MarkdownReader(ocr=False, blob_dir=str(tmp_path / "blobs")).read(docs / "notes.md")
    assert not res.errors
    kinds = [c.kind for c in res.chunks]
    assert kinds.count("image") == 2
    img = res.images[0]
    assert (img.alt_text, img.caption, img.section) == ("a blue square", "the caption", "Title > Pictures")
    assert img.image_path == str(docs / "img" / "blue.png")
    joined = "\n".join(t.text for t in res.texts)
    assert "Some emphasis text." in joined and "1 | 2" in joined and "code block" in joined
    assert "*" not in joined


def test_docx_reader(tmp_path: Path) -> None:
    docx = pytest.importorskip("docx")
    (tmp_path / "p.png").write_bytes(_png_bytes("blue", (120, 80)))
    d = docx.Document()
    d.add_heading("Chapter One", 1)
    d.add_paragraph("Body paragraph text.")
    d.add_picture(str(tmp_path / "p.png"))
    t = d.add_table(rows=2, cols=2)
    t.cell(0, 0).text, t.cell(0, 1).text, t.cell(1, 0).text, t.cell(1, 1).text = "name", "value", "pi", "3.14"
    d.save(tmp_path / "w.docx")
    res = DocxReader(ocr=False, blob_dir=str(tmp_path / "blobs")).read(tmp_path / "w.docx")
    assert [c.kind for c in res.chunks] == ["text", "image", "text"]
    first, img, table = res.chunks
    assert isinstance(first, TextChunk) and first.section == "Chapter One" and "Body paragraph" in first.text
    assert isinstance(img, ImageChunk) and (img.width, img.height) == (120, 80)
    assert img.content_hash == content_hash((tmp_path / "p.png").read_bytes())
    assert Path(img.image_path).read_bytes() == (tmp_path / "p.png").read_bytes()
    assert isinstance(table, TextChunk) and "name | value" in table.text and "pi | 3.14" in table.text


def test_not_a_docx_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "x.docx").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(InvalidInputError, match=r"x\.docx.*not a readable DOCX"):
        DocxReader(ocr=False).read(tmp_path / "x.docx")


def test_text_reader_and_missing_file(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes("caf\xe9 latin-1 text".encode("latin-1"))
    res = TextReader(ocr=False).read(tmp_path / "a.txt")
    assert res.texts[0].text == "café latin-1 text"
    with pytest.raises(InvalidInputError, match="file not found"):
        TextReader(ocr=False).read(tmp_path / "nope.txt")
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(InvalidInputError, match="no text or images"):
        TextReader(ocr=False).read(tmp_path / "empty.txt")
