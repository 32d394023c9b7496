"""Documents in, text and tables out: mm-rag-plugin's readers against LangChain's and
LlamaIndex's own loaders, per format, on generated files whose content is known.

Files (made here, in a temp folder): a 3-page PDF (fpdf2: prose, a ruled table, a table of aligned
text without rules, a picture), a DOCX (prose, a table, a picture), a PPTX (3 slides: prose, a
table, a picture), an XLSX (two sheets) and a CSV. Reported per tool and format:

* ``text``: share of the known sentences found (whitespace normalised) in the tool's output;
* ``tables``: share of the known tables recovered cell for cell: every row, header included, on
  one line of the output with its cells in order, told apart by a delimiter (``|``, ``,``, a tab,
  two spaces or more; one space also parts the words of a cell), or every row as ``header:
  value`` lines (the same test for every tool);
* ``pictures``: pictures returned as images (the peers' loaders return text only);
* ``s/unit``: seconds per page (PDF), per file (DOCX), per slide (PPTX), per sheet (XLSX, CSV),
  median of ``--repeat`` runs.

Public PDFs with published tables (``benchmarks/data/tables``: tabula-py's test files and the
cells its tests expect, MIT): per file, the share of the expected cells each tool returns exactly,
each row's cells matched in order against the output line that holds most of them (cells told
apart as above: ``|``, a tab, two spaces or more), and seconds per page. pdfplumber's
``extract_tables`` (rows joined with `` | ``; ``pip install pdfplumber`` in the peers' virtualenv)
is a peer here.

Peers run in their own virtualenv (``--peer-python``, default ``/tmp/peervenv/bin/python``) made
with ``pip install langchain-community llama-index-readers-file docx2txt pandas openpyxl
python-pptx pypdf``: LangChain ``PyPDFLoader``, ``Docx2txtLoader``, ``CSVLoader``; LlamaIndex
``PDFReader``, ``DocxReader``, ``PptxReader``, ``PandasExcelReader``, ``PandasCSVReader``.
LangChain's PPTX and XLSX loaders are ``unstructured`` ones, and docling and unstructured need
their layout/OCR models downloaded at run time: they have no rows here.

    .venv/bin/python -m benchmarks.bench_documents [--repeat 3] [--peer-python PATH]
"""

from __future__ import annotations

import argparse
import io
import json
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "results" / "documents"

SENTENCES = [
    "The harbour ferry leaves at seven every morning from the northern pier.",
    "Quarterly revenue grew in every region except the coastal offices.",
    "Inspectors found the bridge bearings worn but safe for another winter.",
    "The library extends its opening hours during the examination period.",
    "Volunteers planted four hundred trees along the river embankment.",
    "A new bus line connects the university campus with the railway station.",
]
TABLE_A = [["City", "Rainfall (mm)", "Sunshine (h)", "Mean temp"]] + [
    [f"Town{i}", str(200 + i), str(900 + 3 * i), f"{i}.25"] for i in range(8)
]
TABLE_B = [["Product", "Units", "Price", "Region"]] + [
    [f"Item{i}", str(10 * i + 3), f"{i}.99", ["North", "South", "East"][i % 3]] for i in range(6)
]
TABLE_C = [["Office", "Staff", "Budget"], ["Oslo", "12", "4.5M"], ["Bergen", "7", "2.1M"], ["Tromso", "3", "0.9M"]]


def _picture() -> bytes:
    from PIL import Image, ImageDraw

    img = Image.new("RGB", (240, 160), "white")
    d = ImageDraw.Draw(img)
    d.rectangle((20, 20, 120, 120), fill="red")
    d.ellipse((130, 40, 220, 130), fill="blue")
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


# ---------------------------------------------------------------------- files
def make_files(folder: Path) -> dict[str, dict[str, Any]]:
    """The test files and what each holds: sentences, tables, pictures, units (pages, sheets)."""
    pic = folder / "picture.png"
    pic.write_bytes(_picture())
    return {
        "PDF": _pdf(folder / "doc.pdf", pic),
        "DOCX": _docx(folder / "doc.docx", pic),
        "PPTX": _pptx(folder / "deck.pptx", pic),
        "XLSX": _xlsx(folder / "book.xlsx"),
        "CSV": _csv(folder / "table.csv"),
    }


def _pdf(path: Path, pic: Path) -> dict[str, Any]:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=10)
    for page, (table, borders) in enumerate([(TABLE_A, "ALL"), (TABLE_B, "NONE"), (None, None)]):
        pdf.add_page()
        pdf.multi_cell(0, 5, " ".join(SENTENCES[2 * page : 2 * page + 2]))
        pdf.ln(6)
        if table is not None:
            with pdf.table(borders_layout=borders, first_row_as_headings=True, width=150) as t:
                for r in table:
                    row = t.row()
                    for c in r:
                        row.cell(c)
        else:
            pdf.image(str(pic), w=80)
    pdf.output(str(path))
    return {"path": path, "sentences": SENTENCES, "tables": [TABLE_A, TABLE_B], "pictures": 1, "units": 3}


