"""What each OCR preprocessing step adds: the share of a generated receipt's known words that OCR
reads, with every step, with none, and with each step left out.

Receipts come from ``benchmarks/receipts.py`` (seed 0), rendered clean (as the OCR benchmark's
receipts) or camera/thermal (faded, crumpled, photographed at an angle on a table, blurred, JPEG).
Each variant reads every receipt through the library's image reader (``load_documents(ocr=True)``,
in this process); a step is left out by replacing it in ``mm_rag_plugin.readers.ocr`` for that
variant only:

* ``none``: no preprocessing and no second reading;
* ``all``: the default (perspective, deskew, faded-print contrast, second reading);
* ``no-perspective``, ``no-deskew``, ``no-contrast``, ``no-reread``: the default without that step.

    python -m benchmarks.bench_ocr_preprocess [--n 24] [--set clean|camera] [--variants none,all,...]

Writes ``benchmarks/results/ocr_quality/preprocess-<set>.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from benchmarks._common import RESULTS, save

VARIANTS = ("none", "all", "no-perspective", "no-deskew", "no-contrast", "no-reread")


@contextlib.contextmanager
def variant(name: str) -> Iterator[None]:
    """The OCR module with the steps *name* leaves out replaced, restored after."""
    from mm_rag_plugin.readers import ocr

    saved = {k: getattr(ocr, k) for k in ("_prepare", "_find_sheet", "_skew", "_FADED", "_REREAD_GLYPHS")}
    try:
        if name == "none":
            ocr._prepare = lambda grey, marks: (grey, marks, None, [])  # type: ignore[assignment]
            ocr._REREAD_GLYPHS = 1 << 30
        elif name == "no-perspective":
            ocr._find_sheet = lambda marks: None  # type: ignore[assignment]
        elif name == "no-deskew":
            ocr._skew = lambda marks: None  # type: ignore[assignment]
        elif name == "no-contrast":
            ocr._FADED = -1
        elif name == "no-reread":
            ocr._REREAD_GLYPHS = 1 << 30
        elif name != "all":
            raise SystemExit(f"unknown variant {name!r}; choose from {VARIANTS}")
        yield
    finally:
        for k, v in saved.items():
            setattr(ocr, k, v)


def words(text: str) -> set[str]:
    return set(re.findall(r"\w{2,}", text.lower()))


def run(n: int = 24, which: str = "clean", variants: tuple[str, ...] = VARIANTS) -> dict[str, Any]:
    from benchmarks.receipts import make_receipts, render
    from mm_rag_plugin.readers import load_documents

    receipts = make_receipts(n, seed=0)
    out: dict[str, Any] = {"n": n, "set": which, "variants": {}}
    with tempfile.TemporaryDirectory() as tmp:
        paths = [render(r, Path(tmp) / f"{r.name}.png", i, camera=which == "camera") for i, r in enumerate(receipts)]
        for name in variants:
            with variant(name):
                t = time.perf_counter()
                result = load_documents([str(p) for p in paths], ocr=True, workers=0)
                seconds = time.perf_counter() - t
            read = {Path(c.source).name: c.ocr_text or "" for c in result.chunks if c.kind == "image"}
            shares = []
            for r, p in zip(receipts, paths, strict=True):
                want = words("\n".join(r.lines))
                shares.append(len(want & words(read.get(p.name, ""))) / len(want))
            out["variants"][name] = {"words_read": round(sum(shares) / len(shares), 3), "seconds": round(seconds, 1)}
    return out


def markdown(res: dict[str, Any]) -> list[str]:
    lines = [f"OCR preprocessing, {res['n']} generated receipts ({res['set']}): share of the known words read", "",
             "| variant | words read | seconds |", "|---|---|---|"]
    lines += [f"| {name} | {v['words_read']:.3f} | {v['seconds']:.1f} |" for name, v in res["variants"].items()]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=24)
    ap.add_argument("--set", choices=("clean", "camera"), default="clean")
    ap.add_argument("--variants", default=",".join(VARIANTS))
    ap.add_argument("--out")
    args = ap.parse_args()
    chosen = tuple(v for v in args.variants.split(",") if v)
    out = args.out or RESULTS / "ocr_quality" / f"preprocess-{args.set}.json"
    save(run(args.n, args.set, chosen), out, markdown)


if __name__ == "__main__":
    main()
