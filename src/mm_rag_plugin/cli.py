"""``mm-rag``: ingest documents, search them, ask questions, evaluate retrieval, inspect the index.

    mm-rag ingest docs/ [--index DIR]
    mm-rag query "solar output in July" [--image FILE] [-k N] [--json]
    mm-rag ask "What does fault E-217 mean?"
    mm-rag eval qrels.jsonl [-k 10] [--json]
    mm-rag info [--json]
    mm-rag delete FILE... | mm-rag ingest docs/ --prune | mm-rag verify
    mm-rag copy --to http://qdrant:6333 [--collection NAME]
    mm-rag finetune --pairs pairs.jsonl --out models/mine | mm-rag finetune --from-index --out models/mine
    mm-rag reindex --model local-dir:models/mine

Model: an existing index loads its own model. A new index takes ``--model`` / ``--pretrained`` /
``--checkpoint`` or ``$MM_RAG_MODEL`` / ``$MM_RAG_PRETRAINED`` / ``$MM_RAG_CHECKPOINT`` (default
ViT-B-32). A model that cannot be loaded is an error (exit code 3) saying how to fix it;
``--keyword-only`` builds or searches without a model. ``query``, ``ask``, ``eval`` and ``info``
open an existing index only and create nothing; ``info`` reads the index and its manifest without
loading the model. Index folder: ``--index`` or ``$MM_RAG_INDEX`` (default ``./.mm_rag``).

Also ``python -m mm_rag_plugin``. Bad arguments exit with code 2 (and the command's usage) before
anything is opened or loaded; output cut short by a closed pipe (``| head``) ends the command quietly.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from ._terminal import SafeStream, one_line
from ._version import __version__
from .errors import MMRagError, ModelLoadError
from .types import Hit

__all__ = ["main"]

#: Errors listed one per line after an ingest; the rest are counted.
_MAX_ERRORS_SHOWN = 100

#: Environment variables whose values never appear in anything the CLI prints.
_SECRET_VARS = ("GOOGLE_API_KEY", "GEMINI_API_KEY", "QDRANT_API_KEY", "QDRANT_TARGET_API_KEY")

#: Every environment variable the CLI (or what it runs) reads, shown by ``--help``.
_ENVIRONMENT = """\
environment:
  MM_RAG_INDEX           index folder (--index; default .mm_rag)
  MM_RAG_MODEL           model of a new index (--model): architecture, hf-hub:org/repo or local-dir:/path
  MM_RAG_PRETRAINED      open_clip pretrained tag (--pretrained)
  MM_RAG_CHECKPOINT      local weights file (--checkpoint)
  MM_RAG_DEVICE          cuda, mps or cpu (--device)
  MM_RAG_PRECISION       auto, fp32, bf16 or fp16 (--precision)
  MM_RAG_QUANTIZATION    int8 or binary, for a new index (--quantization)
  MM_RAG_TEXT_MODEL      sentence-transformers model beside CLIP, for a new index (--text-model)
  MM_RAG_TEXT_TOWER      0 turns off the cached NumPy text tower of CPU text queries (loads the whole model)
  GOOGLE_API_KEY         Gemini API key for `ask` (or GEMINI_API_KEY); without one answers are extractive
  GEMINI_API_KEY         the same, when GOOGLE_API_KEY is not set
  GOOGLE_GENAI_USE_VERTEXAI, GOOGLE_CLOUD_PROJECT, GOOGLE_CLOUD_LOCATION
                         Gemini through Vertex AI instead of an API key
  QDRANT_API_KEY         Qdrant server API key (--qdrant-api-key)
  QDRANT_TARGET_API_KEY  API key of the `copy --to` target (--to-api-key)
  MM_RAG_BLOB_CACHE      folder for checked copies of images read from a blob store (--blobs)
  AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY
                         an s3:// blob store's endpoint and credentials (read by s3fs)
  HF_HUB_OFFLINE, HF_ENDPOINT
                         Hugging Face hub access when a model is downloaded
  TESSDATA_PREFIX        folder of Tesseract's language data for OCR (default: where `tesseract` looks)
