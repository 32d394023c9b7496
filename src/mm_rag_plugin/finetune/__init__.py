"""Adapt the model to your documents: contrastive fine-tuning, then re-embedding an index with it.

    from mm_rag_plugin.finetune import finetune, load_pairs, pairs_from_index, reindex

    pairs = pairs_from_index(".mm_rag")                  # captions, alt texts, nearby text
    report = finetune("ViT-B-32", pairs, "models/mine", pretrained="laion2b_s34b_b79k")
    print(report.before["score"], "->", report.after["score"])
    reindex(".mm_rag", OpenCLIPEmbedder(report.model_name))

See :mod:`.train` (what is trained, the held-out split, the refusal of a worse model, the model
folder) and :mod:`.reindexing` (how an index switches models safely). Importing this package loads no
torch; the functions do.
"""

from __future__ import annotations

from .pairs import Pair, dump_pairs, load_pairs, pairs_from_index, pairs_hash
from .reindexing import ReindexReport, reindex
from .train import FinetuneReport, WorseModelError, evaluate, finetune

__all__ = [
    "FinetuneReport",
    "Pair",
    "ReindexReport",
    "WorseModelError",
    "dump_pairs",
    "evaluate",
    "finetune",
    "load_pairs",
    "pairs_from_index",
    "pairs_hash",
    "reindex",
]
