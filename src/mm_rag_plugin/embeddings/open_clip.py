"""Text, image and text+image embeddings in one space, on any open_clip model.

``OpenCLIPEmbedder`` is framework-free; the LangChain and LlamaIndex adapters wrap it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, overload
from urllib.parse import urlparse

import numpy as np

from .._images import DEFAULT_MAX_PIXELS, describe, load_image
from .._optional import require
from ..errors import ConfigurationError, InvalidInputError, ModelLoadError, echo
from ..ids import content_hash
from ..types import ImageInput, ItemError
from ._skip_init import skip_random_init
from ._twins import AsyncTwins

if TYPE_CHECKING:
    import torch
    from PIL import Image

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_MODEL", "DEFAULT_PRETRAINED", "EmbeddingResult", "OpenCLIPEmbedder"]

DEFAULT_MODEL = "ViT-B-32"
DEFAULT_PRETRAINED = "laion2b_s34b_b79k"

#: Environment variables read when the matching argument is not given.
ENV_MODEL = "MM_RAG_MODEL"
ENV_PRETRAINED = "MM_RAG_PRETRAINED"
ENV_CHECKPOINT = "MM_RAG_CHECKPOINT"
ENV_DEVICE = "MM_RAG_DEVICE"
ENV_PRECISION = "MM_RAG_PRECISION"

_PRECISIONS = ("auto", "fp32", "fp16", "bf16")


def native_bf16(device: str) -> bool:
    """Whether *device* computes in bfloat16 natively: a CUDA GPU that supports it, or a CPU with
    AVX512-BF16 or AMX (elsewhere bf16 is emulated, and slower than fp32)."""
    torch = require("torch", extra="clip")
    if device.startswith("cuda"):
        return bool(torch.cuda.is_available() and torch.cuda.is_bf16_supported())
    if device != "cpu":
        return False
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    flags = next((line for line in text.splitlines() if line.startswith("flags")), "").split()
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_precision(precision: str | None, device: str) -> str:
    """The precision ``"auto"`` (or ``None``: ``$MM_RAG_PRECISION``, else auto) means on *device*:
    ``"bf16"`` on a CPU that computes bf16 natively (half the memory traffic per weight, and the
    vectors agree with fp32's to four decimals of cosine; ``benchmarks/bench_embeddings``),
    ``"fp32"`` elsewhere."""
    if precision in (None, "auto"):
        precision = os.environ.get(ENV_PRECISION) or "auto"
        if precision not in _PRECISIONS:
            raise ConfigurationError(f"${ENV_PRECISION} must be one of {_PRECISIONS}, got {precision!r}")
    if precision not in _PRECISIONS:
        raise ConfigurationError(f"precision must be one of {_PRECISIONS}, got {precision!r}")
    if precision == "auto":
        return "bf16" if device == "cpu" and native_bf16(device) else "fp32"
    if precision == "fp16" and device == "cpu":
        raise ConfigurationError("precision='fp16' needs a GPU; use 'fp32' (or 'bf16') on the CPU")
    return precision


@dataclass(frozen=True, slots=True)
class EmbeddingResult:
    """Embeddings of a batch in which some inputs may have failed.

    ``vectors`` has one row per input, in input order; rows of failed inputs are NaN and ``ok`` is
    False for them. ``errors`` holds one :class:`ItemError` per failed input.
    """

    vectors: np.ndarray
    ok: np.ndarray
    errors: tuple[ItemError, ...]

    @property
    def good(self) -> np.ndarray:
        """The rows of the inputs that succeeded, in input order."""
        return self.vectors[self.ok]


def select_device(device: str | None = None) -> str:
    """The device to run on: *device* if given, else ``$MM_RAG_DEVICE``, else cuda, mps or cpu."""
    torch = require("torch", extra="clip")
    device = device or os.environ.get(ENV_DEVICE) or None
    if device:
        return device
    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def hub_unreachable(timeout: float = 3.0) -> bool:
    """True when the Hugging Face hub (``$HF_ENDPOINT``) cannot even be connected to.

    Without this check an offline machine spends about a minute in download retries before failing.
    Behind a proxy (``HTTPS_PROXY``/``ALL_PROXY``) the check is skipped and the download is tried.
    """
    env = os.environ
    if env.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on"):
        return True
    if any(env.get(v) for v in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return False
    url = urlparse(env.get("HF_ENDPOINT") or "https://huggingface.co")
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout).close()
    except OSError:
        return True
    return False


@contextlib.contextmanager
def _hf_offline() -> Iterator[None]:
    """Make huggingface_hub use its local cache only (it reads HF_HUB_OFFLINE at import)."""
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - open_clip depends on huggingface_hub
        yield
        return
    old = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = old


def _batches(n: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, size):
        yield start, min(start + size, n)


class _LRU:
    """A small thread-safe LRU map from content hash to vector."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: str) -> np.ndarray | None:
        if self.maxsize <= 0:
            return None
        with self._lock:
            vec = self._data.get(key)
            if vec is None:
                self.misses += 1
                return None
            self._data.move_to_end(key)
            self.hits += 1
            return vec

    def put(self, key: str, vec: np.ndarray) -> None:
        if self.maxsize <= 0:
            return
        with self._lock:
            self._data[key] = vec
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._data)


