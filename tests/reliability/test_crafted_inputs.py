"""Crafted input files (issue 27): ``eval`` queries and ``finetune`` pairs that are not UTF-8, nest
JSON too deeply or hold the wrong types get one line naming the file and the line, never a
traceback; a document with one unreadable reference (a missing or undecodable image) is ingested
with the rest of its content, one error names the document and the reference, and the file
registry records it so that a re-run does not read it again."""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from mm_rag_plugin import MultiModalRAG
from mm_rag_plugin.readers import load_documents

from .._cli import run

pytestmark = pytest.mark.usefixtures("no_keys")  # tests/reliability/conftest.py

GOOD_QUERY = json.dumps({"query": "inverter fault", "relevant": ["manual.md"]})
GOOD_PAIR = json.dumps({"image": "red.png", "text": "a red square"})
DEEP = "[" * 100_000  # a RecursionError in json.loads


def _one_line_error(command: str, code: int, out: str, err: str, file: Path, problem: str) -> None:
    assert "Traceback" not in err, err
    assert code == 1 and out == "", (code, out)  # exit 1: as every other input error of the CLI
    assert err.count("\n") == 1 and err.startswith(f"mm-rag {command}: error: {file}: "), err
    assert problem in err, err


# ------------------------------------------------------------------------------ 7: eval and finetune
@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(
            f'{GOOD_QUERY}\n{{"query": "q", "relevant": "abc"}}\n'.encode(),
            'line 2: "relevant" must be a list of strings (file names or chunk ids), got a string',
            id="relevant-a-string",
        ),
        pytest.param(
            f'{GOOD_QUERY}\n\n{{"query": "caf\xe9", "relevant": ["a"]}}\n'.encode("latin-1"),
            "line 3: not UTF-8 text (byte ",
            id="latin-1",
        ),
        pytest.param(f"{GOOD_QUERY}\n{DEEP}\n".encode(), "line 2: JSON nested too deeply", id="deep-nesting"),
        pytest.param(
            f'{GOOD_QUERY}\n{{"query": "q", "relevant": ["a", 7]}}\n'.encode(),
            '"relevant" must be a list of strings (file names or chunk ids); item 2 is a number',
            id="relevant-not-strings",
        ),
    ],
)
def test_eval_reports_a_bad_queries_file_in_one_line(tmp_path: Path, content: bytes, problem: str) -> None:
    qrels = tmp_path / "queries.jsonl"
    qrels.write_bytes(content)
    code, out, err = run("eval", str(qrels), "--index", str(tmp_path / "index"), "--keyword-only")
    _one_line_error("eval", code, out, err, qrels, problem)
    assert not (tmp_path / "index").exists()  # refused before any index is opened


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        pytest.param(
            "pairs.jsonl", f'{GOOD_PAIR}\n{{"image": "red.png", "text": "r\xf6t"}}\n'.encode("latin-1"),
            "line 2: not UTF-8 text (byte ", id="jsonl-latin-1",
        ),
        pytest.param(
            "pairs.csv", "image,text\nred.png,a red square\nred.png,r\xf6t\n".encode("latin-1"),
            "line 3: not UTF-8 text (byte ", id="csv-latin-1",
        ),
        pytest.param("pairs.jsonl", f"{GOOD_PAIR}\n{DEEP}\n".encode(), "line 2: JSON nested too deeply", id="jsonl-deep"),
        pytest.param("pairs.json", f"[\n{GOOD_PAIR},\n{DEEP}\n".encode(), "line 3: JSON nested too deeply", id="array-deep"),
        pytest.param(
            "pairs.jsonl", f'{GOOD_PAIR}\n["red.png", "text"]\n'.encode(),
            'line 2: expected {"image": "...", "text": "..."}, got a list', id="jsonl-not-an-object",
        ),
    ],
)
def test_finetune_reports_a_bad_pairs_file_in_one_line(tmp_path: Path, name: str, content: bytes, problem: str) -> None:
    Image.new("RGB", (64, 64), (220, 20, 20)).save(tmp_path / "red.png")
    pairs = tmp_path / name
    pairs.write_bytes(content)
    code, out, err = run("finetune", "--pairs", str(pairs), "--dump-pairs", str(tmp_path / "dump.jsonl"))
    _one_line_error("finetune", code, out, err, pairs, problem)
    assert not (tmp_path / "dump.jsonl").exists()