def _docx(path: Path, pic: Path) -> dict[str, Any]:
    import docx

    doc = docx.Document()
    for s in SENTENCES[:3]:
        doc.add_paragraph(s)
    t = doc.add_table(rows=len(TABLE_C), cols=3)
    for r, row in enumerate(TABLE_C):
        for c, v in enumerate(row):
            t.cell(r, c).text = v
    doc.add_picture(str(pic))
    for s in SENTENCES[3:]:
        doc.add_paragraph(s)
    doc.save(str(path))
    return {"path": path, "sentences": SENTENCES, "tables": [TABLE_C], "pictures": 1, "units": 1}


def _pptx(path: Path, pic: Path) -> dict[str, Any]:
    from pptx import Presentation
    from pptx.util import Inches

    prs = Presentation()
    layout = prs.slide_layouts[5]  # title only
    for k in range(3):
        slide = prs.slides.add_slide(layout)
        slide.shapes.title.text = f"Slide {k + 1}"
        box = slide.shapes.add_textbox(Inches(0.5), Inches(1.5), Inches(9), Inches(1))
        box.text_frame.text = " ".join(SENTENCES[2 * k : 2 * k + 2])
        if k == 1:
            shape = slide.shapes.add_table(len(TABLE_C), 3, Inches(0.5), Inches(3), Inches(6), Inches(2))
            for r, row in enumerate(TABLE_C):
                for c, v in enumerate(row):
                    shape.table.cell(r, c).text = v
        if k == 2:
            slide.shapes.add_picture(str(pic), Inches(1), Inches(3), Inches(3))
    prs.save(str(path))
    return {"path": path, "sentences": SENTENCES, "tables": [TABLE_C], "pictures": 1, "units": 3}


def _xlsx(path: Path) -> dict[str, Any]:
    from openpyxl import Workbook

    wb = Workbook()
    for k, table in enumerate([TABLE_A, TABLE_B]):
        ws = wb.active if k == 0 else wb.create_sheet()
        ws.title = f"Sheet{k + 1}"
        for row in table:
            ws.append([_number(v) for v in row])
    wb.save(str(path))
    return {"path": path, "sentences": [], "tables": [TABLE_A, TABLE_B], "pictures": 0, "units": 2}


def _number(v: str) -> Any:
    try:
        return int(v)
    except ValueError:
        try:
            return float(v)
        except ValueError:
            return v


def _csv(path: Path) -> dict[str, Any]:
    import csv

    with path.open("w", newline="") as fh:
        csv.writer(fh).writerows(TABLE_A)
    return {"path": path, "sentences": [], "tables": [TABLE_A], "pictures": 0, "units": 1}


# ---------------------------------------------------------------------- scoring
def _norm(text: str) -> str:
    return " ".join(text.split())


#: What may separate two cells so that a reader can tell them apart: ``|``, a tab, a comma, two
#: spaces or more (one space also separates the words of a cell: "Rainfall (mm)").
_SEP = r"(?:\s*[|\t,]\s*|\s{2,})"


def _table_found(table: list[list[str]], texts: list[str]) -> bool:
    """Every row of *table*, header included, on one line with its cells in order and told apart;
    or every body row as ``header: value`` lines (LangChain's CSVLoader)."""
    lines = [ln for t in texts for ln in t.splitlines()]

    def row_found(row: list[str]) -> bool:
        pattern = re.compile(r"(?:^|[|\t,]\s*|\s{2,})" + _SEP.join(re.escape(c) for c in row) + r"(?:$|\s*[|\t,]|\s{2,})")
        return any(pattern.search(line.strip()) for line in lines)

    if all(row_found(r) for r in table):
        return True
    header = table[0]
    pairs = [[f"{h}: {v}" for h, v in zip(header, row, strict=False)] for row in table[1:]]
    return all(any(all(p in t for p in row) for t in texts) for row in pairs)


def score(texts: list[str], pictures: int, truth: dict[str, Any]) -> dict[str, Any]:
    whole = _norm(" ".join(texts))
    sentences = truth["sentences"]
    tables = truth["tables"]
    return {
        "text": round(sum(_norm(s) in whole for s in sentences) / len(sentences), 3) if sentences else None,
        "tables": round(sum(_table_found(t, texts) for t in tables) / len(tables), 3),
        "pictures": f"{min(pictures, truth['pictures'])}/{truth['pictures']}" if truth["pictures"] else None,
    }


