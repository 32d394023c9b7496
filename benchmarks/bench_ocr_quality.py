"""OCR then keyword search: does the right document come first? mm-rag-plugin vs LangChain and LlamaIndex users.

Every query has one right document (or one group of images with the same known text); a query
counts when that document is the first hit (recall@1). Three corpora, all indexed together (each is
a distractor for the others), built at run time from a seed, nothing downloaded:

* ``receipts``: N synthetic receipts and invoices (``benchmarks/receipts.py``): 300-600 px wide,
  12-26 px fonts, blur, JPEG quality 25-75, rotation up to 2.5 degrees, uneven lighting, salt
  noise. Companies share words, totals have near copies, dates come in five formats. Queries, typed
  as printed: the company, the total ("RM12.50", "$1,234.50"), the date, company + total, an
  address fragment (the street: "JALAN SINAR 3/2", "418 Cedar Avenue") and the receipt or invoice
  number ("INV-00421", "CS10068476").
* ``ocr images``: the shared images with known text (``../shared/data/ocr``, ground truth in
  ``index.jsonl``); images with the same text (the rotated copies of a page) form one group and any
  of them is right. Queries: up to two 3-word phrases of the known text holding at least two words
  found in no other document (a short text is its own query); non-Latin texts get no query (they
  stay in the corpus).
* ``pdf pages``: pages of the shared real PDFs (``../shared/data/pdfs/text_figures``) rendered with
  pypdfium2 to fit 612x792 px (72 dpi for US Letter), the first ``--pdf-pages`` pages of each PDF
  whose text layer has 50 words or more; queries: phrases of the text layer as above (pages with
  the same text layer form a group, as the images do).

A second pass (``camera/thermal``; ``--no-camera`` skips it) indexes the same corpus with the
receipts photographed as thermal receipts are (``benchmarks/receipts.py`` ``photograph``: faded
print with streaks, crumples and a fold, the receipt a tilted quadrilateral on a table, uneven light
and a shadow, defocus or motion blur, lower resolution, phone JPEG); the report puts both passes side
by side with the gap (clean minus photographed), the figure by which the generated set overstates
real photographed receipts. The shared images are the real scans with known text available here.

Contestants (each reads the same image files and answers each query with its first hit):

* ``ours``: ``load_documents(files, ocr=True)`` (the library's image reader and OCR, its default
  worker processes), ``MultiModalIndex(keyword_only=True).add(docs)``, ``FusedRetriever(k=1)``.
* ``LlamaIndex user``: ``pytesseract.image_to_string(Image.open(path))`` per image, a
  ``llama_index`` ``Document`` per image, ``llama_index.retrievers.bm25.BM25Retriever``
  (``similarity_top_k=1``).
* ``LangChain user``: ``TesseractBlobParser`` (``langchain_community``) per image, its Documents
  into ``langchain_community.retrievers.BM25Retriever`` (rank_bm25, ``k=1``).

Both users run the same Tesseract call (``image_to_string``, ``eng``, default page segmentation)
on the same file, so it runs once per image and both get its text and its time;
``TesseractBlobParser`` runs for real on the first images and must agree (checked, recorded).

    .venv/bin/python -m benchmarks.bench_ocr_quality [--smoke] [--n 80] [--seed 0] [--pdf-pages 3]

Writes ``results.json``, ``results.md``, ``queries.jsonl`` (every query and each contestant's first
hit) and ``documents.jsonl`` (every document's OCR text, ours and the users', and the receipts'
ground truth) to ``benchmarks/results/ocr_quality/`` (``--out``), with
the git commit measured (the library under ``src/`` is what runs) and whether ``src/`` had
uncommitted changes. ``--smoke``: 6 receipts and two small shared images, no PDFs (for the tests).
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import resource
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks._common import RESULTS, ROOT, SHARED, machine

OUT = RESULTS / "ocr_quality"
RECEIPT_TYPES = ("company", "total", "date", "company+total", "address", "number")
SETS = ("receipts", "ocr images", "pdf pages")
CAMERA = "camera/thermal"  # the receipts photographed (benchmarks.receipts.photograph), indexed in a pass of their own
GAP_COLUMNS = (*RECEIPT_TYPES, "receipts")
COLUMNS = (*RECEIPT_TYPES, "receipts", "ocr images", "pdf pages", "all")
SYSTEMS = {"ours": "ours (mm-rag-plugin)", "llamaindex": "LlamaIndex user", "langchain": "LangChain user"}
PAGE_BOX = (612, 792)
MIN_PAGE_WORDS = 50
PARSER_CHECKS = 5  # images on which TesseractBlobParser itself runs and must give the shared text
SMOKE_OCR = ("ocr/tesseract_js/simple.png", "ocr/tesseract_js/cosmic.png")


@dataclass
class Doc:
    path: Path  # the image file every contestant reads
    set: str
    group: str  # documents with the same known text share a group: any of them is right
    truth: str  # the known text


@dataclass
class Query:
    text: str
    type: str  # a receipt query type, or the set name
    set: str
    group: str
    targets: frozenset[str] = field(default_factory=frozenset)  # absolute paths that count as right


# ---------------------------------------------------------------------------------------- data
def build_receipts(work: Path, n: int, seed: int, camera: bool = False,
                   ) -> tuple[list[Doc], list[Query], list[dict[str, Any]]]:
    """The generated receipts, or (*camera*) the same receipts degraded as photographed thermal
    receipts are (set ``camera/thermal``; their queries stay in the ``receipts`` column of the
    camera pass's table)."""
    from benchmarks.receipts import make_receipts, render

    docs, queries, truth = [], [], []
    folder, set_name = ("camera", CAMERA) if camera else ("receipts", "receipts")
    for i, r in enumerate(make_receipts(n, seed)):
        path = render(r, work / folder / f"{r.name}.jpg", seed * 100_003 + i, camera=camera)
        d = Doc(path, set_name, r.name, "\n".join(line.replace("#B ", "").replace("#T ", "").replace(">>", "  ")
                                                      for line in r.lines))
        docs.append(d)
        typed = {"company": r.company, "total": r.total, "date": r.date, "company+total": f"{r.company} {r.total}",
                 "address": r.street, "number": r.number}
        queries += [Query(typed[t], t, "receipts", r.name) for t in RECEIPT_TYPES]
        truth.append(r.to_json())
    return docs, queries, truth


def load_shared_ocr(names: Sequence[str] | None = None) -> list[Doc]:
    rows = [json.loads(line) for line in (SHARED / "index.jsonl").read_text().splitlines() if line.strip()]
    docs = []
    for row in rows:
        if row.get("set") != "ocr" or not row.get("ground_truth_text"):
            continue
        if names is not None and row["path"] not in names:
            continue
        text = row["ground_truth_text"]
        docs.append(Doc(SHARED / row["path"], "ocr images", "", text))
    return _group_by_text(docs)


def _group_by_text(docs: list[Doc]) -> list[Doc]:
    """One group per distinct known text, named after its first document: a query drawn from that
    text cannot tell them apart (rotated copies of an image; PDF pages with the same text layer)."""
    groups: dict[str, str] = {}
    for d in docs:
        d.group = groups.setdefault(" ".join(d.truth.split()), Path(d.path).stem)
    return docs


def render_pdf_pages(work: Path, per_pdf: int) -> list[Doc]:
    import pypdfium2 as pdfium

    docs = []
    for pdf in sorted((SHARED / "pdfs" / "text_figures").glob("*.pdf")):
        doc = pdfium.PdfDocument(str(pdf))
        try:
            kept = 0
            for i in range(len(doc)):
                if kept >= per_pdf:
                    break
                page = doc[i]
                text = _clean_text(page.get_textpage().get_text_range())
                if len(re.findall(r"[^\W\d_]{3,}", text)) < MIN_PAGE_WORDS:
                    continue
                w, h = page.get_size()
                scale = min(PAGE_BOX[0] / w, PAGE_BOX[1] / h)
                out = work / "pages" / f"{pdf.stem}_p{i + 1}.png"
                out.parent.mkdir(parents=True, exist_ok=True)
                page.render(scale=scale).to_pil().convert("RGB").save(out)
                docs.append(Doc(out, "pdf pages", out.stem, text))
                kept += 1
        finally:
            doc.close()
    return _group_by_text(docs)


def _clean_text(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("\r\n", "\n").replace("\r", "\n")
    return re.sub(r"(\w)-\n(\w)", r"\1\2", text)  # words hyphenated across lines


def _word(token: str) -> str:
    """The word in a whitespace token, without surrounding punctuation ('' if none)."""
    return re.sub(r"^\W+|\W+$", "", token)


def _rare_key(word: str) -> str | None:
    w = word.lower()
    return w if len(w) >= 4 and w.replace("-", "").replace("'", "").isalpha() else None


def phrase_queries(docs: Sequence[Doc], all_texts: Sequence[str], rng: Any, per_group: int = 2) -> list[Query]:
    """Up to *per_group* 3-word phrases per group of *docs*, each with at least two words that no
    other text in *all_texts* holds; a text of fewer than three words is its own query."""
    df: Counter[str] = Counter()
    for t in set(all_texts):
        df.update({k for w in t.split() if (k := _rare_key(_word(w)))})
    queries: list[Query] = []
    seen: set[str] = set()
    for d in docs:
        if d.group in seen:
            continue
        seen.add(d.group)
        words = [w for w in (_word(t) for t in d.truth.split()) if w]
        latin = sum(c.isascii() and c.isalpha() for c in d.truth)
        if latin < 0.5 * sum(c.isalpha() for c in d.truth):
            continue  # non-Latin text: no query (Tesseract runs with English only)
        if len(words) < 3:
            queries.append(Query(" ".join(words), d.set, d.set, d.group))
            continue
        rare = [bool((k := _rare_key(w)) and df[k] == 1) for w in words]
        windows = [i for i in range(len(words) - 2) if sum(rare[i : i + 3]) >= 2
                   and all(re.search(r"[^\W\d_]", w) for w in words[i : i + 3])]
        rng.shuffle(windows)
        taken: list[int] = []
        for i in windows:
            if len(taken) == per_group:
                break
            if all(abs(i - j) >= 3 for j in taken):
                taken.append(i)
        queries += [Query(" ".join(words[i : i + 3]), d.set, d.set, d.group) for i in sorted(taken)]
    return queries


def build_corpus(work: Path, n: int, seed: int, smoke: bool, pdf_pages: int) -> tuple[list[Doc], list[Query], dict]:
    import random

    docs, queries, truth = build_receipts(work, n, seed)
    ocr = load_shared_ocr(SMOKE_OCR if smoke else None)
    pages = [] if smoke else render_pdf_pages(work, pdf_pages)
    texts = [d.truth for d in (*docs, *ocr, *pages)]
    rng = random.Random(seed)
    queries += phrase_queries(ocr, texts, rng) + phrase_queries(pages, texts, rng)
    docs += ocr + pages
    by_group: dict[str, set[str]] = defaultdict(set)
    for d in docs:
        by_group[d.group].add(str(Path(d.path).resolve()))
    for q in queries:
        q.targets = frozenset(by_group[q.group])
    return docs, queries, {"receipts": truth}


# ---------------------------------------------------------------------------------------- contestants
def run_ours(docs: Sequence[Doc], queries: Sequence[Query], work: Path) -> dict[str, Any]:
    from mm_rag_plugin import FusedRetriever, MultiModalIndex, load_documents

    files = [str(d.path) for d in docs]
    t0, c0 = time.perf_counter(), cpu_seconds()
    read = load_documents(files, ocr=True, blob_dir=str(work / "blobs"), show_progress=False)
    t1, read_cpu = time.perf_counter(), cpu_seconds() - c0
    index = MultiModalIndex(work / "ours-index", keyword_only=True, show_progress=False)
    try:
        index.add(read)
        t2 = time.perf_counter()
        retriever = FusedRetriever(index, k=1)
        first, q_times = [], []
        for q in queries:
            t = time.perf_counter()
            hits = retriever.retrieve(q.text)
            q_times.append(time.perf_counter() - t)
            first.append(str(Path(hits[0].chunk.source).resolve()) if hits else None)
        tokenize: Callable[[str], list[str]] = index.bm25.tokenize  # the index's own (no store state)
        texts = {str(Path(c.source).resolve()): c.ocr_text for c in read.images}
    finally:
        index.close()
    return {"first": first, "texts": texts, "tokenize": tokenize, "errors": [str(e) for e in read.errors],
            "read_ocr_s": t1 - t0, "read_ocr_cpu_s": read_cpu, "index_s": t2 - t1, "query_s": sum(q_times),
            "workers": "load_documents default (min(2, cpu_count) processes)"}


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its children that have ended (reader
    worker processes, the tesseract processes they and pytesseract start)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def peer_ocr(docs: Sequence[Doc], checks: int = PARSER_CHECKS) -> tuple[dict[str, str], float, dict[str, Any]]:
    """The peers' OCR: ``pytesseract.image_to_string(Image.open(path))`` once per image; the first
    images also go through LangChain's ``TesseractBlobParser``, which must give the same text."""
    import pytesseract
    from langchain_community.document_loaders.parsers.images import TesseractBlobParser
    from langchain_core.documents.base import Blob
    from PIL import Image

    texts: dict[str, str] = {}
    t0, c0 = time.perf_counter(), cpu_seconds()
    for d in docs:
        with Image.open(d.path) as img:
            texts[str(Path(d.path).resolve())] = pytesseract.image_to_string(img)
    seconds, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    parser = TesseractBlobParser()
    checked, same = [], 0
    for d in docs[:checks]:
        out = list(parser.lazy_parse(Blob.from_path(d.path)))
        ok = len(out) == 1 and out[0].page_content == texts[str(Path(d.path).resolve())].strip()
        same += ok
        checked.append(Path(d.path).name)
    return texts, seconds, {"checked": checked, "identical": same, "cpu_s": cpu}


def run_llamaindex(docs: Sequence[Doc], texts: dict[str, str], queries: Sequence[Query]) -> dict[str, Any]:
    from llama_index.core import Document
    from llama_index.retrievers.bm25 import BM25Retriever

    t0 = time.perf_counter()
    nodes = [Document(text=texts[p], metadata={"source": p}) for p in (str(Path(d.path).resolve()) for d in docs)]
    retriever = BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=1)
    t1 = time.perf_counter()
    first = []
    for q in queries:
        hits = retriever.retrieve(q.text)
        first.append(hits[0].node.metadata["source"] if hits else None)
    return {"first": first, "index_s": t1 - t0, "query_s": time.perf_counter() - t1}


def run_langchain(docs: Sequence[Doc], texts: dict[str, str], queries: Sequence[Query]) -> dict[str, Any]:
    from langchain_community.retrievers import BM25Retriever
    from langchain_core.documents import Document

    t0 = time.perf_counter()
    # what TesseractBlobParser.lazy_parse yields for each image (checked against it in peer_ocr)
    documents = [Document(page_content=texts[p].strip(), metadata={"source": p})
                 for p in (str(Path(d.path).resolve()) for d in docs)]
    retriever = BM25Retriever.from_documents(documents, k=1)
    t1 = time.perf_counter()
    first = []
    for q in queries:
        hits = retriever.invoke(q.text)
        first.append(hits[0].metadata["source"] if hits else None)
    return {"first": first, "index_s": t1 - t0, "query_s": time.perf_counter() - t1}


# ---------------------------------------------------------------------------------------- scoring
def recall_table(queries: Sequence[Query], first: Sequence[str | None]) -> dict[str, float | None]:
    hits: dict[str, list[bool]] = defaultdict(list)
    for q, f in zip(queries, first, strict=True):
        ok = f is not None and f in q.targets
        hits[q.type].append(ok)
        hits[q.set].append(ok)
        hits["all"].append(ok)
    return {c: (round(sum(hits[c]) / len(hits[c]), 3) if hits[c] else None) for c in COLUMNS}


def word_recall(docs: Sequence[Doc], texts: dict[str, str]) -> dict[str, Any]:
    """Share of each document's known words (lower case, 2+ characters) found in its OCR text."""
    per_doc, per_set = {}, defaultdict(list)
    for d in docs:
        want = set(re.findall(r"\w{2,}", d.truth.lower()))
        if not want:
            continue
        got = set(re.findall(r"\w{2,}", texts.get(str(Path(d.path).resolve()), "").lower()))
        r = len(want & got) / len(want)
        per_doc[Path(d.path).name] = round(r, 3)
        per_set[d.set].append(r)
    return {"per_set": {s: round(sum(v) / len(v), 3) for s, v in per_set.items()}, "per_doc": per_doc}


MISS_CLASSES = {
    "fewer": "the right document's OCR holds fewer of the query's terms than the first hit's (OCR lost them)",
    "tie": "as many terms as the first hit's (BM25 weights, document length or another document's words decided)",
    "more": "more terms than the first hit's, and still second or lower (BM25 weights decided)",
}


def diagnose(queries: Sequence[Query], ours: dict[str, Any], docs: Sequence[Doc], limit: int = 4) -> dict[str, Any]:
    """Why ours missed, per query type: how many distinct query terms (the index's own tokenizer)
    the right document's OCR text holds against the first hit's (``MISS_CLASSES``), and examples."""
    tokenize = ours["tokenize"]
    by_group = {d.group: str(Path(d.path).resolve()) for d in docs}
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    examples: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for q, f in zip(queries, ours["first"], strict=True):
        if f is not None and f in q.targets:
            continue
        target = by_group[q.group]
        ocr = ours["texts"].get(target, "")
        q_terms = list(dict.fromkeys(tokenize(q.text)))
        doc_terms = set(tokenize(ocr))
        hit_terms = set(tokenize(ours["texts"].get(f, ""))) if f else set()
        in_doc = sum(t in doc_terms for t in q_terms)
        in_hit = sum(t in hit_terms for t in q_terms)
        why = "fewer" if in_doc < in_hit or f is None else "tie" if in_doc == in_hit else "more"
        counts[q.type][why] += 1
        counts[q.type]["missing a term"] += in_doc < len(q_terms)
        if len(examples[q.type]) < limit and sum(e["why"] == why for e in examples[q.type]) < 2:
            line = _closest_line(q.text, ocr, tokenize)
            ex = {"query": q.text, "query_terms": q_terms, "why": why,
                  "missing_terms": [t for t in q_terms if t not in doc_terms],
                  "target": Path(target).name, "ocr_line": line, "ocr_line_terms": tokenize(line),
                  "first_hit": Path(f).name if f else None, "terms_in_target": in_doc, "terms_in_first_hit": in_hit}
            if f:
                hit_line = _closest_line(q.text, ours["texts"].get(f, ""), tokenize)
                ex |= {"first_hit_line": hit_line, "first_hit_line_terms": tokenize(hit_line)}
            examples[q.type].append(ex)
    return {"classes": MISS_CLASSES, "counts": {t: dict(c) for t, c in counts.items()}, "examples": dict(examples)}


def _closest_line(query: str, text: str, tokenize: Callable[[str], list[str]]) -> str:
    """The line of *text* holding most of the query's terms, then the most similar one."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines:
        return ""
    q, terms = query.lower(), set(tokenize(query))
    return max(lines, key=lambda ln: (len(terms & set(tokenize(ln))),
                                      difflib.SequenceMatcher(None, q, ln.lower()).ratio()))


def git_state() -> dict[str, Any]:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True).stdout.strip()

    import mm_rag_plugin

    return {"commit": git("rev-parse", "--short", "HEAD"),
            "dirty": bool(git("status", "--porcelain", "--untracked-files=no")),
            "src_changes": git("status", "--porcelain", "--", "src").splitlines(),
            "library": str(Path(mm_rag_plugin.__file__).parent)}


# ---------------------------------------------------------------------------------------- run
def camera_pass(work: Path, n: int, seed: int, docs: Sequence[Doc], queries: Sequence[Query],
                peer_texts: dict[str, str], log: Callable[[str], None]) -> dict[str, Any]:
    """The same corpus with the receipts photographed (``camera/thermal``), indexed on its own by
    every contestant: recall@1 and word recall side by side with the clean pass, and the gap."""
    cam_docs, cam_queries, cam_truth = build_receipts(work, n, seed, camera=True)
    others = [d for d in docs if d.set != "receipts"]
    all_docs = cam_docs + others
    by_group: dict[str, set[str]] = defaultdict(set)
    for d in cam_docs:
        by_group[d.group].add(str(Path(d.path).resolve()))
    for q in cam_queries:
        q.targets = frozenset(by_group[q.group])
    all_queries = cam_queries + [q for q in queries if q.set != "receipts"]
    t = time.perf_counter()
    ours = run_ours(all_docs, all_queries, work / "camera-pass")
    log(f"ours, {CAMERA}: {time.perf_counter() - t:.1f} s, {len(ours['errors'])} errors")
    cam_texts, ocr_s, _ = peer_ocr(cam_docs, 0)  # the other documents read as in the clean pass
    texts = {**peer_texts, **cam_texts}
    peers = {"llamaindex": run_llamaindex(all_docs, texts, all_queries),
             "langchain": run_langchain(all_docs, texts, all_queries)}
    systems = {"ours": {"recall_at_1": recall_table(all_queries, ours["first"]),
                        "read_ocr_s": round(ours["read_ocr_s"], 2), "read_ocr_cpu_s": round(ours["read_ocr_cpu_s"], 1),
                        "errors": ours["errors"], "ocr_word_recall": word_recall(cam_docs, ours["texts"])}}
    for name, r in peers.items():
        systems[name] = {"recall_at_1": recall_table(all_queries, r["first"]), "read_ocr_s": round(ocr_s, 2),
                         "ocr_word_recall": word_recall(cam_docs, texts)}
    renders = {r["name"]: r["render"] for r in cam_truth}  # the degradation drawn for each
    documents = [{"file": Path(d.path).name, "set": d.set, "group": d.group,
                  "ocr_ours": ours["texts"].get(p), "ocr_users": texts[p], "render": renders[d.group]}
                 for d in cam_docs for p in (str(Path(d.path).resolve()),)]
    return {"documents": documents, "systems": systems,
            "queries": dict(Counter(q.type for q in cam_queries))}


def gap_table(res: dict[str, Any]) -> dict[str, dict[str, float | None]]:
    """Per contestant and receipt column: clean recall@1 minus camera/thermal recall@1."""
    out: dict[str, dict[str, float | None]] = {}
    for key in SYSTEMS:
        clean, cam = res["systems"][key]["recall_at_1"], res["camera"]["systems"][key]["recall_at_1"]
        out[key] = {c: (round(clean[c] - cam[c], 3) if clean.get(c) is not None and cam.get(c) is not None
                        else None) for c in GAP_COLUMNS}
    return out


def run(n: int = 80, seed: int = 0, smoke: bool = False, pdf_pages: int = 3,
        log: Callable[[str], None] = print, with_camera: bool = True) -> dict[str, Any]:
    started = time.perf_counter()
    state = git_state()
    with tempfile.TemporaryDirectory(prefix="mm-rag-ocrq-") as tmp:
        work = Path(tmp)
        t = time.perf_counter()
        docs, queries, truth = build_corpus(work, n, seed, smoke, pdf_pages)
        build_s = time.perf_counter() - t
        log(f"corpus: {Counter(d.set for d in docs)} ({build_s:.1f} s); queries: {Counter(q.type for q in queries)}")
        t = time.perf_counter()
        ours = run_ours(docs, queries, work)
        log(f"ours: {time.perf_counter() - t:.1f} s, {len(ours['errors'])} errors")
        texts, ocr_s, parser_check = peer_ocr(docs, 2 if smoke else PARSER_CHECKS)
        log(f"peer OCR: {ocr_s:.1f} s; TesseractBlobParser agrees on {parser_check['identical']}/{len(parser_check['checked'])}")
        peers = {"llamaindex": run_llamaindex(docs, texts, queries), "langchain": run_langchain(docs, texts, queries)}
        receipts = {r["name"]: r for r in truth["receipts"]}
        documents = [{"file": Path(d.path).name, "set": d.set, "group": d.group,
                      "ocr_ours": ours["texts"].get(p), "ocr_users": texts[p],
                      **({"truth": receipts[d.group]} if d.group in receipts else {})}
                     for d in docs for p in (str(Path(d.path).resolve()),)]
        camera = camera_pass(work, n, seed, docs, queries, texts, log) if with_camera else None
        if camera is not None:
            documents += camera.pop("documents")

    systems: dict[str, Any] = {}
    ours_ingest = ours["read_ocr_s"] + ours["index_s"]
    systems["ours"] = {"recall_at_1": recall_table(queries, ours["first"]),
                       "ingest_s": round(ours_ingest, 2), "read_ocr_s": round(ours["read_ocr_s"], 2),
                       "read_ocr_cpu_s": round(ours["read_ocr_cpu_s"], 1),
                       "index_s": round(ours["index_s"], 2), "query_ms": round(1000 * ours["query_s"] / len(queries), 2),
                       "errors": ours["errors"], "workers": ours["workers"],
                       "ocr_word_recall": word_recall(docs, ours["texts"])}
    peer_words = word_recall(docs, texts)
    for name, r in peers.items():
        systems[name] = {"recall_at_1": recall_table(queries, r["first"]),
                         "ingest_s": round(ocr_s + r["index_s"], 2), "read_ocr_s": round(ocr_s, 2),
                         "read_ocr_cpu_s": round(parser_check["cpu_s"], 1),
                         "index_s": round(r["index_s"], 2), "query_ms": round(1000 * r["query_s"] / len(queries), 2),
                         "errors": [], "workers": "one process, one image at a time",
                         "ocr_word_recall": peer_words}
    per_query = [{"query": q.text, "type": q.type, "group": q.group,
                  **{s: (Path(f).name if f else None) for s, f in
                     (("ours", ours["first"][i]), *((k, v["first"][i]) for k, v in peers.items()))},
                  **{f"{s}_ok": bool(f and f in q.targets) for s, f in
                     (("ours", ours["first"][i]), *((k, v["first"][i]) for k, v in peers.items()))}}
                 for i, q in enumerate(queries)]
    argv = ["--smoke"] if smoke else [f"--n {n}", f"--seed {seed}", f"--pdf-pages {pdf_pages}"]
    if not with_camera:
        argv.append("--no-camera")
    result = {
        "command": "python -m benchmarks.bench_ocr_quality " + " ".join(argv),
        "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "seconds": round(time.perf_counter() - started, 1),
        "smoke": smoke, "n": n, "seed": seed, "pdf_pages_per_pdf": pdf_pages, "git": state,
        "corpus": {"documents": dict(Counter(d.set for d in docs)), "queries": dict(Counter(q.type for q in queries)),
                   "build_s": round(build_s, 1)},
        "columns": list(COLUMNS), "systems": systems, "peer_ocr_parser_check": parser_check,
        "diagnosis_ours": diagnose(queries, ours, docs), "machine": machine(),
        "queries": per_query, "documents": documents,
    }
    if camera is not None:
        result["camera"] = camera
        result["gap"] = gap_table(result)
    return result


def _cell(v: float | None) -> str:
    return "not run" if v is None else f"{v:.2f}"


def table(res: dict[str, Any]) -> list[str]:
    """The recall@1 table (rows: contestants, columns: query types and sets)."""
    q = res["corpus"]["queries"]
    counts = {**q, "receipts": sum(q.get(t, 0) for t in RECEIPT_TYPES), "all": sum(q.values())}
    head = [f"{c} ({counts[c]})" if counts.get(c) else c for c in COLUMNS]
    lines = ["| recall@1 | " + " | ".join(head) + " |", "|---|" + "---:|" * len(COLUMNS)]
    for key, label in SYSTEMS.items():
        r = res["systems"][key]["recall_at_1"]
        lines.append(f"| {label} | " + " | ".join(_cell(r[c]) for c in COLUMNS) + " |")
    return lines


def camera_table(res: dict[str, Any]) -> list[str]:
    """Clean receipts and the same receipts photographed, side by side, with the gap; and the share
    of known words read on each set (the shared images are real scans and screenshots)."""
    cols = (*GAP_COLUMNS, "ocr images")
    lines = [f"| recall@1: clean vs {CAMERA} | " + " | ".join(cols) + " | words read: receipts | ocr images |",
             "|---|" + "---:|" * (len(cols) + 2)]
    for key, label in SYSTEMS.items():
        clean, cam = res["systems"][key], res["camera"]["systems"][key]
        words_clean = clean["ocr_word_recall"]["per_set"]
        words_cam = cam["ocr_word_recall"]["per_set"].get(CAMERA)
        lines.append(f"| {label}, clean | " + " | ".join(_cell(clean["recall_at_1"].get(c)) for c in cols)
                     + f" | {_cell(words_clean.get('receipts'))} | {_cell(words_clean.get('ocr images'))} |")
        lines.append(f"| {label}, {CAMERA} | " + " | ".join(_cell(cam["recall_at_1"].get(c)) for c in cols)
                     + f" | {_cell(words_cam)} | |")
        gap = res["gap"][key]
        words_gap = (None if words_cam is None or words_clean.get("receipts") is None
                     else round(words_clean["receipts"] - words_cam, 3))
        lines.append(f"| {label}, gap | " + " | ".join(_cell(gap.get(c)) for c in GAP_COLUMNS)
                     + f" | | {_cell(words_gap)} | |")
    return lines


def markdown(res: dict[str, Any]) -> list[str]:
    g, m, c = res["git"], res["machine"], res["corpus"]
    dirty = ("uncommitted changes in src/: " + ", ".join(s.split()[-1] for s in g["src_changes"])
             if g["src_changes"] else "src/ as committed")
    lines = [
        "# OCR and keyword search: recall@1", "",
        f"`{res['command']}` ({res['seconds'] / 60:.1f} min, {res['started']}). Measured the library at commit "
        f"`{g['commit']}` ({dirty}; tree {'dirty' if g['dirty'] else 'clean'}).",
        f"Machine: {m['cpu']}, {m['cpus']} CPUs, {m['memory_gib']} GiB; Python {m['python']}.", "",
        "Documents: " + ", ".join(f"{v} {k}" for k, v in c["documents"].items()) + ", indexed together. "
        "A query counts when its document (for the shared images: one with the same known text) is the "
        "first hit. Column headers give the number of queries. See `benchmarks/bench_ocr_quality.py` for "
        "the data and the contestants.", "",
        *table(res), "",
        "## Time", "",
        "| | ingest s (OCR + index) | read + OCR s | read + OCR CPU s | index s | query ms | how OCR runs |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for key, label in SYSTEMS.items():
        s = res["systems"][key]
        lines.append(f"| {label} | {s['ingest_s']:.1f} | {s['read_ocr_s']:.1f} | {s['read_ocr_cpu_s']:.0f} | "
                     f"{s['index_s']:.2f} | {s['query_ms']:.2f} | {s['workers']} |")
    pc = res["peer_ocr_parser_check"]
    lines += ["", "Wall times on a shared machine vary from run to run; CPU seconds (this process and its "
              "ended children: reader workers, tesseract) vary less. The two users run the same Tesseract "
              "call on the same files; it ran once and both are charged its time. `TesseractBlobParser` "
              f"gave the same text on {pc['identical']} of {len(pc['checked'])} images checked.", "",
              "## OCR: share of the known words read", "",
              "| | " + " | ".join(SETS) + " |", "|---|" + "---:|" * len(SETS)]
    for key, label in (("ours", "ours"), ("llamaindex", "the users (same OCR)")):
        w = res["systems"][key]["ocr_word_recall"]["per_set"]
        lines.append(f"| {label} | " + " | ".join(_cell(w.get(s)) for s in SETS) + " |")
    if "camera" in res:
        lines += ["", f"## Clean receipts vs {CAMERA}", "",
                  "The same receipts (same text, layout and fonts) photographed as thermal receipts are "
                  "(`benchmarks/receipts.py` `photograph`: faded print with streaks, crumples and a fold, "
                  "perspective on a table, uneven light and a shadow, defocus or motion blur, lower "
                  "resolution, JPEG 45-89), indexed in a second pass with the same other documents. "
                  "The gap (clean minus photographed) predicts how much our generated set overstates real "
                  "photographed receipts. The shared images (`ocr images`) are the real scans with known "
                  "text available here.", "", *camera_table(res)]
    d = res["diagnosis_ours"]
    lines += ["", "## Where ours misses", "",
              "Each miss of ours, by how many distinct query terms (the index's own tokenizer) the right "
              "document's OCR text holds against the first hit's: " + "; ".join(
                  f"**{k}**: {v}" for k, v in d["classes"].items()) + ". The last column counts the misses "
              "where the right document lacks at least one query term.", "",
              "| type | misses | fewer | tie | more | missing a term |", "|---|---:|---:|---:|---:|---:|"]
    for t, cnt in d["counts"].items():
        lines.append(f"| {t} | {sum(cnt.get(k, 0) for k in d['classes'])} | " + " | ".join(
            str(cnt.get(k, 0)) for k in (*d["classes"], "missing a term")) + " |")
    lines += ["", "Examples (query -> terms; the closest OCR line of the right document -> terms; the first hit's):", ""]
    for t, exs in d["examples"].items():
        for ex in exs:
            line = (f"- {t}, {ex['why']} ({ex['terms_in_target']} vs {ex['terms_in_first_hit']}): `{ex['query']}` -> "
                    f"{ex['query_terms']}; {ex['target']}: `{ex['ocr_line']}` -> {ex['ocr_line_terms']}; "
                    f"first hit {ex['first_hit']}")
            if ex.get("first_hit_line"):
                line += f": `{ex['first_hit_line']}` -> {ex['first_hit_line_terms']}"
            lines.append(line)
    if res["systems"]["ours"]["errors"]:
        lines += ["", "Files ours could not read: " + "; ".join(res["systems"]["ours"]["errors"])]
    return lines


def save(res: dict[str, Any], out: Path) -> None:
    """results.json (the figures), results.md, queries.jsonl (each query and every contestant's
    first hit) and documents.jsonl (each document: OCR text, ours and the users', and for receipts
    the generated ground truth and rendering)."""
    out.mkdir(parents=True, exist_ok=True)
    res = dict(res)
    for name in ("queries", "documents"):
        rows = res.pop(name, [])
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    (out / "results.json").write_text(json.dumps(res, indent=1, ensure_ascii=False) + "\n")
    (out / "results.md").write_text("\n".join(markdown(res)) + "\n")


def corpus_arguments(ap: argparse.ArgumentParser) -> None:
    """The options that choose the corpus (this benchmark's and ``bench_ocr_variants``')."""
    ap.add_argument("--smoke", action="store_true", help="6 receipts, two small shared images, no PDFs")
    ap.add_argument("--n", type=int, default=80, help="receipts and invoices to generate")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--pdf-pages", type=int, default=3, help="pages rendered per PDF")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    corpus_arguments(ap)
    ap.add_argument("--no-camera", action="store_true",
                    help=f"skip the second pass with the receipts photographed ({CAMERA})")
    ap.add_argument("--out", default=str(OUT), help="folder for results.json / results.md")
    args = ap.parse_args(argv)
    n = 6 if args.smoke else args.n
    res = run(n, args.seed, args.smoke, args.pdf_pages, log=lambda s: print(s, file=sys.stderr, flush=True),
              with_camera=not args.no_camera)
    save(res, Path(args.out))
    print("\n".join(table(res)))
    if "camera" in res:
        print("\n".join(camera_table(res)))


if __name__ == "__main__":
    main()
