"""The README's performance figures come from one place: benchmarks/results/full/results.json.

The section between the ``benchmarks:begin`` / ``benchmarks:end`` markers is what
``benchmarks.readme`` renders from those results; a hand edit of a figure, or results committed
without regenerating the README, fails here.
"""

from __future__ import annotations

import json
import re

from benchmarks import readme


def test_readme_performance_section_is_generated_from_the_stored_full_run():
    assert readme.update(check=True), "run: python -m benchmarks.readme"


def test_the_stored_full_run_has_every_section_and_peer():
    res = json.loads(readme.FULL.read_text())
    assert res["mode"] == "full" and not res["errors"]
    assert set(res["sections"]) == {"embeddings", "retrieval", "cold", "ingestion", "storage"}
    retrieval = res["sections"]["retrieval"]["by_size"]
    for system in ("ours", "langchain-faiss", "llamaindex-faiss", "langchain-inmemory", "llamaindex-simple"):
        assert all(system in retrieval[n] for n in ("1000", "10000", "50000")), system
    for system in ("qdrant-client", "langchain-qdrant", "llamaindex-qdrant", "ours-qdrant-client"):
        assert system in retrieval["10000"], system
    assert all("loaded" in r for by in retrieval.values() for r in by.values())
    cold = res["sections"]["cold"]["by_size"]
    assert {"200000", "1000000"} <= set(cold)
    assert {"ours", "ours-cli", "langchain-faiss", "llamaindex-faiss"} <= set(cold["200000"]["by_contestant"])
    assert {"ours", "ours-cli"} <= set(cold["1000000"]["by_contestant"])


def test_no_docstring_or_readme_prose_quotes_the_retired_ratios():
    text = readme.README.read_text()
    outside = text.split(readme.BEGIN)[0] + text.split(readme.END)[1]
    for claim in ("479x", "332x", "208x", "199x", "~2 KB per item"):
        assert claim not in outside, claim
    # speed ratios in prose outside the generated section would drift from the results
    assert not re.search(r"\b\d+(\.\d+)?x (faster|slower)\b", outside)
