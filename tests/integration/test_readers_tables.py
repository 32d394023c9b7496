"""Tables in PDFs and DOCX files become table chunks: cells recovered one for one under their
header (repeated in every chunk), captions, no double indexing, found by keyword search."""

from __future__ import annotations

from pathlib import Path

import pytest

from mm_rag_plugin.readers import DocxReader, PdfReader
from mm_rag_plugin.types import TextChunk

fpdf = pytest.importorskip("fpdf")

HEADER = ["City", "Rainfall (mm)", "Sunshine (h)", "Mean temp"]
ROWS = [[f"Town{i}", str(200 + i), str(900 + 3 * i), f"{i}.25"] for i in range(6)]
INTRO = "Some introductory prose about the weather survey written before the table appears."
OUTRO = "Closing paragraph after the table with ordinary prose words about Zanzibar ferries."


def _pdf(path: Path, header: list[str], rows: list[list[str]], *, borders: str = "ALL",
         caption: str = "", gap: float = 0, repeat: int = 1) -> Path:
    pdf = fpdf.FPDF()
    pdf.add_page()
    pdf.set_font("Helvetica", size=10)
    pdf.multi_cell(0, 5, INTRO)
    pdf.ln(4 + gap)
    if caption:
        pdf.cell(0, 6, caption, new_x="LMARGIN", new_y="NEXT")
    with pdf.table(borders_layout=borders, first_row_as_headings=True, repeat_headings=repeat, width=150) as t:
        for r in [header, *rows]:
            row = t.row()
            for c in r:
                row.cell(c)
    pdf.ln(4)
    pdf.multi_cell(0, 5, OUTRO)
    pdf.output(str(path))
    return path


def _read(path: Path, **options):
    reader = PdfReader(ocr=False, blob_dir=str(path.parent / "blobs"), **options) if path.suffix == ".pdf" \
        else DocxReader(ocr=False, blob_dir=str(path.parent / "blobs"), **options)
    res = reader.read(path)
    assert res.errors == []
    tables = [c for c in res.texts if "table" in c.metadata]
    texts = [c for c in res.texts if "table" not in c.metadata]
    return res, tables, texts


def _all_rows(tables: list[TextChunk]) -> list[list[str]]:
    return [row for t in tables for row in t.metadata["table"]["rows"]]


@pytest.mark.parametrize("borders", ["ALL", "NONE"], ids=["ruled", "unruled"])
def test_pdf_table_cells_recovered_with_caption_and_not_indexed_twice(tmp_path: Path, borders: str) -> None:
    path = _pdf(tmp_path / f"{borders}.pdf", HEADER, ROWS, borders=borders, caption="Table 3: Weather by town")
    _res, tables, texts = _read(path)
    assert len(tables) == 1
    table = tables[0]
    assert table.metadata["table"]["header"] == HEADER
    assert table.metadata["table"]["rows"] == ROWS
    assert table.metadata["caption"] == "Table 3: Weather by town"
    assert table.text.startswith("Table 3: Weather by town\n\n| City | Rainfall (mm) | Sunshine (h) | Mean temp |")
    assert "| Town3 | 203 | 909 | 3.25 |" in table.text
    assert table.page == 1 and table.bbox is not None
    body = " ".join(t.text for t in texts)
    assert "Zanzibar" in body and "introductory" in body  # the page's own text is still there
    for cell in ("Town0", "Town5", "909", "Rainfall", "Sunshine"):
        assert cell not in body  # table words are indexed once, in the table chunk
    # reading order: prose, table, prose
    order = [c.position for c in (texts[0], table, texts[-1])]
    assert order == sorted(order)


def test_pdf_table_split_across_pages_keeps_its_header(tmp_path: Path) -> None:
    rows = [[f"Town{i}", str(200 + i), str(900 + i), f"{i}.25"] for i in range(20)]
    # the table starts low on page 1 and goes on on page 2, where the header is NOT drawn again
    path = _pdf(tmp_path / "split.pdf", HEADER, rows, caption="Table 5: Split table", gap=150, repeat=0)
    _res, tables, _texts = _read(path)
    assert {t.page for t in tables} == {1, 2}
    assert all(t.metadata["table"]["header"] == HEADER for t in tables)
    assert all(t.text.startswith("Table 5: Split table\n\n| City | Rainfall (mm) |") for t in tables)
    assert _all_rows(tables) == rows  # every row once, none taken for a header
    assert [t.metadata.get("continued", False) for t in tables] == [False, True]


def test_pdf_long_table_chunks_repeat_the_header_and_keep_rows_whole(tmp_path: Path) -> None:
    rows = [[f"Town{i}", str(200 + i), str(900 + i), f"{i}.25"] for i in range(30)]
    path = _pdf(tmp_path / "long.pdf", HEADER, rows)
    _res, tables, _texts = _read(path, chunk_size=300)
    assert len(tables) >= 3
    for t in tables:
        lines = t.text.splitlines()
        assert lines[0] == "| City | Rainfall (mm) | Sunshine (h) | Mean temp |"
        assert all(line.startswith("| ") and line.endswith(" |") for line in lines)
        assert len(lines) - 2 == len(t.metadata["table"]["rows"])
    assert _all_rows(tables) == rows


