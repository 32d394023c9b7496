"""Every value read back from an index is validated (issue 27: an index folder is untrusted input).

A real index is built, then one value is crafted in its ``manifest.json`` or in a stored payload
(written through the engine, as damage would leave it). ``mm-rag info``, ``query``, ``ask`` and
``verify`` then fail with exit code 1 and ONE line naming the file (the manifest, or the index
folder and the point) and the field: never a traceback, never a NaN or a forged hash accepted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mm_rag_plugin import MultiModalIndex, TextChunk
from mm_rag_plugin.errors import StoreError
from mm_rag_plugin.retrievers.engine import Point

from .._cli import run

DIM = 8
CRAFTED = "00000000-0000-0000-0000-00000000c0de"
TEXTS = ["solar panels on the harbour roof", "ferry timetable to the island", "sourdough bread needs time"]


def _chunks(source: Path) -> list[TextChunk]:
    return [TextChunk(id=f"t{i}", text=t, source=str(source), position=i) for i, t in enumerate(TEXTS)]


@pytest.fixture
def keyword_dir(tmp_path: Path, no_keys: None) -> Path:
    folder = tmp_path / "kw"
    with MultiModalIndex(folder, keyword_only=True, show_progress=False) as ix:
        ix.add(_chunks(tmp_path / "notes.md"))
    return folder


@pytest.fixture
def dense_dir(tmp_path: Path, no_keys: None) -> Path:
    """An index of dense vectors supplied by the caller (``dim=``: no model to load)."""
    folder = tmp_path / "dense"
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((len(TEXTS), DIM)).astype(np.float32)
    with MultiModalIndex(folder, dim=DIM, show_progress=False) as ix:
        ix.add_embedded(_chunks(tmp_path / "notes.md"), vectors / np.linalg.norm(vectors, axis=1, keepdims=True))
    return folder


def _edit_manifest(folder: Path, edit: Any) -> Path:
    path = folder / "manifest.json"
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))  # NaN is written as the bare NaN Python's json reads back
    return path


def _set(*keys: str, value: Any) -> Any:
    def edit(data: dict[str, Any]) -> None:
        for k in keys[:-1]:
            data = data[k]
        data[keys[-1]] = value

    return edit


def _commands(folder: Path, *, info: bool = True) -> list[tuple[str, ...]]:
    where = ("--index", str(folder), "--keyword-only")
    cmds = [("query", "harbour", *where), ("ask", "what is on the harbour roof?", *where), ("verify", *where[:2])]
    return ([("info", *where[:2])] if info else []) + cmds


def _one_error_line(argv: tuple[str, ...], *needles: str) -> str:
    code, out, err = run(*argv)
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 1, (argv, out, err)
    assert len(lines) == 1 and "Traceback" not in err + out, (argv, err)
    for needle in needles:
        assert needle in lines[0], (argv, needle, lines[0])
    return lines[0]


# ---------------------------------------------------------------------- manifest values
@pytest.mark.parametrize(
    ("field", "edit"),
    [
        ("bm25.k1", _set("bm25", "k1", value="x")),
        ("bm25.k1", _set("bm25", "k1", value=float("nan"))),
        ("bm25.k1", _set("bm25", "k1", value=float("inf"))),
        ("bm25.b", _set("bm25", "b", value=1.5)),
        ("bm25.avg_len", _set("bm25", "avg_len", value=0)),
        ("bm25.language", _set("bm25", "language", value=5)),
        ("bm25.language", _set("bm25", "language", value="klingon")),
        ("points", _set("points", value=-3)),
        ("points", _set("points", value="many")),
        ("keyword_only", _set("keyword_only", value="yes")),
    ],
)
def test_a_crafted_manifest_value_is_one_error_naming_the_field(keyword_dir: Path, field: str, edit: Any) -> None:
    manifest = _edit_manifest(keyword_dir, edit)
    for argv in _commands(keyword_dir):
        _one_error_line(argv, str(manifest), "damaged index", field)
    # ingest never writes over it (a NaN k1 would store NaN BM25 values)
    (keyword_dir.parent / "more.md").write_text("more text about the harbour\n")
    _one_error_line(("ingest", str(keyword_dir.parent / "more.md"), "--index", str(keyword_dir), "--keyword-only"), field)


@pytest.mark.parametrize(
    ("field", "edit"),
    [
        ("model.weights", _set("model", "weights", value="abc")),
        ("model.weights.sha256", _set("model", "weights", value={"path": "/m.bin", "size": 1, "mtime_ns": 1, "sha256": "abc"})),
        ("model.weights.size", _set("model", "weights", value={"path": "/m.bin", "size": "1", "mtime_ns": 1, "sha256": None})),
        ("model.name", _set("model", "name", value=["ViT"])),
        ("model.dim", _set("model", "dim", value=DIM + 1)),
        ("dim", lambda m: m.update(dim=0, model={**m["model"], "dim": 0})),
        ("dim", lambda m: m.update(dim=10**9, model={**m["model"], "dim": 10**9})),
        ("model", _set("model", value="ViT-B-32")),
    ],
)
def test_a_crafted_model_value_is_one_error_naming_the_field(dense_dir: Path, field: str, edit: Any) -> None:
    manifest = _edit_manifest(dense_dir, edit)
    for argv in _commands(dense_dir):
        _one_error_line(argv, str(manifest), "damaged index", field)


def test_deep_nesting_is_damage_never_a_recursion_error(keyword_dir: Path, tmp_path: Path) -> None:
    manifest = keyword_dir / "manifest.json"
    good = manifest.read_text().rstrip()
    for depth in (500, 200_000):  # read by json, then refused; too deep for json itself
        manifest.write_text(good[:-1] + ', "extra": ' + "[" * depth + "]" * depth + "}")
        for argv in _commands(keyword_dir):
            _one_error_line(argv, str(manifest), "damaged index", "nested")
    manifest.write_text(good)
    # metadata too deep for the store to read back is refused when written, one item only
    deep: Any = "x"
    for _ in range(5000):
        deep = {"a": deep}
    with MultiModalIndex(keyword_dir, show_progress=False) as ix:
        report = ix.add(
            [TextChunk(id="d", text="deep harbour", source="deep.md", metadata={"d": deep}),
             TextChunk(id="ok", text="shallow harbour", source="ok.md")],
            replace_sources=False,
        )
        assert [e.source for e in report.errors] == ["deep.md"] and "nested" in report.errors[0].error
        assert report.added == 1
        # a payload nested deeper than the store reads back: a damaged point, one line naming the folder
        deep = "x"
        for _ in range(200):
            deep = {"a": deep}
        ix._engine.upsert(  # raw, as a crafted folder holds it
            [Point(CRAFTED, None, ix.bm25.encode_document("harbour"),
                                     {"kind": "text", "sources": ["z.md"], "source": "z.md", "text": "harbour", "metadata": deep})])
    for argv in _commands(keyword_dir, info=False)[:2]:
        _one_error_line(argv, str(keyword_dir))


# ---------------------------------------------------------------------- keyword_only against the store
def test_keyword_only_over_a_dense_store_is_refused(dense_dir: Path) -> None:
    manifest = _edit_manifest(dense_dir, lambda m: m.update(keyword_only=True, model=None, dim=None))
    for argv in _commands(dense_dir):
        _one_error_line(argv, str(manifest), "damaged index", "keyword_only is true", "with dense vectors")


def test_dense_manifest_over_a_keyword_only_store_is_refused(keyword_dir: Path) -> None:
    model = {"name": None, "pretrained": None, "dim": DIM, "weights": None}
    manifest = _edit_manifest(keyword_dir, lambda m: m.update(keyword_only=False, model=model, dim=DIM))
    for argv in _commands(keyword_dir):
        _one_error_line(argv, str(manifest), "damaged index", "keyword_only is false", "without dense vectors")


# ---------------------------------------------------------------------- payload values
@pytest.mark.parametrize(
    ("field", "value"),
    [("text", 12345), ("metadata", "str"), ("bbox", 5), ("bbox", [0, 0, 1]), ("source", ["a", "b"]),
     ("page", "3"), ("sources", "z.md"), ("ocr_confidence", "high"), ("kind", ["text"])],
)
def test_a_crafted_payload_value_fails_the_query_in_one_line(keyword_dir: Path, field: str, value: Any) -> None:
    payload = {"kind": "text", "sources": ["z.md"], "source": "z.md", "text": "harbour harbour", field: value}
    with MultiModalIndex(keyword_dir, show_progress=False) as ix:
        ix.write_points([Point(CRAFTED, None, ix.bm25.encode_document("harbour harbour"), payload)])  # counted
    query, ask, verify = _commands(keyword_dir, info=False)
    for argv in (query, ask):
        _one_error_line(argv, str(keyword_dir), f"point {CRAFTED}", f"{field} must be")
    code, out, err = run(*verify)
    assert code == 1 and "Traceback" not in out + err and not err.strip(), (out, err)
    problems = [ln for ln in out.splitlines() if ln.startswith("problem:")]
    assert any(CRAFTED in ln and (f"{field} must be" in ln or "unknown kind" in ln) for ln in problems), out
    # the other points still verify: exactly the crafted one is reported
    assert all(CRAFTED in ln for ln in problems), out


def test_a_query_that_misses_the_damaged_point_still_answers(keyword_dir: Path) -> None:
    payload = {"kind": "text", "sources": ["z.md"], "source": "z.md", "text": 12345}
    with MultiModalIndex(keyword_dir, show_progress=False) as ix:
        ix.write_points([Point(CRAFTED, None, ix.bm25.encode_document("zebra"), payload)])
        with pytest.raises(StoreError, match=f"point {CRAFTED}: text must be a string"):
            ix.chunks([CRAFTED])
    code, out, err = run("query", "sourdough", "--index", str(keyword_dir), "--keyword-only")
    assert code == 0 and "sourdough bread" in out and not err.strip(), (out, err)


# ---------------------------------------------------------------------- weights hashes
def test_a_hash_read_from_the_index_never_stands_for_a_local_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, no_keys: None
) -> None:
    from mm_rag_plugin import OpenCLIPEmbedder
    from mm_rag_plugin.testing import make_tiny_clip

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    # two tiny models of the same size, untrained (no training time): only their weights differ
    real, other = (make_tiny_clip(tmp_path / name, train_steps=0, seed=seed) for name, seed in (("real", 0), ("other", 1)))
    folder = tmp_path / "ix"
    with MultiModalIndex(folder, embedder=OpenCLIPEmbedder(f"local-dir:{real}", device="cpu"), show_progress=False) as ix:
        ix.add(_chunks(tmp_path / "notes.md"))
    recorded = json.loads((folder / "manifest.json").read_text())["model"]
    weights = Path(other) / Path(recorded["weights"]["path"]).name
    st = weights.stat()
    # the crafted manifest names the other model's file, with its size and mtime, and the real model's hash
    manifest = _edit_manifest(folder, lambda m: m["model"].update(
        name=f"local-dir:{Path(other).resolve()}",
        weights={**recorded["weights"], "path": str(weights.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns},
    ))
    assert json.loads(manifest.read_text())["model"]["weights"]["sha256"] == recorded["weights"]["sha256"]
    for argv in (("query", "harbour", "--index", str(folder)),
                 ("query", "harbour", "--index", str(folder), "--model", f"local-dir:{other}")):
        _one_error_line(argv, recorded["weights"]["sha256"][:12])
    # the real model still opens the index (its hash is computed, then remembered outside the index)
    code, out, err = run("query", "harbour", "--index", str(folder), "--model", f"local-dir:{real}")
    assert code == 0 and "harbour" in out, err
    assert (tmp_path / "cache" / "mm-rag-plugin" / "weights-sha256.json").is_file()