class OpenCLIPEmbedder(AsyncTwins):
    """Embed texts, images and text+image pairs into one L2-normalised space with open_clip.

    Model selection (first match wins):

    * ``model=`` / ``preprocess=`` / ``tokenizer=``: objects you already built with open_clip.
    * ``model_name`` as ``"hf-hub:org/repo"`` or ``"local-dir:/path"`` (or a plain directory path
      holding ``open_clip_config.json`` and the weights).
    * ``model_name`` an open_clip architecture (``"ViT-B-32"``, ``"ViT-B-16-SigLIP"``,
      ``"MobileCLIP-S2"`` ...) with ``pretrained`` a tag open_clip knows or ``checkpoint`` a local
      weights file.

    Unset arguments fall back to ``$MM_RAG_MODEL``, ``$MM_RAG_PRETRAINED``, ``$MM_RAG_CHECKPOINT``
    and ``$MM_RAG_DEVICE``, then to ``ViT-B-32`` / ``laion2b_s34b_b79k`` on cuda, mps or cpu.
    ``load_weights=False`` builds the architecture with random weights (benchmarks, tests).
    ``batch_size`` (images, default 32) and ``text_batch_size`` (default: ``batch_size`` on the CPU,
    at least 128 on a GPU) set how many items go through the model at once.

    Every method returns float32 vectors of unit L2 norm, one row per input, in input order.
    """

    def __init__(
        self,
        model_name: str | None = None,
        pretrained: str | None = None,
        *,
        checkpoint: str | os.PathLike[str] | None = None,
        load_weights: bool = True,
        device: str | None = None,
        precision: Literal["auto", "fp32", "fp16", "bf16"] = "auto",
        batch_size: int = 32,
        text_batch_size: int | None = None,
        multimodal_weight: float = 0.5,
        cache_size: int = 4096,
        max_image_pixels: int | None = DEFAULT_MAX_PIXELS,
        show_progress: bool = False,
        cache_dir: str | None = None,
        model: Any = None,
        preprocess: Callable[[Image.Image], torch.Tensor] | None = None,
        tokenizer: Callable[..., torch.Tensor] | None = None,
    ) -> None:
        self._torch = require("torch", extra="clip")
        if batch_size < 1 or (text_batch_size is not None and text_batch_size < 1):
            raise ConfigurationError(f"batch sizes must be >= 1, got {batch_size=}, {text_batch_size=}")
        if not 0.0 <= multimodal_weight <= 1.0:
            raise ConfigurationError(f"multimodal_weight must be within [0, 1], got {multimodal_weight}")
        self.device = select_device(device)
        self.precision = resolve_precision(precision, self.device)
        self.batch_size = batch_size
        # CPU: small text batches are faster (texts sorted by length, padding cut per batch; bigger
        # batches spill the CPU caches, benchmarks/bench_embeddings); GPU: fill the device
        self.text_batch_size = text_batch_size or (batch_size if self.device == "cpu" else max(batch_size, 128))
        self.multimodal_weight = multimodal_weight
        self.max_image_pixels = max_image_pixels
        self.show_progress = show_progress
        self._cache = _LRU(cache_size)

        if model is not None:
            if preprocess is None or tokenizer is None:
                raise ConfigurationError("when passing model=, also pass preprocess= and tokenizer=")
            self.model_name = model_name or type(model).__name__
            self.pretrained = pretrained
            self.model = model.to(self.device)
            self.preprocess, self.tokenizer = preprocess, tokenizer
        else:
            self._load(model_name, pretrained, checkpoint, load_weights, cache_dir)
        self.model.eval()
        self._dtype = next(self.model.parameters()).dtype
        if model is not None:  # the caller's model runs as given: record the precision it has
            self.precision = {self._torch.bfloat16: "bf16", self._torch.float16: "fp16"}.get(self._dtype, "fp32")
        self._trim_padding = self._can_trim_padding()
        self.context_length = int(
            getattr(self.model, "context_length", None) or getattr(self.tokenizer, "context_length", None) or 77
        )
        self.dim = self._infer_dim()

    # ------------------------------------------------------------------ loading
    def _load(
        self,
        model_name: str | None,
        pretrained: str | None,
        checkpoint: str | os.PathLike[str] | None,
        load_weights: bool,
        cache_dir: str | None,
    ) -> None:
        open_clip = require("open_clip", extra="clip", package="open_clip_torch")
        name = model_name or os.environ.get(ENV_MODEL) or DEFAULT_MODEL
        if ":" not in name and Path(name).is_dir():
            name = f"local-dir:{name}"
        has_schema = name.startswith(("hf-hub:", "local-dir:"))
        ckpt = checkpoint or os.environ.get(ENV_CHECKPOINT) or None
        tag: str | None = None
        if not has_schema and load_weights:
            if ckpt is not None:
                tag = os.fspath(ckpt)
                if not Path(tag).is_file():
                    raise ModelLoadError(
                        self._how_to_fix(name, tag, "checkpoint file not found"), reason=f"checkpoint {tag} not found"
                    )
            else:
                tag = pretrained or os.environ.get(ENV_PRETRAINED) or None
                if tag is None:
                    tags = open_clip.list_pretrained_tags_by_model(name)
                    tag = DEFAULT_PRETRAINED if name == DEFAULT_MODEL else (tags[0] if tags else None)
                    if tag is None:
                        raise ModelLoadError(
                            f"open_clip has no pretrained weights for {name!r}; pass pretrained= or checkpoint=, "
                            "or load_weights=False for random weights"
                        )
        self.model_name, self.pretrained = name, tag
        # every weight and buffer in the low precision ("pure"): open_clip's mixed "bf16"/"fp16" keeps
        # some parameters (ViT class and position embeddings) in fp32, and the image tower then fails
        precision = {"bf16": "pure_bf16", "fp16": "pure_fp16"}.get(self.precision, self.precision)
        logger.info("loading open_clip model %s (pretrained=%s) on %s", name, tag, self.device)
        needs_hub = name.startswith("hf-hub:") or bool(load_weights and tag and not Path(tag).is_file())
        offline = needs_hub and hub_unreachable()
        if offline:
            logger.warning("the model hub is unreachable: loading %s from the local cache only", name)
        try:
            with _hf_offline() if offline else contextlib.nullcontext():
                if load_weights:
                    # every weight comes from the checkpoint (open_clip refuses a model whose
                    # weights were not all loaded), so the layers' random fill is skipped
                    with skip_random_init():
                        model, preprocess = open_clip.create_model_from_pretrained(
                            name, pretrained=tag, precision=precision, device=self.device, cache_dir=cache_dir
                        )
                else:
                    model, _, preprocess = open_clip.create_model_and_transforms(
                        name, pretrained=None, load_weights=False, precision=precision, device=self.device, cache_dir=cache_dir
                    )
                tokenizer = open_clip.get_tokenizer(name, cache_dir=cache_dir)
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            short = echo(reason, 160)
            if offline:
                short = "the model hub is unreachable and the weights are not in the local cache"
                reason = f"{short} ({reason})"
            raise ModelLoadError(self._how_to_fix(name, tag, reason), reason=f"{name}: {short}") from exc
        self.model, self.preprocess, self.tokenizer = model, preprocess, tokenizer

    @staticmethod
    def _how_to_fix(name: str, tag: str | None, reason: str) -> str:
        return (
            f"could not load open_clip model {name!r} (pretrained={tag!r}): {echo(reason, 300)}. "
            "If this machine is offline or the hub is unreachable, copy the weights here and point at them: "
            f"OpenCLIPEmbedder('{name if ':' not in name else 'ViT-B-32'}', checkpoint='/path/open_clip_model.safetensors') "
            "or OpenCLIPEmbedder('local-dir:/path/dir') for a folder holding open_clip_config.json and the weights; "
            f"or set ${ENV_MODEL} / ${ENV_CHECKPOINT}."
        )

    def _infer_dim(self) -> int:
        for attr in ("embed_dim", "output_dim"):
            value = getattr(self.model, attr, None)
            if isinstance(value, int):
                return value
        return int(self._encode_text_batch([""]).shape[1])

    # ------------------------------------------------------------------ forward passes
    def _finish(self, features: torch.Tensor) -> np.ndarray:
        torch = self._torch
        out = torch.nn.functional.normalize(features.float(), dim=-1)
        return out.cpu().numpy().astype(np.float32, copy=False)

    def _tokenize(self, texts: Sequence[str]) -> torch.Tensor:
        return self.tokenizer(list(texts), context_length=self.context_length)  # truncates

    def _encode_text_batch(self, texts: Sequence[str]) -> np.ndarray:
        return self._encode_tokens(self._tokenize(texts))

    def _encode_tokens(self, tokens: torch.Tensor) -> np.ndarray:
        torch = self._torch
        with torch.inference_mode():
            tokens = tokens.to(self.device)
            if self._trim_padding:
                return self._finish(self._encode_text_trimmed(tokens))
            return self._finish(self.model.encode_text(tokens))

    def _can_trim_padding(self) -> bool:
        """True for open_clip ``CLIP`` text towers with a causal mask and end-of-text pooling.

        There, the pooled feature at the end-of-text token depends only on the tokens before it, so
        the padding after the longest text of a batch can be cut without changing the result (a
        test checks equality with ``encode_text``). Other towers (SigLIP, HF text models) run as is.
        """
        open_clip = require("open_clip", extra="clip", package="open_clip_torch")
        m = self.model
        if type(m) is not open_clip.model.CLIP or getattr(m, "text_pool_type", None) != "argmax":
            return False
        mask = getattr(m, "attn_mask", None)
        if mask is None or mask.dim() != 2:
            return False
        n = mask.shape[0]
        causal = self._torch.full((n, n), float("-inf"), device=mask.device).triu_(1)
        return bool(self._torch.equal(mask.float(), causal))

    def _encode_text_trimmed(self, tokens: torch.Tensor) -> torch.Tensor:
        from open_clip.transformer import text_global_pool

        m = self.model
        n = int(tokens.argmax(dim=-1).max()) + 1  # the end-of-text token has the largest id
        tokens = tokens[:, :n]
        cast = m.transformer.get_cast_dtype()
        x = m.token_embedding(tokens).to(cast) + m.positional_embedding[:n].to(cast)
        x = m.ln_final(m.transformer(x, attn_mask=m.attn_mask[:n, :n]))
        x = text_global_pool(x, tokens, "argmax")
        proj = m.text_projection
        if proj is None:
            return x
        return proj(x) if isinstance(proj, self._torch.nn.Linear) else x @ proj

    def _encode_pixel_batch(self, pixels: list[torch.Tensor]) -> np.ndarray:
        torch = self._torch
        batch = torch.stack(pixels).to(self.device, dtype=self._dtype, non_blocking=True)
        with torch.inference_mode():
            return self._finish(self.model.encode_image(batch))

    def _progress(self, total: int, desc: str):
        from .._progress import progress_bar as tqdm

        return tqdm(total=total, desc=desc, unit="item", disable=not self.show_progress or total == 0)

    # ------------------------------------------------------------------ texts
    def embed_texts(self, texts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        """Embed *texts* (any length: longer ones are truncated to the model's context)."""
        if isinstance(texts, str):
            raise InvalidInputError("embed_texts takes a list of strings, not one string (use embed_text)")
        texts = list(texts)
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise InvalidInputError(f"expected str, got {type(t).__name__}: {echo(t, 80)}", source=f"texts[{i}]")
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        keys = [content_hash("t\x00" + t) for t in texts]
        todo: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            hit = self._cache.get(key)
            if hit is not None:
                out[i] = hit
            else:
                todo.setdefault(key, []).append(i)  # duplicates in one call are encoded once
        keys_todo = list(todo)
        if not keys_todo:
            return out
        tokens = self._tokenize([texts[todo[k][0]] for k in keys_todo])
        # batch texts of similar length together (less padding to cut), then restore input order
        order = self._torch.argsort(tokens.argmax(dim=-1), stable=True).tolist() if self._trim_padding else None
        size = batch_size or self.text_batch_size
        with self._progress(len(keys_todo), "embedding texts") as bar:
            for start, stop in _batches(len(keys_todo), size):
                rows = order[start:stop] if order is not None else list(range(start, stop))
                vecs = self._encode_tokens(tokens[rows])
                for row, vec in zip(rows, vecs, strict=True):
                    key = keys_todo[row]
                    out[todo[key]] = vec
                    self._cache.put(key, vec)
                bar.update(len(rows))
        return out

    def embed_text(self, text: str) -> np.ndarray:
        """Embed one text; returns one vector (:meth:`embed_texts` of ``[text]``)."""
        if not isinstance(text, str):
            raise InvalidInputError(f"embed_text takes one string, got {type(text).__name__} (use embed_texts for a list)")
        return self.embed_texts([text])[0]

    # ------------------------------------------------------------------ images
    def embed_image(self, image: ImageInput) -> np.ndarray:
        """Embed one image (a path, ``data:`` URI, encoded bytes or a PIL image); returns one vector."""
        if isinstance(image, (list, tuple)):
            raise InvalidInputError("embed_image takes one image, not a list (use embed_images)")
        return self.embed_images([image])[0]

    @overload
    def embed_images(
        self, images: Sequence[ImageInput], *, batch_size: int | None = ..., on_error: Literal["raise"] = ...
    ) -> np.ndarray: ...

    @overload
    def embed_images(
        self, images: Sequence[ImageInput], *, batch_size: int | None = ..., on_error: Literal["collect"]
    ) -> EmbeddingResult: ...

    def embed_images(
        self,
        images: Sequence[ImageInput],
        *,
        batch_size: int | None = None,
        on_error: Literal["raise", "collect"] = "raise",
    ) -> np.ndarray | EmbeddingResult:
        """Embed images given as paths, ``data:`` URIs, encoded bytes or PIL images.

        With ``on_error="raise"`` (default) the first unreadable image raises
        :class:`InvalidInputError` naming it. With ``on_error="collect"`` every readable image is
        embedded and an :class:`EmbeddingResult` reports the others.
        """
        if on_error not in ("raise", "collect"):
            raise ConfigurationError(f"on_error must be 'raise' or 'collect', got {on_error!r}")
        if isinstance(images, (str, bytes)):
            raise InvalidInputError("embed_images takes a list of images, not one (use embed_image)")
        if not isinstance(images, Sequence):
            images = list(images)
        n = len(images)
        out = np.full((n, self.dim), np.nan, dtype=np.float32)
        ok = np.zeros(n, dtype=bool)
        errors: list[ItemError] = []
        size = batch_size or self.batch_size
        with self._progress(n, "embedding images") as bar:
            for start, stop in _batches(n, size):
                pixels: list[Any] = []
                pending: list[tuple[int, str]] = []
                for i in range(start, stop):
                    label = describe(images[i])
                    try:
                        loaded = load_image(images[i], max_pixels=self.max_image_pixels, source=label)
                    except InvalidInputError as exc:
                        if on_error == "raise":
                            raise
                        errors.append(ItemError(i, label, exc))
                        continue
                    key = "i\x00" + loaded.hash
                    cached = self._cache.get(key)
                    if cached is not None:
                        out[i], ok[i] = cached, True
                        continue
                    pixels.append(self.preprocess(loaded.image))
                    pending.append((i, key))
                if pixels:
                    vecs = self._encode_pixel_batch(pixels)
                    for (i, key), vec in zip(pending, vecs, strict=True):
                        out[i], ok[i] = vec, True
                        self._cache.put(key, vec)
                bar.update(stop - start)
        if on_error == "raise":
            return out
        return EmbeddingResult(out, ok, tuple(errors))

    # ------------------------------------------------------------------ text + image
    def _fuse(self, text_vecs: np.ndarray, image_vecs: np.ndarray, weight: float | None) -> np.ndarray:
        w = self.multimodal_weight if weight is None else weight
        if not 0.0 <= w <= 1.0:
            raise ConfigurationError(f"weight must be within [0, 1], got {w}")
        fused = w * text_vecs + (1.0 - w) * image_vecs
        norms = np.linalg.norm(fused, axis=-1, keepdims=True)
        # text and image exactly opposite (norm 0): fall back to the text direction
        fused = np.where(norms > 1e-12, fused / np.maximum(norms, 1e-12), text_vecs)
        return fused.astype(np.float32, copy=False)

    def embed_multimodal(self, text: str, image: ImageInput, *, weight: float | None = None) -> np.ndarray:
        """One vector for a text and an image together ("this dress, but in blue").

        It is the normalised weighted sum ``w * text + (1 - w) * image`` of the two normalised
        embeddings, with ``w = weight`` or the embedder's ``multimodal_weight`` (default 0.5).
        """
        return self.embed_multimodal_batch([text], [image], weight=weight)[0]

    def embed_multimodal_batch(
        self, texts: Sequence[str], images: Sequence[ImageInput], *, weight: float | None = None
    ) -> np.ndarray:
        """:meth:`embed_multimodal` for many pairs at once (texts and images batched)."""
        if len(texts) != len(images):
            raise InvalidInputError(f"got {len(texts)} texts but {len(images)} images; pass one image per text")
        return self._fuse(self.embed_texts(texts), self.embed_images(images), weight)

    def embed_query(
        self, query: str | None = None, *, image: ImageInput | None = None, weight: float | None = None
    ) -> np.ndarray:
        """Embed a query: a text, an image (``image=``), or both fused. Returns one vector."""
        if query is None and image is None:
            raise InvalidInputError("embed_query needs a text query, an image=, or both")
        if query is not None and not isinstance(query, str):
            raise InvalidInputError(f"query must be a str, got {type(query).__name__}; pass images as image=")
        if image is None:
            return self.embed_texts([query])[0]  # type: ignore[list-item]
        if query is None:
            return self.embed_images([image])[0]
        return self.embed_multimodal(query, image, weight=weight)

    # ------------------------------------------------------------------ misc
    @property
    def cache_info(self) -> dict[str, int]:
        """Cache statistics: ``hits``, ``misses``, ``size``, ``maxsize``."""
        c = self._cache
        return {"hits": c.hits, "misses": c.misses, "size": len(c), "maxsize": c.maxsize}

    def clear_cache(self) -> None:
        self._cache.clear()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(model_name={self.model_name!r}, pretrained={self.pretrained!r}, "
            f"device={self.device!r}, precision={self.precision!r}, dim={self.dim})"
        )