# --------------------------------------------------------------- 8: one unreadable reference per file
def _png(color: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), color).save(buf, "PNG")
    return buf.getvalue()


def _docx_with_a_broken_picture(path: Path) -> None:
    """A DOCX with text around a picture whose image part holds bytes that are not an image."""
    import docx

    document = docx.Document()
    document.add_paragraph("The quokka turbine manual, in Word.")
    document.add_picture(io.BytesIO(_png((20, 20, 220))))
    document.add_paragraph("Text after the picture.")
    whole = io.BytesIO()
    document.save(whole)
    with zipfile.ZipFile(whole) as zin, zipfile.ZipFile(path, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item.filename)
            zout.writestr(item, b"not an image at all" if item.filename.startswith("word/media/") else data)


def test_cli_ingests_a_markdown_file_with_a_missing_image_and_records_it(tmp_path: Path) -> None:
    docs, index = tmp_path / "docs", tmp_path / "index"
    docs.mkdir()
    doc = docs / "manual.md"
    doc.write_text("# Manual\n\nThe zanzibar inverter resets at dawn.\n\n![wiring](img/wiring.png)\n\nMore text.\n")
    (docs / "only_image.md").write_text("![nothing else](gone.png)\n")  # nothing to ingest: a failed file
    argv = ("ingest", str(docs), "--index", str(index), "--keyword-only", "--no-ocr", "--workers", "0")

    code, out, err = run(*argv)
    assert code == 0, out + err  # the README: non-zero only when nothing could be ingested
    assert "files read        1 (1 in part: see the errors)" in out and "errors            2" in out, out
    errors = [line for line in out.splitlines() if line.startswith("  error: ")]
    assert len(errors) == 2, out
    assert errors[0].startswith(f"  error: {doc} (image 1 'img/wiring.png'): image file 'img/wiring.png' not found"), errors
    assert str(docs / "only_image.md") in errors[1], errors
    assert str(doc) in json.loads((index / "sources.json").read_text())

    code, out, err = run(*argv)  # again: the document is not read again
    assert code == 0 and "files read        0" in out and "files unchanged   1" in out, out + err
    code, out, _ = run("query", "zanzibar inverter", "--index", str(index), "--keyword-only")
    assert code == 0 and f"[text] {doc}" in out, out


def test_api_ingests_documents_with_one_unreadable_image_each(tmp_path: Path, shared_data: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / ".img").mkdir()  # hidden: read only as the page's image
    (docs / ".img" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"truncated" * 10)
    (docs / "page.html").write_text(
        "<html><body><h1>Guide</h1><p>The wombat pump needs priming.</p>"
        '<img src=".img/broken.png" alt="pump diagram"></body></html>'
    )
    _docx_with_a_broken_picture(docs / "turbine.docx")
    shutil.copy(shared_data / "pdfs" / "malformed" / "qpdf__bad-jpeg.pdf", docs / "bad-jpeg.pdf")  # text + a bad JPEG
    wanted = [
        (str(docs / "bad-jpeg.pdf"), "(page 1 image 1)"),
        (str(docs / "page.html"), "(img 1 '.img/broken.png')"),
        (str(docs / "turbine.docx"), "(image 1 'media/image1.png')"),
    ]

    loaded = load_documents(docs, workers=0, ocr=False, blob_dir=str(tmp_path / "blobs"))
    assert sorted({c.source for c in loaded.chunks}) == [doc for doc, _ in wanted]
    assert sorted(e.source for e in loaded.errors) == [f"{doc} {ref}" for doc, ref in wanted]

    with MultiModalRAG(tmp_path / "index", keyword_only=True, reader_options={"ocr": False}) as rag:
        summary = rag.ingest(docs, workers=0)
        assert summary.ok and summary.files == 3 and summary.partial_files == 3, summary
        assert [(e.source, e.error) for e in summary.errors] == [(e.source, e.error) for e in loaded.errors]
        assert all("\n" not in e.error for e in summary.errors)
        again = rag.ingest(docs, workers=0)  # recorded: not read again
        assert (again.files, again.unchanged_files, again.errors) == (0, 3, ()), again
        assert {h.chunk.source for h in rag.search("wombat pump priming")} >= {str(docs / "page.html")}
