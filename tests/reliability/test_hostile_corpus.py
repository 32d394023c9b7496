"""Hostile corpora, built at test time: zip bombs, XML entity tricks, links to a loopback server
and to files outside the folder, symlinked folders, huge sparse files, deep and cyclic PDF page
trees, decompression-bomb images and image-link amplification. Each is reported per file (or
handled safely), never stops the batch, never hangs and never reads or fetches outside the corpus."""

from __future__ import annotations

import http.server
import io
import json
import os
import resource
import shutil
import threading
import time
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from mm_rag_plugin.readers import ReaderConfig
from mm_rag_plugin.readers.loader import DocumentLoader, read_file
from mm_rag_plugin.readers.markdown import MarkdownReader
from mm_rag_plugin.readers.text import TextReader

from .._cli import run

SECRET = "TOPSECRET-HOSTILE-7731"
W_NS = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
GOOD = "Solar panels need cleaning twice a year."


pytestmark = pytest.mark.usefixtures("no_keys")  # tests/reliability/conftest.py


class _Trap:
    """A loopback HTTP server that counts every request it receives."""

    def __init__(self) -> None:
        hits: list[str] = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                hits.append(self.path)
                body = SECRET.encode()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_HEAD = do_GET

            def log_message(self, *args: object) -> None:
                pass

        self.hits = hits
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def trap() -> Iterator[_Trap]:
    t = _Trap()
    t.thread.start()
    try:
        yield t
    finally:
        t.server.shutdown()
        t.server.server_close()


def _png(path: Path, color: tuple[int, int, int] = (200, 30, 30), size: int = 64) -> Path:
    Image.new("RGB", (size, size), color).save(path)
    return path


