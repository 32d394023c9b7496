"""The index manifest: what an index holds, recorded with it and enforced when it is opened.

One JSON object per index (``manifest.json`` beside an Edge shard; the collection's metadata on a
Qdrant server)::

    {"format": 2, "dim": 512, "keyword_only": false, "points": 1234,
     "model": {"name": "ViT-B-32", "pretrained": "laion2b_s34b_b79k", "dim": 512,
               "weights": {"path": "/abs/ckpt.safetensors", "size": ..., "mtime_ns": ..., "sha256": ...}},
     "bm25": {"language": "english", "k1": 1.2, "b": 0.75, "avg_len": 100.0, "tokenizer": 2},
     "blobs": "s3://bucket/prefix"}

``text_model`` (optional) is the identity of the index's text model (``text_embedder=``: a second
dense vector, ``text``, beside CLIP's): an object with ``name`` and ``dim`` (and what the model's
``identity()`` adds), compared field by field when the index is opened with a text model.

``clip_windows`` (optional) records the CLIP windows of text chunks (``clip_windows=``: a
multivector ``windows`` beside CLIP's vector): ``{"size": 77, "overlap": 16, "max_windows": 8}``,
compared when the index is opened with window settings.

``blobs`` (optional) is the URL of the blob store that holds the index's images
(:mod:`.blobstore`); without it they live in the index folder's ``blobs/``.

``model`` is ``None`` exactly when ``keyword_only`` is true (no dense vectors are stored at all).
``points`` is the count when the manifest was last written (on close, :meth:`optimize`,
:meth:`flush`, and every few seconds while writing: not on every write). ``clean`` is false from the
first write after that until the next time the count is stored: a manifest found with ``clean``
false (the process was killed while writing) has a count that may lag, so opening the index counts
the points instead; without ``clean`` (or true), an engine holding none while the manifest says
otherwise is a damaged index.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeGuard

from .._payload import too_deep
from ..errors import ConfigurationError, IndexNotFoundError, StoreError, echo
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


def weights_record(path: Path) -> dict[str, Any]:
    """Path, size, mtime and SHA-256 of a weights file.

    The hash is never taken from an index (a crafted manifest could claim any model's hash for
    this file): it is computed, or reused from this process or the user's cache
    (:func:`_weights_sha256`) while the file's path, size, times and inode are unchanged."""
    st = path.stat()
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": _weights_sha256(path, st)}


#: SHA-256 of weights files hashed by this process, by (real path, size, mtime, ctime, inode, device).
_HASHES: dict[tuple[Any, ...], str] = {}
#: Entries the user's cache file keeps (the most recent ones).
_CACHE_ENTRIES = 64
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _hash_cache_file() -> Path:
    """``$XDG_CACHE_HOME/mm-rag-plugin/weights-sha256.json`` (``~/.cache/...``): outside any index."""
    from .._cache import cache_path

    return cache_path("weights-sha256.json")


def _weights_sha256(path: Path, st: os.stat_result) -> str:
    """*path*'s SHA-256, hashed once per version of the file (hashing 600 MB takes a second)."""
    real = os.path.realpath(path)
    key = (real, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev)
    sha = _HASHES.get(key)
    if sha is not None:
        return sha
    cache_file = _hash_cache_file()
    try:
        cached = json.loads(cache_file.read_text(encoding="utf-8"))
        cached = cached if isinstance(cached, dict) else {}
    except (OSError, ValueError, RecursionError):  # none yet, or unreadable: hash again
        cached = {}
    entry = cached.get(real)
    if isinstance(entry, list) and len(entry) == 6 and tuple(entry[:5]) == key[1:] and isinstance(entry[5], str) and _SHA256.fullmatch(entry[5]):
        sha = entry[5]
    else:
        sha = file_sha256(path)
        cached.pop(real, None)
        cached[real] = [*key[1:], sha]
        keep = dict(list(cached.items())[-_CACHE_ENTRIES:])
        tmp = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp")
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(keep), encoding="utf-8")
            os.replace(tmp, cache_file)
        except OSError:  # a read-only home: this process remembers it
            tmp.unlink(missing_ok=True)
    _HASHES[key] = sha
    return sha


