"""End-to-end ingestion (read + OCR + embed + upsert) of the real PDFs in
``shared/data/pdfs/text_figures``: pages/s, images/s and peak memory, ours vs the LlamaIndex and
LangChain default pipelines, each contestant in a fresh process (clean peak-memory figures).

    .venv/bin/python -m benchmarks.bench_ingest [--quick]
    .venv/bin/python -m benchmarks.run --only ingestion [--quick]

Every contestant embeds with the same model (ViT-B-32, random weights, seed 0) on the CPU, each in
its default numerics: ours ``precision="auto"`` (every weight in bfloat16 on a CPU that computes it
natively, else fp32), the peers fp32.

* ``ours``: ``MultiModalRAG(folder, embedder=OpenCLIPEmbedder(...)).ingest(files, ocr=True)``:
  text chunks, every embedded raster image (stored, OCR'd with Tesseract, embedded with the image
  tower), upserted into the default embedded index (Qdrant Edge in the folder, HNSW built at the end).
* ``ours-no-ocr``: the same without OCR.
* ``ours-text``: text only (``extract_images=False``, no OCR): the same work the peers do.
* ``llamaindex``: pypdf text per page as LlamaIndex's ``PDFReader`` (llama-index-readers-file is not
  installed; same pypdf calls), ``SentenceSplitter`` defaults, ``VectorStoreIndex`` with
  ``ClipEmbedding``'s per-item loop (reproduced, see ``bench_embeddings``) on the default
  ``SimpleVectorStore``, persisted to disk. No images, no OCR.
* ``langchain``: ``PyPDFLoader`` (pypdf), ``RecursiveCharacterTextSplitter(1000, 200)``,
  ``InMemoryVectorStore`` with ``langchain_experimental``'s ``OpenCLIPEmbeddings``, dumped to disk.
  No images, no OCR.

Peak memory: the whole process tree (the contestant's process plus its reader workers, and
Tesseract's processes where it runs as a program; sampled every 20 ms, the tree listed every
0.25 s), and of it the worker processes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import (
    RESULTS,
    SHARED,
    TreeMemorySampler,
    dir_size,
    disk_allocated,
    mib,
    page_count,
    run_child,
    save,
    spread,
    spread_cell,
)
from benchmarks._load import BackgroundLoad

PDFS = SHARED / "pdfs" / "text_figures"
CONTESTANTS = ("ours", "ours-no-ocr", "ours-text", "llamaindex", "langchain")


def pdf_files(quick: bool, smoke: bool = False) -> list[Path]:
    if smoke:  # the test suite's check that the benchmark runs: one page with two images
        return [PDFS / "unst__embedded-images.pdf"]
    files = sorted(PDFS.glob("*.pdf"))
    return [f for f in files if page_count([f]) <= 3] if quick else files


def _model():
    import open_clip
    import torch

    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    return model.eval(), preprocess, open_clip.get_tokenizer("ViT-B-32")


def _ours(files: list[Path], folder: Path, **reader_options: Any) -> dict[str, Any]:
    import torch

    from mm_rag_plugin import MultiModalRAG, OpenCLIPEmbedder

    torch.manual_seed(0)  # the library's default numerics (precision="auto"), as a user gets them
    emb = OpenCLIPEmbedder("ViT-B-32", load_weights=False, device="cpu")
    t = time.perf_counter()
    with MultiModalRAG(folder, embedder=emb, generator=None, show_progress=False) as rag:
        s = rag.ingest([str(f) for f in files], **reader_options)
        stored = len(rag.index)
    return {"seconds": time.perf_counter() - t, "texts": s.texts, "images": s.images, "stored": stored,
            "errors": len(s.errors)}


def _llamaindex(files: list[Path], folder: Path) -> dict[str, Any]:
    import pypdf
    from llama_index.core import Document, Settings, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter

    from benchmarks.bench_embeddings import llamaindex_clip_loop

    model, preprocess, tokenizer = _model()
    Settings.embed_model = llamaindex_clip_loop(model, preprocess, tokenizer, 10)
    t = time.perf_counter()
    docs = []
    for f in files:
        reader = pypdf.PdfReader(f)
        for i, page in enumerate(reader.pages):
            docs.append(Document(text=page.extract_text(), metadata={"page_label": str(i + 1), "file_name": f.name}))
    index = VectorStoreIndex.from_documents(docs, transformations=[SentenceSplitter()], show_progress=False)
    index.storage_context.persist(str(folder))
    n = len(index.docstore.docs)
    return {"seconds": time.perf_counter() - t, "texts": n, "images": 0, "stored": n, "errors": 0}


def _langchain(files: list[Path], folder: Path) -> dict[str, Any]:
    from langchain_community.document_loaders import PyPDFLoader
    from langchain_core.vectorstores import InMemoryVectorStore
    from langchain_experimental.open_clip import OpenCLIPEmbeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    model, preprocess, tokenizer = _model()
    emb = OpenCLIPEmbeddings(model_name="ViT-B-32", checkpoint="")
    emb.model, emb.preprocess, emb.tokenizer = model, preprocess, tokenizer
    t = time.perf_counter()
    docs = []
    for f in files:
        docs += PyPDFLoader(str(f)).load()
    chunks = RecursiveCharacterTextSplitter(chunk_size=1000, chunk_overlap=200).split_documents(docs)
    store = InMemoryVectorStore.from_documents(chunks, emb)
    store.dump(str(folder / "store.json"))
    return {"seconds": time.perf_counter() - t, "texts": len(chunks), "images": 0, "stored": len(chunks), "errors": 0}


def child(name: str, quick: bool, smoke: bool = False) -> dict[str, Any]:
    """One contestant, in this (fresh) process."""
    files = pdf_files(quick, smoke)
    with tempfile.TemporaryDirectory() as tmp, TreeMemorySampler() as mem:
        folder = Path(tmp) / "index"
        folder.mkdir()
        if name == "ours":
            out = _ours(files, folder, ocr=True)
        elif name == "ours-no-ocr":
            out = _ours(files, folder, ocr=False)
        elif name == "ours-text":
            out = _ours(files, folder, ocr=False, extract_images=False)
        elif name == "llamaindex":
            out = _llamaindex(files, folder)
        elif name == "langchain":
            out = _langchain(files, folder)
        else:
            raise SystemExit(f"unknown contestant {name!r}")
        out["disk_bytes"] = disk_allocated(folder)  # blocks in use (Qdrant preallocates files sparsely)
        out["disk_apparent_bytes"] = dir_size(folder)
    out["pages"] = page_count(files)
    out["files"] = len(files)
    # sampled, not ru_maxrss: Linux keeps a parent's RSS at fork time in a child's ru_maxrss across
    # exec, so a contestant started by a big benchmark process would report the parent's size
    out["peak_tree_rss_bytes"] = mem.peak  # this process + worker processes (and Tesseract)
    out["peak_workers_rss_bytes"] = mem.peak_children
    return out


RATES = ("seconds", "pages_per_s", "images_per_s", "texts_per_s")


def _rates(r: dict[str, Any]) -> dict[str, Any]:
    return {**r, "pages_per_s": r["pages"] / r["seconds"], "images_per_s": r["images"] / r["seconds"],
            "texts_per_s": r["texts"] / r["seconds"]}


def run(quick: bool = False, contestants: tuple[str, ...] = CONTESTANTS, smoke: bool = False, rounds: int = 1,
        loaded: bool = False) -> dict[str, Any]:
    """Each contestant in a fresh process per sample; *rounds* interleaved rounds (every contestant
    once quiet, then once under ``_load``'s background load when *loaded*). ``by_system[name]``
    holds the quiet median of each rate (and the counts and memory of the median-time sample);
    ``by_mode[mode][name][rate]`` the median and spread of every mode."""
    flags = [*(["--quick"] if quick else []), *(["--smoke"] if smoke else [])]
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {}
    load = BackgroundLoad() if loaded else None
    modes = ("quiet", "loaded") if load else ("quiet",)
    try:
        for rnd in range(rounds):
            for mode in modes:
                with load.on() if (load and mode == "loaded") else contextlib.nullcontext():
                    for name in contestants:
                        r = _rates(run_child("benchmarks.bench_ingest", ["--child", name, *flags]))
                        samples.setdefault(mode, {}).setdefault(name, []).append(r)
                        print(f"  ingest round {rnd + 1} {mode:6s} {name:12s} {r['pages_per_s']:7.2f} pages/s "
                              f"{r['images_per_s']:6.2f} images/s peak {mib(r['peak_tree_rss_bytes'])} MiB",
                              file=sys.stderr)
    finally:
        if load:
            load.close()
    by_mode = {mode: {name: {k: spread([x[k] for x in ss]) for k in RATES} for name, ss in per.items()}
               for mode, per in samples.items()}
    res: dict[str, Any] = {}
    for name, ss in samples["quiet"].items():
        middle = sorted(ss, key=lambda x: x["seconds"])[len(ss) // 2]
        res[name] = {**middle, **{k: round(by_mode["quiet"][name][k]["median"], 2) for k in RATES}}
    first = next(iter(res.values()))
    out = {"files": first["files"], "pages": first["pages"], "rounds": rounds, "by_system": res, "by_mode": by_mode}
    if load:
        out["load"] = load.describe()
    return out


def markdown(res: dict[str, Any]) -> list[str]:
    rows = res["by_system"]
    by_mode = res.get("by_mode", {})
    base = rows.get("ours-text")
    rounds = res.get("rounds", 1)
    lines = [f"{res['files']} PDFs, {res['pages']} pages, a fresh process per contestant and sample, ViT-B-32 on the "
             f"CPU; {rounds} interleaved round{'s' if rounds > 1 else ''}, median (min-max).", "",
             "| pipeline | pages/s | pages/s under load | images/s | text chunks/s | text chunks | images | seconds "
             "| peak RSS MiB (of it workers) | on disk MiB (allocated) |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in rows.items():
        q, ld = _get_mode(by_mode, "quiet", name), _get_mode(by_mode, "loaded", name)
        pages = spread_cell(q["pages_per_s"]) if q else f"{r['pages_per_s']:.2f}"
        lines.append(f"| {name} | {pages} | {spread_cell(ld['pages_per_s']) if ld else '-'} | {r['images_per_s']:.2f} | "
                     f"{r.get('texts_per_s', r['texts'] / r['seconds']):.2f} | {r['texts']} | {r['images']} | "
                     f"{r['seconds']:.1f} | {mib(r['peak_tree_rss_bytes'])} ({mib(r['peak_workers_rss_bytes'])}) | "
                     f"{mib(r['disk_bytes'])} |")
    if base:
        for peer in ("llamaindex", "langchain"):
            if peer in rows:
                lines.append(f"\nours-text / {peer}: {base['pages_per_s'] / rows[peer]['pages_per_s']:.2f}x pages/s "
                             "(same work: text only)")
    if "load" in res:
        lines.append(f"\nunder load: {res['load']}")
    return lines


def _get_mode(by_mode: dict[str, Any], mode: str, name: str) -> dict[str, Any] | None:
    return by_mode.get(mode, {}).get(name)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--loaded", action="store_true", help="each round also under the background load")
    ap.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(RESULTS / "ingestion.json"))
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.quick, args.smoke)))
        return
    res = run(args.quick, smoke=args.smoke, rounds=args.rounds, loaded=args.loaded)
    save(res, args.out, markdown)


if __name__ == "__main__":
    main()
