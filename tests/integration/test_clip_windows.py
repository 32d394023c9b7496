"""CLIP's 77-token context: ingest reports the chunks it cuts; CLIP windows cover a whole chunk.

A CLIP text tower reads 77 tokens (start and end markers included); the tokenizer cuts the rest,
so the chunk's one dense vector sees its start only. With ``clip_windows=`` a text chunk also
stores the CLIP vectors of windows over the rest (a multivector, scored by MaxSim), and the
``dense_text`` list searches them.
"""

from __future__ import annotations

from pathlib import Path

from mm_rag_plugin import TextChunk
from mm_rag_plugin.retrievers import MultiModalIndex
from tests._cli import run

SHORT = "a red circle on a white page"
LONG = " ".join(["the quarterly report lists revenue and costs by region"] * 12)  # ~120 words, well past 77 tokens


def test_ingest_reports_the_chunks_cut_at_the_context(embedder, tmp_path: Path) -> None:
    chunks = [TextChunk(id="s", text=SHORT, source="a.txt", position=0), TextChunk(id="l", text=LONG, source="a.txt", position=1)]
    with MultiModalIndex(tmp_path / "ix", embedder=embedder) as index:
        report = index.add(chunks)
        assert embedder.context_length == 32  # the tiny model's context (open_clip's models: 77)
        assert (report.embedded_texts, report.truncated_texts, report.context_length) == (2, 1, 32)
        again = index.add(chunks)  # nothing embedded again: nothing counted
        assert (again.embedded_texts, again.truncated_texts) == (0, 0)


def test_cli_ingest_says_how_many_chunks_dense_search_sees_in_part(model_env: str, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "long.md").write_text(f"# Report\n\n{LONG}\n", encoding="utf-8")
    (docs / "short.md").write_text(f"# Shapes\n\n{SHORT}\n", encoding="utf-8")
    code, out, err = run("ingest", str(docs), "--index", str(tmp_path / "ix"), "-q")
    assert code == 0, err
    line = next(ln for ln in out.splitlines() if "context" in ln)
    assert line.strip().startswith("1 of 2 text chunks longer than the model's 32-token context: dense search sees their start only; see --clip-windows")