def _docx(path: Path, document_xml: str | bytes) -> Path:
    """A minimal DOCX package around *document_xml*."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", _CONTENT_TYPES)
        zf.writestr("_rels/.rels", _RELS)
        zf.writestr("word/document.xml", document_xml)
    return path


_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" '
    'ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" '
    'Target="word/document.xml"/></Relationships>'
)


def _body(inner: str, doctype: str = "") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>{doctype}'
        f'<w:document xmlns:w="{W_NS}"><w:body>{inner}</w:body></w:document>'
    )


def _para(text: str) -> str:
    return f"<w:p><w:r><w:t>{text}</w:t></w:r></w:p>"


class _RepeatDeflate:
    """Deflate that compresses a repeated block once: each call ends with a full flush, which
    resets the compressor, so the same input gives the same output. A real, valid stream."""

    def __init__(self, unit: bytes) -> None:
        self.unit, self.block, self.co = unit, b"", zlib.compressobj(9, zlib.DEFLATED, -15)

    def compress(self, data: bytes) -> bytes:
        if data is self.unit and self.block:
            return self.block
        out = self.co.compress(data) + self.co.flush(zlib.Z_FULL_FLUSH)
        if data is self.unit:
            self.block = out
        return out

    def flush(self) -> bytes:
        return self.co.flush()


def _zip_bomb(path: Path, inflated: int = 2**31) -> Path:
    """A DOCX whose word/document.xml is valid XML inflating to *inflated* bytes (a few MB on disk)."""
    unit = (_para("lol") * 30_000).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("[Content_Types].xml", _CONTENT_TYPES)
        zf.writestr("_rels/.rels", _RELS)
        with zf.open("word/document.xml", "w", force_zip64=True) as f:
            f._compressor = _RepeatDeflate(unit)  # type: ignore[attr-defined]
            head, tail = _body("@").encode().split(b"@")
            f.write(head)
            for _ in range(inflated // len(unit) + 1):
                f.write(unit)
            f.write(tail)
    return path


def _pdf(objects: list[bytes]) -> bytes:
    """A PDF from numbered objects (object 1 is the catalog), with a correct xref table."""
    out = b"%PDF-1.4\n"
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return out


def _page_objects(first: int, parent: int) -> list[bytes]:
    """A page (number *first*), its content stream and font, with text."""
    text = b"BT /F1 12 Tf 72 700 Td (Deep page tree text) Tj ET"
    return [
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 612 792] /Contents %d 0 R "
        b"/Resources << /Font << /F1 %d 0 R >> >> >>" % (parent, first + 1, first + 2),
        b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]


def _deep_pdf(depth: int) -> bytes:
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    for k in range(depth):  # objects 2 .. depth+1, each the only kid of the one before
        parent = b"" if k == 0 else b"/Parent %d 0 R " % (k + 1)
        objs.append(b"<< /Type /Pages %s/Kids [%d 0 R] /Count 1 >>" % (parent, k + 3))
    return _pdf(objs + _page_objects(depth + 2, depth + 1))


def _cyclic_pdf() -> bytes:
    return _pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R 2 0 R] /Count 2 >>",
            b"<< /Type /Pages /Parent 2 0 R /Kids [2 0 R 3 0 R] /Count 1 >>",
        ]
    )


def _index_bytes(index: Path) -> bytes:
    return b"".join(p.read_bytes() for p in index.rglob("*") if p.is_file())


def _errors(out: str) -> list[str]:
    return [line for line in out.splitlines() if line.strip().startswith("error:")]


def _cpu_seconds() -> float:
    """CPU time of this process and of its finished children: the work done, which a busy machine
    does not inflate as it does wall-clock time (inflating a bomb or reading gigabytes costs CPU)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _wall_budget(seconds: float) -> float:
    """*seconds* of wall-clock time, scaled by how busy the machine is (load per core, at least 1)."""
    return seconds * max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_docx_zip_bomb_is_refused_without_inflating(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    bomb = _zip_bomb(corpus / "bomb.docx")
    assert bomb.stat().st_size < 20_000_000
    assert zipfile.ZipFile(bomb).getinfo("word/document.xml").file_size > 2**31
    (corpus / "good.md").write_text(GOOD)
    rss, start = _max_rss_mb(), _cpu_seconds()
    code, out, err = run("ingest", str(corpus), "--index", str(tmp_path / "ix"), "--keyword-only", "--no-ocr", "-q", "--workers", "0")
    assert _cpu_seconds() - start < 20 and _max_rss_mb() - rss < 300  # nothing inflated
    assert code == 0, err
    [line] = _errors(out)
    assert "bomb.docx" in line and "zip bomb" in line and "word/document.xml" in line
    code, out, _ = run("query", "solar panels cleaning", "--index", str(tmp_path / "ix"), "--json")
    assert [Path(h["source"]).name for h in json.loads(out)] == ["good.md"]


def test_docx_entities_are_never_expanded(tmp_path: Path, trap: _Trap) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text(SECRET)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    lol = '<!ENTITY lol "lollollollollol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol" + str(i - 1) + ";") * 10 if i > 1 else "&lol;" * 10}">' for i in range(1, 10)
    )
    _docx(corpus / "laughs.docx", _body(_para("Laughs &lol9; end"), f"<!DOCTYPE w:document [{lol}]>"))
    xxe = (
        f'<!DOCTYPE w:document [<!ENTITY file SYSTEM "file://{secret}"><!ENTITY web SYSTEM "{trap.url}/xxe">'
        f'<!ENTITY % remote SYSTEM "{trap.url}/dtd"> %remote;]>'
    )
    _docx(corpus / "xxe.docx", _body(_para("Read &file; and &web; here") + _para(GOOD), xxe))
    index = tmp_path / "ix"
    start = _cpu_seconds()
    code, out, err = run("ingest", str(corpus), "--index", str(index), "--keyword-only", "--no-ocr", "-q", "--workers", "0")
    assert _cpu_seconds() - start < 20  # no billion laughs expanded
    assert code == 0, err
    assert trap.hits == []  # no external entity or DTD fetched
    assert SECRET.encode() not in _index_bytes(index)
    assert b"lollollollollollollol" not in _index_bytes(index)  # billion laughs never expanded
    code, out, _ = run("query", SECRET, "--index", str(index), "--json")
    assert code == 0 and json.loads(out) == []
    code, out, _ = run("query", "solar panels cleaning", "--index", str(index), "--json")
    assert [Path(h["source"]).name for h in json.loads(out)] == ["xxe.docx"]


