"""A text embedding model beside CLIP: the :class:`~mm_rag_plugin.types.TextEmbedder` helpers.

An index may carry a second dense vector, ``text``, from a model trained for text retrieval (CLIP's
text tower reads 77 tokens and is a weak text-to-text retriever). This module holds what the core
needs of such a model, framework-free:

* :class:`SentenceTransformerTextEmbedder`: a sentence-transformers model by name or local path
  (extra ``text``); the LangChain and LlamaIndex adapters live in the integrations packages;
* :func:`text_model_identity` / :func:`same_text_model` / :func:`describe_text_model`: what the
  manifest records and how it is compared;
* :func:`load_text_model`: the model an index records, loaded again (sentence-transformers only:
  a framework model cannot be rebuilt from a name, so it must be passed);
* :func:`unit_rows`: a model's output as checked, L2-normalised float32 rows.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import require
from ..errors import ConfigurationError, InvalidInputError

__all__ = [
    "SentenceTransformerTextEmbedder", "describe_text_model", "load_text_model", "same_text_model",
    "text_model_identity", "unit_rows",
]

#: Below this norm a row counts as all zeros (no direction to compare by cosine).
_MIN_NORM = 1e-6


def unit_rows(rows: Any, what: str = "text model") -> np.ndarray:
    """*rows* (one vector per text) as a float32 matrix of unit rows; a row of NaN, infinite
    values or zeros is left as it is, for the index's check to name its file."""
    m = np.asarray(rows, dtype=np.float32)
    if m.ndim == 1:
        m = m.reshape(1, -1)
    if m.ndim != 2:
        raise InvalidInputError(f"{what} returned an array of shape {m.shape}, expected one row per text")
    norms = np.linalg.norm(m, axis=1, keepdims=True)
    ok = np.isfinite(norms) & (norms >= _MIN_NORM)
    return np.where(ok, m / np.where(ok, norms, 1.0), m).astype(np.float32, copy=False)


def text_model_identity(model: Any) -> dict[str, Any]:
    """What the manifest records for *model* (a :class:`~mm_rag_plugin.types.TextEmbedder`): its
    ``identity()`` with its ``dim``."""
    ident = model.identity() if callable(getattr(model, "identity", None)) else {}
    out = {str(k): v for k, v in dict(ident).items()}
    out.setdefault("name", f"{type(model).__module__}.{type(model).__qualname__}")
    out["dim"] = int(model.dim)
    return out


def same_text_model(stored: Mapping[str, Any], given: Mapping[str, Any]) -> bool:
    """Whether *given* makes the vectors of the text model an index records (every field equal)."""
    return dict(stored) == dict(given)


def describe_text_model(identity: Mapping[str, Any] | None) -> str:
    if not identity:
        return "no text model"
    out = str(identity.get("name"))
    if identity.get("kind"):
        out = f"{identity['kind']} {out}"
    return f"{out}, {identity.get('dim')}-d"


class SentenceTransformerTextEmbedder:
    """A sentence-transformers model (``pip install 'mm-rag-plugin[text]'``) by hub name or local
    folder, or an already loaded ``SentenceTransformer`` (``model=``). ``query_prompt`` /
    ``document_prompt``: prefixes some models want (``"query: "``); recorded with the model."""

    def __init__(
        self,
        model_name_or_path: str | os.PathLike[str] | None = None,
        *,
        model: Any = None,
        device: str | None = None,
        batch_size: int = 32,
        query_prompt: str = "",
        document_prompt: str = "",
    ) -> None:
        if model is None:
            if model_name_or_path is None:
                raise ConfigurationError("SentenceTransformerTextEmbedder needs a model name or path, or model=")
            st = require("sentence_transformers", extra="text", package="sentence-transformers")
            name = str(model_name_or_path)
            if Path(name).expanduser().is_dir():
                name = str(Path(name).expanduser().resolve())
            try:
                with _no_load_bars():
                    model = st.SentenceTransformer(name, device=device)
            except Exception as exc:  # no such model, no network, damaged folder
                from ..errors import ModelLoadError

                raise ModelLoadError(f"text model {name!r} cannot be loaded ({' '.join(str(exc).split())[:200]})", reason=str(exc)[:200], model="text") from exc
        else:
            name = str(model_name_or_path or type(model).__name__)
        self.model = model
        self.model_name = name
        self.batch_size = batch_size
        self.query_prompt, self.document_prompt = query_prompt, document_prompt
        # sentence-transformers 5+ names it get_embedding_dimension (the old name warns)
        get_dim = getattr(model, "get_embedding_dimension", None) or getattr(model, "get_sentence_embedding_dimension", None)
        dim = get_dim() if callable(get_dim) else None
        self._dim = int(dim) if dim else int(self.embed_query("dimension").shape[0])

    @property
    def dim(self) -> int:
        return self._dim

    def _encode(self, texts: Sequence[str], role: str, prompt: str) -> np.ndarray:
        """*texts* by ``encode_query`` / ``encode_document`` where the model has them (sentence-
        transformers 5+: the model's own ``query`` / ``document`` prompts, and its routing), else
        by ``encode``; a prompt given here replaces the model's own."""
        encode = getattr(self.model, f"encode_{role}", None)
        options: dict[str, Any] = dict(batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True, show_progress_bar=False)
        if callable(encode):
            out = encode(list(texts), prompt=prompt or None, **options)
        else:
            out = self.model.encode([prompt + t for t in texts], **options)
        return unit_rows(out, self.model_name)

    def embed_documents(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim), np.float32)
        return self._encode(texts, "document", self.document_prompt)

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([text], "query", self.query_prompt)[0]

    def identity(self) -> dict[str, Any]:
        ident: dict[str, Any] = {"kind": "sentence-transformers", "name": self.model_name}
        if self.query_prompt or self.document_prompt:
            ident["prompts"] = [self.query_prompt, self.document_prompt]
        return ident


@contextlib.contextmanager
def _no_load_bars() -> Iterator[None]:
    """transformers' "Loading weights" bars off while a model loads (a library's load is not a
    task of the user's to watch; the CLI's output stays its own), as they were after."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        yield
        return
    was = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was:
            hf_logging.enable_progress_bar()


def load_text_model(identity: Mapping[str, Any], *, device: str | None = None) -> Any:
    """The text model an index records, loaded again: a sentence-transformers model by its name or
    folder (checked against the record); any other kind must be passed (``text_embedder=``)."""
    if identity.get("kind") != "sentence-transformers":
        raise ConfigurationError(
            f"the index carries a text model ({describe_text_model(identity)}) that cannot be loaded by name; "
            "pass that model as text_embedder=, or search with weights={'text_model': 0}"
        )
    prompts = identity.get("prompts") or ["", ""]
    model = SentenceTransformerTextEmbedder(str(identity.get("name")), device=device, query_prompt=prompts[0], document_prompt=prompts[1])
    got = text_model_identity(model)
    if not same_text_model(identity, got):
        raise ConfigurationError(
            f"the index was built with text model {describe_text_model(identity)}, but the model found now is {describe_text_model(got)}"
        )
    return model
