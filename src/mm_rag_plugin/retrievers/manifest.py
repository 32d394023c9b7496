"""The index manifest: what an index holds, recorded with it and enforced when it is opened.

One JSON object per index (``manifest.json`` beside an Edge shard; the collection's metadata on a
Qdrant server)::

    {"format": 2, "dim": 512, "keyword_only": false, "points": 1234,
     "model": {"name": "ViT-B-32", "pretrained": "laion2b_s34b_b79k", "dim": 512,
               "weights": {"path": "/abs/ckpt.safetensors", "size": ..., "mtime_ns": ..., "sha256": ...}},
     "bm25": {"language": "english", "k1": 1.2, "b": 0.75, "avg_len": 100.0, "tokenizer": 2}}

``model`` is ``None`` exactly when ``keyword_only`` is true (no dense vectors are stored at all).
``points`` is the count after the last committed write; an engine holding none while the manifest
says otherwise is a damaged index.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..errors import ConfigurationError, StoreError
from ..ids import file_sha256

__all__ = ["FORMAT", "check_manifest", "describe_model", "load_model", "model_identity", "same_model"]

FORMAT = 2

#: Weight files open_clip writes into a model folder (``local-dir:``), in the order it reads them.
_WEIGHT_NAMES = ("open_clip_model.safetensors", "open_clip_pytorch_model.bin", "open_clip_model.bin")


def _weights_file(name: str, pretrained: str | None) -> Path | None:
    if pretrained and Path(pretrained).is_file():
        return Path(pretrained).resolve()
    if name.startswith("local-dir:"):
        folder = Path(name[len("local-dir:") :])
        for n in _WEIGHT_NAMES:
            if (folder / n).is_file():
                return (folder / n).resolve()
    return None


def weights_record(path: Path, known: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Path, size, mtime and SHA-256 of a weights file; the hash is reused from *known* when the
    file's path, size and mtime are unchanged (hashing 600 MB on every open would cost a second)."""
    st = path.stat()
    rec = {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if known and all(known.get(k) == rec[k] for k in rec) and known.get("sha256"):
        return {**rec, "sha256": known["sha256"]}
    return {**rec, "sha256": file_sha256(path)}


def model_identity(embedder: Any, known: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What identifies *embedder*'s vectors: architecture / name, pretrained tag, dimension, and the
    weights file's hash when the weights come from a local file or folder."""
    custom = getattr(embedder, "identity", None)
    if callable(custom):
        own = dict(custom())
        own.setdefault("dim", int(embedder.dim))
        return own
    name = getattr(embedder, "model_name", None)
    if not isinstance(name, str):
        name = f"{type(embedder).__module__}.{type(embedder).__qualname__}"
    if name.startswith("local-dir:"):
        name = "local-dir:" + str(Path(name[len("local-dir:") :]).resolve())
    pretrained = getattr(embedder, "pretrained", None)
    if isinstance(pretrained, str) and Path(pretrained).is_file():
        pretrained = str(Path(pretrained).resolve())
    ident: dict[str, Any] = {"name": name, "pretrained": pretrained, "dim": int(embedder.dim)}
    weights = _weights_file(name, pretrained if isinstance(pretrained, str) else None)
    ident["weights"] = weights_record(weights, (known or {}).get("weights")) if weights else None
    precision = getattr(embedder, "precision", None)
    if isinstance(precision, str):  # recorded, not enforced: bf16 and fp32 vectors agree (cosine 0.9999)
        ident["precision"] = precision
    return ident


def same_model(stored: Mapping[str, Any], given: Mapping[str, Any]) -> bool:
    """Whether *given* makes the same vectors as the model an index was built with.

    Weights hashes decide when both have one (a model folder that moved is still the same model);
    otherwise name, pretrained tag and dimension must all match."""
    if stored.get("dim") != given.get("dim"):
        return False
    sw, gw = stored.get("weights") or {}, given.get("weights") or {}
    if sw.get("sha256") and gw.get("sha256"):
        return bool(sw["sha256"] == gw["sha256"])
    return stored.get("name") == given.get("name") and stored.get("pretrained") == given.get("pretrained")


def describe_model(identity: Mapping[str, Any] | None) -> str:
    if not identity:
        return "no model (keyword-only)"
    out = str(identity.get("name"))
    if identity.get("pretrained"):
        out += f" ({identity['pretrained']})"
    out += f", {identity.get('dim')}-d"
    sha = (identity.get("weights") or {}).get("sha256")
    return out + (f", weights sha256 {sha[:12]}" if sha else "")


def check_manifest(data: Any, where: str) -> dict[str, Any]:
    """Validate a manifest read from *where*; a damaged or foreign one raises :class:`StoreError`."""
    fix = "restore it from a backup, or re-ingest into a new index folder"
    if not isinstance(data, dict):
        raise StoreError(f"{where}: the index manifest is damaged (not a JSON object); {fix}")
    fmt = data.get("format")
    if fmt != FORMAT:
        raise StoreError(
            f"{where}: index format {fmt!r} is not the format this version reads ({FORMAT}); "
            "re-ingest your documents into a new index folder"
        )
    dim, model, kw = data.get("dim"), data.get("model"), data.get("keyword_only")
    if not isinstance(kw, bool) or not isinstance(data.get("bm25"), dict) or not isinstance(data.get("points", 0), int):
        raise StoreError(f"{where}: the index manifest is damaged (keyword_only, bm25 or points missing or wrong); {fix}")
    if kw:
        if model is not None or dim is not None:
            raise StoreError(f"{where}: the index manifest is damaged (keyword-only but names a model); {fix}")
    elif not (isinstance(model, dict) and isinstance(dim, int) and dim > 0 and model.get("dim") == dim):
        raise StoreError(f"{where}: the index manifest is damaged (no model or vector size recorded); {fix}")
    return data


def load_model(identity: Mapping[str, Any], *, device: str | None = None, precision: str | None = None) -> Any:
    """Load the model an index was built with (an :class:`~mm_rag_plugin.OpenCLIPEmbedder`).

    Raises :class:`~mm_rag_plugin.errors.ModelLoadError` saying how to fix it when the weights are
    not here, and :class:`ConfigurationError` when they are but differ from those recorded."""
    from ..embeddings.open_clip import OpenCLIPEmbedder
    from ..errors import ModelLoadError

    name = str(identity.get("name"))
    pretrained = identity.get("pretrained")
    weights = identity.get("weights") or None
    prec: Any = precision or "auto"  # the machine's best, not the one recorded: the vectors agree
    try:
        if name.startswith("local-dir:"):
            emb = OpenCLIPEmbedder(name, device=device, precision=prec)
        elif weights and pretrained == weights.get("path"):
            emb = OpenCLIPEmbedder(name, checkpoint=pretrained, device=device, precision=prec)
        else:
            emb = OpenCLIPEmbedder(name, pretrained, device=device, precision=prec)
    except ModelLoadError as exc:
        raise ModelLoadError(
            f"the index was built with {describe_model(identity)}, which cannot be loaded here ({exc.reason}). "
            "Put those weights on this machine (see --model / --checkpoint, $MM_RAG_MODEL / $MM_RAG_CHECKPOINT) "
            "and pass them, or search by keywords only with --keyword-only (keyword_only=True).",
            reason=exc.reason,
        ) from exc
    got = model_identity(emb, identity)
    if not same_model(identity, got):
        raise ConfigurationError(
            f"the index was built with {describe_model(identity)}, but the weights found now are {describe_model(got)}; "
            "restore the original weights, or ingest the documents into a new index folder with the new model"
        )
    return emb
