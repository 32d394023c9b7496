"""A tiny sentence-transformers model, written offline: for tests of the text model beside CLIP.

``make_tiny_text_model(folder)`` writes a BERT of two layers (random weights, ``dim``-wide, a
WordPiece vocabulary of the given words plus the special tokens) with mean pooling, saved as a
sentence-transformers folder that ``SentenceTransformer(folder)`` and ``mm-rag --text-model
folder`` load. Its vectors rank nothing in particular, but they are deterministic: the same text
gives the same vector, as a query and as a document.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["make_tiny_text_model"]

_SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def make_tiny_text_model(
    folder: str | Path, words: Iterable[str] = (), *, dim: int = 32, seed: int = 0, prompts: dict[str, str] | None = None
) -> Path:
    """Write a tiny sentence-transformers model to *folder* (needs ``transformers`` and
    ``sentence-transformers``; no download) and return the folder. *prompts*: the model's own
    (``{"query": "...", "document": "..."}``), saved in its configuration."""
    import torch
    from sentence_transformers import SentenceTransformer
    try:  # sentence-transformers 6+
        from sentence_transformers.base.modules import Transformer
        from sentence_transformers.sentence_transformer.modules import Pooling
    except ImportError:
        from sentence_transformers.models import Pooling, Transformer  # type: ignore[no-redef]
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = Path(folder)
    hf = folder / "_bert"
    hf.mkdir(parents=True, exist_ok=True)
    vocab = list(dict.fromkeys([*_SPECIAL, *(w.lower() for text in words for w in re.findall(r"\w+", text))]))
    (hf / "vocab.txt").write_text("\n".join(vocab) + "\n", encoding="utf-8")
    if "vocab" in inspect.signature(BertTokenizer.__init__).parameters:  # transformers 5+
        tokenizer = BertTokenizer(vocab={w: i for i, w in enumerate(vocab)})
    else:
        tokenizer = BertTokenizer(vocab_file=str(hf / "vocab.txt"))
    tokenizer.save_pretrained(hf)
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=dim, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=2 * dim, max_position_embeddings=128,
    )
    BertModel(config).save_pretrained(hf)
    transformer = Transformer(str(hf), max_seq_length=128)
    model = SentenceTransformer(modules=[transformer, Pooling(dim, "mean")], device="cpu", prompts=prompts)
    model.save(str(folder / "model"))
    return folder / "model"