def test_keyword_question_naming_row_and_column_finds_the_table_first(tmp_path: Path) -> None:
    from mm_rag_plugin.retrievers import FusedRetriever, MultiModalIndex

    path = _pdf(tmp_path / "weather.pdf", HEADER, ROWS, caption="Table 3: Weather by town")
    res, tables, _texts = _read(path)
    with MultiModalIndex(tmp_path / "index", keyword_only=True, show_progress=False) as index:
        index.add(res.chunks)
        hits = FusedRetriever(index, k=5).retrieve("sunshine hours of Town4")
    assert hits and hits[0].chunk.id == tables[0].id


def test_real_pdf_table_with_rules_and_two_line_header(shared_data: Path) -> None:
    path = shared_data / "pdfs" / "text_figures" / "unst__embedded-images-tables.pdf"
    res = PdfReader(ocr=False, extract_images=False).read(path)
    tables = [c for c in res.texts if "table" in c.metadata]
    assert len(tables) == 1
    table = tables[0].metadata["table"]
    assert table["header"][:4] == ["Inhibitor concentration (g)", "bc (V/dec)", "ba (V/dec)", "Ecorr (V)"]
    assert table["header"][-1] == "Corrosion rate (mm/year)"
    assert table["rows"][0] == ["0", "0.0335", "0.0409", "0.9393", "0.0003", "24.0910", "2.8163"]
    assert table["rows"][4] == ["8", "0.1240", "0.0556", "0.5896", "5.46E-05", "305.650", "0.3772"]
    assert len(table["rows"]) == 6
    assert tables[0].metadata["caption"].startswith("Table 1 Potentiodynamic polarization data")
    body = " ".join(c.text for c in res.texts if "table" not in c.metadata)
    assert "305.650" not in body and "Langmuir adsorption isotherm" in body


def test_table_detector_failure_keeps_the_page_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from mm_rag_plugin.readers import pdf as pdf_module

    def broken(*_a, **_k):
        raise RuntimeError("detector bug")

    monkeypatch.setattr(pdf_module, "find_tables", broken)
    path = _pdf(tmp_path / "t.pdf", HEADER, ROWS)
    res = PdfReader(ocr=False, blob_dir=str(tmp_path / "blobs")).read(path)
    assert len(res.errors) == 1 and "page 1 tables" in res.errors[0].source
    assert "detector bug" in res.errors[0].error and "\n" not in res.errors[0].error
    body = " ".join(c.text for c in res.texts)
    assert "Town3 203 909 3.25" in body and "Zanzibar" in body


def _docx(path: Path) -> Path:
    docx = pytest.importorskip("docx")
    doc = docx.Document()
    doc.add_paragraph(INTRO)
    doc.add_paragraph("Table 2: Staff by office")
    t = doc.add_table(rows=4, cols=3)
    data = [["Office", "Staff", "Budget"], ["Oslo", "12", "4.5M"], ["Bergen", "7", "2.1M"], ["Tromso", "3", "0.9M"]]
    for r, row in enumerate(data):
        for c, v in enumerate(row):
            t.cell(r, c).text = v
    m = doc.add_table(rows=3, cols=3)
    m.cell(0, 0).text, m.cell(0, 1).text, m.cell(0, 2).text = "Region", "Q1", "Q2"
    m.cell(1, 0).merge(m.cell(2, 0)).text = "North"  # vertical merge
    m.cell(1, 1).merge(m.cell(1, 2)).text = "closed"  # horizontal merge
    m.cell(2, 1).text, m.cell(2, 2).text = "5", "6"
    doc.add_paragraph(OUTRO)
    doc.save(str(path))
    return path


def test_docx_tables_plain_and_merged(tmp_path: Path) -> None:
    _res, tables, texts = _read(_docx(tmp_path / "doc.docx"))
    assert len(tables) == 2
    plain, merged = tables
    assert plain.metadata["table"] == {
        "header": ["Office", "Staff", "Budget"],
        "rows": [["Oslo", "12", "4.5M"], ["Bergen", "7", "2.1M"], ["Tromso", "3", "0.9M"]],
    }
    assert plain.metadata["caption"] == "Table 2: Staff by office"
    assert plain.text.startswith("Table 2: Staff by office\n\n| Office | Staff | Budget |\n| --- | --- | --- |\n| Oslo |")
    # merged cells: repeated over the cells they cover in the data, spans in the HTML text
    assert merged.metadata["table"]["rows"] == [["North", "closed", "closed"], ["North", "5", "6"]]
    assert '<td rowspan="2">North</td><td colspan="2">closed</td>' in merged.text
    assert "<th>Region</th><th>Q1</th><th>Q2</th>" in merged.text
    body = " ".join(t.text for t in texts)
    assert "Zanzibar" in body and "Bergen" not in body and "North" not in body