def test_markup_refs_never_fetch_or_read_outside_the_folder(tmp_path: Path, trap: _Trap) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    secret_png = _png(outside / "secret.png", (1, 2, 3))
    (outside / "secret.txt").write_text(SECRET)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _png(corpus / "ok.png")
    (corpus / "link.png").symlink_to(secret_png)  # a link inside the folder to an image outside
    u = trap.url
    (corpus / "refs.md").write_text(
        f"# Refs\n\n{GOOD}\n\n![remote]({u}/x.png) ![ssl](https://127.0.0.1:{trap.server.server_address[1]}/y.png)\n\n"
        f"![passwd](file:///etc/passwd) ![up](../outside/secret.png) ![abs]({secret_png}) ![file](file://{secret_png})\n\n"
        f"![link](link.png) ![ok](ok.png) ![ref][r] <img src=\"{u}/inline.png\">\n\n[r]: {u}/ref.png\n"
    )
    (corpus / "page.html").write_text(
        f'<html><head><link rel="stylesheet" href="{u}/s.css"><script src="{u}/s.js"></script>'
        f'<base href="{u}/"><meta http-equiv="refresh" content="0; url={u}/refresh"></head><body>'
        f"<h1>Page</h1><p>{GOOD}</p><img src=\"{u}/a.png\"><img data-src=\"{u}/b.png\" srcset=\"{u}/c.png 2x\">"
        f'<img src="file:///etc/passwd"><img src="../outside/secret.png"><img src="file://{secret_png}">'
        f'<img src="link.png"><iframe src="{u}/f"></iframe><object data="{u}/o"></object>'
        f'<video poster="{u}/p.png"></video><input type="image" src="{u}/i.png">'
        f'<div style="background:url({u}/bg.png)">styled</div><img src="ok.png" alt="fine"></body></html>'
    )
    (corpus / "page.xhtml").write_text(
        f'<?xml version="1.0"?><!DOCTYPE html [<!ENTITY xxe SYSTEM "file://{outside / "secret.txt"}">'
        f'<!ENTITY web SYSTEM "{u}/xxe">]><html xmlns="http://www.w3.org/1999/xhtml"><body>'
        f"<p>XHTML &xxe; &web; {GOOD}</p></body></html>"
    )
    index = tmp_path / "ix"
    code, out, err = run("ingest", str(corpus), "--index", str(index), "--keyword-only", "--no-ocr", "-q", "--workers", "0")
    assert code == 0, err
    assert trap.hits == []  # allow_remote is off by default: not one request
    data = _index_bytes(index)
    assert SECRET.encode() not in data and b"root:x:0" not in data
    reasons = " ".join(_errors(out))
    assert "outside" in reasons and "refs.md" in reasons and "page.html" in reasons
    res = read_file(corpus / "refs.md", ReaderConfig(ocr=False, blob_dir=str(tmp_path / "b")))
    assert [Path(i.image_path).name for i in res.images] == ["ok.png"]  # only the image inside
    res = read_file(corpus / "page.html", ReaderConfig(ocr=False, blob_dir=str(tmp_path / "b")))
    assert [i.alt_text for i in res.images] == ["fine"]
    code, out, _ = run("query", "XHTML solar panels", "--index", str(index), "--json")
    assert "page.xhtml" in {Path(h["source"]).name for h in json.loads(out)}


