"""Peak memory of a streamed ingest does not grow with the corpus.

Two corpora of generated text PDFs (1 file of 20 pages; 100 files of 20 pages = 2,000 pages), each
ingested by ``mm-rag ingest --no-ocr`` in a fresh process into a new index, with the model given
(``--model``, default: the tiny test model this script builds) or ``--keyword-only``. Reports the
peak RSS of the ingest process (``ru_maxrss`` of the child; reader workers are smaller) and the
ratio large / small. The target: 2,000 pages within 1.5x the peak of 20 pages.

    .venv/bin/python -m benchmarks.bench_ingest_memory [--model local-dir:/path] [--keyword-only]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ._common import RESULTS

WORDS = ["inverter", "grid", "voltage", "panel", "output", "monthly", "report", "maintenance", "fault", "cleaning", "transformer", "tap", "summer", "afternoon", "disconnect", "reconnect", "operator", "roof", "cable", "string", "meter", "export", "import", "battery"]


def _pdf(pages: list[str]) -> bytes:
    """A minimal PDF with one line-wrapped text page per entry of *pages* (Helvetica)."""
    objs: list[bytes] = []
    kids = []
    font_id = 3
    for i, text in enumerate(pages):
        lines = [text[j : j + 90] for j in range(0, len(text), 90)][:50]
        ops = "BT /F1 10 Tf 50 780 Td 14 TL " + " ".join(f"({ln}) Tj T*" for ln in lines) + " ET"
        content_id = 4 + 2 * i
        page_id = content_id + 1
        objs.append(f"{content_id} 0 obj << /Length {len(ops)} >> stream\n{ops}\nendstream endobj\n".encode())
        objs.append(
            f"{page_id} 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> /Contents {content_id} 0 R >> endobj\n".encode()
        )
        kids.append(f"{page_id} 0 R")
    head = [
        b"1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n",
        f"2 0 obj << /Type /Pages /Kids [{' '.join(kids)}] /Count {len(pages)} >> endobj\n".encode(),
        b"3 0 obj << /Type /Font /Subtype /Type1 /BaseFont /Helvetica >> endobj\n",
    ]
    body = b"%PDF-1.4\n"
    offsets = []
    for o in head + objs:
        offsets.append(len(body))
        body += o
    xref = len(body)
    body += f"xref\n0 {len(offsets) + 1}\n0000000000 65535 f \n".encode()
    body += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    body += f"trailer << /Size {len(offsets) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return body


def make_corpus(folder: Path, files: int, pages: int, seed: int = 0) -> None:
    import random

    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for f in range(files):
        texts = [" ".join(rng.choice(WORDS) for _ in range(300)) + f" page {p} of file {f}" for p in range(pages)]
        (folder / f"doc{f:04d}.pdf").write_bytes(_pdf(texts))


def ingest_peak(corpus: Path, index: Path, model_args: list[str]) -> dict[str, float]:
    """Peak RSS (MiB) and seconds of ``mm-rag ingest`` in a fresh process."""
    code = (
        "import resource, subprocess, sys, time\n"
        "t = time.perf_counter()\n"
        "p = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "dt = time.perf_counter() - t\n"
        "if p.returncode: sys.exit(p.stdout[-2000:] + p.stderr[-2000:])\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, dt)\n"
    )
    exe = str(Path(sys.executable).with_name("mm-rag"))
    argv = [exe, "ingest", str(corpus), "--index", str(index), "--no-ocr", "-q", *model_args]
    out = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, check=True).stdout.split()
    return {"peak_rss_mib": int(out[0]) / 1024, "seconds": float(out[1])}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", help="the model (default: a tiny open_clip model built here)")
    ap.add_argument("--keyword-only", action="store_true", help="no model (BM25 only)")
    ap.add_argument("--out", default=str(RESULTS / "ingest_memory"))
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="mm-rag-mem-") as tmp:
        work = Path(tmp)
        if args.keyword_only:
            model_args, label = ["--keyword-only"], "keyword-only"
        else:
            model = args.model
            if model is None:
                from mm_rag_plugin.testing import make_tiny_clip

                model = f"local-dir:{make_tiny_clip(work / 'tiny', train_steps=0)}"
            model_args, label = ["--model", model], model if args.model else "tiny open_clip model (random weights)"
        small, large = work / "small", work / "large"
        make_corpus(small, files=1, pages=20)
        make_corpus(large, files=100, pages=20)
        res = {
            "model": label,
            "when": time.strftime("%Y-%m-%d %H:%M"),
            "20 pages": ingest_peak(small, work / "ix-small", model_args),
            "2,000 pages": ingest_peak(large, work / "ix-large", model_args),
        }
    res["ratio"] = round(res["2,000 pages"]["peak_rss_mib"] / res["20 pages"]["peak_rss_mib"], 3)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = "keyword_only" if args.keyword_only else "model"
    (out / f"{name}.json").write_text(json.dumps(res, indent=1))
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
