"""What each part of the OCR-tolerant keyword terms adds: recall@1 of ``ours`` per query kind, on
``bench_ocr_quality``'s corpus (same receipts, shared OCR images and PDF page renders, same
queries), one variant of the BM25 settings and search weights per row.

The documents are read and OCR'd once (``load_documents(files, ocr=True)``, as ``ours`` does);
each variant indexes them into its own keyword-only index and answers every query with
``FusedRetriever(k=1)``. Variants (:data:`VARIANTS`): ``today`` (BM25 words only, no OCR terms),
``+ normal form`` (each OCR'd word also one term in its confusion normal form), ``+ n-grams``
(character 3-grams of the words as read), ``+ n-grams of normal forms`` (the default),
``+ confidence weights`` (each occurrence weighted by its word's OCR confidence), and the default
at other OCR weights and gram sizes.

    .venv/bin/python -m benchmarks.bench_ocr_variants [--smoke] [--n 80] [--seed 0] [--pdf-pages 3] [--work DIR]

Writes ``variants.json`` and ``variants.md`` to ``benchmarks/results/ocr_quality/`` (``--out``).
``--work DIR`` keeps the corpus and its reading there, and reuses them on the next run with the
same arguments (to try variants without OCR'ing again).
"""

from __future__ import annotations

import argparse
import json
import pickle
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks._common import machine
from benchmarks.bench_ocr_quality import (
    COLUMNS,
    OUT,
    RECEIPT_TYPES,
    Query,
    build_corpus,
    corpus_arguments,
    git_state,
    recall_table,
)


@dataclass(frozen=True)
class Variant:
    name: str
    ocr: dict[str, Any] | None  # OcrTerms settings, None: no OCR terms
    weight: float | None = None  # weights["ocr"]; None: the default
    own_list: bool = False  # the n-grams as a list of their own, fused with the word list by RRF


#: (weight None: ``SearchOptions``'s default, :data:`~mm_rag_plugin.retrievers.search.OCR_WEIGHT`)
VARIANTS = (
    Variant("today (BM25 words only)", None),
    Variant("+ normal form (whole words)", {"n": 0, "confusion": True, "confidence": False}),
    Variant("+ n-grams (as read)", {"n": 3, "confusion": False, "confidence": False}),
    Variant("+ n-grams of normal forms (default)", {"n": 3, "confusion": True, "confidence": False}),
    Variant("+ confidence weights", {"n": 3, "confusion": True, "confidence": True}),
    Variant("default, OCR weight 1", {"n": 3, "confusion": True, "confidence": False}, 1.0),
    Variant("default, OCR weight 3", {"n": 3, "confusion": True, "confidence": False}, 3.0),
    Variant("default, 4-grams", {"n": 4, "confusion": True, "confidence": False}),
    Variant("default, 4-grams, OCR weight 3", {"n": 4, "confusion": True, "confidence": False}, 3.0),
    Variant("n-grams as their own list (RRF)", {"n": 3, "confusion": True, "confidence": False}, own_list=True),
)


def _own_list_first(index: Any, query: str) -> str | None:
    """The first hit of the BM25 word list and the n-gram list searched apart and fused by RRF
    (equal weights), each 50 deep, as the retriever fuses its lists."""
    from mm_rag_plugin.retrievers.engine import ListQuery
    from mm_rag_plugin.retrievers.fusion import rrf

    lists = [q for q in (ListQuery("bm25", 50, sparse=index.bm25.encode_query(query)),
                         ListQuery("ocr", 50, sparse=index.bm25.encode_ocr_query(query))) if len(q.sparse)]
    if not lists:
        return None
    fused = rrf({q.name: r for q, r in zip(lists, index.search_lists(lists, ()), strict=True)})
    if not fused:
        return None
    chunk = index.chunks([fused[0].id])[fused[0].id]
    return str(Path(chunk.source).resolve())


def read_corpus(work: Path, n: int, seed: int, smoke: bool, pdf_pages: int) -> tuple[list[Query], Any, float]:
    """The queries and the documents as ``ours`` reads them (reused from *work* when there)."""
    from mm_rag_plugin import load_documents

    saved = work / f"corpus-{n}-{seed}-{int(smoke)}-{pdf_pages}.pickle"
    if saved.is_file():
        with saved.open("rb") as fh:
            return pickle.load(fh)  # type: ignore[no-any-return]
    docs, queries, _ = build_corpus(work, n, seed, smoke, pdf_pages)
    t = time.perf_counter()
    read = load_documents([str(d.path) for d in docs], ocr=True, blob_dir=str(work / "blobs"), show_progress=False)
    out = (queries, read, time.perf_counter() - t)
    with saved.open("wb") as fh:
        pickle.dump(out, fh)
    return out