def test_symlinked_folder_pointing_outside_is_not_read(tmp_path: Path) -> None:
    outside = tmp_path / "private"
    (outside / "deep").mkdir(parents=True)
    (outside / "deep" / "keys.md").write_text(f"The vault code is {SECRET}.")
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "a.md").write_text(GOOD)
    (corpus / "sub" / "private").symlink_to(outside, target_is_directory=True)
    (corpus / "sub" / "up").symlink_to(tmp_path, target_is_directory=True)  # to an ancestor: a loop
    loader = DocumentLoader(corpus, workers=0, ocr=False, show_progress=False)
    assert [f.name for f in loader.files()] == ["a.md"]
    index = tmp_path / "ix"
    code, _, err = run("ingest", str(corpus), "--index", str(index), "--keyword-only", "--no-ocr", "-q", "--workers", "0")
    assert code == 0, err
    assert SECRET.encode() not in _index_bytes(index)


def test_huge_sparse_files_are_reported_quickly(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name in ("huge.txt", "huge.md", "huge.pdf", "huge.png", "huge.html"):
        with open(corpus / name, "wb") as f:
            if name.endswith(".html"):
                f.write(b"<html><body>starts like a page")
            f.truncate(2**31)  # 2 GB, no disk used
    _png(corpus / "big-ref.png").unlink()
    with open(corpus / "big-ref.png", "wb") as f:  # a PNG signature, then 2 GB of nothing
        f.write(b"\x89PNG\r\n\x1a\n")
        f.truncate(2**31)
    (corpus / "refs.md").write_text(f"{GOOD}\n\n![big](big-ref.png)\n")
    # The readers, in this process (the CLI's ingest also hashes each file for its registry,
    # which reads it once in small blocks: slow for 12 GB of sparse files, but bounded memory).
    rss, start = _max_rss_mb(), _cpu_seconds()
    loaded = DocumentLoader(corpus, workers=0, ocr=False, show_progress=False, blob_dir=str(tmp_path / "b")).load()
    assert _cpu_seconds() - start < 5 and _max_rss_mb() - rss < 300  # nothing read into memory
    assert [Path(c.source).name for c in loaded.chunks] == ["refs.md"] and GOOD in loaded.chunks[0].text
    named = {Path(e.source.split(" (")[0]).name: e.error for e in loaded.errors}
    assert set(named) == {"huge.txt", "huge.md", "huge.pdf", "huge.png", "huge.html", "big-ref.png", "refs.md"}
    assert "byte limit" in named["refs.md"] and "byte limit" in named["huge.png"]
    assert "unsupported" in named["huge.txt"] and "PDF" in named["huge.pdf"]


def test_deep_and_cyclic_pdf_page_trees_and_malformed_pdfs(tmp_path: Path, shared_data: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "deep.pdf").write_bytes(_deep_pdf(10_000))
    (corpus / "shallow.pdf").write_bytes(_deep_pdf(3))  # the same page, reachable: read
    (corpus / "cycle.pdf").write_bytes(_cyclic_pdf())
    malformed = shared_data / "pdfs" / "malformed"
    for name in ("qpdf__append-xref-loop.pdf", "qpdf__bad-direct-root.pdf", "qpdf__bad1.pdf", "ocrmypdf__invalid.pdf"):
        if (malformed / name).exists():
            shutil.copy(malformed / name, corpus / name)
    (corpus / "good.md").write_text(GOOD)
    start = time.monotonic()
    code, out, err = run("ingest", str(corpus), "--index", str(tmp_path / "ix"), "--keyword-only", "--no-ocr", "-q")
    assert time.monotonic() - start < _wall_budget(40)  # worker processes, with their time limit
    assert code == 0, err
    errors = _errors(out)
    assert any("cycle.pdf" in e for e in errors) and any("deep.pdf" in e for e in errors)
    code, out, _ = run("query", "deep page tree text", "--index", str(tmp_path / "ix"), "--json")
    assert "shallow.pdf" in {Path(h["source"]).name for h in json.loads(out)}
    code, out, _ = run("query", "solar panels cleaning", "--index", str(tmp_path / "ix"), "--json")
    assert "good.md" in {Path(h["source"]).name for h in json.loads(out)}


def test_decompression_bomb_images_are_per_file_errors(tmp_path: Path, shared_data: Path) -> None:
    bombs = shared_data / "malformed_images" / "files"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    names = ["decompression_bomb.gif", "decompression_bomb_extents.gif", "png_decompression_dos.png", "bmp_b_reallybig.bmp"]
    names = [n for n in names if (bombs / n).exists()]
    assert names
    for n in names:
        shutil.copy(bombs / n, corpus / n)
    big = Image.new("L", (12_000, 12_000))  # 144 MP of one colour: a small PNG over Pillow's limit
    buf = io.BytesIO()
    big.save(buf, "PNG", optimize=False)
    (corpus / "made_bomb.png").write_bytes(buf.getvalue())
    (corpus / "uses.md").write_text(f"{GOOD}\n\n![bomb](made_bomb.png)\n\n![again](made_bomb.png)\n")
    _png(corpus / "fine.png")
    code, out, err = run("ingest", str(corpus), "--index", str(tmp_path / "ix"), "--keyword-only", "--no-ocr", "-q", "--workers", "0")
    assert code == 0, err
    errors = _errors(out)
    for n in [*names, "made_bomb.png"]:
        if n == "decompression_bomb_extents.gif":  # Pillow clamps its frame extents: read safely, or refused
            continue
        assert any(n in e for e in errors), (n, out)
    uses = [e for e in errors if "uses.md" in e]
    assert len(uses) == 1 and "(x2)" in uses[0]  # one error for the image linked twice, decoded once
    config = ReaderConfig(ocr=False, blob_dir=str(tmp_path / "b"))
    res = read_file(corpus / "uses.md", config)
    assert res.texts and not res.images
    if "decompression_bomb_extents.gif" in names and not any("extents" in e for e in errors):
        [img] = read_file(corpus / "decompression_bomb_extents.gif", config).images
        assert img.width * img.height <= config.max_image_pixels


def test_image_link_amplification_is_collapsed(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _png(corpus / "logo.png")
    _png(corpus / "other.png", (0, 0, 255))
    md = corpus / "amp.md"
    md.write_text(f"# Amplified\n\n{GOOD}\n\n" + "![logo](logo.png)\n" * 20_000 + "\n![other](other.png)\n")
    assert 300_000 < md.stat().st_size < 500_000
    start = _cpu_seconds()
    res = MarkdownReader(ocr=False, blob_dir=str(tmp_path / "b")).read(md)
    assert _cpu_seconds() - start < 20  # not 20,000 images decoded
    imgs = res.images
    assert len(imgs) == 1 + 3 + 1  # the first, three marked repeats (duplicate_of), the other image
    first = imgs[0]
    assert first.metadata["occurrences"] == 20_000 and len(first.metadata["folded_occurrences"]) <= 20
    assert all(i.metadata["duplicate_of"] == first.id for i in imgs[1:4]) and imgs[4].alt_text == "other"
    [note] = res.errors
    assert note.error_type == "RepeatedImages" and "19,996" in note.error and "20,000" in note.error

    code, out, err = run("ingest", str(corpus), "--index", str(tmp_path / "ix"), "--keyword-only", "--no-ocr", "-q", "--workers", "0")
    assert code == 0, err
    assert "repeated images collapsed" in out
    code, out, _ = run("query", "logo", "--index", str(tmp_path / "ix"), "--json", "--k", "50")
    assert 0 < len(json.loads(out)) <= 8


def test_chunk_cap_cuts_a_file_and_says_so(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "long.txt").write_text(" ".join(f"word{i}" for i in range(20_000)))
    (corpus / "short.md").write_text(GOOD)
    res = TextReader(ocr=False, chunk_size=200, chunk_overlap=0, max_chunks_per_file=10).read(corpus / "long.txt")
    assert len(res.texts) == 10
    [note] = res.errors
    assert note.error_type == "ChunkLimit" and "10 chunks" in note.error
    loaded = DocumentLoader(corpus, workers=0, ocr=False, show_progress=False, chunk_size=200, max_chunks_per_file=10).load()
    assert {Path(c.source).name for c in loaded.chunks} == {"long.txt", "short.md"}
    assert [e.error_type for e in loaded.errors] == ["ChunkLimit"]
