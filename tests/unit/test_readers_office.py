"""PPTX, XLSX and CSV/TSV readers on files built here with known content, their malformed and
hostile twins, and a deck and a sheet ingested into a keyword index."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import re
import zipfile
from pathlib import Path

import pytest
from lxml import etree
from PIL import Image, ImageDraw, ImageFont

from mm_rag_plugin.errors import InvalidInputError
from mm_rag_plugin.readers import load_documents
from mm_rag_plugin.readers._detect import detect_kind
from mm_rag_plugin.readers.pptx import PptxReader
from mm_rag_plugin.readers.spreadsheet import CsvReader, XlsxReader
from tests._cli import run

pptx = pytest.importorskip("pptx")
openpyxl = pytest.importorskip("openpyxl")

OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


def _word_png(word: str) -> bytes:
    img = Image.new("RGB", (700, 180), "white")
    ImageDraw.Draw(img).text((30, 40), word, fill="black", font=ImageFont.load_default(size=72))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


_ALTERNATE = """<mc:AlternateContent xmlns:mc="http://schemas.openxmlformats.org/markup-compatibility/2006"
  xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"
  xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"
  xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">
 <mc:Choice Requires="cx1"><p:graphicFrame/></mc:Choice>
 <mc:Fallback>
  <p:sp><p:nvSpPr><p:cNvPr id="90" name="Chart" descr="Waterfall of costs"/><p:cNvSpPr/><p:nvPr/></p:nvSpPr>
   <p:spPr><a:blipFill><a:blip r:embed="{rid}"/></a:blipFill></p:spPr>
   <p:txBody><a:bodyPr/><a:p><a:r><a:t>This chart needs a newer PowerPoint</a:t></a:r></a:p></p:txBody></p:sp>
 </mc:Fallback>
