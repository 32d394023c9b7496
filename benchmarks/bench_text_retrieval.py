"""Text retrieval quality on a public BEIR set: what CLIP windows and a text model beside CLIP add.

CLIP's text tower reads 77 tokens and was trained on captions, not for text-to-text retrieval.
This command measures, on a BEIR-format dataset, how each list of the hybrid search ranks the
relevant documents, alone and fused:

* ``BM25``: the keyword list alone;
* ``CLIP dense`` and ``CLIP dense, windows``: CLIP's text list alone, one vector per document
  (its first 77 tokens) or windows over the whole document (``clip_windows=``);
* ``text model``: the text model's list alone (``--text-model``);
* ``fused`` (the default weights without the text model), ``fused + text model`` (the default
  weights), and the same two on the index with windows.

Each document is one text chunk (its title and text), ingested through
:class:`~mm_rag_plugin.retrievers.MultiModalIndex` into a fresh Qdrant Edge folder, once without
and once with windows (``--clip-windows 0`` leaves the second out); every query is answered by
:class:`~mm_rag_plugin.retrievers.FusedRetriever` with the list weights above. Metrics are those of
``mm-rag eval`` (:func:`mm_rag_plugin.evaluation.ranking_metrics`), averaged over the queries that
have relevant documents in the split: nDCG@10 with binary gains (a qrels score above 0 is
relevant; BEIR's own figures use the graded scores, the same thing on SciFact where every score is
1), recall@10 and recall@100.

Data: a BEIR folder (``corpus.jsonl``: ``{"_id", "title", "text"}``; ``queries.jsonl``: ``{"_id",
"text"}``; ``qrels/<split>.tsv``: ``query-id``, ``corpus-id``, ``score``), e.g. SciFact (5,183
abstracts, 300 test queries) or NFCorpus (3,633 documents, 323 test queries), from
https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/scifact.zip (or nfcorpus.zip):
unzip it and pass the folder as ``--data``, or let ``--download scifact`` fetch and unzip it into
``benchmarks/data/beir/`` (needs the network).

Models: ``--clip`` (an open_clip architecture, ``hf-hub:org/repo`` or ``local-dir:/path``, as
``mm-rag --model`` takes) with ``--pretrained`` or ``--checkpoint``; without weights CLIP is random
and its lists rank nothing (the command says so). ``--text-model``: a sentence-transformers model
by hub name or folder. Real-weight figures need the weights on disk or the network.

    python -m benchmarks.bench_text_retrieval --download scifact --clip ViT-B-32 \\
        --pretrained laion2b_s34b_b79k --text-model sentence-transformers/all-MiniLM-L6-v2
    python -m benchmarks.bench_text_retrieval --data ~/beir/nfcorpus --clip ViT-B-32 --pretrained openai \\
        [--text-model NAME_OR_FOLDER] [--clip-windows 8] [--max-queries 100] [--device cuda]

Writes ``benchmarks/results/text_retrieval/<dataset>.json`` and ``.md`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks._common import RESULTS, ROOT, finish

OUT_DIR = RESULTS / "text_retrieval"
DOWNLOADS = ROOT / "benchmarks" / "data" / "beir"
BEIR_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets/"
KS = (10, 100)

#: The list weights of each row: BM25, CLIP's text list, the text model's list alone; the defaults.
ONLY = {
    "bm25": {"bm25": 1.0, "dense_text": 0.0, "dense_image": 0.0, "text_model": 0.0},
    "clip": {"bm25": 0.0, "dense_text": 1.0, "dense_image": 0.0, "text_model": 0.0},
    "text_model": {"bm25": 0.0, "dense_text": 0.0, "dense_image": 0.0, "text_model": 1.0},
    "fused": {"text_model": 0.0},
    "fused_text_model": {},
}


class DataError(Exception):
    """A dataset problem, said in one line naming the file."""


def _jsonl(path: Path, fields: tuple[str, ...]) -> list[dict[str, Any]]:
    if not path.is_file():
        raise DataError(f"{path}: not found (a BEIR folder has corpus.jsonl, queries.jsonl and qrels/<split>.tsv)")
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}: line {n} is not JSON ({exc.msg})") from None
            if not isinstance(row, dict) or any(f not in row for f in fields):
                raise DataError(f"{path}: line {n} lacks {' or '.join(fields)}")
            rows.append(row)
    return rows


def load_beir(folder: str | Path, split: str = "test") -> tuple[dict[str, str], dict[str, str], dict[str, dict[str, int]]]:
    """``(corpus, queries, qrels)`` of a BEIR folder: document text (title and text) and query text
    by id, and each query's relevant documents with their scores (those above 0)."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DataError(f"{folder}: no such folder (unzip a BEIR dataset there, or use --download NAME)")
    corpus = {}
    for row in _jsonl(folder / "corpus.jsonl", ("_id", "text")):
        title = str(row.get("title") or "").strip()
        corpus[str(row["_id"])] = f"{title}\n{row['text']}".strip() if title else str(row["text"]).strip()
    queries = {str(row["_id"]): str(row["text"]) for row in _jsonl(folder / "queries.jsonl", ("_id", "text"))}
    path = folder / "qrels" / f"{split}.tsv"
    if not path.is_file():
        raise DataError(f"{path}: not found (the split's relevance judgements)")
    qrels: dict[str, dict[str, int]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for n, row in enumerate(csv.reader(fh, delimiter="\t"), 1):
            if not row or (n == 1 and not row[-1].strip().lstrip("-").isdigit()):
                continue  # blank line, or the header
            if len(row) != 3 or not row[2].strip().lstrip("-").isdigit():
                raise DataError(f"{path}: line {n} is not query-id, corpus-id, score")
            qid, did, score = row[0].strip(), row[1].strip(), int(row[2])
            if score > 0 and qid in queries and did in corpus:
                qrels.setdefault(qid, {})[did] = score
    if not qrels:
        raise DataError(f"{path}: no query has a relevant document in the corpus")
    return corpus, queries, qrels


def download(name: str, dest: Path = DOWNLOADS, base_url: str = BEIR_URL, timeout: float = 60) -> Path:
    """Fetch and unzip the BEIR dataset *name* (``scifact``, ``nfcorpus`` ...) into *dest*; the
    folder is reused when it is there already."""
    import re
    import urllib.request

    if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", name):
        raise DataError(f"--download {name!r}: a BEIR dataset name is like scifact or nfcorpus")
    folder = dest / name
    if (folder / "corpus.jsonl").is_file():
        return folder
    url = base_url.rstrip("/") + f"/{name}.zip"
    dest.mkdir(parents=True, exist_ok=True)
    part = dest / f"{name}.zip.part"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, part.open("wb") as fh:
            while block := resp.read(1 << 20):
                fh.write(block)
        with zipfile.ZipFile(part) as zf:
            zf.extractall(dest)  # the zip holds <name>/corpus.jsonl ...
    except (OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"cannot download {url} ({' '.join(str(exc).split())[:200]}); download and unzip it, then pass --data") from None
    finally:
        part.unlink(missing_ok=True)
    if not (folder / "corpus.jsonl").is_file():
        raise DataError(f"{url}: the zip has no {name}/corpus.jsonl")
    return folder


def score(ranked: list[list[str]], relevant: list[dict[str, int]]) -> dict[str, float]:
    """Mean nDCG@10, recall@10 and recall@100 of ranked document ids against the relevant ones."""
    from mm_rag_plugin.evaluation import ranking_metrics

    at10 = [ranking_metrics(r, list(rel), 10) for r, rel in zip(ranked, relevant, strict=True)]
    at100 = [ranking_metrics(r, list(rel), 100) for r, rel in zip(ranked, relevant, strict=True)]
    return {
        "ndcg@10": round(statistics.mean(m.ndcg for m in at10), 4),
        "recall@10": round(statistics.mean(m.recall for m in at10), 4),
        "recall@100": round(statistics.mean(m.recall for m in at100), 4),
    }


def _ingest(folder: Path, embedder: Any, text_model: Any, corpus: dict[str, str], windows: int) -> tuple[Any, dict[str, Any]]:
    from mm_rag_plugin import TextChunk
    from mm_rag_plugin.retrievers import MultiModalIndex

    index = MultiModalIndex(folder, embedder=embedder, text_embedder=text_model, clip_windows={"max_windows": windows} if windows else None)
    chunks = [TextChunk(id=f"d{i}", text=text, source=doc_id, position=0) for i, (doc_id, text) in enumerate(corpus.items())]
    t0 = time.perf_counter()
    report = index.add(chunks)
    took = time.perf_counter() - t0
    if report.errors:
        first = report.errors[0]
        raise DataError(f"{len(report.errors)} documents failed to index, e.g. {first}")
    return index, {"documents": report.added, "truncated": report.truncated_texts, "ingest_s": round(took, 1)}


def _rank(index: Any, weights: dict[str, float], queries: list[str], k: int) -> list[list[str]]:
    from mm_rag_plugin.retrievers import FusedRetriever

    retriever = FusedRetriever(index, weights=weights, k=k, dedupe=False)
    return [[h.chunk.source for h in retriever.retrieve(q, k=k)] for q in queries]


def run(
    data: Path,
    embedder: Any,
    text_model: Any = None,
    windows: int = 8,
    split: str = "test",
    max_queries: int | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    corpus, all_queries, qrels = load_beir(data, split)
    qids = sorted(qrels)[: max_queries or None]
    queries = [all_queries[q] for q in qids]
    relevant = [qrels[q] for q in qids]
    variants = [("one vector", 0)] + ([(f"windows (max {windows})", windows)] if windows else [])
    rows: dict[str, dict[str, Any]] = {}
    indexes: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, w in variants:
            log(f"ingesting {len(corpus)} documents ({name})")
            index, info = _ingest(Path(tmp) / f"ix{w}", embedder, text_model, corpus, w)
            indexes[name] = info
            suffix = "" if not w else ", windows"
            wanted = ["clip", "fused"] if w else ["bm25", "clip", "text_model", "fused"]
            if text_model is not None:
                wanted.append("fused_text_model")
            else:
                wanted = [x for x in wanted if x != "text_model"]
            try:
                for key in wanted:
                    label = {"bm25": "BM25", "clip": "CLIP dense", "text_model": "text model", "fused": "fused",
                             "fused_text_model": "fused + text model"}[key] + suffix
                    t0 = time.perf_counter()
                    ranked = _rank(index, ONLY[key], queries, max(KS))
                    rows[label] = {**score(ranked, relevant), "query_ms": round(1000 * (time.perf_counter() - t0) / len(queries), 1)}
                    log(f"{label}: {rows[label]}")
            finally:
                index.close()
    return {
        "dataset": Path(data).name,
        "split": split,
        "documents": len(corpus),
        "queries": len(queries),
        "clip": _describe(embedder),
        "text_model": None if text_model is None else dict(text_model.identity(), dim=text_model.dim),
        "indexes": indexes,
        "rows": rows,
    }


def _describe(embedder: Any) -> str:
    ident = embedder.identity() if callable(getattr(embedder, "identity", None)) else {}
    name = ident.get("name") or getattr(embedder, "model_name", type(embedder).__name__)
    weights = ident.get("pretrained") or ident.get("weights")
    return f"{name} ({weights})" if weights else f"{name} (no pretrained weights named)"


def markdown(res: dict[str, Any]) -> list[str]:
    text = f", text model {res['text_model']['name']} ({res['text_model']['dim']}-d)" if res.get("text_model") else ", no text model"
    lines = [
        f"Text retrieval on BEIR {res['dataset']} ({res['split']}): {res['documents']} documents, {res['queries']} queries; "
        f"CLIP {res['clip']}{text}.",
        "",
        "| list(s) | nDCG@10 | recall@10 | recall@100 | ms/query |",
        "|---|---|---|---|---|",
    ]
    for name, r in res["rows"].items():
        lines.append(f"| {name} | {r['ndcg@10']:.3f} | {r['recall@10']:.3f} | {r['recall@100']:.3f} | {r['query_ms']:.1f} |")
    lines.append("")
    for name, info in res["indexes"].items():
        lines.append(
            f"Index {name}: {info['documents']} documents ingested in {info['ingest_s']} s; "
            f"{info['truncated']} longer than CLIP's context."
        )
    if res.get("command"):
        lines += ["", f"`{res['command']}` at {res.get('commit')}, started {res.get('started')}."]
    return lines


def _arguments() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.bench_text_retrieval", description=__doc__.split("\n")[0])
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--data", type=Path, help="a BEIR dataset folder (corpus.jsonl, queries.jsonl, qrels/)")
    src.add_argument("--download", metavar="NAME", help=f"fetch the BEIR dataset NAME (scifact, nfcorpus ...) into {DOWNLOADS}")
    ap.add_argument("--mirror", default=BEIR_URL, help="where --download finds NAME.zip (default: the BEIR server)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--clip", default="ViT-B-32", help="open_clip architecture, hf-hub:org/repo or local-dir:/path")
    ap.add_argument("--pretrained", help="open_clip pretrained tag (e.g. laion2b_s34b_b79k, openai)")
    ap.add_argument("--checkpoint", help="local weights file for --clip")
    ap.add_argument("--text-model", help="a sentence-transformers model (hub name or folder) beside CLIP")
    ap.add_argument("--clip-windows", type=int, default=8, metavar="MAX",
                    help="windows per document of the second index (default 8; 0: no index with windows)")
    ap.add_argument("--max-queries", type=int, help="the first N queries (by id) only")
    ap.add_argument("--device", help="cuda, mps or cpu (default: the best there is)")
    ap.add_argument("--out", type=Path, help=f"result JSON (default {OUT_DIR}/<dataset>.json; the .md beside it)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _arguments().parse_args(argv)
    started = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    from mm_rag_plugin.errors import MMRagError

    try:
        data = download(args.download, base_url=args.mirror) if args.download else args.data
        load_beir(data, args.split)  # a bad folder is said before any model loads
        from mm_rag_plugin import OpenCLIPEmbedder

        # no embedding cache: each row embeds its queries (its ms/query says what a query costs)
        embedder = OpenCLIPEmbedder(args.clip, args.pretrained, checkpoint=args.checkpoint, device=args.device, cache_size=0)
        if not (args.pretrained or args.checkpoint or args.clip.startswith(("local-dir:", "hf-hub:"))):
            print(f"note: {args.clip} without --pretrained or --checkpoint has random weights: its lists rank nothing",
                  file=sys.stderr)
        text_model = None
        if args.text_model:
            from mm_rag_plugin.embeddings.text_model import SentenceTransformerTextEmbedder

            text_model = SentenceTransformerTextEmbedder(args.text_model, device=args.device)
        res = run(Path(data), embedder, text_model, args.clip_windows, args.split, args.max_queries,
                  log=lambda s: print(s, file=sys.stderr))
    except (DataError, MMRagError) as exc:
        print(f"bench_text_retrieval: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    out = args.out or OUT_DIR / f"{res['dataset']}.json"
    finish(res, "benchmarks.bench_text_retrieval", argv, started, str(out), markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
