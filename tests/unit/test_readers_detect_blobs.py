from __future__ import annotations

import io
import zipfile
from pathlib import Path

from PIL import Image

from mm_rag_plugin.ids import content_hash
from mm_rag_plugin.readers._detect import detect_kind
from mm_rag_plugin.readers.blobs import BlobStore


def _png(size=(40, 30), color="red") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    return buf.getvalue()


def test_detect_by_content_not_extension(tmp_path: Path) -> None:
    (tmp_path / "doc.txt").write_bytes(b"%PDF-1.4\n...")
    (tmp_path / "pic.pdf").write_bytes(_png())
    (tmp_path / "page").write_text("<!DOCTYPE html><html><body>x</body></html>")
    (tmp_path / "notes.md").write_text("# Title\n")
    (tmp_path / "plain.txt").write_text("hello")
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)) * 4)
    with zipfile.ZipFile(tmp_path / "w.zip", "w") as zf:
        zf.writestr("word/document.xml", "<x/>")
    with zipfile.ZipFile(tmp_path / "other.docx", "w") as zf:
        zf.writestr("foo.txt", "x")
    got = {p.name: detect_kind(p) for p in tmp_path.iterdir()}
    assert got == {
        "doc.txt": "pdf",
        "pic.pdf": "image",
        "page": "html",
        "notes.md": "markdown",
        "plain.txt": "text",
        "blob.bin": None,
        "w.zip": "docx",
        "other.docx": None,
    }


def test_blob_store_is_content_addressed(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "blobs", max_side=64)
    data = _png()
    img = Image.open(io.BytesIO(data)).convert("RGB")
    a = store.put(content_hash(data), data, "image/png", img)
    b = store.put(content_hash(data), data, "image/png", img)
    assert a == b
    assert Path(a.path).name == f"{content_hash(data)}.png"
    assert Path(a.path).read_bytes() == data
    assert len(list((tmp_path / "blobs").iterdir())) == 1


def test_blob_store_downscales_large_images(tmp_path: Path) -> None:
    store = BlobStore(tmp_path, max_side=64)
    data = _png((400, 100))
    img = Image.open(io.BytesIO(data)).convert("RGB")
    stored = store.put(content_hash(data), data, "image/png", img)
    assert stored.downscaled
    with Image.open(stored.path) as im:
        assert max(im.size) == 64
    assert content_hash(data) in stored.path  # named after the original bytes