# ---------------------------------------------------------------------- public PDF tables
PUBLIC = Path(__file__).resolve().parent / "data" / "tables"
#: PDF -> the CSV of its cells that the source project's tests expect (see PUBLIC / "README.md")
PUBLIC_TABLES = {"data.pdf": "data_1.csv", "campaign_donors.pdf": "campaign_donors.csv"}
_CELL_SPLIT = re.compile(r"\s*\|\s*|\t|\s{2,}")


def expected_cells(csv_path: Path) -> list[list[str]]:
    """The expected rows, empty cells left out."""
    import csv

    with csv_path.open(newline="", encoding="utf-8") as fh:
        rows = [[_norm(c) for c in row if c.strip()] for row in csv.reader(fh)]
    return [r for r in rows if r]


def _lcs(a: list[str], b: list[str]) -> int:
    prev = [0] * (len(b) + 1)
    for x in a:
        cur = [0]
        for j, y in enumerate(b):
            cur.append(prev[j] + 1 if x == y else max(prev[j + 1], cur[j]))
        prev = cur
    return prev[-1]


def cells_recovered(rows: list[list[str]], texts: list[str]) -> float:
    """Share of the cells of *rows* found exactly, in order, on the output line holding most of
    each row's cells."""
    lines = [[_norm(c) for c in _CELL_SPLIT.split(ln.strip()) if c.strip()] for t in texts for ln in t.splitlines()]
    lines = [ln for ln in lines if ln]
    found = 0
    for row in rows:
        want = set(row)
        found += max((_lcs(row, ln) for ln in lines if want.intersection(ln)), default=0)
    return round(found / sum(len(r) for r in rows), 3)


def pdfplumber_texts(path: Path) -> list[str]:
    """pdfplumber's ``extract_tables`` on every page, each row on a line, cells joined by `` | ``."""
    import pdfplumber

    out: list[str] = []
    with pdfplumber.open(str(path)) as pdf:
        for page in pdf.pages:
            for table in page.extract_tables():
                out.append("\n".join(" | ".join(_norm(c or "") for c in row) for row in table))
    return out


def _pages(path: Path) -> int:
    import pypdfium2

    doc = pypdfium2.PdfDocument(str(path))
    try:
        return len(doc)
    finally:
        doc.close()


