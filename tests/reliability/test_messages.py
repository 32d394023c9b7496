"""Messages that say what happened: empty files, folders with nothing to read."""

from __future__ import annotations

from pathlib import Path

from .._cli import run


def test_an_empty_file_is_called_empty_not_unsupported(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "empty.md").write_bytes(b"")
    (docs / "ok.md").write_text("Solar output peaked in July.")
    code, out, _ = run("ingest", str(docs), "--index", str(tmp_path / "ix"), "--keyword-only", "-q", "--workers", "0")
    assert code == 0
    assert "empty.md: empty file (0 bytes)" in out and "unsupported" not in out


def test_a_folder_with_nothing_to_read_says_so(tmp_path: Path) -> None:
    (tmp_path / "nothing").mkdir()
    code, _, err = run("ingest", str(tmp_path / "nothing"), "--index", str(tmp_path / "ix"), "--keyword-only", "-q")
    assert code == 1 and f"no files found in {tmp_path / 'nothing'}" in err
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.bin").write_bytes(b"\x00\x01\x02binary")
    code, out, err = run("ingest", str(tmp_path / "bad"), "--index", str(tmp_path / "ix"), "--keyword-only", "-q")
    assert code == 1 and "every file failed" in err and "x.bin" in out


def test_errors_are_listed_once_and_capped(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    for i in range(130):
        (docs / f"bad{i:03d}.bin").write_bytes(b"\x00\x01binary")
    (docs / "ok.md").write_text("fine")
    code, out, err = run("ingest", str(docs), "--index", str(tmp_path / "ix"), "--keyword-only", "-q", "--workers", "0")
    assert code == 0
    assert out.count("error: ") == 100 and "... and 30 more errors" in out
    assert "bad000.bin" not in err  # not repeated on stderr


def test_a_folder_that_cannot_be_read_is_named(tmp_path: Path, monkeypatch) -> None:
    import os

    docs = tmp_path / "docs"
    (docs / "locked").mkdir(parents=True)
    (docs / "ok.md").write_text("fine")
    real_scandir = os.scandir

    def scandir(path=".", *a, **k):  # as root, chmod cannot lock a folder: refuse it here
        if os.fspath(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path, *a, **k)

    monkeypatch.setattr(os, "scandir", scandir)
    code, out, _ = run("ingest", str(docs), "--index", str(tmp_path / "ix"), "--keyword-only", "-q", "--workers", "0")
    assert code == 0
    assert f"{docs / 'locked'}: cannot read folder (Permission denied): skipped" in out
