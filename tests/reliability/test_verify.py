"""``mm-rag verify`` and ``MultiModalIndex.verify()`` find damage, and a damaged index reports one
line naming the file instead of a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mm_rag_plugin import ImageChunk, MultiModalIndex, TextChunk
from mm_rag_plugin.retrievers.engine import Point

from .._cli import run

DIM = 8




def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


@pytest.fixture
def index_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "ix"
    rng = np.random.default_rng(0)
    with MultiModalIndex(folder, dim=DIM, show_progress=False) as ix:
        blob = ix.blob_dir / "abc.png"  # type: ignore[operator]
        blob.parent.mkdir(parents=True)
        blob.write_bytes(b"\x89PNG fake")
        chunks = [TextChunk(id=f"t{i}", text=f"text number {i}", source=str(tmp_path / "a.md"), position=i) for i in range(5)]
        chunks.append(ImageChunk(id="i0", source=str(tmp_path / "a.pdf"), image_path=str(blob), content_hash="abc"))
        ix.add_embedded(chunks, _unit(rng, len(chunks)))
    return folder


def test_a_healthy_index_verifies(index_dir: Path) -> None:
    with MultiModalIndex(index_dir, create=False) as ix:
        assert ix.verify() == []
    code, out, _ = run("verify", "--index", str(index_dir))
    assert code == 0 and "ok: 6 items checked" in out


def test_verify_finds_missing_images_bad_vectors_and_count_mismatch(index_dir: Path) -> None:
    (index_dir / "blobs" / "abc.png").unlink()
    with MultiModalIndex(index_dir, create=False) as ix:
        # damage the store behind the index's back: a zero vector, a NaN one, an unknown kind
        bad = [
            Point("00000000-0000-0000-0000-000000000001", np.zeros(DIM, np.float32), ix.bm25.encode_document("x"),
                  {"kind": "text", "sources": ["z"], "source": "z", "text": "x"}),
            Point("00000000-0000-0000-0000-000000000002", np.full(DIM, np.nan, np.float32), ix.bm25.encode_document("y"),
                  {"kind": "text", "sources": ["z"], "source": "z", "text": "y"}),
            Point("00000000-0000-0000-0000-000000000003", np.ones(DIM, np.float32), ix.bm25.encode_document("w"),
                  {"kind": "video", "sources": ["z"], "source": "z"}),
        ]
        ix._engine.upsert(bad)  # raw: a damaged store  # the manifest still says 6
        problems = "\n".join(ix.verify())
    assert "image file missing" in problems and "zero vector" in problems
    assert "NaN or infinite" in problems and "unknown kind 'video'" in problems
    assert "records 6 items, the store holds 9" in problems
    code, out, _ = run("verify", "--index", str(index_dir))
    assert code == 1 and "damaged: 9 items checked" in out


@pytest.mark.parametrize(
    "damage",
    [
        "garble_manifest", "truncate_manifest", "empty_manifest", "manifest_not_object", "wrong_format",
        "drop_shard", "garble_edge_config", "drop_manifest",
    ],
)
def test_damage_gives_one_line_naming_the_file(index_dir: Path, damage: str) -> None:
    manifest = index_dir / "manifest.json"
    if damage == "garble_manifest":
        manifest.write_bytes(b"\x00\xffnot json{{")
    elif damage == "truncate_manifest":
        manifest.write_text(manifest.read_text()[:20])
    elif damage == "empty_manifest":
        manifest.write_text("")
    elif damage == "manifest_not_object":
        manifest.write_text("[1, 2]")
    elif damage == "wrong_format":
        manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "format": 99}))
    elif damage == "drop_shard":
        import shutil

        shutil.rmtree(index_dir / "shard")
    elif damage == "drop_manifest":  # the shard holds data: never taken for an interrupted create
        manifest.unlink()
    elif damage == "garble_edge_config":
        (index_dir / "shard" / "edge_config.json").write_text("{garbage")
    for cmd in ("info", "query", "verify"):
        argv = [cmd] + (["fault"] if cmd == "query" else []) + ["--index", str(index_dir), "--keyword-only"]
        code, out, err = run(*argv)
        assert code == 1, (damage, cmd, out, err)
        lines = [ln for ln in err.splitlines() if ln.strip()]
        assert len(lines) == 1 and "Traceback" not in err, (damage, err)
        assert str(index_dir) in lines[0], (damage, lines[0])
        if damage == "drop_manifest":
            assert "damaged index" in lines[0] and "holds 6 items" in lines[0]
    code, out, err = run("ingest", str(index_dir / "nothing"), "--index", str(index_dir), "--keyword-only")
    assert code == 1 and "Traceback" not in err  # ingest never rebuilds over a damaged index
    assert (index_dir / "shard").exists() or damage == "drop_shard"
