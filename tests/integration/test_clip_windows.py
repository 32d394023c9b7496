"""CLIP's 77-token context: ingest reports the chunks it cuts; CLIP windows cover a whole chunk.

A CLIP text tower reads 77 tokens (start and end markers included); the tokenizer cuts the rest,
so the chunk's one dense vector sees its start only. With ``clip_windows=`` a text chunk also
stores the CLIP vectors of windows over the rest (a multivector, scored by MaxSim), and the
``dense_text`` list searches them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mm_rag_plugin import TextChunk
from mm_rag_plugin.embeddings.windows import ClipWindows
from mm_rag_plugin.errors import ConfigurationError
from mm_rag_plugin.retrievers import FusedRetriever, MultiModalIndex
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


# Three chunks that share a long start (past the tiny model's 32-token context) and differ only
# after it: one CLIP vector per chunk cannot tell them apart; their windows can.
PREFIX = " ".join(["this page describes the drawing shown below in some detail"] * 5)
TAILS = ["a red circle", "a blue square", "a green triangle"]
DENSE_TEXT_ONLY = {"dense_image": 0.0, "bm25": 0.0, "text_model": 0.0}


def _tail_chunks() -> list[TextChunk]:
    return [TextChunk(id=f"t{i}", text=f"{PREFIX} {tail}", source=f"{i}.txt", position=0) for i, tail in enumerate(TAILS)]


def _dense_text(ix: MultiModalIndex, query: str) -> list[tuple[str, float]]:
    hits = FusedRetriever(ix, weights=DENSE_TEXT_ONLY, dedupe=False).retrieve(query, k=3)
    return [(" ".join(h.chunk.text.split()[-3:]), h.list_scores["dense_text"]) for h in hits]


def test_a_fact_past_the_context_is_reachable_with_windows_and_not_without(embedder, tmp_path: Path) -> None:
    with MultiModalIndex(tmp_path / "plain", embedder=embedder) as plain:
        assert plain.add(_tail_chunks()).truncated_texts == 3
        scores = [s for _, s in _dense_text(plain, "a red circle")]
        assert len(scores) == 3 and max(scores) - min(scores) < 1e-5  # the tails are invisible: one vector for all
    with MultiModalIndex(tmp_path / "win", embedder=embedder, clip_windows=True) as win:
        assert win.clip_windows == ClipWindows(32, 6, 8)  # the window: the model's context; the overlap: a fifth of it
        win.add(_tail_chunks())
        for tail in TAILS:
            ranked = _dense_text(win, tail)
            assert ranked[0][0] == tail and ranked[0][1] > ranked[1][1] + 1e-3, ranked
        points = {p.payload["text"].split()[-1]: p for batch in win.scan() for p in batch}
        assert all(1 < len(p.windows) <= 8 for p in points.values())
        np.testing.assert_allclose(points["circle"].windows[0], points["circle"].dense, rtol=1e-6)  # first window: the chunk's vector


def test_server_index_and_copies_search_the_windows_the_same(embedder, tmp_path: Path) -> None:
    qdrant_client = pytest.importorskip("qdrant_client")
    with MultiModalIndex(tmp_path / "win", embedder=embedder, clip_windows={"max_windows": 4, "overlap": 8}) as win:
        win.add(_tail_chunks())
        want = _dense_text(win, "a blue square")
        assert want[0][0] == "a blue square"
        with win.copy_to(client=qdrant_client.QdrantClient(":memory:")) as server:
            server.attach(embedder)
            assert server.clip_windows == win.clip_windows
            assert [t for t, _ in _dense_text(server, "a blue square")] == [t for t, _ in want]
            hits = FusedRetriever(server, weights=DENSE_TEXT_ONLY, fusion="server").retrieve("a blue square", k=1)
            assert hits[0].chunk.text.endswith("a blue square")
        with win.copy_to(tmp_path / "copy") as copy:
            copy.attach(embedder)
            assert [t for t, _ in _dense_text(copy, "a blue square")] == [t for t, _ in want]


def test_manifest_records_and_refuses_other_window_settings(embedder, tmp_path: Path) -> None:
    path = tmp_path / "ix"
    MultiModalIndex(path, embedder=embedder, clip_windows=ClipWindows(overlap=8, max_windows=4)).close()
    with MultiModalIndex(path, create=False) as ix:
        assert ix.manifest["clip_windows"] == {"size": 32, "overlap": 8, "max_windows": 4}
    with MultiModalIndex(path, embedder=embedder, clip_windows={"overlap": 8, "max_windows": 4}) as same:
        assert same.has_windows
    for other in ({"max_windows": 8, "overlap": 8}, {"overlap": 4, "max_windows": 4}, {"size": 24, "overlap": 8, "max_windows": 4}):
        with pytest.raises(ConfigurationError, match="built with CLIP windows") as err:
            MultiModalIndex(path, embedder=embedder, clip_windows=other)
        assert "\n" not in str(err.value)
    with pytest.raises(ConfigurationError, match="longer than the model's 32-token context"):
        MultiModalIndex(tmp_path / "big", embedder=embedder, clip_windows={"size": 77})


def test_an_index_without_windows_opens_unchanged_and_refuses_them(embedder, tmp_path: Path) -> None:
    path = tmp_path / "old"
    with MultiModalIndex(path, embedder=embedder) as old:
        old.add(_tail_chunks())
        before = _dense_text(old, "a red circle")
    manifest = (path / "manifest.json").read_text(encoding="utf-8")
    assert "clip_windows" not in manifest
    with MultiModalIndex(path, embedder=embedder) as again:
        assert not again.has_windows and again.clip_windows is None
        assert _dense_text(again, "a red circle") == before
        assert all(p.windows is None for batch in again.scan() for p in batch)
    with pytest.raises(ConfigurationError, match="built without CLIP windows"):
        MultiModalIndex(path, embedder=embedder, clip_windows=True)


def test_cli_ingest_with_clip_windows(model_env: str, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "long.md").write_text(f"# Report\n\n{LONG}\n", encoding="utf-8")
    (docs / "short.md").write_text(f"# Shapes\n\n{SHORT}\n", encoding="utf-8")  # fits the context: its own vector only
    code, out, err = run("ingest", str(docs), "--index", str(tmp_path / "ix"), "-q", "--clip-windows", "3")
    assert code == 0, err
    assert "covered by the index's CLIP windows" in out
    with MultiModalIndex(tmp_path / "ix", create=False) as ix:
        assert ix.manifest["clip_windows"] == {"size": 32, "overlap": 6, "max_windows": 3}
        rows = sorted(len(p.windows) for batch in ix.scan() for p in batch)
        assert rows == [1, 3]