def run_public(repeat: int, peer_python: str | None, blob_dir: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name, expected in PUBLIC_TABLES.items():
        path = PUBLIC / name
        cells = expected_cells(PUBLIC / expected)
        pages = _pages(path)
        cache: dict[str, Any] = {}
        ours(path, blob_dir, cache)  # warm-up
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            texts = ours(path, blob_dir, cache)[0]
            times.append(time.perf_counter() - t)
        rows.append({"file": name, "tool": "mm-rag-plugin", "cells": cells_recovered(cells, texts),
                     "n_cells": sum(len(r) for r in cells), "s_per_page": round(statistics.median(times) / pages, 4)})
        for tool, specs in {**PEERS, "pdfplumber": {"PDF": "pdfplumber:extract_tables"}}.items():
            spec = specs["PDF"]
            if not peer_python or not Path(peer_python).exists():
                rows.append({"file": name, "tool": tool, "error": "peer virtualenv not found"})
                continue
            got = run_peer(peer_python, tool, spec, path, repeat)
            if "error" in got:
                rows.append({"file": name, "tool": tool, "loader": spec.split(":")[1], "error": got["error"]})
                continue
            rows.append({"file": name, "tool": tool, "loader": spec.split(":")[1],
                         "cells": cells_recovered(cells, got["texts"]), "n_cells": sum(len(r) for r in cells),
                         "s_per_page": round(got["seconds"] / pages, 4)})
    return rows


# ---------------------------------------------------------------------- tools
def ours(path: Path, blob_dir: str, cache: dict[str, Any]) -> tuple[list[str], int]:
    from mm_rag_plugin.readers import ReaderConfig
    from mm_rag_plugin.readers.loader import read_file

    res = read_file(path, ReaderConfig(ocr=False, blob_dir=blob_dir), _cache=cache)
    if res.errors:
        raise RuntimeError(f"{path}: {res.errors}")
    return [c.text for c in res.texts], len(res.images)


PEERS: dict[str, dict[str, str]] = {
    "langchain": {
        "PDF": "langchain_community.document_loaders:PyPDFLoader",
        "DOCX": "langchain_community.document_loaders:Docx2txtLoader",
        "CSV": "langchain_community.document_loaders:CSVLoader",
    },
    "llamaindex": {
        "PDF": "llama_index.readers.file:PDFReader",
        "DOCX": "llama_index.readers.file:DocxReader",
        "PPTX": "llama_index.readers.file:PptxReader",
        "XLSX": "llama_index.readers.file:PandasExcelReader",
        "CSV": "llama_index.readers.file:PandasCSVReader",
    },
}


def peer_child(tool: str, spec: str, path: str, repeat: int) -> dict[str, Any]:
    """Run in the peers' virtualenv: load *path* with *spec*, *repeat* times."""
    import importlib

    module, name = spec.split(":")
    cls = getattr(importlib.import_module(module), name) if tool != "pdfplumber" else None
    times = []
    texts: list[str] = []
    for _ in range(repeat):
        t = time.perf_counter()
        if tool == "pdfplumber":
            texts = pdfplumber_texts(Path(path))
        elif tool == "langchain":
            docs = cls(path).load()
            texts = [d.page_content for d in docs]
        else:
            docs = cls().load_data(Path(path))
            texts = [d.text for d in docs]
        times.append(time.perf_counter() - t)
    return {"texts": texts, "seconds": statistics.median(times)}


def run_peer(python: str, tool: str, spec: str, path: Path, repeat: int) -> dict[str, Any]:
    code = (
        "import json,sys; from benchmarks.bench_documents import peer_child; "
        "print(json.dumps(peer_child(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]))))"
    )
    root = Path(__file__).resolve().parents[1]
    proc = subprocess.run(
        [python, "-c", code, tool, spec, str(path), str(repeat)],
        capture_output=True, text=True, cwd=root, timeout=600,
    )
    if proc.returncode != 0:
        return {"error": proc.stderr.strip().splitlines()[-1][:200] if proc.stderr.strip() else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------------- main
def run(repeat: int, peer_python: str | None) -> dict[str, Any]:
    from benchmarks._common import commit, machine

    folder = Path(tempfile.mkdtemp(prefix="bench-documents-"))
    files = make_files(folder)
    blob_dir = str(folder / "blobs")
    rows: list[dict[str, Any]] = []
    for fmt, truth in files.items():
        cache: dict[str, Any] = {}  # one reader per format, as the loader keeps it
        ours(truth["path"], blob_dir, cache)  # warm-up: imports, the reader
        times = []
        for _ in range(repeat):
            t = time.perf_counter()
            texts, pictures = ours(truth["path"], blob_dir, cache)
            times.append(time.perf_counter() - t)
        rows.append(
            {"format": fmt, "tool": "mm-rag-plugin", **score(texts, pictures, truth),
             "s_per_unit": round(statistics.median(times) / truth["units"], 4)}
        )
        for tool, specs in PEERS.items():
            spec = specs.get(fmt)
            if spec is None:
                rows.append({"format": fmt, "tool": tool, "error": "no loader without unstructured"})
                continue
            if not peer_python or not Path(peer_python).exists():
                rows.append({"format": fmt, "tool": tool, "error": "peer virtualenv not found"})
                continue
            got = run_peer(peer_python, tool, spec, truth["path"], repeat)
            if "error" in got:
                rows.append({"format": fmt, "tool": tool, "loader": spec.split(":")[1], "error": got["error"]})
                continue
            rows.append(
                {"format": fmt, "tool": tool, "loader": spec.split(":")[1], **score(got["texts"], 0, truth),
                 "s_per_unit": round(got["seconds"] / truth["units"], 4)}
            )
    public = run_public(repeat, peer_python, blob_dir)
    return {"rows": rows, "public_tables": public, "repeat": repeat, "commit": commit(), "machine": machine()}


def markdown(res: dict[str, Any]) -> list[str]:
    out = [
        "| format | tool | text found | tables cell for cell | pictures | s per page/sheet |",
        "|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        tool = r["tool"] + (f" ({r['loader']})" if r.get("loader") else "")
        if "error" in r:
            out.append(f"| {r['format']} | {tool} | - | - | - | {r['error']} |")
            continue
        text = "-" if r["text"] is None else f"{r['text']:.0%}"
        out.append(
            f"| {r['format']} | {tool} | {text} | {r['tables']:.0%} | {r['pictures'] or '-'} | {r['s_per_unit']:.4f} |"
        )
    if res.get("public_tables"):
        out += [
            "",
            "Public PDFs with published tables (benchmarks/data/tables): share of the expected cells recovered exactly.",
            "",
            "| file | tool | cells recovered | s per page |",
            "|---|---|---|---|",
        ]
        for r in res["public_tables"]:
            tool = r["tool"] + (f" ({r['loader']})" if r.get("loader") else "")
            if "error" in r:
                out.append(f"| {r['file']} | {tool} | - | {r['error']} |")
            else:
                out.append(f"| {r['file']} ({r['n_cells']} cells) | {tool} | {r['cells']:.1%} | {r['s_per_page']:.4f} |")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--peer-python", default="/tmp/peervenv/bin/python")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    res = run(args.repeat, args.peer_python)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / "results.md").write_text("\n".join(markdown(res)) + "\n")
    print("\n".join(markdown(res)))


if __name__ == "__main__":
    main(sys.argv[1:])
