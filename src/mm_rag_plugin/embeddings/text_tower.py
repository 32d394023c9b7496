"""A CLIP text tower that runs on NumPy alone: a text query without PyTorch or open_clip.

A text query needs only the model's text tower, but loading it through open_clip costs seconds
(importing torch, torchvision, timm; building both towers; reading every weight). For open_clip
``CLIP`` models with the standard text transformer (pre-norm blocks, causal mask, end-of-text
pooling, open_clip's default tokenizer), :func:`export_text_tower` writes the text tower's weights
once, as ``.npy`` files, into a cache folder keyed by the weights' SHA-256
(``$XDG_CACHE_HOME/mm-rag-plugin/text-towers/<key>/``); :class:`NumpyTextTower` memory-maps them
and computes the same vectors in fp32 (within cosine 0.9999 of open_clip's: the export checks it on
probe texts and writes nothing otherwise).

``$MM_RAG_TEXT_TOWER=0`` turns the cache off (every query loads the whole model, as before).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ._clip_tokenizer import ClipTokenizer, bpe_vocab_file

__all__ = ["ENV_TEXT_TOWER", "NumpyTextTower", "export_text_tower", "load_text_tower", "text_tower_dir"]

logger = logging.getLogger(__name__)

ENV_TEXT_TOWER = "MM_RAG_TEXT_TOWER"
#: Version of the files' layout; a folder of another version is ignored (and rewritten).
LAYOUT = 1
#: Least cosine between the exported tower's vectors and open_clip's, on the probe texts.
MIN_COSINE = 0.9999
#: The same, against a model running in bf16 or fp16 (whose own rounding costs up to ~2e-4).
LOW_PRECISION_COSINE = 0.999
PROBES = (
    "a photo of a dog",
    "A red circle next to a blue square, and a much longer sentence that goes on about shapes and colours.",
    "Café déjà vu: 3 × 4 = 12 &amp; naïve ünïcode 日本語",
    "",
)


def enabled() -> bool:
    return os.environ.get(ENV_TEXT_TOWER, "1").strip().lower() not in ("0", "false", "no", "off")


def text_tower_dir(key: str) -> Path:
    """``$XDG_CACHE_HOME/mm-rag-plugin/text-towers/<key>`` (``~/.cache/...``)."""
    from .._cache import cache_path

    return cache_path("text-towers") / key


def tower_key(name: str, pretrained: str | None, sha256: str | None) -> str:
    """The cache key: the weights' SHA-256 when they are a local file, else the architecture and
    pretrained tag (open_clip's tags name fixed weights)."""
    if sha256:
        return sha256
    return "tag-" + hashlib.sha256(f"{name}\x00{pretrained}".encode()).hexdigest()


# ---------------------------------------------------------------------- the forward pass
def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float) -> np.ndarray:
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * w + b


def _erf(x: np.ndarray) -> np.ndarray:
    """erf to ~1e-7 (Abramowitz & Stegun 7.1.26), enough for fp32 GELU."""
    s = np.sign(x)
    a = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * a)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    return s * (1.0 - poly * np.exp(-a * a))


def _gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + _erf(x * np.float32(0.7071067811865476)))


def _quick_gelu(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-1.702 * x))


def _softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    np.exp(x, out=x)
    return x / x.sum(-1, keepdims=True)


