"""The loader's worker processes work from a plain script without a ``__main__`` guard."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from PIL import Image


def test_unguarded_script_loads_every_file_once(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Title\n\nSome text here.\n")
    Image.new("RGB", (40, 40), (200, 0, 0)).save(docs / "red.png")
    script = tmp_path / "script.py"
    script.write_text(
        textwrap.dedent(
            f"""
            from mm_rag_plugin.readers import load_documents
            print("SCRIPT-RAN")
            res = load_documents([{str(docs)!r}], workers=2, show_progress=False, ocr=False)
            print("CHUNKS", len(res.chunks), "ERRORS", len(res.errors))
            """
        )
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count("SCRIPT-RAN") == 1, "workers must not re-run the caller's script"
    assert "CHUNKS 2 ERRORS 0" in out.stdout, out.stdout + out.stderr[-2000:]