"""


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None


def _real(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _positive_int(text: str) -> int:
    value = _whole(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _positive_float(text: str) -> float:
    value = _real(text)
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text}")
    return value


def _learning_rate(text: str) -> float:
    value = _real(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


def _fraction(text: str) -> float:
    value = _real(text)
    if not 0 < value <= 0.5:
        raise argparse.ArgumentTypeError(f"must be within (0, 0.5], got {text}")
    return value


def _batch(text: str) -> int:
    value = _positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError("must be at least 2 (pairs are compared within a batch)")
    return value


def _count(text: str) -> int:
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The ``mm-rag`` parser and its subcommands' parsers (for per-command usage errors)."""
    # each command takes (and its --help lists) only the options it uses; the others default below
    base = argparse.ArgumentParser(add_help=False)
    base.add_argument("--index", default=os.environ.get("MM_RAG_INDEX", ".mm_rag"), help="index folder (default: %(default)s)")
    model = argparse.ArgumentParser(add_help=False)
    model.add_argument("--model", help="open_clip architecture, hf-hub:org/repo or local-dir:/path ($MM_RAG_MODEL)")
    model.add_argument("--pretrained", help="open_clip pretrained tag ($MM_RAG_PRETRAINED)")
    model.add_argument("--checkpoint", help="local weights file for --model ($MM_RAG_CHECKPOINT)")
    model.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    precision = argparse.ArgumentParser(add_help=False)
    precision.add_argument(
        "--precision", choices=("auto", "fp32", "bf16", "fp16"),
        help="model numerics ($MM_RAG_PRECISION; default auto: bf16 on CPUs that compute it natively, else fp32)",
    )
    train_precision = argparse.ArgumentParser(add_help=False)
    train_precision.add_argument(
        "--precision", choices=("auto", "fp32", "bf16", "fp16"),
        help="training autocast (default auto: bf16 where it is faster: GPUs with bf16, CPUs with AVX512-BF16/AMX "
        "for --train all); the base model is loaded in fp32 either way",
    )
    keyword = argparse.ArgumentParser(add_help=False)
    keyword.add_argument(
        "--keyword-only", action="store_true",
        help="no model: build a keyword-only index, or search an index by keywords (BM25) only",
    )
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument("--url", help="Qdrant server/cluster URL instead of the embedded index")
    server.add_argument("--collection", default="mm_rag", help="Qdrant collection with --url (default: %(default)s)")
    server.add_argument("--qdrant-api-key", default=os.environ.get("QDRANT_API_KEY"), help="Qdrant API key ($QDRANT_API_KEY)")
    quantization = argparse.ArgumentParser(add_help=False)
    quantization.add_argument(
        "--quantization", choices=("int8", "binary"), default=os.environ.get("MM_RAG_QUANTIZATION") or None,
        help="a new index keeps vectors quantized in RAM, rescored from disk: int8 (1/4 the memory) or binary (1/32)",
    )
    # finetune and reindex work on a folder with a model: --url and --keyword-only are refused by name
    not_here = argparse.ArgumentParser(add_help=False)
    not_here.add_argument("--url", help=argparse.SUPPRESS)
    not_here.add_argument("--keyword-only", action="store_true", help=argparse.SUPPRESS)
    # verify never loads a model: --keyword-only is accepted (scripts pass it) but not listed
    quiet_keyword = argparse.ArgumentParser(add_help=False)
    quiet_keyword.add_argument("--keyword-only", action="store_true", help=argparse.SUPPRESS)
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("-q", "--quiet", action="store_true", help="no progress bars (shown only on a terminal)")
    output.add_argument("-v", "--verbose", action="store_true", help="log details and show tracebacks")
    text_model = argparse.ArgumentParser(add_help=False)
    text_model.add_argument(
        "--text-model", default=os.environ.get("MM_RAG_TEXT_MODEL") or None,
        help="a sentence-transformers model (hub name or folder) beside CLIP: a new index stores its vectors too, "
        "searched as the text_model list ($MM_RAG_TEXT_MODEL; an index that has one loads it by itself)",
    )
    windows = argparse.ArgumentParser(add_help=False)
    windows.add_argument(
        "--clip-windows", type=int, nargs="?", const=8, default=None, metavar="MAX",
        help="a new index also embeds text chunks longer than the CLIP model's context in overlapping windows "
        "(at most MAX per chunk, default 8), searched by their best window: more of each chunk for dense "
        "search, at a cost in ingest time and disk (see the README)",
    )
    searching = [base, model, precision, text_model, keyword, server, output]
    parents = {
        "ingest": [base, model, precision, text_model, keyword, server, quantization, windows, output],
        "query": searching, "ask": searching, "eval": searching, "delete": searching, "copy": searching,
        "info": [base, keyword, server, output],
        "verify": [base, server, quiet_keyword, output],
        "finetune": [base, model, train_precision, not_here, output],
        "reindex": [base, model, precision, not_here, output],
    }
    defaults = dict(
        model=None, pretrained=None, checkpoint=None, device=None, precision=None, keyword_only=False, url=None,
        collection="mm_rag", qdrant_api_key=os.environ.get("QDRANT_API_KEY"),
        quantization=os.environ.get("MM_RAG_QUANTIZATION") or None, text_model=None, clip_windows=None,
    )

    p = argparse.ArgumentParser(
        prog="mm-rag", description="Multimodal RAG over your documents: text and images, BM25 + CLIP fused.",
        epilog=_ENVIRONMENT, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--version", action="version", version=f"mm-rag {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands: dict[str, argparse.ArgumentParser] = {}

    def command(name: str, help: str) -> argparse.ArgumentParser:
        commands[name] = sub.add_parser(
            name, parents=parents[name], help=help, description=help[:1].upper() + help[1:] + ".",
            epilog=_ENVIRONMENT, formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        commands[name].set_defaults(**{k: v for k, v in defaults.items() if commands[name].get_default(k) is None})
        return commands[name]

    def top_k(s: argparse.ArgumentParser, default: int, what: str) -> None:
        s.add_argument("-k", "--k", "--top-k", dest="k", type=_positive_int, default=default, metavar="N",
                       help=f"{what} (default: %(default)s)")

    s = command("ingest", "read files/folders into the index")
    s.add_argument("paths", nargs="+", help="files, folders or glob patterns")
    s.add_argument("--workers", type=int, help="reader processes (default: up to 2)")
    s.add_argument("--timeout", type=_positive_float, default=300.0, help="seconds per file (default: %(default)s)")
    s.add_argument("--no-ocr", action="store_true", help="skip OCR of images and scanned pages")
    s.add_argument("--ocr-all", action="store_true",
                   help="OCR every image (default: only images where lines of glyphs are found)")
    s.add_argument("--prune", action="store_true", help="remove indexed files under the given folders that no longer exist")
    s.add_argument("--follow-symlinks", action="store_true", help="also read links in the folders that point outside them")
    s.add_argument(
        "--blobs", metavar="URL",
        help="a new index keeps its images in this blob store (s3://bucket/prefix, gs://..., a folder), recorded in "
        "the index: other machines read them there (needs mm-rag-plugin[blobs]; credentials from the environment)",
    )

    s = command("query", "search the index (fused dense + BM25)")
    s.add_argument("text", nargs="?", help="text query")
    s.add_argument("--image", help="image file to search with (alone or with the text)")
    top_k(s, 5, "number of results")
    s.add_argument("--json", action="store_true", help="print JSON")

    s = command("ask", "answer a question with citations (Gemini, or extractive without a key)")
    s.add_argument("question")
    s.add_argument("--image", help="image file to ask about")
    top_k(s, 5, "sources to retrieve")
    s.add_argument("--json", action="store_true", help="print JSON")

    s = command("eval", "recall@k, MRR and nDCG for dense, BM25 and fused search")
    s.add_argument("qrels", help='JSONL file: {"query": "...", "relevant": ["file or chunk id", ...]} per line')
    top_k(s, 10, "cut-off")
    s.add_argument("--no-dedupe", action="store_true",
                   help="keep near-duplicate hits (by default they are removed, and the report says how many)")
    s.add_argument("--json", action="store_true", help="print JSON")

    s = command("info", "index statistics, model and location (read from the index; no model is loaded)")
    s.add_argument("--json", action="store_true", help="print JSON")

    command("verify", "check the index: counts, vectors, image files")

    s = command("delete", "remove files from the index")
    s.add_argument("sources", nargs="+", help="the files to remove (paths as ingested)")

    s = command("copy", "copy the index to a Qdrant server (or another folder)")
    dest = s.add_mutually_exclusive_group(required=True)
    dest.add_argument("--to", dest="to_url", metavar="URL", help="Qdrant server or cluster URL")
    dest.add_argument("--to-path", metavar="DIR", help="another index folder")
    s.add_argument("--to-collection", default="mm_rag", help="target collection (default: %(default)s)")
    s.add_argument("--to-api-key", default=os.environ.get("QDRANT_TARGET_API_KEY"), help="target API key ($QDRANT_TARGET_API_KEY)")
    s.add_argument(
        "--to-blobs", metavar="URL",
        help="blob store for the copy's images (s3://bucket/prefix ...; default: the index's own store, if any)",
    )

    s = command("finetune", "fine-tune the model on (image, text) pairs from a file or from the index")
    data = s.add_mutually_exclusive_group(required=True)
    data.add_argument("--pairs", metavar="FILE", help="JSONL or CSV of pairs: image path (relative to the file) and text")
    data.add_argument("--from-index", action="store_true",
                      help="pairs from the index (--index): each image with its caption or alt text, else the text next to it")
    s.add_argument("--out", metavar="DIR", help="folder for the fine-tuned model (then: --model local-dir:DIR)")
    s.add_argument("--dump-pairs", metavar="FILE", help="write the pairs as JSONL and stop, to look at them first (then: --pairs FILE)")
    s.add_argument("--ocr-text", action="store_true", help="with --from-index: also pair images with their OCR text")
    s.add_argument("--no-context", action="store_true", help="with --from-index: never pair an image with the text next to it")
    s.add_argument("--loss", choices=("auto", "clip", "siglip"), default="auto",
                   help="clip (InfoNCE), siglip (sigmoid) or auto: the model's own (default: %(default)s)")
    s.add_argument("--train", choices=("projections", "last", "all"), default="last",
                   help="what to train: the projections, projections + the last --blocks blocks, or all (default: %(default)s)")
    s.add_argument("--blocks", type=_count, default=1, metavar="N", help="blocks per tower with --train last (default: %(default)s)")
    s.add_argument("--freeze", choices=("image", "text"), help="keep this tower as it is")
    s.add_argument("--lr", type=_learning_rate, help="learning rate (default: 1e-4 projections, 5e-5 last, 1e-5 all)")
    s.add_argument("--epochs", type=_positive_int, default=5, help="passes over the training pairs (default: %(default)s)")
    s.add_argument("--max-steps", type=_positive_int, metavar="N", help="stop after N steps (instead of --epochs)")
    s.add_argument("--batch-size", type=_batch, default=32, help="pairs per step (default: %(default)s)")
    s.add_argument("--seed", type=int, default=0, help="seed of the held-out split and the batches (default: %(default)s)")
    s.add_argument("--holdout", type=_fraction, default=0.2, help="share of the pairs held out to score the model (default: %(default)s)")
    s.add_argument("--save-every", type=_positive_int, default=100, metavar="N", help="checkpoint every N steps (default: %(default)s)")
    s.add_argument("--resume", action="store_true", help="continue from the checkpoint in --out")
    s.add_argument("--force", action="store_true", help="save the model even if it scores worse on the held-out pairs")
    s.add_argument("--json", action="store_true", help="print the report as JSON")

    s = command("reindex", "re-embed the index with another model (--model); the folders are swapped at the end")
    s.add_argument("--batch-size", type=_positive_int, default=64, help="points per batch (default: %(default)s)")
    s.add_argument("--keep-old", action="store_true", help="keep the old index as INDEX.before-reindex")
    s.add_argument("--skip-unreadable", action="store_true", help="leave out points that cannot be embedded, such as unreadable images (default: stop)")
    return p, commands


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse *argv*; a bad argument exits with code 2 and the usage of the command it was given to."""
    parser, commands = _parsers()
    given = list(sys.argv[1:] if argv is None else argv)
    if given and not given[0].startswith("-") and given[0] not in commands:  # a misspelt command
        import difflib

        close = difflib.get_close_matches(given[0], list(commands), n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else f"choose from {', '.join(commands)}"
        parser.error(f"unknown command '{one_line(given[0])[:60]}' ({hint})")
    args, extra = parser.parse_known_args(given)
    command = commands[args.command]
    if extra:
        command.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "query" and not args.text and not args.image:
        command.error("give a text query, --image FILE, or both")
    if args.command == "ingest" and args.no_ocr and args.ocr_all:
        command.error("--no-ocr and --ocr-all contradict each other; give one")
    if args.command in ("finetune", "reindex"):
        if args.url:
            command.error(f"{args.command} works on an index folder (--index), not on a Qdrant server (--url)")
        if args.keyword_only:
            command.error(f"{args.command} needs a model; --keyword-only does not apply")
    if args.command == "finetune":
        if not args.out and not args.dump_pairs:
            command.error("give --out DIR for the fine-tuned model (or --dump-pairs FILE to only write the pairs)")
        if args.pairs and (args.ocr_text or args.no_context):
            command.error("--ocr-text and --no-context apply to --from-index")
        if args.precision == "fp16":
            command.error("finetune trains in fp32 or under bf16 autocast: --precision auto, fp32 or bf16")
    if args.command == "reindex" and not args.model:
        command.error("give the model to re-embed the index with: --model NAME (hf-hub:org/repo, local-dir:DIR)")
    return args


def _open(args: argparse.Namespace, err: TextIO, *, create: bool = False):
    """The pipeline over ``--index``; only ``ingest`` creates an index (``create=True``)."""
    from .pipeline import MultiModalRAG

    rag = MultiModalRAG(
        args.index,
        model_name=args.model,
        pretrained=args.pretrained,
        checkpoint=args.checkpoint,
        device=args.device,
        precision=args.precision,
        url=args.url,
        api_key=args.qdrant_api_key,
        collection=args.collection,
        keyword_only=args.keyword_only,
        create=create,
        show_progress=_progress(args),
        quantization=args.quantization,
        blobs=getattr(args, "blobs", None),
        text_model=args.text_model,
        clip_windows=None if args.clip_windows is None else {"max_windows": args.clip_windows},
    )
    if rag.notice:
        print(f"note: {one_line(rag.notice)}", file=err)
    return rag


def _hit_json(rank: int, hit: Hit) -> dict[str, Any]:
    c = hit.chunk
    out: dict[str, Any] = {
        "rank": rank,
        "id": c.id,
        "kind": c.kind,
        "source": c.source,
        "page": c.page,
        "score": round(hit.score, 6),
        "found_by": {name: {"rank": r, "score": round(hit.list_scores.get(name, math.nan), 6)} for name, r in hit.ranks.items()},
        "text": c.text[:500],
    }
    if c.kind == "image":
        out["image_path"] = c.image_path
    return out


def _print_hits(hits: list[Hit], out: TextIO) -> None:
    if not hits:
        print("no results", file=out)
    for i, hit in enumerate(hits, 1):
        c = hit.chunk
        where = one_line(c.source) + (f" p.{c.page}" if c.page else "")
        found = ", ".join(f"{name} #{r}" for name, r in sorted(hit.ranks.items(), key=lambda kv: kv[1]))
        print(f"{i}. [{c.kind}] {where}  score {hit.score:.4f}  ({found})", file=out)
        if c.kind == "image":
            print(f"   image: {one_line(c.image_path)}", file=out)
        snippet = " ".join(c.text.split())[:160]
        if snippet:
            print(f"   {snippet}", file=out)


def _truncation_line(summary: Any) -> str:
    head = (
        f"{summary.truncated_texts} of {summary.embedded_texts} text chunks longer than the model's "
        f"{summary.context_length}-token context: "
    )
    if summary.clip_windows:
        return head + "covered by the index's CLIP windows (up to their limit; BM25 sees the rest)"
    return head + "dense search sees their start only; see --clip-windows"


def _cmd_ingest(args, out, err) -> int:
    with _open(args, err, create=True) as rag:
        options: dict[str, bool] = {"ocr": False} if args.no_ocr else {}
        if args.ocr_all:
            options["ocr_gate"] = False
        summary = rag.ingest(
            args.paths, workers=args.workers, timeout=args.timeout, prune=args.prune,
            follow_symlinks=args.follow_symlinks, **options,
        )
        rows = [
            ("files read", f"{summary.files} ({summary.partial_files} in part: see the errors)" if summary.partial_files else summary.files),
            ("files unchanged", summary.unchanged_files),
            ("text chunks", summary.texts),
            ("images", summary.images),
            ("duplicate images", summary.duplicate_images),
            *([("images OCR'd", summary.ocr_read), ("no text, no OCR", summary.ocr_skipped)]
              if summary.ocr_read or summary.ocr_skipped else []),
            ("added to index", summary.added),
            ("already indexed", summary.unchanged),
            ("replaced (stale)", summary.deleted),
            *([("files pruned", summary.pruned)] if args.prune else []),
            ("errors", len(summary.errors)),
        ]
        width = max(len(name) for name, _ in rows)
        print(f"index: {one_line(rag.index_dir)} ({rag.index.engine}, {len(rag.index)} items, model: {rag.info()['model'] or 'none: keyword-only'})", file=out)
        for name, value in rows:
            print(f"  {name:<{width}}  {value}", file=out)
        if summary.truncated_texts:
            print(f"  {_truncation_line(summary)}", file=out)
        for e in summary.errors[:_MAX_ERRORS_SHOWN]:
            print(f"  error: {one_line(e.source)}: {one_line(e.error)}", file=out)
        if len(summary.errors) > _MAX_ERRORS_SHOWN:
            print(f"  ... and {len(summary.errors) - _MAX_ERRORS_SHOWN} more errors (-v logs every one)", file=out)
        if not summary.ok and not summary.pruned:  # a sync that only pruned did what was asked
            why = "every file failed (see the errors above)" if summary.errors else (
                f"no files found in {', '.join(map(one_line, args.paths))}"
            )
            print(f"nothing could be ingested: {why}", file=err)
            return 1
        return 0


def _cmd_query(args, out, err) -> int:
    with _open(args, err) as rag:
        hits = rag.search(args.text, image=args.image, k=args.k)
        if args.json:
            json.dump([_hit_json(i, h) for i, h in enumerate(hits, 1)], out, indent=2)
            print(file=out)
        else:
            _print_hits(hits, out)
    return 0


def _cmd_ask(args, out, err) -> int:
    with _open(args, err) as rag:
        ans = rag.ask(args.question, k=args.k, image=args.image)
        if args.json:
            json.dump(
                {
                    "answer": ans.text,
                    "generated": ans.generated,
                    "model": ans.model,
                    "citations": [{"number": c.number, "source": c.source, "page": c.page} for c in ans.citations],
                    "sources": [_hit_json(i, h) for i, h in enumerate(ans.sources, 1)],
                },
                out,
                indent=2,
            )
            print(file=out)
            return 0
        if not ans.generated:
            print("[extractive answer: no generator was used; set GOOGLE_API_KEY for a written answer]\n", file=out)
        print(ans.text, file=out)
        if ans.citations:  # the sources the answer cites, by their numbers in it (--json lists all retrieved)
            print("\nsources:", file=out)
            for cited in sorted(ans.citations, key=lambda c: c.number):
                c = cited.hit.chunk
                ref = c.image_path if c.kind == "image" else c.source
                print(f"  [{cited.number}] {c.kind}: {one_line(ref)}" + (f" (page {c.page})" if c.page else ""), file=out)
        elif ans.sources:
            print(f"\n(the answer cites none of the {len(ans.sources)} retrieved sources; --json lists them)", file=out)
    return 0


def _relevant(hit: Hit, wanted: str) -> bool:
    c = hit.chunk
    if wanted == c.id:
        return True
    src = c.source.replace("\\", "/")
    return src == wanted or src.endswith("/" + wanted.lstrip("./")) or Path(c.source).name == wanted


def _metrics(ranked: list[Hit], relevant: list[str], k: int) -> tuple[float, float, float]:
    from .evaluation import ranking_metrics  # shared with the fine-tuning report

    m = ranking_metrics(ranked, relevant, k, _relevant)
    return m.recall, m.mrr, m.ndcg


def _cmd_eval(args, out, err) -> int:
    from .evaluation import load_queries
    from .retrievers import FusedRetriever

    queries = load_queries(args.qrels)  # a bad line: InvalidInputError naming the file and the line
    with _open(args, err) as rag:
        modes = {"bm25": {"dense_text": 0.0, "dense_image": 0.0}}
        if not rag.keyword_only:
            modes = {"dense": {"bm25": 0.0}, **modes, "fused": {}}
        results: dict[str, dict[str, float]] = {}
        dedupe = not args.no_dedupe
        dropped: dict[str, int] = {}
        for mode, weights in modes.items():
            retriever = FusedRetriever(rag.index, rag.embedder, weights=weights, dedupe=dedupe)
            raw = FusedRetriever(rag.index, rag.embedder, weights=weights, dedupe=False) if dedupe else None
            scores = []
            dropped[mode] = 0
            for q, rel in queries:
                hits = retriever.retrieve(q, k=args.k)
                scores.append(_metrics(hits, rel, args.k))
                if raw is not None:  # dedupe only removes: a top-k hit missing from the deduped top k was dropped
                    kept = {h.id for h in hits}
                    dropped[mode] += sum(1 for h in raw.retrieve(q, k=args.k) if h.id not in kept)
            results[mode] = {
                f"recall@{args.k}": sum(s[0] for s in scores) / len(scores),
                "mrr": sum(s[1] for s in scores) / len(scores),
                f"ndcg@{args.k}": sum(s[2] for s in scores) / len(scores),
            }
        if args.json:
            report = {"queries": len(queries), "k": args.k, "dedupe": dedupe, "results": results}
            if dedupe:
                report["near_duplicates_dropped"] = dropped
            json.dump(report, out, indent=2)
            print(file=out)
            return 0
        names = list(next(iter(results.values())))
        print(f"{len(queries)} queries, k={args.k}", file=out)
        print(f"{'mode':<8}" + "".join(f"{n:>12}" for n in names), file=out)
        for mode, row in results.items():
            print(f"{mode:<8}" + "".join(f"{row[n]:>12.3f}" for n in names), file=out)
        if dedupe:
            per_mode = ", ".join(f"{mode} {n}" for mode, n in dropped.items())
            print(f"near-duplicate removal dropped {sum(dropped.values())} hits from the top {args.k} ({per_mode}); "
                  "--no-dedupe keeps them", file=out)
        else:
            print("near-duplicate removal off (--no-dedupe)", file=out)
    return 0


def _cmd_delete(args, out, err) -> int:
    with _open(args, err) as rag:
        res = rag.delete(args.sources)
        for s in res.sources:
            print(f"deleted: {one_line(s)}", file=out)
        for s in res.not_found:
            print(f"not in the index: {one_line(s)}", file=err)
        print(f"{len(res.sources)} files, {res.deleted_points} points deleted; {len(rag.index)} items left", file=out)
    return 0 if not res.not_found else 1


def _cmd_copy(args, out, err) -> int:
    with _open(args, err) as rag:
        target = rag.copy_to(
            args.to_url, path=args.to_path, api_key=args.to_api_key, collection=args.to_collection,
            show_progress=_progress(args), blobs=args.to_blobs,
        )
        with target:
            print(f"copied {len(target)} items to {one_line(target.where)} (model: {rag.info()['model'] or 'none: keyword-only'})", file=out)
    return 0


def _cmd_verify(args, out, err) -> int:
    from .pipeline import MultiModalRAG

    # no model is needed to check an index: open it for keyword search
    with MultiModalRAG(
        args.index, keyword_only=True, create=False, url=args.url, api_key=args.qdrant_api_key,
        collection=args.collection, show_progress=False,
    ) as rag:
        problems = rag.index.verify()
        for p in problems[:50]:
            print(f"problem: {one_line(p)}", file=out)
        if len(problems) > 50:
            print(f"... and {len(problems) - 50} more problems", file=out)
        verdict = "damaged" if problems else "ok"
        print(f"{verdict}: {len(rag.index)} items checked in {one_line(rag.index.where)}", file=out)
    return 1 if problems else 0


def _cmd_info(args, out, err) -> int:
    from .retrievers import MultiModalIndex
    from .retrievers._lock import IndexInUseError
    from .retrievers.manifest import describe_model

    # what the index holds and its manifest say it all: the model is named, never loaded
    remote = dict(url=args.url, api_key=args.qdrant_api_key, collection=args.collection) if args.url else {}
    try:
        index = MultiModalIndex(args.index, keyword_only=True, create=False, show_progress=False, **remote)
    except IndexInUseError as exc:  # another process holds it: its manifest still answers
        return _info_from_manifest(args, exc.holder, out)
    with index:
        dense = not index.keyword_only
        info: dict[str, Any] = {
            "index_dir": str(index.path),
            "engine": index.engine,
            "items": len(index),
            "texts": index.count("text"),
            "images": index.count("image"),
            "model": describe_model(index.model) if dense else None,
            "dim": index.dim,
            "keyword_only": index.keyword_only,
            "quantization": index.quantization if dense else None,
            "search": "dense + keyword" if dense and not args.keyword_only else "keyword-only",
            "blobs": index.blobs,
        }
        if args.json:
            info["model_identity"] = index.model
            json.dump(info, out, indent=2)
            print(file=out)
            return 0
    for key, value in info.items():
        print(f"{key:<13} {one_line(value)}", file=out)
    return 0


def _info_from_manifest(args: argparse.Namespace, holder: str, out: TextIO) -> int:
    """``info`` of an index another process holds: what its manifest records (items as of its
    last completed write; texts and images are counted only by opening the index)."""
    from .retrievers.manifest import describe_model, read_folder_manifest

    folder = Path(os.path.abspath(Path(args.index).expanduser()))
    manifest = read_folder_manifest(folder)
    dense = not manifest["keyword_only"]
    info: dict[str, Any] = {
        "index_dir": str(folder),
        "engine": "qdrant-edge",
        "items": manifest.get("points", 0),
        "texts": None,
        "images": None,
        "model": describe_model(manifest["model"]) if dense else None,
        "dim": manifest["dim"],
        "keyword_only": manifest["keyword_only"],
        "quantization": None,
        "search": "dense + keyword" if dense and not args.keyword_only else "keyword-only",
        "blobs": manifest.get("blobs"),
        "held_by": holder,
    }
    if args.json:
        info["model_identity"] = manifest["model"]
        json.dump(info, out, indent=2)
        print(file=out)
        return 0
    info["texts"] = info["images"] = info["quantization"] = "unknown while the index is in use"
    info["items"] = f"{info['items']} (from the manifest: the index is in use)"
    for key, value in info.items():
        print(f"{key:<13} {one_line(value)}", file=out)
    return 0


def _finetune_base(args: argparse.Namespace) -> Any:
    """The model to fine-tune: --model ... or $MM_RAG_MODEL ...; with --from-index, else the index's own."""
    from .embeddings.open_clip import ENV_CHECKPOINT, ENV_MODEL, ENV_PRETRAINED, OpenCLIPEmbedder

    named = any((args.model, args.pretrained, args.checkpoint)) or any(
        os.environ.get(v) for v in (ENV_MODEL, ENV_PRETRAINED, ENV_CHECKPOINT)
    )
    if args.from_index and not named:
        from .retrievers import MultiModalIndex
        from .retrievers.manifest import load_model

        with MultiModalIndex(args.index, keyword_only=True, create=False) as index:
            identity = index.model
        # fp32 weights: a base loaded in bf16 would train from rounded weights (--precision is the training autocast)
        if identity:
            return load_model(identity, device=args.device, precision="fp32", text_tower=False)
    return OpenCLIPEmbedder(args.model, args.pretrained, checkpoint=args.checkpoint, device=args.device, precision="fp32")


def _cmd_finetune(args, out, err) -> int:
    from .errors import ConfigurationError
    from .finetune import WorseModelError, dump_pairs, finetune, load_pairs, pairs_from_index
    from .finetune.train import check_output, iter_report_lines
    from .retrievers.manifest import describe_model

    if args.out and not args.dump_pairs:
        check_output(args.out, args.resume)  # before the pairs are read and the model loads
    info = err if args.json else out  # --json: stdout holds the JSON report only
    if args.from_index:
        pairs = pairs_from_index(args.index, ocr_text=args.ocr_text, context=not args.no_context)
        where = f"the index {os.path.abspath(args.index)}"
    else:
        pairs = load_pairs(args.pairs)
        where = args.pairs
    origins: dict[str, int] = {}
    for pair in pairs:
        origins[pair.origin] = origins.get(pair.origin, 0) + 1
    print(f"pairs: {len(pairs)} from {one_line(where)}" + (f" ({', '.join(f'{k} {v}' for k, v in origins.items())})" if pairs else ""), file=info)
    if not pairs:
        raise ConfigurationError(
            "no pairs: the index's images have no caption, alt text or text next to them"
            + ("" if args.ocr_text else " (--ocr-text also pairs them with their OCR text)")
        )
    if args.dump_pairs:
        n = dump_pairs(pairs, args.dump_pairs)
        dumped = one_line(args.dump_pairs)
        print(f"wrote {n} pairs to {dumped}; train on them with --pairs {dumped}", file=info)
        return 0
    base = _finetune_base(args)
    print(f"base model: {describe_model({'name': base.model_name, 'pretrained': base.pretrained, 'dim': base.dim})}", file=info)
    try:
        report = finetune(
            base, pairs, args.out, loss=args.loss, train=args.train, blocks=args.blocks, freeze=args.freeze, lr=args.lr,
            epochs=args.epochs, max_steps=args.max_steps, batch_size=args.batch_size, seed=args.seed,
            holdout=args.holdout, precision=args.precision or "auto", save_every=args.save_every, resume=args.resume,
            force=args.force, show_progress=_progress(args),
        )
    except WorseModelError as exc:
        if args.json:
            json.dump({"saved": False, "error": str(exc), **_report_json(exc.report)}, out, indent=2)
            print(file=out)
        else:
            for line in iter_report_lines(exc.report):
                print(line, file=out)
        print(f"mm-rag finetune: {one_line(exc)}", file=err)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted: continue from the last checkpoint with the same command and --resume "
              f"({one_line(os.path.join(os.path.abspath(args.out), 'checkpoint'))})", file=err)
        return 130
    if args.json:
        json.dump(_report_json(report), out, indent=2)
        print(file=out)
        return 0
    print(
        f"trained {report.trainable_params:,} of {report.total_params:,} parameters (--train {args.train}), loss "
        f"{report.loss}, {report.steps} steps on {report.device} {report.precision}"
        + (f" (resumed at step {report.resumed_at})" if report.resumed_at else "")
        + f", {report.pairs_per_second:.1f} pairs/s",
        file=out,
    )
    for line in iter_report_lines(report):
        print(line, file=out)
    if report.forced:
        print("saved although it scores worse than the base model (--force)", file=err)
    saved = one_line(report.out_dir)
    print(f"saved: {saved} (load it with --model local-dir:{saved})", file=out)
    print(f"re-embed an index with it: mm-rag reindex --index {one_line(args.index)} --model local-dir:{saved}", file=out)
    return 0


def _report_json(report: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return asdict(report)


def _cmd_reindex(args, out, err) -> int:
    from .embeddings.open_clip import OpenCLIPEmbedder
    from .finetune.reindexing import check_reindex_target, reindex, reindex_folders

    check_reindex_target(args.index)  # before the model loads
    embedder: Any = OpenCLIPEmbedder(
        args.model, args.pretrained, checkpoint=args.checkpoint, device=args.device, precision=args.precision or "auto"
    )
    try:
        rep = reindex(
            args.index, embedder, batch_size=args.batch_size, keep_old=args.keep_old,
            skip_unreadable=args.skip_unreadable, show_progress=_progress(args),
        )
    except KeyboardInterrupt:
        work = reindex_folders(args.index)[1]
        print(f"interrupted: the index is unchanged; what was re-embedded is kept in {one_line(work)}; "
              "run the same command again to continue", file=err)
        return 130
    if rep.unchanged:
        print(f"{one_line(rep.index_dir)} already uses {one_line(rep.model)}: nothing to do", file=out)
        return 0
    resumed = rep.points - rep.embedded - len(rep.skipped)
    print(f"reindexed {one_line(rep.index_dir)}: {rep.points} items ({rep.texts} texts and {rep.images} images embedded"
          + (f", {resumed} from an interrupted run" if resumed > 0 else "") + f") in {rep.seconds:.1f} s", file=out)
    print(f"model: {one_line(rep.previous_model)} -> {one_line(rep.model)}", file=out)
    for s in rep.skipped[:_MAX_ERRORS_SHOWN]:
        print(f"  left out: {one_line(s)}", file=out)
    if rep.kept_old:
        print(f"the old index is kept in {one_line(rep.kept_old)}", file=out)
    return 0


_COMMANDS = {
    "ingest": _cmd_ingest, "query": _cmd_query, "ask": _cmd_ask, "eval": _cmd_eval, "info": _cmd_info,
    "delete": _cmd_delete, "copy": _cmd_copy, "verify": _cmd_verify, "finetune": _cmd_finetune,
    "reindex": _cmd_reindex,
}


def _model_advice(exc: ModelLoadError) -> str:
    """A model that cannot be loaded, said for the command line: the short reason, cut at a whole
    sentence, and the options that fix it (not the Python API the library's message names)."""
    import re

    reason = str(exc.reason).strip()
    cut = re.search(r"\.\.\.<\d+ chars>$", reason)
    if cut:  # echo()'s repr, cut mid-sentence: keep the whole sentences (or clauses) before the cut
        reason = reason[: cut.start()]
        end = max(reason.rfind(". "), reason.rfind("; "), reason.rfind(": "))
        reason = reason[:end] if end > 0 else reason
    reason = reason.replace('"', "").replace("'", "").rstrip(" .:;")
    if exc.model == "text":
        return (
            f"could not load the text model ({reason}); to use a model copied to this machine: --text-model FOLDER "
            "(a sentence-transformers folder)"
        )
    built = re.search(r"The index was built with [^:]*", str(exc))
    fix = (
        f"{built.group(0)}: unset $MM_RAG_MODEL / --model to load it, or "
        if built else "to use weights copied to this machine: --model local-dir:DIR (a folder with open_clip_config.json "
        "and the weights) or --checkpoint FILE (with --model NAME, its architecture), or "
    )
    return f"could not load the model ({reason}); {fix}--keyword-only for keyword search without a model"


def _progress(args: argparse.Namespace) -> bool:
    """Progress bars (tqdm, on standard error) only on a terminal: in a pipe or a log file their
    carriage returns and cursor moves would be noise."""
    try:
        return not args.quiet and sys.stderr.isatty()
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 1 error, 2 bad arguments, 3 no model, 130 interrupted).

    Output cut short by a closed pipe (``mm-rag query ... | head``) ends the command quietly with
    exit code 1, as Python's own tools do: no traceback, no error at interpreter exit."""
    try:
        try:
            return _main(argv, out, err)
        finally:  # a closed pipe shows up here, not as "Exception ignored" at interpreter exit
            (out or sys.stdout).flush()
    except BrokenPipeError:
        if out is None:  # the rest goes nowhere: Python's final flush of stdout must not fail again
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
            except (OSError, ValueError, AttributeError):  # a stdout without a file descriptor
                pass
        return 1


class _LogFormatter(logging.Formatter):
    """``--verbose`` logs: each record's message on one line (a name in it cannot start a line of
    its own), its traceback after it; the reader processes' records come here too."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return one_line(super().formatMessage(record))


def _main(argv: Sequence[str] | None, out_stream: TextIO | None, err_stream: TextIO | None) -> int:
    args = _parse(argv)
    # everything printed is terminal-safe (text and names come from files) and free of secrets,
    # tracebacks and logs included; --json output is exact either way (json.dump escapes)
    secrets = [os.environ.get(v, "") for v in _SECRET_VARS]
    secrets += [getattr(args, a, None) or "" for a in ("qdrant_api_key", "to_api_key")]
    out, err = SafeStream(out_stream or sys.stdout, secrets), SafeStream(err_stream or sys.stderr, secrets)
    if args.verbose:
        handler = logging.StreamHandler(err)
        handler.setFormatter(_LogFormatter("%(levelname)s %(name)s: %(message)s"))
        logging.basicConfig(level=logging.INFO, handlers=[handler])
    else:  # the CLI prints what matters itself; library logs would repeat it
        logging.disable(logging.ERROR)
    try:
        return _COMMANDS[args.command](args, out, err)
    except BrokenPipeError:
        raise  # stdout was closed (| head): main() ends quietly
    except KeyboardInterrupt:
        print("interrupted: everything committed before the interruption is kept in the index", file=err)
        return 130
    except (MMRagError, OSError) as exc:
        if args.verbose:
            traceback.print_exc(file=err)
        message = _model_advice(exc) if isinstance(exc, ModelLoadError) else str(exc)
        print(f"mm-rag {args.command}: error: {one_line(message)}", file=err)
        return 3 if isinstance(exc, ModelLoadError) else 1
    finally:
        if not args.verbose:
            logging.disable(logging.NOTSET)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
