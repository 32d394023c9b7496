"""A dense text query from a cold process: the NumPy text tower (no torch, no open_clip) gives the
vectors open_clip gives, and everything else still loads the whole model."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mm_rag_plugin import MultiModalRAG, OpenCLIPEmbedder
from mm_rag_plugin.embeddings._clip_tokenizer import ClipTokenizer, bpe_vocab_file
from mm_rag_plugin.embeddings.lazy import LazyOpenCLIPEmbedder
from mm_rag_plugin.embeddings.text_tower import text_tower_dir
from mm_rag_plugin.retrievers.manifest import load_model, model_identity

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
TEXTS = [
    "a red circle",
    "fault E-217 grid voltage",
    "Café déjà vu: 3 × 4 = 12 &amp; naïve ünïcode 日本語, and don't stop",
    "word " * 100,  # truncated to the context
    "",
    "A BLUE   square\tnext to\n a green TRIANGLE!!!",
]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private cache folder (text towers, weights hashes)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("MM_RAG_TEXT_TOWER", raising=False)
    monkeypatch.delenv("MM_RAG_DEVICE", raising=False)
    return tmp_path / "cache"


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


def test_tokenizer_matches_open_clip() -> None:
    import open_clip

    theirs = open_clip.get_tokenizer("ViT-B-32")
    path = bpe_vocab_file()
    assert path is not None
    ours = ClipTokenizer(path, 77)
    assert np.array_equal(ours(TEXTS), theirs(TEXTS).numpy())
    assert np.array_equal(ours(TEXTS, 16), theirs(TEXTS, context_length=16).numpy())


def _identity(emb: OpenCLIPEmbedder) -> dict:
    ident = model_identity(emb)
    ident["precision"] = emb.precision
    return ident


def test_tiny_model_text_tower_vectors(tiny_clip_dir: Path, cache: Path) -> None:
    fp32 = OpenCLIPEmbedder(f"local-dir:{tiny_clip_dir}", device="cpu", precision="fp32")
    default = OpenCLIPEmbedder(f"local-dir:{tiny_clip_dir}", device="cpu")
    ident = _identity(default)
    first = load_model(ident, device="cpu")  # nothing cached: the whole model, and the tower written
    assert isinstance(first, OpenCLIPEmbedder)
    second = load_model(ident, device="cpu")
    assert isinstance(second, LazyOpenCLIPEmbedder) and not second.loaded
    vecs = second.embed_texts(TEXTS)
    assert not second.loaded
    assert vecs.dtype == np.float32 and np.allclose(np.linalg.norm(vecs, axis=-1), 1, atol=1e-5)
    assert _cos(vecs, fp32.embed_texts(TEXTS)).min() >= 0.9999
    # today's vectors (bf16 where the CPU computes it natively): as close as fp32 torch's own are
    today, exact = default.embed_texts(TEXTS), fp32.embed_texts(TEXTS)
    assert (_cos(vecs, today) >= np.minimum(_cos(exact, today) - 1e-5, 0.9999)).all()
    assert np.allclose(second.embed_query(TEXTS[1]), vecs[1], atol=1e-5)  # alone: other padding, same vector
    # an image query (and anything else) loads the whole model, once
    image = SAMPLES / "inverter_fault.png"
    got = second.embed_query(image=str(image))
    assert second.loaded and np.allclose(got, default.embed_query(image=str(image)), atol=1e-3)
    assert model_identity(second)["weights"] == ident["weights"]


def test_real_architecture_random_weights(tmp_path: Path, cache: Path) -> None:
    """ViT-S-32 (a real CLIP text tower: 12 layers, width 384) with random weights, from a checkpoint."""
    import open_clip
    import torch

    torch.manual_seed(0)
    net = open_clip.create_model("ViT-S-32")
    ckpt = tmp_path / "vit-s-32.bin"
    torch.save(net.state_dict(), ckpt)
    del net
    default = OpenCLIPEmbedder("ViT-S-32", checkpoint=ckpt, device="cpu")
    ident = _identity(default)
    assert isinstance(load_model(ident, device="cpu"), OpenCLIPEmbedder)
    lazy = load_model(ident, device="cpu")
    assert isinstance(lazy, LazyOpenCLIPEmbedder)
    fp32 = OpenCLIPEmbedder("ViT-S-32", checkpoint=ckpt, device="cpu", precision="fp32")
    vecs = lazy.embed_texts(TEXTS)
    assert _cos(vecs, fp32.embed_texts(TEXTS)).min() >= 0.9999
    assert _cos(vecs, default.embed_texts(TEXTS)).min() >= 0.9999


def _ingest(tiny_clip_dir: Path, index: Path) -> None:
    with MultiModalRAG(index, model_name=f"local-dir:{tiny_clip_dir}", device="cpu") as rag:
        rag.ingest([SAMPLES / "maintenance.md", SAMPLES / "inverter_fault.png"], ocr=False)


_COLD_QUERY = """
import json, sys
from mm_rag_plugin import MultiModalRAG
with MultiModalRAG(sys.argv[1]) as rag:
    hits = rag.search("fault E-217 grid voltage", k=3)
    vec = rag.embedder.embed_query("fault E-217 grid voltage")
    print(json.dumps({"kind": type(rag.embedder).__name__, "ids": [h.chunk.id for h in hits], "vec": vec.tolist(),
                      "torch": "torch" in sys.modules, "open_clip": "open_clip" in sys.modules}))
