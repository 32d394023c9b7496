"""Tables in public PDFs made by others (tabula-py's test files, benchmarks/data/tables): the
cells its tests expect come back as table rows under their header."""

from __future__ import annotations

from pathlib import Path

from mm_rag_plugin.readers import PdfReader

TABLES = Path(__file__).resolve().parents[2] / "benchmarks" / "data" / "tables"


def _tables(path: Path, tmp_path: Path) -> list[dict]:
    res = PdfReader(ocr=False, blob_dir=str(tmp_path / "blobs")).read(path)
    assert res.errors == []
    return [c.metadata["table"] for c in res.texts if "table" in c.metadata]


def test_ruled_donors_list_cells_under_their_header(tmp_path: Path) -> None:
    tables = _tables(TABLES / "campaign_donors.pdf", tmp_path)
    assert tables
    assert all(t["header"][-5:] == ["Matricula", "Cuit", "Fecha", "Tipo", "Importe"] for t in tables)
    rows = [r for t in tables for r in t["rows"]]
    assert ["27.083.460", "20-27083460-5", "09/10/2013", "EFECTIVO", "$ 10.000,00"] in [r[-5:] for r in rows]
    assert ["11.353.491", "27-11353491-0", "09/10/2013", "EFECTIVO", "$ 5.000,00"] in [r[-5:] for r in rows]
    # every donor of the published table is a row (tabula's 56th row is the page footer)
    assert len({r[-4] for r in rows}) == 55


def test_unruled_mtcars_numbers_in_their_columns(tmp_path: Path) -> None:
    tables = _tables(TABLES / "data.pdf", tmp_path)
    mtcars = [t for t in tables if t["header"][:3] == ["mpg", "cyl", "disp"]]
    assert mtcars
    rows = [r for t in mtcars for r in t["rows"]]
    # Mazda RX4 and Volvo 142E, as tabula-py's data_1.csv has them
    assert ["21.0", "6", "160.0", "110", "3.90", "2.620", "16.46", "0", "1", "4"] in rows
    assert ["21.4", "4", "121.0", "109", "4.11", "2.780", "18.60", "1", "1", "4"] in rows