class NumpyTextTower:
    """The text tower exported by :func:`export_text_tower`, memory-mapped from *folder*."""

    def __init__(self, folder: Path, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray], tokenizer: ClipTokenizer) -> None:
        self.folder = folder
        self.meta = dict(meta)
        self.dim = int(meta["dim"])
        self.context_length = int(meta["context_length"])
        self.heads = int(meta["heads"])
        self.layers = int(meta["layers"])
        self.eps = float(meta["eps"])
        self._act = _quick_gelu if meta["act"] == "quick_gelu" else _gelu
        self._w = arrays
        self.tokenizer = tokenizer

    def tokenize(self, texts: list[str]) -> np.ndarray:
        return self.tokenizer(texts, self.context_length)

    def encode_tokens(self, tokens: np.ndarray) -> np.ndarray:
        """Unit vectors (float32) for token rows (padding after the longest text is cut: the
        causal mask makes the end-of-text feature independent of it)."""
        w, h, eps = self._w, self.heads, self.eps
        ends = tokens.argmax(-1)  # the end-of-text token has the largest id
        n = int(ends.max()) + 1
        tokens = tokens[:, :n]
        x = (w["token_embedding"][tokens] + w["positional_embedding"][:n]).astype(np.float32)
        b, _, d = x.shape
        mask = np.triu(np.full((n, n), -np.inf, dtype=np.float32), 1)
        scale = np.float32(1.0 / np.sqrt(d // h))
        for i in range(self.layers):
            p = f"l{i}."
            y = _layer_norm(x, w[p + "ln_1.w"], w[p + "ln_1.b"], eps)
            qkv = y @ w[p + "in_proj.w"].T + w[p + "in_proj.b"]
            q, k, v = (t.reshape(b, n, h, d // h).transpose(0, 2, 1, 3) for t in np.split(qkv, 3, axis=-1))
            att = _softmax((q * scale) @ k.transpose(0, 1, 3, 2) + mask)
            y = (att @ v).transpose(0, 2, 1, 3).reshape(b, n, d)
            x = x + (y @ w[p + "out_proj.w"].T + w[p + "out_proj.b"])
            y = _layer_norm(x, w[p + "ln_2.w"], w[p + "ln_2.b"], eps)
            y = self._act(y @ w[p + "c_fc.w"].T + w[p + "c_fc.b"])
            x = x + (y @ w[p + "c_proj.w"].T + w[p + "c_proj.b"])
        x = _layer_norm(x, w["ln_final.w"], w["ln_final.b"], eps)
        x = x[np.arange(b), ends]
        if "proj" in w:
            x = x @ w["proj"]
            if "proj.b" in w:
                x = x + w["proj.b"]
        x = x.astype(np.float32)
        return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)

    def embed_texts(self, texts: list[str]) -> np.ndarray:
        return self.encode_tokens(self.tokenize(texts))


def _shapes(meta: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """Every array's expected shape, from the recorded sizes (a damaged folder is refused)."""
    d, v, c, f = (int(meta[k]) for k in ("width", "vocab_size", "context_length", "mlp_width"))
    out: dict[str, tuple[int, ...]] = {
        "token_embedding": (v, d), "positional_embedding": (c, d), "ln_final.w": (d,), "ln_final.b": (d,),
    }
    for i in range(int(meta["layers"])):
        p = f"l{i}."
        out.update({
            p + "ln_1.w": (d,), p + "ln_1.b": (d,), p + "ln_2.w": (d,), p + "ln_2.b": (d,),
            p + "in_proj.w": (3 * d, d), p + "in_proj.b": (3 * d,), p + "out_proj.w": (d, d), p + "out_proj.b": (d,),
            p + "c_fc.w": (f, d), p + "c_fc.b": (f,), p + "c_proj.w": (d, f), p + "c_proj.b": (d,),
        })
    if meta.get("proj") == "matrix":
        out["proj"] = (d, int(meta["dim"]))
    elif meta.get("proj") == "linear":
        out["proj"] = (d, int(meta["dim"]))
        out["proj.b"] = (int(meta["dim"]),)
    return out


def load_text_tower(key: str, dim: int) -> NumpyTextTower | None:
    """The cached text tower for *key*, or ``None`` (none cached, the cache turned off, or a
    folder that does not check out: then the caller loads the whole model)."""
    if not enabled():
        return None
    folder = text_tower_dir(key)
    meta_file = folder / "meta.json"
    if not meta_file.is_file():
        return None
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or meta.get("layout") != LAYOUT or meta.get("dim") != dim:
            return None
        if meta.get("act") not in ("gelu", "quick_gelu") or not int(meta["heads"]) >= 1 or int(meta["width"]) % int(meta["heads"]):
            return None
        vocab = bpe_vocab_file()
        if vocab is None:
            return None
        arrays: dict[str, np.ndarray] = {}
        for name, shape in _shapes(meta).items():
            a = np.load(folder / f"{name}.npy", mmap_mode="r", allow_pickle=False)
            if a.shape != shape or a.dtype != np.float32:
                raise ValueError(f"{name}.npy has shape {a.shape} {a.dtype}, expected {shape} float32")
            arrays[name] = a
        tokenizer = ClipTokenizer(vocab, int(meta["context_length"]))
        if tokenizer.vocab_size != int(meta["vocab_size"]):
            return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.warning("ignoring the cached text tower in %s (%s); loading the whole model", folder, exc)
        return None
    return NumpyTextTower(folder, meta, arrays, tokenizer)


# ---------------------------------------------------------------------- export
def _describe(embedder: Any, exact: Mapping[int, Any]) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """Meta and weights (torch tensors) of *embedder*'s text tower, or ``None`` when the tower is
    not the standard one this module computes. *exact* maps ``id(parameter)`` to the parameter's
    fp32 value from the weights file, for a model loaded in a lower precision."""
    import open_clip
    from open_clip import tokenizer as oc_tok
    from open_clip.transformer import ResidualAttentionBlock, Transformer
    from torch import nn

    m, tok = embedder.model, embedder.tokenizer
    if not embedder._trim_padding:  # open_clip CLIP, causal mask, argmax pooling (checked there)
        return None
    if type(tok) is not oc_tok.SimpleTokenizer or tok.clean_fn is not oc_tok._clean_lower or tok.reduction_fn is not None:
        return None
    if type(m) is not open_clip.model.CLIP or type(m.transformer) is not Transformer:
        return None
    eps = float(m.ln_final.eps)
    weights: dict[str, Any] = {
        "token_embedding": m.token_embedding.weight,
        "positional_embedding": m.positional_embedding,
        "ln_final.w": m.ln_final.weight,
        "ln_final.b": m.ln_final.bias,
    }
    act = None
    for i, blk in enumerate(m.transformer.resblocks):
        if type(blk) is not ResidualAttentionBlock or hasattr(blk, "ln_1_kv"):
            return None
        if not isinstance(blk.ls_1, nn.Identity) or not isinstance(blk.ls_2, nn.Identity):
            return None
        attn, mlp = blk.attn, blk.mlp
        if not isinstance(attn, nn.MultiheadAttention) or attn.in_proj_weight is None or attn.in_proj_bias is None:
            return None
        if list(dict(mlp.named_children())) != ["c_fc", "gelu", "c_proj"]:
            return None
        g = mlp.gelu
        this = "quick_gelu" if type(g).__name__ == "QuickGELU" else "gelu" if type(g) is nn.GELU and g.approximate == "none" else None
        if this is None or (act is not None and this != act):
            return None
        act = this
        for ln in (blk.ln_1, blk.ln_2):
            if not isinstance(ln, nn.LayerNorm) or float(ln.eps) != eps or ln.weight is None or ln.bias is None:
                return None
        p = f"l{i}."
        weights.update({
            p + "ln_1.w": blk.ln_1.weight, p + "ln_1.b": blk.ln_1.bias,
            p + "ln_2.w": blk.ln_2.weight, p + "ln_2.b": blk.ln_2.bias,
            p + "in_proj.w": attn.in_proj_weight, p + "in_proj.b": attn.in_proj_bias,
            p + "out_proj.w": attn.out_proj.weight, p + "out_proj.b": attn.out_proj.bias,
            p + "c_fc.w": mlp.c_fc.weight, p + "c_fc.b": mlp.c_fc.bias,
            p + "c_proj.w": mlp.c_proj.weight, p + "c_proj.b": mlp.c_proj.bias,
        })
    if not isinstance(m.ln_final, nn.LayerNorm) or float(m.ln_final.eps) != eps:
        return None
    proj = m.text_projection
    if proj is None:
        kind = None
    elif isinstance(proj, nn.Linear):
        kind = "linear"
        weights["proj"] = proj.weight.T
        if proj.bias is None:
            return None
        weights["proj.b"] = proj.bias
    else:
        kind = "matrix"
        weights["proj"] = proj
    if any(w is None for w in weights.values()):
        return None
    weights = {k: exact.get(id(w), w) for k, w in weights.items()}
    if kind == "linear":
        weights["proj"] = exact.get(id(proj.weight), proj.weight).T
    width = int(m.token_embedding.weight.shape[1])
    meta = {
        "layout": LAYOUT,
        "dim": int(embedder.dim),
        "width": width,
        "heads": int(m.transformer.resblocks[0].attn.num_heads),
        "layers": len(m.transformer.resblocks),
        "mlp_width": int(m.transformer.resblocks[0].mlp.c_fc.weight.shape[0]),
        "vocab_size": int(m.token_embedding.weight.shape[0]),
        "context_length": int(embedder.context_length),
        "act": act,
        "eps": eps,
        "proj": kind,
        "model_name": embedder.model_name,
        "pretrained": embedder.pretrained,
    }
    return meta, weights


def _fp32_weights(embedder: Any, weights_file: Path | None) -> dict[int, Any]:
    """``id(parameter) -> fp32 tensor`` read from *weights_file*, for a model loaded in bf16/fp16
    (its own weights are rounded); empty for an fp32 model or no file."""
    if embedder.precision == "fp32" or weights_file is None:
        return {}
    import torch

    if weights_file.suffix == ".safetensors":
        from safetensors.torch import load_file

        sd: Any = load_file(str(weights_file))
    else:  # memory-mapped: no second copy of the whole model's weights
        sd = torch.load(weights_file, map_location="cpu", weights_only=True, mmap=True)
    if isinstance(sd, dict) and isinstance(sd.get("state_dict"), dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        return {}
    if next(iter(sd), "").startswith("module."):
        sd = {k[7:]: v for k, v in sd.items()}
    out = {}
    for name, p in embedder.model.named_parameters():
        value = sd.get(name)
        if name.startswith(("token_embedding", "positional_embedding", "transformer.", "ln_final", "text_projection")) and value is not None and value.shape == p.shape:
            out[id(p)] = value.float()
    return out


def export_text_tower(embedder: Any, key: str, weights_file: Path | None = None) -> NumpyTextTower | None:
    """Write *embedder*'s text tower for *key* (see the module's doc) and return it, or ``None``
    when the tower is not one this module computes, or its vectors differ from *embedder*'s.
    The weights are the fp32 values of *weights_file* (the model's own when it runs in fp32).
    Never raises for a problem of the cache: the caller goes on with the whole model."""
    if not enabled():
        return None
    folder = text_tower_dir(key)
    tmp = folder.with_name(f"{folder.name}.{os.getpid()}.tmp")
    try:
        described = _describe(embedder, _fp32_weights(embedder, weights_file))
        vocab = bpe_vocab_file()
        if described is None or vocab is None:
            logger.info("no NumPy text tower for %s: not a standard CLIP text tower", embedder.model_name)
            return None
        meta, weights = described
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        for name, tensor in weights.items():
            np.save(tmp / f"{name}.npy", np.ascontiguousarray(tensor.detach().float().cpu().numpy()), allow_pickle=False)
        (tmp / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
        arrays = {name: np.load(tmp / f"{name}.npy", mmap_mode="r") for name in weights}
        tower = NumpyTextTower(tmp, meta, arrays, ClipTokenizer(vocab, meta["context_length"]))
        probes = list(PROBES)
        ours_tokens = tower.tokenize(probes)
        theirs_tokens = embedder._tokenize(probes).cpu().numpy()
        if not np.array_equal(ours_tokens, theirs_tokens):
            logger.info("no NumPy text tower for %s: its tokenizer differs from open_clip's", embedder.model_name)
            return None
        ours = tower.encode_tokens(ours_tokens)
        theirs = embedder._encode_tokens(embedder._tokenize(probes))
        cos = float((ours * theirs).sum(-1).min())
        # against a bf16/fp16 model the reference itself is rounded: a wrong tower is far below
        if not cos >= (MIN_COSINE if embedder.precision == "fp32" else LOW_PRECISION_COSINE):
            logger.info("no NumPy text tower for %s: cosine %.6f to open_clip's vectors", embedder.model_name, cos)
            return None
        del arrays, tower
        shutil.rmtree(folder, ignore_errors=True)
        os.replace(tmp, folder)
        logger.info("wrote the NumPy text tower of %s to %s", embedder.model_name, folder)
        return load_text_tower(key, meta["dim"])
    except Exception as exc:  # a full disk, a read-only home ...: the whole model still works
        logger.warning("could not write the text tower cache %s: %s", folder, exc)
        return None
    finally:
        with contextlib.suppress(OSError):
            shutil.rmtree(tmp, ignore_errors=True)