def run_variant(v: Variant, read: Any, queries: list[Query], work: Path) -> dict[str, Any]:
    from mm_rag_plugin import FusedRetriever, MultiModalIndex
    from mm_rag_plugin.retrievers.bm25 import BM25Encoder
    from mm_rag_plugin.retrievers.ocr_terms import OcrTerms

    folder = Path(tempfile.mkdtemp(prefix="variant-", dir=work))
    bm25 = BM25Encoder(ocr=None if v.ocr is None else OcrTerms(**v.ocr))
    index = MultiModalIndex(folder, keyword_only=True, bm25=bm25, show_progress=False)
    try:
        t = time.perf_counter()
        index.add(read)
        index_s = time.perf_counter() - t
        retriever = FusedRetriever(index, k=1, **({} if v.weight is None else {"weights": {"ocr": v.weight}}))
        first = []
        t = time.perf_counter()
        for q in queries:
            if v.own_list:
                first.append(_own_list_first(index, q.text))
                continue
            hits = retriever.retrieve(q.text)
            first.append(str(Path(hits[0].chunk.source).resolve()) if hits else None)
        query_s = time.perf_counter() - t
    finally:
        index.close()
    size = sum(f.stat().st_blocks * 512 for f in folder.rglob("*") if f.is_file())  # allocated (Edge files are sparse)
    return {"variant": v.name, "ocr": v.ocr, "weight": v.weight, "recall_at_1": recall_table(queries, first),
            "index_s": round(index_s, 2), "query_ms": round(1000 * query_s / len(queries), 2), "folder_bytes": size}


def run(n: int, seed: int, smoke: bool, pdf_pages: int, work: Path, log: Any = print) -> dict[str, Any]:
    started = time.perf_counter()
    queries, read, read_s = read_corpus(work, n, seed, smoke, pdf_pages)
    log(f"read: {len(read.chunks)} chunks, {len(read.errors)} errors ({read_s:.1f} s); queries: {Counter(q.type for q in queries)}")
    rows = []
    for v in VARIANTS:
        rows.append(run_variant(v, read, queries, work))
        log(f"{v.name}: {rows[-1]['recall_at_1']['all']}")
    argv = ["--smoke"] if smoke else [f"--n {n}", f"--seed {seed}", f"--pdf-pages {pdf_pages}"]
    return {"command": "python -m benchmarks.bench_ocr_variants " + " ".join(argv),
            "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "seconds": round(time.perf_counter() - started, 1), "git": git_state(), "machine": machine(),
            "queries": dict(Counter(q.type for q in queries)), "variants": rows}


def markdown(res: dict[str, Any]) -> list[str]:
    q = res["queries"]
    counts = {**q, "receipts": sum(q.get(t, 0) for t in RECEIPT_TYPES), "all": sum(q.values())}
    head = [f"{c} ({counts[c]})" if counts.get(c) else c for c in COLUMNS]
    g = res["git"]
    lines = ["# OCR-tolerant keyword terms: what each part adds (recall@1 of ours)", "",
             f"`{res['command']}` ({res['seconds'] / 60:.1f} min, {res['started']}). Measured the library at commit "
             f"`{g.get('commit', '?')}`{' (src/ with uncommitted changes)' if g.get('src_changes') else ''}.", "",
             "| variant | " + " | ".join(head) + " | index MB | query ms |", "|---|" + "---:|" * (len(COLUMNS) + 2)]
    for r in res["variants"]:
        rec = r["recall_at_1"]
        lines.append(f"| {r['variant']} | " + " | ".join("–" if rec[c] is None else f"{rec[c]:.2f}" for c in COLUMNS)
                     + f" | {r['folder_bytes'] / 1e6:.1f} | {r['query_ms']:.2f} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    corpus_arguments(ap)
    ap.add_argument("--work", default=None, help="keep the corpus and its reading here, and reuse them")
    ap.add_argument("--out", default=str(OUT), help="folder for variants.json / variants.md")
    args = ap.parse_args(argv)
    n = 6 if args.smoke else args.n
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    if args.work:
        work = Path(args.work)
        work.mkdir(parents=True, exist_ok=True)
        res = run(n, args.seed, args.smoke, args.pdf_pages, work, log)
    else:
        with tempfile.TemporaryDirectory(prefix="mm-rag-ocrv-") as tmp:
            res = run(n, args.seed, args.smoke, args.pdf_pages, Path(tmp), log)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "variants.json").write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n")
    (out / "variants.md").write_text("\n".join(markdown(res)) + "\n")
    print("\n".join(markdown(res)))


if __name__ == "__main__":
    main()
