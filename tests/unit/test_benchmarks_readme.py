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


def test_the_stored_full_run_is_a_full_run_of_the_new_suite():
    res = json.loads(readme.FULL.read_text())
    assert res["mode"] == "full" and not res["errors"]
    retrieval = res["sections"].get("retrieval")
    if retrieval:  # each peer's strongest setup, quiet and loaded
        first = retrieval["by_size"][str(retrieval["sizes"][0])]
        assert {"ours", "langchain-faiss", "llamaindex-faiss", "qdrant-client"} <= set(first)
        assert all("loaded" in r for by in retrieval["by_size"].values() for r in by.values())
    cold = res["sections"].get("cold")
    if cold:
        assert all({"ours", "ours-cli"} <= set(sr["by_contestant"]) for sr in cold["by_size"].values())
    assert retrieval or cold


def test_no_docstring_or_readme_prose_quotes_the_retired_ratios():
    text = readme.README.read_text()
    outside = text.split(readme.BEGIN)[0] + text.split(readme.END)[1]
    for claim in ("479x", "332x", "208x", "199x", "~2 KB per item"):
        assert claim not in outside, claim
    # speed ratios in prose outside the generated section would drift from the results
    assert not re.search(r"\b\d+(\.\d+)?x (faster|slower)\b", outside)