</mc:AlternateContent>"""


def _deck(path: Path) -> Path:
    from pptx.chart.data import CategoryChartData
    from pptx.enum.chart import XL_CHART_TYPE
    from pptx.util import Inches

    prs = pptx.Presentation()
    title_only = prs.slide_layouts[5]
    s1 = prs.slides.add_slide(title_only)
    s1.shapes.title.text = "Quarterly Review"
    low = s1.shapes.add_textbox(Inches(1), Inches(5), Inches(4), Inches(1))  # added first, read second
    low.text_frame.text = "Second point lower"
    high = s1.shapes.add_textbox(Inches(1), Inches(2.5), Inches(4), Inches(1))
    high.text_frame.text = "First point higher"
    group = s1.shapes.add_group_shape()
    group.shapes.add_textbox(Inches(6), Inches(6.5), Inches(3), Inches(0.5)).text_frame.text = "Grouped caption zebra"
    s1.notes_slide.notes_text_frame.text = "Remember to thank the auditors"

    s2 = prs.slides.add_slide(title_only)
    s2.shapes.title.text = "Regional Sales"
    table = s2.shapes.add_table(3, 3, Inches(1), Inches(2), Inches(6), Inches(2)).table
    for r, row in enumerate([["Region", "Revenue", "Units"], ["North", "120", "7"], ["South", "95", "4"]]):
        for c, value in enumerate(row):
            table.cell(r, c).text = value

    s3 = prs.slides.add_slide(title_only)
    s3.shapes.title.text = "Signage"
    pic = s3.shapes.add_picture(io.BytesIO(_word_png("KANGAROO")), Inches(1), Inches(2))
    pic._element.nvPicPr.cNvPr.set("descr", "Road sign")

    s4 = prs.slides.add_slide(title_only)
    s4.shapes.title.text = "Growth"
    data = CategoryChartData()
    data.categories = ["Q1", "Q2"]
    data.add_series("Revenue", (10.5, 20.0))
    chart = s4.shapes.add_chart(XL_CHART_TYPE.COLUMN_CLUSTERED, Inches(1), Inches(2), Inches(6), Inches(4), data).chart
    chart.has_title = True
    chart.chart_title.text_frame.text = "Revenue by quarter"
    # a chart type python-pptx does not know, as PowerPoint saves it: a fallback text and picture
    _, rid = s4.part.get_or_add_image_part(io.BytesIO(_word_png("WATERFALL")))
    s4.shapes._spTree.append(etree.fromstring(_ALTERNATE.format(rid=rid)))

    s5 = prs.slides.add_slide(title_only)
    s5.shapes.title.text = "Draft"
    s5.shapes.add_textbox(Inches(1), Inches(2), Inches(4), Inches(1)).text_frame.text = "Secret roadmap"
    s5._element.set("show", "0")
    prs.save(path)
    return path


def test_pptx_slides_text_order_notes_tables_pictures_charts_hidden(tmp_path: Path) -> None:
    res = PptxReader(blob_dir=str(tmp_path / "blobs")).read(_deck(tmp_path / "deck.pptx"))
    assert res.errors == []
    by_page: dict[int, list] = {}
    for c in res.chunks:
        by_page.setdefault(c.page, []).append(c)
    assert sorted(by_page) == [1, 2, 3, 4, 5]

    body, notes = by_page[1]
    assert body.section == "Quarterly Review" and notes.section == "Quarterly Review"
    positions = [body.text.index(t) for t in ("Quarterly Review", "First point higher", "Second point lower")]
    assert positions == sorted(positions)  # top to bottom, not in the order added
    assert "Grouped caption zebra" in body.text  # recursed into the group
    assert notes.text == "Remember to thank the auditors" and notes.metadata["notes"] is True

    table = next(c for c in by_page[2] if "table" in c.metadata)
    assert table.section == "Regional Sales"
    assert table.text.splitlines()[0] == "| Region | Revenue | Units |"
    assert "| South | 95 | 4 |" in table.text
    assert table.metadata["table"] == {"header": ["Region", "Revenue", "Units"], "rows": [["North", "120", "7"], ["South", "95", "4"]]}

    (picture,) = [c for c in by_page[3] if c.kind == "image"]
    assert picture.alt_text == "Road sign" and picture.section == "Signage"
    assert "KANGAROO" in picture.ocr_text  # through the OCR gate

    chart = next(c for c in by_page[4] if "chart" in c.metadata)
    assert chart.metadata["chart"]["type"] == "column clustered"
    assert chart.metadata["chart"]["categories"] == ["Q1", "Q2"]
    assert chart.metadata["chart"]["series"] == [{"name": "Revenue", "values": ["10.5", "20"]}]
    assert "Revenue by quarter" in chart.text and "| Q1 | 10.5 |" in chart.text
    (fallback,) = [c for c in by_page[4] if c.kind == "image"]
    assert fallback.metadata["fallback_picture"] is True and fallback.alt_text == "Waterfall of costs"
    assert "This chart needs a newer PowerPoint" in "\n".join(c.text for c in by_page[4])

    assert [c.text for c in by_page[5] if "Secret roadmap" in c.text]
    assert all(c.metadata.get("hidden") is True for c in by_page[5])
    assert not any(c.metadata.get("hidden") for p in (1, 2, 3, 4) for c in by_page[p])


def _png_file(tmp_path: Path) -> Path:
    path = tmp_path / "logo.png"
    Image.new("RGB", (120, 80), "navy").save(path)
    return path


def _workbook(path: Path, tmp_path: Path, *, cached_total: str | None = "2500.5") -> Path:
    from openpyxl.drawing.image import Image as XlImage

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Sales"
    # row 1 and column A stay empty; a group header "Revenue" merged over Q1/Q2
    ws["B2"], ws["C2"], ws["E2"], ws["F2"], ws["G2"] = "Region", "Revenue", "Date", "Share", "Total"
    ws["C3"], ws["D3"] = "Q1", "Q2"
    for ref in ("B2:B3", "C2:D2", "E2:E3", "F2:F3", "G2:G3"):
        ws.merge_cells(ref)
    ws.append([None, "North", 1200, 1300.5, dt.date(2024, 3, 31), 0.25, "=C4+D4"])  # row 4
    ws.append([])  # row 5: empty
    ws.append([None, "South", 3.0, 0.1 + 0.2, dt.datetime(2024, 1, 2), 0.125, "=C6+D6"])  # row 6
    ws["F4"].number_format = "0%"
    ws["F6"].number_format = "0.0%"
    notes = wb.create_sheet("Notes")
    notes.append(["Key", "Value"])
    notes.append(["owner", "finance team"])
    notes.add_image(XlImage(str(_png_file(tmp_path))), "D2")
    wb.save(path)
    if cached_total is not None:  # what Excel saves: the formula and its value (openpyxl saves none)
        _patch(path, "xl/worksheets/sheet1.xml", lambda x: x.replace(b"<f>C4+D4</f><v></v>", f"<f>C4+D4</f><v>{cached_total}</v>".encode()))
    return path


def _patch(path: Path, part: str, edit) -> None:
    with zipfile.ZipFile(path) as zf:
        parts = {i.filename: zf.read(i) for i in zf.infolist()}
    parts[part] = edit(parts[part])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in parts.items():
            zf.writestr(name, data)


SALES_HEADER = ["Region", "Revenue Q1", "Revenue Q2", "Date", "Share", "Total"]
SALES_ROWS = [
    ["North", "1200", "1300.5", "2024-03-31", "25%", "2500.5"],
    ["South", "3", "0.3", "2024-01-02", "12.5%", ""],  # a formula saved without a value reads empty
]


@pytest.mark.parametrize("full_mode", [True, False], ids=["full", "read-only"])
def test_xlsx_sheets_as_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, full_mode: bool) -> None:
    from mm_rag_plugin.readers import spreadsheet

    if not full_mode:  # as for a large workbook: streamed, merged ranges scanned from the XML
        monkeypatch.setattr(spreadsheet, "FULL_MODE_BYTES", 0)
    res = XlsxReader(ocr=False, blob_dir=str(tmp_path / "blobs")).read(_workbook(tmp_path / "book.xlsx", tmp_path))
    assert res.errors == []
    sales, notes = res.texts
    assert sales.section == "Sales" and sales.metadata["sheet"] == "Sales"
    assert sales.metadata["table"] == {"header": SALES_HEADER, "rows": SALES_ROWS}
    assert (sales.metadata["first_row"], sales.metadata["last_row"]) == (4, 6)
    assert sales.text.splitlines()[0] == "| Region | Revenue Q1 | Revenue Q2 | Date | Share | Total |"
    assert sales.text.splitlines()[2] == "| North | 1200 | 1300.5 | 2024-03-31 | 25% | 2500.5 |"
    assert notes.section == "Notes" and notes.metadata["table"]["rows"] == [["owner", "finance team"]]
    # pictures come from the drawing parts in either mode (large workbooks keep theirs)
    (img,) = res.images
    assert img.section == "Notes" and img.metadata["anchor"] == "D2" and img.width == 120


def _chart_book(path: Path, tmp_path: Path) -> Path:
    from openpyxl.chart import BarChart, Reference, ScatterChart, Series
    from openpyxl.drawing.image import Image as XlImage

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Fleet"
    for row in [["Year", "Ferries", "Buses"], ["2021", 12, 40], ["2022", 14, 38.5], ["2023", 15, 41]]:
        ws.append(row)
    bar = BarChart()
    bar.title = "Vehicles per year"
    bar.add_data(Reference(ws, min_col=2, min_row=1, max_col=3, max_row=4), titles_from_data=True)
    bar.set_categories(Reference(ws, min_col=1, min_row=2, max_row=4))
    ws.add_chart(bar, "E2")
    scatter = ScatterChart()
    scatter.series.append(
        Series(Reference(ws, min_col=3, min_row=2, max_row=4), Reference(ws, min_col=2, min_row=2, max_row=4), title="Buses by ferries")
    )
    ws.add_chart(scatter, "E20")
    ws.add_image(XlImage(str(_png_file(tmp_path))), "A10")
    wb.save(path)
    # openpyxl writes references only (chart namespace as the default one); Excel also saves the
    # values it drew: add those caches
    caches = {
        b"<f>'Fleet'!B1</f>": b'<strCache><ptCount val="1"/><pt idx="0"><v>Ferries</v></pt></strCache>',
        b"<f>'Fleet'!C1</f>": b'<strCache><ptCount val="1"/><pt idx="0"><v>Buses</v></pt></strCache>',
        b"<f>'Fleet'!$A$2:$A$4</f>": b'<strCache><ptCount val="3"/><pt idx="0"><v>2021</v></pt>'
        b'<pt idx="1"><v>2022</v></pt><pt idx="2"><v>2023</v></pt></strCache>',
        b"<f>'Fleet'!$B$2:$B$4</f>": b'<numCache><ptCount val="3"/><pt idx="0"><v>12</v></pt>'
        b'<pt idx="1"><v>14</v></pt><pt idx="2"><v>15</v></pt></numCache>',
        b"<f>'Fleet'!$C$2:$C$4</f>": b'<numCache><ptCount val="3"/><pt idx="0"><v>40.0</v></pt>'
        b'<pt idx="2"><v>41</v></pt></numCache>',  # idx 1 left out: an empty cell
    }

    def add_caches(xml: bytes) -> bytes:
        for ref, cache in caches.items():
            xml = xml.replace(ref, ref + cache)
        return xml

    with zipfile.ZipFile(path) as zf:
        charts = [n for n in zf.namelist() if n.startswith("xl/charts/chart")]
    for part in charts:
        _patch(path, part, add_caches)
    return path


@pytest.mark.parametrize("full_mode", [True, False], ids=["full", "read-only"])
def test_xlsx_charts_as_their_cached_data_and_pictures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, full_mode: bool) -> None:
    from mm_rag_plugin.readers import spreadsheet

    if not full_mode:
        monkeypatch.setattr(spreadsheet, "FULL_MODE_BYTES", 0)
    res = XlsxReader(ocr=False, blob_dir=str(tmp_path / "blobs")).read(_chart_book(tmp_path / "fleet.xlsx", tmp_path))
    assert res.errors == []
    charts = [c for c in res.texts if "chart" in c.metadata]
    assert [c.metadata["anchor"] for c in charts] == ["E2", "E20"]
    bar, scatter = charts
    assert bar.section == "Fleet" and bar.text.splitlines()[0] == "Chart (bar): Vehicles per year"
    assert bar.metadata["table"] == {
        "header": ["category", "Ferries", "Buses"],
        "rows": [["2021", "12", "40"], ["2022", "14", ""], ["2023", "15", "41"]],
    }
    assert bar.metadata["chart"]["series"][0] == {"name": "Ferries", "values": ["12", "14", "15"]}
    assert scatter.metadata["chart"]["type"] == "scatter"
    assert scatter.metadata["table"]["rows"] == [["12", "40"], ["14", ""], ["15", "41"]]
    (img,) = res.images
    assert img.metadata["anchor"] == "A10" and img.width == 120


def test_xlsx_rows_chunked_whole_under_a_repeated_header(tmp_path: Path) -> None:
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.append(["City", "Population", "Note"])
    rows = [[f"city{i:03d}", i * 1000, "x" * (i % 40 + 1)] for i in range(200)]
    for r in rows:
        ws.append(r)
    wb.save(tmp_path / "cities.xlsx")
    res = XlsxReader(ocr=False, chunk_size=300, chunk_overlap=0).read(tmp_path / "cities.xlsx")
    assert len(res.texts) > 10
    got = []
    for c in res.texts:
        lines = c.text.splitlines()
        assert lines[:2] == ["| City | Population | Note |", "| --- | --- | --- |"]
        assert len(c.text) <= 300
        assert [f"| {' | '.join(r)} |" for r in c.metadata["table"]["rows"]] == lines[2:]
        got.extend(c.metadata["table"]["rows"])
    assert got == [[a, str(b), n] for a, b, n in rows]


def test_xlsx_limits_refuse_before_reading(tmp_path: Path) -> None:
    book = _workbook(tmp_path / "book.xlsx", tmp_path)
    res = XlsxReader(ocr=False, max_sheet_cells=20, blob_dir=str(tmp_path / "b")).read(book)
    [err] = res.errors  # Sales (6 rows x 7 columns) refused, Notes still read
    assert "book.xlsx (sheet 'Sales')" in err.source and "max_sheet_cells" in err.error and "\n" not in err.error
    assert [c.section for c in res.texts] == ["Notes"]

    # a declared dimension is enough: refused without reading a cell
    _patch(book, "xl/worksheets/sheet1.xml", lambda x: re.sub(rb'<dimension ref="[^"]+"', b'<dimension ref="A1:XFD1048576"', x))
    res = XlsxReader(ocr=False, blob_dir=str(tmp_path / "b")).read(book)
    assert "declares 17,179,869,184 cells" in res.errors[0].error
    assert [c.section for c in res.texts] == ["Notes"]


def _declare_size(path: Path, part: str, size: int) -> None:
    """Make the central directory declare *size* inflated bytes for *part* (the file stays small)."""
    data = bytearray(path.read_bytes())
    at = 0
    while True:  # central directory entries: signature, ..., size at +24, name length at +28, name at +46
        at = data.index(b"PK\x01\x02", at)
        n_len = int.from_bytes(data[at + 28 : at + 30], "little")
        if data[at + 46 : at + 46 + n_len] == part.encode():
            data[at + 24 : at + 28] = size.to_bytes(4, "little")
            break
        at += 4
    path.write_bytes(bytes(data))


def _bad_files(folder: Path, tmp_path: Path) -> dict[str, str]:
    """Malformed files, and the words their one-line error must hold."""
    deck = _deck(tmp_path / "src.pptx").read_bytes()
    (folder / "truncated.pptx").write_bytes(deck[: len(deck) // 2])
    (folder / "random.pptx").write_bytes(os.urandom(6000))
    ole = OLE + b"\x00" * 1000 + "EncryptedPackage".encode("utf-16-le") + b"\x00" * 1000
    (folder / "locked.xlsx").write_bytes(ole)
    (folder / "locked.pptx").write_bytes(ole)
    (folder / "locked.docx").write_bytes(ole)
    (folder / "old.pptx").write_bytes(OLE + b"\x00" * 3000)
    (folder / "old.doc").write_bytes(OLE + b"\x00" * 3000)
    bomb = _workbook(folder / "bomb.xlsx", tmp_path)
    _declare_size(bomb, "xl/worksheets/sheet1.xml", 0xF000_0000)
    (folder / "bad.csv").write_bytes(b"a,b\n" + b'"x' + b"y" * 200_000 + b'"\n')
    return {
        "truncated.pptx": "not a readable PPTX",
        "random.pptx": "not a readable PPTX",
        "locked.xlsx": "password-protected",
        "locked.pptx": "password-protected",
        "old.pptx": "legacy binary Office file",
        "locked.docx": "password-protected",
        "old.doc": "legacy binary Office file",
        "bomb.xlsx": "zip bomb",
        "bad.csv": "malformed CSV",
    }


def test_malformed_files_are_one_line_each_and_the_batch_goes_on(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    expected = _bad_files(folder, tmp_path)
    _workbook(folder / "good.xlsx", tmp_path)
    res = load_documents(folder, workers=0, ocr=False, blob_dir=str(tmp_path / "blobs"))
    assert {Path(c.source).name for c in res.chunks} == {"good.xlsx"}
    errors = {Path(e.source).name: e.error for e in res.errors}
    assert set(errors) == set(expected)
    for name, words in expected.items():
        assert words in errors[name] and "\n" not in errors[name], (name, errors[name])
    with pytest.raises(InvalidInputError, match=r"locked\.pptx: password-protected"):
        PptxReader(ocr=False).read(folder / "locked.pptx")


def test_csv_and_tsv_bom_dialect_and_encodings(tmp_path: Path) -> None:
    (tmp_path / "semi.csv").write_bytes("\ufeffName;City;Amount\nAnna;Berlin;3,50\n;;\nBob;Köln;4\n".encode())
    (tmp_path / "ansi.csv").write_bytes("name,city\nZoë,Zürich\n".encode("cp1252"))
    (tmp_path / "tabs.tsv").write_bytes("a\tb\n1\t2\n".encode("utf-16"))  # with its BOM
    reader = CsvReader(ocr=False)
    (semi,) = reader.read(tmp_path / "semi.csv").texts
    assert semi.metadata["table"] == {"header": ["Name", "City", "Amount"], "rows": [["Anna", "Berlin", "3,50"], ["Bob", "Köln", "4"]]}
    assert semi.text.startswith("| Name | City | Amount |")
    (ansi,) = reader.read(tmp_path / "ansi.csv").texts
    assert ansi.metadata["table"]["rows"] == [["Zoë", "Zürich"]]
    (tabs,) = reader.read(tmp_path / "tabs.tsv").texts
    assert tabs.metadata["table"] == {"header": ["a", "b"], "rows": [["1", "2"]]}


def test_detection_by_content(tmp_path: Path) -> None:
    _deck(tmp_path / "deck.pptx")
    (tmp_path / "deck.zip").write_bytes((tmp_path / "deck.pptx").read_bytes())
    _workbook(tmp_path / "book.xlsm", tmp_path, cached_total=None)
    (tmp_path / "t.tsv").write_text("a\tb\n")
    (tmp_path / "c.csv").write_text("a,b\n")
    (tmp_path / "locked.xlsx").write_bytes(OLE + b"\x00" * 100)
    (tmp_path / "locked.bin").write_bytes(OLE + b"\x00" * 100)
    (tmp_path / "old.xls").write_bytes(OLE + b"\x00" * 100)  # the reader says: legacy, save as XLSX
    (tmp_path / "empty.pptx").write_bytes(b"")  # the loader calls it empty
    got = {p.name: detect_kind(p) for p in tmp_path.iterdir() if p.suffix != ".png"}
    assert got == {
        "deck.pptx": "pptx",
        "deck.zip": "pptx",
        "book.xlsm": "xlsx",
        "t.tsv": "csv",
        "c.csv": "csv",
        "locked.xlsx": "xlsx",
        "locked.bin": None,
        "old.xls": "xlsx",
        "empty.pptx": None,
    }


def test_ingested_sheet_answers_a_row_and_column_question(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "MM_RAG_MODEL"):
        monkeypatch.delenv(var, raising=False)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _deck(corpus / "deck.pptx")
    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "Stores"
    ws.append(["Store", "City", "Units", "Revenue"])
    for i in range(120):
        ws.append([f"store-{i}", f"city{i}", 10 + i, 1000 + 7 * i])
    ws.append(["store-x", "Oslo", 4242, 99])
    wb.save(corpus / "stores.xlsx")
    ix = str(tmp_path / "ix")
    code, out, err = run("ingest", str(corpus), "--index", ix, "--keyword-only", "--no-ocr", "-q", "--workers", "0")
    assert code == 0, out + err
    code, out, err = run("query", "Oslo units", "--index", ix, "--json")
    assert code == 0, err
    top = json.loads(out)[0]
    assert Path(top["source"]).name == "stores.xlsx"
    chunks = {c.id: c for c in XlsxReader(ocr=False).read(corpus / "stores.xlsx").texts}
    table = chunks[top["id"]].metadata["table"]
    assert table["header"] == ["Store", "City", "Units", "Revenue"] and ["store-x", "Oslo", "4242", "99"] in table["rows"]
    assert len(chunks) > 3 and top["text"].startswith("| Store | City | Units | Revenue |")
    code, out, err = run("query", "South region units", "--index", ix, "--json")
    top = json.loads(out)[0]
    assert Path(top["source"]).name == "deck.pptx" and "| South | 95 | 4 |" in top["text"]


_SMARTART_FRAME = (
    '<p:graphicFrame xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" '
    'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main">'
    '<p:nvGraphicFramePr><p:cNvPr id="90" name="Diagram 1"/><p:cNvGraphicFramePr/><p:nvPr/></p:nvGraphicFramePr>'
    '<p:xfrm><a:off x="914400" y="2743200"/><a:ext cx="6096000" cy="1828800"/></p:xfrm>'
    '<a:graphic><a:graphicData uri="http://schemas.openxmlformats.org/drawingml/2006/diagram">'
    '<dgm:relIds xmlns:dgm="http://schemas.openxmlformats.org/drawingml/2006/diagram" '
    'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships" '
    'r:dm="{rid}" r:lo="" r:qs="" r:cs=""/></a:graphicData></a:graphic></p:graphicFrame>'
)


def _diagram_data(nodes: list[str]) -> bytes:
    pts = ['<dgm:pt modelId="0" type="doc"><dgm:prSet/><dgm:spPr/><dgm:t><a:bodyPr/><a:p><a:r><a:t>ignored doc</a:t></a:r></a:p></dgm:t></dgm:pt>']
    for k, node in enumerate(nodes, start=1):
        pts.append(f'<dgm:pt modelId="{k}"><dgm:prSet/><dgm:spPr/><dgm:t><a:bodyPr/><a:p><a:r><a:t>{node}</a:t></a:r></a:p></dgm:t></dgm:pt>')
        pts.append(f'<dgm:pt modelId="{100 + k}" type="parTrans"><dgm:prSet/><dgm:spPr/></dgm:pt>')
    return (
        '<dgm:dataModel xmlns:dgm="http://schemas.openxmlformats.org/drawingml/2006/diagram" '
        f'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main"><dgm:ptLst>{"".join(pts)}</dgm:ptLst>'
        "<dgm:cxnLst/><dgm:bg/><dgm:whole/></dgm:dataModel>"
    ).encode()


def test_pptx_smartart_text_in_slide_order(tmp_path: Path) -> None:
    from pptx.opc.package import Part
    from pptx.opc.packuri import PackURI
    from pptx.util import Inches

    prs = pptx.Presentation()
    slide = prs.slides.add_slide(prs.slide_layouts[5])
    slide.shapes.title.text = "Process"
    slide.shapes.add_textbox(Inches(1), Inches(1.5), Inches(6), Inches(0.5)).text_frame.text = "Before the diagram"
    slide.shapes.add_textbox(Inches(1), Inches(6), Inches(6), Inches(0.5)).text_frame.text = "After the diagram"
    part = Part(
        PackURI("/ppt/diagrams/data1.xml"),
        "application/vnd.openxmlformats-officedocument.drawingml.diagramData+xml",
        slide.part.package,
        _diagram_data(["Collect receipts", "Scan with OCR", "Index the text"]),
    )
    rid = slide.part.relate_to(part, "http://schemas.openxmlformats.org/officeDocument/2006/relationships/diagramData")
    slide.shapes._spTree.append(etree.fromstring(_SMARTART_FRAME.format(rid=rid)))
    broken = prs.slides.add_slide(prs.slide_layouts[5])  # a diagram whose data part is missing
    broken.shapes.title.text = "Broken"
    broken.shapes._spTree.append(etree.fromstring(_SMARTART_FRAME.format(rid="rId99")))
    path = tmp_path / "smartart.pptx"
    prs.save(path)

    res = PptxReader(ocr=False, blob_dir=str(tmp_path / "blobs")).read(path)
    first = [c for c in res.texts if c.page == 1]
    assert first[0].text.splitlines() == [
        "Process", "Before the diagram", "Collect receipts", "Scan with OCR", "Index the text", "After the diagram",
    ]
    assert [c.text for c in res.texts if c.page == 2] == ["Broken"]
    assert len(res.errors) == 1 and "slide 2 diagram" in str(res.errors[0])
