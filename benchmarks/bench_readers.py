"""Pages per second reading the shared real PDFs: mm-rag-plugin's PdfReader vs LlamaIndex's
default PDF reader (SimpleDirectoryReader -> PDFReader on pypdf, reproduced with the same pypdf
calls: llama-index-readers-file is not installed), in one run.

    .venv/bin/python -m benchmarks.bench_readers [--ocr-max-pages 20] [--repeat 1]

Modes (single process, same files, blob folder in a temp dir):
  text       mm-rag PdfReader, text only (extract_images=False, ocr=False)
  images     mm-rag PdfReader, text + every embedded image (stored), no OCR
  images+ocr mm-rag PdfReader, text + images + Tesseract OCR of each image (files up to
             --ocr-max-pages pages, to keep the run short)
  llamaindex pypdf text per page as LlamaIndex's PDFReader (no images, no OCR)
  loader     mm-rag DocumentLoader, text + images, 2 worker processes (includes process start-up)
``unstructured`` is not installed in this environment (heavy dependency tree) and is skipped.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from benchmarks._common import SHARED, page_count


def _time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ocr-max-pages", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()

    from mm_rag_plugin.readers import DocumentLoader, PdfReader

    files = sorted((SHARED / "pdfs" / "text_figures").glob("*.pdf"))
    pages = page_count(files)
    blob = tempfile.mkdtemp(prefix="bench-blobs-")
    results: dict[str, dict] = {}

    def run_mm(reader: PdfReader, subset: list[Path]) -> dict:
        stats = {"chunks": 0, "images": 0, "chars": 0}

        def go() -> None:
            stats.update(chunks=0, images=0, chars=0)
            for f in subset:
                res = reader.read(f)
                stats["chunks"] += len(res.chunks)
                stats["images"] += len(res.images)
                stats["chars"] += sum(len(t.text) for t in res.texts)

        secs = _time(go, args.repeat)
        return {"seconds": round(secs, 3), "pages": page_count(subset), **stats}

    results["text"] = run_mm(PdfReader(ocr=False, extract_images=False, blob_dir=blob), files)
    results["images"] = run_mm(PdfReader(ocr=False, blob_dir=blob), files)
    ocr_files = [f for f in files if page_count([f]) <= args.ocr_max_pages]
    results["images+ocr"] = run_mm(PdfReader(ocr=True, blob_dir=blob), ocr_files)

    try:
        import pypdf
        from llama_index.core import Document

        def li(subset: list[Path]) -> dict:
            out = {"docs": 0, "chars": 0}

            def go() -> None:
                # What llama-index-readers-file's PDFReader (SimpleDirectoryReader's default for
                # .pdf) does: pypdf, one Document per page. Without that package installed,
                # SimpleDirectoryReader would read PDFs as raw bytes, which is no baseline.
                docs = []
                for f in subset:
                    reader = pypdf.PdfReader(f)
                    for i, page in enumerate(reader.pages):
                        docs.append(
                            Document(
                                text=page.extract_text(), metadata={"page_label": i + 1, "file_name": f.name}
                            )
                        )
                out.update(docs=len(docs), chars=sum(len(d.text) for d in docs))

            return {"seconds": round(_time(go, args.repeat), 3), "pages": page_count(subset), **out}

        results["llamaindex"] = li(files)
        results["llamaindex_ocr_subset"] = li(ocr_files)
    except ImportError as exc:  # pypdf missing
        print(f"LlamaIndex default PDF reader unavailable: {exc}")

    def loader() -> None:
        DocumentLoader(files, ocr=False, blob_dir=blob, show_progress=False, workers=2).load()

    results["loader(2 workers)"] = {"seconds": round(_time(loader, args.repeat), 3), "pages": pages}

    for r in results.values():
        r["pages_per_s"] = round(r["pages"] / r["seconds"], 1)
    print(json.dumps(results, indent=1))
    print(
        f"\n{len(files)} PDFs, {pages} pages; OCR subset: {len(ocr_files)} PDFs, {results['images+ocr']['pages']} pages"
    )
    for name, r in results.items():
        print(f"{name:24s} {r['pages_per_s']:8.1f} pages/s  ({r['seconds']:.2f} s, {r['pages']} pages)")
    if "llamaindex" in results:
        base = results["llamaindex"]["pages_per_s"]
        print(f"\nratio text / llamaindex:        {results['text']['pages_per_s'] / base:.2f}x")
        print(f"ratio images / llamaindex:      {results['images']['pages_per_s'] / base:.2f}x")
        sub = results["llamaindex_ocr_subset"]["pages_per_s"]
        print(
            f"ratio images+ocr / llamaindex (same subset): {results['images+ocr']['pages_per_s'] / sub:.3f}x"
        )


if __name__ == "__main__":
    main()