"""


def _cold(index: Path, cache: Path, **env: str) -> dict:
    environ = {**os.environ, "XDG_CACHE_HOME": str(cache), **env}
    environ.pop("MM_RAG_MODEL", None)
    proc = subprocess.run([sys.executable, "-c", _COLD_QUERY, str(index)], capture_output=True, text=True, env=environ, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_cold_process_text_query_imports_no_torch(tiny_clip_dir: Path, tmp_path: Path, cache: Path) -> None:
    index = tmp_path / "ix"
    _ingest(tiny_clip_dir, index)
    first = _cold(index, cache)  # the first process loads the whole model and caches the tower
    assert first["kind"] == "OpenCLIPEmbedder" and first["torch"]
    second = _cold(index, cache)
    assert second["kind"] == "LazyOpenCLIPEmbedder"
    assert not second["torch"] and not second["open_clip"]
    assert second["ids"] == first["ids"]
    assert _cos(np.array(second["vec"]), np.array(first["vec"])) >= 0.9999
    off = _cold(index, cache, MM_RAG_TEXT_TOWER="0")  # the cache turned off: as before
    assert off["kind"] == "OpenCLIPEmbedder" and off["ids"] == first["ids"]


def test_damaged_cached_tower_falls_back(tiny_clip_dir: Path, cache: Path, caplog: pytest.LogCaptureFixture) -> None:
    ident = _identity(OpenCLIPEmbedder(f"local-dir:{tiny_clip_dir}", device="cpu"))
    load_model(ident, device="cpu")
    folders = list((cache / "mm-rag-plugin" / "text-towers").iterdir())
    assert len(folders) == 1 and folders[0] == text_tower_dir(folders[0].name)
    (folders[0] / "l0.c_fc.w.npy").write_bytes(b"\x93NUMPY garbage")
    with caplog.at_level(logging.WARNING):
        emb = load_model(ident, device="cpu")
    assert isinstance(emb, OpenCLIPEmbedder)
    assert "ignoring the cached text tower" in caplog.text
    assert isinstance(load_model(ident, device="cpu"), LazyOpenCLIPEmbedder)  # rewritten by the load above


def test_finetune_load_skips_the_tower(tiny_clip_dir: Path, cache: Path) -> None:
    ident = _identity(OpenCLIPEmbedder(f"local-dir:{tiny_clip_dir}", device="cpu"))
    load_model(ident, device="cpu")
    assert isinstance(load_model(ident, device="cpu", text_tower=False), OpenCLIPEmbedder)