def model_identity(embedder: Any, known: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What identifies *embedder*'s vectors: architecture / name, pretrained tag, dimension, and the
    weights file's hash when the weights come from a local file or folder (*known*, the identity
    an index records, is not used: nothing read from an index stands for a local file)."""
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
    ident["weights"] = weights_record(weights) if weights else None
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
    """Validate a manifest read from *where*, every value by type and range; a damaged or foreign
    one raises :class:`StoreError` in one line naming *where* and the field."""
    fix = "restore it from a backup, or re-ingest into a new index folder"
    if not isinstance(data, dict):
        raise StoreError(f"{where}: the index manifest is damaged (not a JSON object); {fix}")
    if too_deep(data, _MANIFEST_DEPTH):
        raise StoreError(f"{where}: damaged index: the manifest is nested more than {_MANIFEST_DEPTH} levels deep; {fix}")
    fmt = data.get("format")
    if fmt != FORMAT:
        raise StoreError(
            f"{where}: index format {echo(fmt)} is not the format this version reads ({FORMAT}); "
            "re-ingest your documents into a new index folder"
        )
    problem = _manifest_problem(data)
    if problem:
        raise StoreError(f"{where}: damaged index: {problem}; {fix}")
    return data


#: Deepest nesting a manifest may hold (it needs 3: ``model.weights.sha256``).
_MANIFEST_DEPTH = 16
#: Largest vector size an index may record.
MAX_DIM = 65536
_WEIGHT_FIELDS = {
    "path": (lambda v: isinstance(v, str), "a string"),
    "size": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "mtime_ns": (lambda v: _is_int(v), "an integer"),
    "sha256": (lambda v: v is None or (isinstance(v, str) and bool(_SHA256.fullmatch(v))), "64 hex digits or null"),
}


def _is_int(v: Any) -> TypeGuard[int]:
    return v.__class__ is int  # not bool, not float


def _manifest_problem(data: Mapping[str, Any]) -> str | None:
    """The first field of *data* (format already checked) with a wrong type or value, and why."""
    from .bm25 import settings_problem

    kw, dim, model, bm25 = data.get("keyword_only"), data.get("dim"), data.get("model"), data.get("bm25")
    if not isinstance(kw, bool):
        return f"keyword_only must be true or false, got {echo(kw)}"
    points = data.get("points", 0)
    if not (_is_int(points) and points >= 0):
        return f"points must be an integer >= 0, got {echo(points)}"
    clean = data.get("clean", True)
    if not isinstance(clean, bool):
        return f"clean must be true or false, got {echo(clean)}"
    if "blobs" in data:  # the blob store's URL (absent: images live in the index folder)
        from .blobstore import blob_url_problem

        problem = blob_url_problem(data["blobs"])
        if problem:
            return problem
    if "text_model" in data:
        problem = _text_model_problem(data["text_model"])
        if problem:
            return problem
    if "clip_windows" in data:
        from ..embeddings.windows import windows_problem

        problem = windows_problem(data["clip_windows"])
        if problem:
            return problem
    if not isinstance(bm25, dict):
        return f"bm25 must be an object of BM25 settings, got {echo(bm25)}"
    problem = settings_problem(bm25)
    if problem:
        return f"bm25.{problem}"
    if kw:
        if model is not None or dim is not None:
            return f"a keyword-only index has no model and no dim, got model {echo(model)} and dim {echo(dim)}"
        return None
    if not (_is_int(dim) and 1 <= dim <= MAX_DIM):
        return f"dim must be an integer from 1 to {MAX_DIM}, got {echo(dim)}"
    if not isinstance(model, dict):
        return f"model must be an object naming the model (the index is not keyword-only), got {echo(model)}"
    if model.get("dim") != dim or not _is_int(model.get("dim")):
        return f"model.dim must equal dim ({dim}), got {echo(model.get('dim'))}"
    for key in ("name", "pretrained", "precision"):
        value = model.get(key)
        if value is not None and not isinstance(value, str):
            return f"model.{key} must be a string or null, got {echo(value)}"
    weights = model.get("weights")
    if weights is None:
        return None
    if not isinstance(weights, dict):
        return f"model.weights must be an object (path, size, mtime_ns, sha256) or null, got {echo(weights)}"
    for key, (ok, wanted) in _WEIGHT_FIELDS.items():
        if not ok(weights.get(key)):
            return f"model.weights.{key} must be {wanted}, got {echo(weights.get(key))}"
    return None


def _text_model_problem(tm: Any) -> str | None:
    if not isinstance(tm, dict):
        return f"text_model must be an object naming the text model, got {echo(tm)}"
    dim = tm.get("dim")
    if not (_is_int(dim) and 1 <= dim <= MAX_DIM):
        return f"text_model.dim must be an integer from 1 to {MAX_DIM}, got {echo(dim)}"
    if not isinstance(tm.get("name"), str):
        return f"text_model.name must be a string, got {echo(tm.get('name'))}"
    return None


def load_model(
    identity: Mapping[str, Any], *, device: str | None = None, precision: str | None = None, text_tower: bool = True
) -> Any:
    """Load the model an index was built with (an :class:`~mm_rag_plugin.OpenCLIPEmbedder`).

    With *text_tower* (default) and on the CPU, a model whose text tower is cached
    (:mod:`mm_rag_plugin.embeddings.text_tower`) comes back as a
    :class:`~mm_rag_plugin.embeddings.lazy.LazyOpenCLIPEmbedder`: text queries run without torch,
    and the whole model is loaded when first needed. Loading the whole model here caches its text
    tower for the next process.

    Raises :class:`~mm_rag_plugin.errors.ModelLoadError` saying how to fix it when the weights are
    not here, and :class:`ConfigurationError` when they are but differ from those recorded."""
    from ..errors import ModelLoadError

    name = str(identity.get("name"))
    pretrained = identity.get("pretrained")
    weights = identity.get("weights") or None
    prec: Any = precision or "auto"  # the machine's best, not the one recorded: the vectors agree

    def build() -> Any:
        from ..embeddings.open_clip import OpenCLIPEmbedder

        try:
            if name.startswith("local-dir:"):
                return OpenCLIPEmbedder(name, device=device, precision=prec)
            if weights and pretrained == weights.get("path"):
                return OpenCLIPEmbedder(name, checkpoint=pretrained, device=device, precision=prec)
            return OpenCLIPEmbedder(name, pretrained, device=device, precision=prec)
        except ModelLoadError as exc:
            raise ModelLoadError(
                f"the index was built with {describe_model(identity)}, which cannot be loaded here ({exc.reason}). "
                "Put those weights on this machine (see --model / --checkpoint, $MM_RAG_MODEL / $MM_RAG_CHECKPOINT) "
                "and pass them, or search by keywords only with --keyword-only (keyword_only=True).",
                reason=exc.reason,
            ) from exc

    key, weights_file = _tower_key(identity, device) if text_tower else (None, None)
    emb: Any = None
    if key is not None:
        from ..embeddings.lazy import LazyOpenCLIPEmbedder
        from ..embeddings.text_tower import load_text_tower

        tower = load_text_tower(key, int(identity["dim"]))
        if tower is not None:
            emb = LazyOpenCLIPEmbedder(tower, build, model_name=tower.meta["model_name"], pretrained=tower.meta["pretrained"], dim=tower.dim)
            if emb.model_name != name or not same_model(identity, model_identity(emb, identity)):
                emb = None  # a tower of other weights under this key: the whole model decides
    if emb is None:
        emb = build()
    got = model_identity(emb, identity)
    if not same_model(identity, got):
        raise ConfigurationError(
            f"the index was built with {describe_model(identity)}, but the weights found now are {describe_model(got)}; "
            "restore the original weights, or ingest the documents into a new index folder with the new model"
        )
    if key is not None and not hasattr(emb, "tower"):
        from ..embeddings.text_tower import export_text_tower

        export_text_tower(emb, key, weights_file)  # for the next process; never raises
    return emb


def read_folder_manifest(folder: Path) -> dict[str, Any]:
    """The checked manifest of the index in *folder*, read without opening its shard (so while
    another process holds the index) and without following a link (:mod:`._folder`)."""
    import json

    from ._folder import open_nofollow

    path = Path(folder) / "manifest.json"
    try:
        with open(open_nofollow(path, os.O_RDONLY), "rb") as fh:
            text = fh.read(1 << 20).decode("utf-8", "replace")
        data = json.loads(text)
    except FileNotFoundError:
        raise IndexNotFoundError(f"{folder}: no index here (no manifest.json); run `mm-rag ingest` first") from None
    except (OSError, ValueError, RecursionError) as exc:
        raise StoreError(f"{path}: cannot read the index manifest ({echo(exc)})") from None
    return check_manifest(data, str(path))


def _tower_key(identity: Mapping[str, Any], device: str | None) -> tuple[str | None, Path | None]:
    """The text-tower cache key of the model *identity* names, from the weights found on this
    machine (never from the index), and the weights file; ``None`` where no tower is used: not on
    the CPU, or weights that are not here."""
    from ..embeddings.open_clip import ENV_DEVICE
    from ..embeddings.text_tower import enabled, tower_key

    if not enabled() or (device or os.environ.get(ENV_DEVICE) or "cpu") != "cpu":
        return None, None
    name, pretrained = identity.get("name"), identity.get("pretrained")
    if not isinstance(name, str) or not isinstance(identity.get("dim"), int):
        return None, None
    if name.startswith("local-dir:"):
        path = _weights_file(name, None)
    elif isinstance(pretrained, str) and (identity.get("weights") or {}).get("path") == pretrained:
        path = Path(pretrained) if Path(pretrained).is_file() else None
    elif isinstance(pretrained, str) and not (identity.get("weights") or {}):
        return tower_key(name, pretrained, None), None  # an open_clip pretrained tag
    else:
        return None, None
    if path is None:
        return None, None
    path = path.resolve()
    return tower_key(name, pretrained, weights_record(path)["sha256"]), path
