"""Ingest and the index folder, end to end: read-only commands create nothing, the index's own model,
unchanged files skipped, prune/delete, duplicate files, images that follow the index, bounded
memory, a killed ingest, one process at a time, and copies."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from mm_rag_plugin import MultiModalRAG

from .._cli import run

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"
SRC = str(ROOT / "src")




def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.pop("GOOGLE_API_KEY", None)
    env.pop("GEMINI_API_KEY", None)
    return env


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def write_docs(folder: Path, texts: dict[str, str]) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, text in texts.items():
        (folder / name).write_text(text, encoding="utf-8")
        out[name] = (folder / name).absolute()
    return out


#: Short documents, one chunk each, every one with its own rare word.
DOCS = {
    "alpha.md": "# Alpha\n\nThe zanzibar inverter reports fault E-101 when the fuse blows.",
    "beta.md": "# Beta\n\nClean the quokka panels with deionised water in the morning.",
    "gamma.txt": "Gamma notes: the narwhal battery charges to 90 percent overnight.",
    "delta.md": "# Delta\n\nThe meter exports surplus to the grid on the pangolin tariff.",
}


def texts_of(rag: MultiModalRAG) -> list[str]:
    return [p.payload.get("text", "") for batch in rag.index.scan() for p in batch]


def ids_of(index: Path) -> list[str]:
    with MultiModalRAG(index, keyword_only=True, create=False, show_progress=False) as rag:
        return sorted(p.id for batch in rag.index.scan() for p in batch)




# ---------------------------------------------------------------------------- read-only commands
def test_read_only_commands_create_nothing(model_env: str, tmp_path: Path) -> None:
    docs = write_docs(tmp_path / "docs", {"alpha.md": DOCS["alpha.md"]})
    real = tmp_path / "work" / ".mm_rag"
    assert run("ingest", str(tmp_path / "docs"), "--index", str(real), "-q")[0] == 0
    qrels = tmp_path / "q.jsonl"
    qrels.write_text(json.dumps({"query": "zanzibar", "relevant": ["alpha.md"]}) + "\n")
    before = tree(tmp_path)

    missing = tmp_path / "nowhere" / "deeper" / "ix"
    typo = tmp_path / "work" / ".mm-rag"  # next to the real index
    commands = [
        ("query", "zanzibar"),
        ("ask", "What does fault E-101 mean?"),
        ("info",),
        ("eval", str(qrels)),
        ("delete", str(docs["alpha.md"])),
        ("copy", "--to-path", str(tmp_path / "copied")),
    ]
    for path in (missing, typo):
        for cmd in commands:
            for extra in ((), ("--keyword-only",)):
                code, out, err = run(*cmd, "--index", str(path), *extra)
                assert code == 1, (cmd, extra, out, err)
                assert str(path) in err and "Traceback" not in err, (cmd, err)
                assert not path.exists(), (cmd, extra)
    assert tree(tmp_path) == before  # no index, lock, copy target or parent folder appeared anywhere

    empty = tmp_path / "empty"
    empty.mkdir()
    for extra in (("--keyword-only",), ()):
        code, _, err = run("info", "--index", str(empty), *extra)
        assert code == 1 and str(empty) in err
        assert list(empty.iterdir()) == []
    code, out, _ = run("info", "--index", str(real))  # the real index is still there, untouched
    assert code == 0 and "items         1" in out


# ---------------------------------------------------------------------------- the index's model
def test_an_index_loads_its_own_model_and_refuses_another(
    tiny_clip_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mm_rag_plugin.testing import make_tiny_clip

    model = tmp_path / "model-a"
    shutil.copytree(tiny_clip_dir, model)
    other = make_tiny_clip(tmp_path / "model-b", train_steps=5, seed=1)
    write_docs(tmp_path / "docs", DOCS)
    index = str(tmp_path / "ix")
    monkeypatch.setenv("MM_RAG_MODEL", f"local-dir:{model}")
    code, out, err = run("ingest", str(tmp_path / "docs"), "--index", index, "-q")
    assert code == 0, err

    monkeypatch.delenv("MM_RAG_MODEL")
    code, out, err = run("query", "zanzibar inverter", "--index", index, "--json")
    assert code == 0, err
    hits = json.loads(out)
    assert hits[0]["source"].endswith("alpha.md") and {"dense_text", "bm25"} <= set(hits[0]["found_by"])
    assert "note:" not in err
    code, out, _ = run("info", "--index", index)
    assert code == 0 and f"local-dir:{model.resolve()}" in out and "search        dense + keyword" in out

    code, out, err = run("query", "zanzibar", "--index", index, "--model", f"local-dir:{other}")
    assert code == 1 and not out
    assert str(model.resolve()) in err and str(other.resolve()) in err and "Traceback" not in err

    moved = tmp_path / "model-a-moved"
    model.rename(moved)
    code, out, err = run("query", "zanzibar", "--index", index)
    assert code == 3 and not out
    assert str(model.resolve()) in err and "--keyword-only" in err and "Traceback" not in err
    assert "note: keyword-only" not in err
    # the same weights in another folder are the same model (weights hash): naming them works
    code, out, err = run("query", "zanzibar", "--index", index, "--model", f"local-dir:{moved}", "--json")
    assert code == 0, err
    assert json.loads(out)[0]["source"].endswith("alpha.md")


# ---------------------------------------------------------------------------- unchanged, changed files
def test_unchanged_files_are_not_read_again_and_changed_ones_replace_their_chunks(
    embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import mm_rag_plugin.readers.loader as loader

    docs = write_docs(tmp_path / "docs", DOCS)
    reads: list[str] = []
    real_read = loader._safe_read

    def spy(path, config, cache):
        reads.append(Path(path).name)
        return real_read(path, config, cache)

    monkeypatch.setattr(loader, "_safe_read", spy)
    with MultiModalRAG(tmp_path / "ix", embedder=embedder, show_progress=False) as rag:
        first = rag.ingest(tmp_path / "docs", workers=0)
        assert (first.files, first.unchanged_files, first.added) == (4, 0, 4)
        assert sorted(reads) == sorted(DOCS)

        reads.clear()
        again = rag.ingest(tmp_path / "docs", workers=0)
        assert (again.files, again.unchanged_files, again.added, again.deleted) == (0, 4, 0, 0)
        assert reads == [] and len(rag.index) == 4

        beta = docs["beta.md"]
        st = beta.stat()
        os.utime(beta, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # touched, same bytes
        touched = rag.ingest(tmp_path / "docs", workers=0)
        assert (touched.files, touched.unchanged_files) == (0, 4) and reads == []
        registry = json.loads((tmp_path / "ix" / "sources.json").read_text())
        assert registry[str(beta)]["mtime_ns"] == st.st_mtime_ns + 5_000_000_000  # not hashed again next time

        beta.write_text("# Beta\n\nThe wombat string shows low insulation resistance after rain.")
        changed = rag.ingest(tmp_path / "docs", workers=0)
        assert reads == ["beta.md"]
        assert (changed.files, changed.unchanged_files, changed.added, changed.deleted) == (1, 3, 1, 1)
        assert len(rag.index) == 4
        texts = texts_of(rag)
        assert not any("quokka" in t for t in texts)
        assert sum("wombat" in t for t in texts) == 1
        assert len(rag.index.with_source(str(beta))) == 1
        hits = rag.search("wombat insulation", k=4)
        assert hits[0].chunk.source == str(beta) and "wombat" in hits[0].chunk.text
        assert all("quokka" not in h.chunk.text for h in hits)


# ---------------------------------------------------------------------------- prune and delete
def test_prune_and_delete_remove_the_points_of_files(model_env: str, tmp_path: Path) -> None:
    a = write_docs(tmp_path / "a", {k: DOCS[k] for k in ("alpha.md", "beta.md", "gamma.txt")})
    b = write_docs(tmp_path / "b", {"delta.md": DOCS["delta.md"]})
    index = str(tmp_path / "ix")
    assert run("ingest", str(tmp_path / "a"), str(tmp_path / "b"), "--index", index, "-q")[0] == 0

    def items() -> int:
        with MultiModalRAG(index, keyword_only=True, create=False, show_progress=False) as rag:
            return len(rag.index)

    def found(word: str) -> bool:
        _, out, _ = run("query", word, "--index", index, "--json", "--k", "10", "--keyword-only")
        return any(word in h["text"] for h in json.loads(out))

    assert items() == 4 and found("narwhal") and found("pangolin")
    a["gamma.txt"].unlink()
    b["delta.md"].unlink()
    code, out, _ = run("ingest", str(tmp_path / "a"), "--index", index, "-q")  # no --prune: kept
    assert code == 0 and "files unchanged   2" in out and items() == 4
    code, out, _ = run("ingest", str(tmp_path / "a"), "--index", index, "-q", "--prune")
    assert code == 0 and "files pruned      1" in out  # only under the folder given: b/delta.md stays
    assert items() == 3 and not found("narwhal") and found("pangolin")
    code, out, _ = run("ingest", str(tmp_path / "b"), "--index", index, "-q", "--prune")
    assert code == 0 and "files pruned      1" in out and items() == 2 and not found("pangolin")

    code, out, err = run("delete", str(a["alpha.md"]), "--index", index)
    assert code == 0, err
    assert f"deleted: {a['alpha.md']}" in out and "1 files, 1 points deleted; 1 items left" in out
    assert items() == 1 and not found("zanzibar") and found("quokka")
    code, out, err = run("delete", str(a["alpha.md"]), str(tmp_path / "a" / "never.md"), "--index", index)
    assert code == 1 and "not in the index" in err and "never.md" in err and items() == 1

    code, out, _ = run("ingest", str(tmp_path / "a"), "--index", index, "-q")  # deleted files are read again
    assert code == 0 and "files read        1" in out and "files unchanged   1" in out
    assert items() == 2 and found("zanzibar")


# ---------------------------------------------------------------------------- duplicate files
def test_the_same_file_at_two_paths_is_stored_once(embedder, tmp_path: Path) -> None:
    text = "# Report\n\nThe axolotl inverter tripped twice.\n\n" + "Filler sentence about the roof. " * 60
    one = write_docs(tmp_path / "docs" / "x", {"report.md": text})["report.md"]
    two = write_docs(tmp_path / "docs" / "y", {"copy.md": text})["copy.md"]
    with MultiModalRAG(tmp_path / "single", embedder=embedder, show_progress=False) as rag:
        per_file = rag.ingest(one, workers=0).added
    assert per_file >= 2
    with MultiModalRAG(tmp_path / "ix", embedder=embedder, show_progress=False) as rag:
        summary = rag.ingest(tmp_path / "docs", workers=0)
        assert summary.files == 2 and len(rag.index) == per_file
        for path in (one, two):
            hits = rag.search("axolotl inverter", k=3, filters={"source": str(path)})
            assert hits and "axolotl" in hits[0].chunk.text
        assert rag.search("axolotl", k=3, filters={"source": str(tmp_path / "elsewhere.md")}) == []

        res = rag.delete([one])
        assert res.sources == (str(one),) and res.deleted_points == 0 and len(rag.index) == per_file
        assert rag.search("axolotl", k=3, filters={"source": str(one)}) == []
        hits = rag.search("axolotl", k=3, filters={"source": str(two)})
        assert hits and "axolotl" in hits[0].chunk.text
        res = rag.delete([two])
        assert res.deleted_points == per_file and len(rag.index) == 0


# ---------------------------------------------------------------------------- images follow the index
def test_pdf_images_resolve_from_another_cwd_and_after_the_index_moves(
    model_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "docs").mkdir()
    shutil.copy(SAMPLES / "solar_report.pdf", tmp_path / "docs")
    monkeypatch.chdir(tmp_path)
    code, out, err = run("ingest", "docs", "--index", "ix", "-q", "--no-ocr")  # relative paths
    assert code == 0 and "images            1" in out, (out, err)

    def image_paths(index: str) -> list[str]:
        code, out, err = run("query", "monthly solar output chart", "--index", index, "--json", "--k", "10")
        assert code == 0, err
        return [h["image_path"] for h in json.loads(out) if h["kind"] == "image"]

    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    paths = image_paths("../ix")
    assert len(paths) == 1
    assert Path(paths[0]).is_absolute() and Path(paths[0]).is_file()
    assert Path(paths[0]).resolve().is_relative_to((tmp_path / "ix" / "blobs").resolve())

    shutil.move(tmp_path / "ix", tmp_path / "moved" / "ix2")
    paths = image_paths(str(tmp_path / "moved" / "ix2"))
    assert len(paths) == 1 and Path(paths[0]).is_file()
    assert Path(paths[0]).resolve().is_relative_to((tmp_path / "moved" / "ix2" / "blobs").resolve())


# ---------------------------------------------------------------------------- bounded memory
_MEASURE = r"""
import json, resource, sys
from mm_rag_plugin.cli import main
code = main(sys.argv[1:])
print("MEASURE " + json.dumps({"code": code, "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def _pages(folder: Path, files: int, pages_per_file: int, vocab: list[str]) -> None:
    rng = random.Random(files)
    folder.mkdir(parents=True)
    for i in range(files):
        pages = [f"## Page {p}\n\n" + " ".join(rng.choice(vocab) for _ in range(400)) for p in range(pages_per_file)]
        (folder / f"doc{i:04d}.md").write_text(f"# Document {i}\n\n" + "\n\n".join(pages))


@pytest.mark.slow
def test_ingest_memory_does_not_grow_with_the_corpus(model_env: str, tmp_path: Path) -> None:
    rng = random.Random(0)
    syllables = ["so", "lar", "pa", "nel", "in", "ver", "ter", "grid", "volt", "ca", "ble", "bat", "me", "ro"]
    vocab = sorted({"".join(rng.choice(syllables) for _ in range(3)) for _ in range(400)})
    _pages(tmp_path / "small", 2, 10, vocab)  # 20 pages
    _pages(tmp_path / "large", 40, 10, vocab)  # 400 pages, read file by file
    stats = {}
    for name in ("small", "large"):
        proc = subprocess.run(
            [sys.executable, "-c", _MEASURE, "ingest", str(tmp_path / name), "--index", str(tmp_path / f"ix-{name}"),
             "--workers", "0", "--no-ocr", "-q"],
            capture_output=True, text=True, env=child_env(), timeout=240,
        )
        line = next((x for x in proc.stdout.splitlines() if x.startswith("MEASURE ")), None)
        assert line, proc.stdout[-2000:] + proc.stderr[-2000:]
        stats[name] = json.loads(line[len("MEASURE "):])
        assert stats[name]["code"] == 0
        assert f"files read        {2 if name == 'small' else 40}" in proc.stdout
    small, large = stats["small"], stats["large"]
    assert large["maxrss_kb"] <= 1.5 * small["maxrss_kb"], stats


# ---------------------------------------------------------------------------- kill -9 mid-ingest
_SLOW_INGEST = r"""
import sys, time
import mm_rag_plugin.retrievers.index as ix
write = ix.MultiModalIndex.write_points
def slow(self, points):
    write(self, points)
    print("committed", len(points), flush=True)
    time.sleep(0.4)  # after the commit: the parent kills us between batches
ix.MultiModalIndex.write_points = slow
from mm_rag_plugin.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_an_ingest_killed_mid_way_is_finished_by_running_it_again(model_env: str, tmp_path: Path) -> None:
    rng = random.Random(1)
    words = [f"{a}{b}" for a in ("sol", "vol", "gri", "pan", "inv") for b in ("ar", "ex", "um", "is", "or")]
    docs = {f"note{i:02d}.md": f"# Note {i}\n\n" + " ".join(rng.choice(words) for _ in range(300)) for i in range(50)}
    write_docs(tmp_path / "docs", docs)
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-c", _SLOW_INGEST, "ingest", str(tmp_path / "docs"), "--index", str(killed),
         "--workers", "0", "--no-ocr", "-q"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=child_env(),
    )
    try:
        line = proc.stdout.readline().decode()  # a batch was written (durable once write_points returns)
        assert line.startswith("committed"), proc.communicate()
        points = int(line.split()[1])
        assert proc.poll() is None and points > 0
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == -signal.SIGKILL

    code, out, err = run("ingest", str(tmp_path / "docs"), "--index", str(killed), "-q", "--workers", "0")
    assert code == 0, err
    assert "files read        50" in out  # the killed run never recorded its files as done
    assert f"already indexed   {points}" in out or int(out.split("already indexed")[1].split()[0]) >= points
    clean = tmp_path / "clean"
    assert run("ingest", str(tmp_path / "docs"), "--index", str(clean), "-q", "--workers", "0")[0] == 0
    after, expected = ids_of(killed), ids_of(clean)
    assert len(after) == len(set(after)) and after == expected  # same points, none twice
    with MultiModalRAG(killed, keyword_only=True, create=False, show_progress=False) as rag:
        texts = texts_of(rag)
        assert len(texts) == len(set(texts)) == len(expected)


# ---------------------------------------------------------------------------- one process at a time
_HOLD = r"""
import sys, time
from mm_rag_plugin import MultiModalRAG
rag = MultiModalRAG(sys.argv[1], create=False, show_progress=False)
print("ready", flush=True)
time.sleep(120)
"""


def test_a_second_process_is_told_who_holds_the_index(model_env: str, tmp_path: Path) -> None:
    write_docs(tmp_path / "docs", DOCS)
    index = tmp_path / "ix"
    assert run("ingest", str(tmp_path / "docs"), "--index", str(index), "-q")[0] == 0
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(index)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=child_env(),
    )
    try:
        line = holder.stdout.readline()  # type: ignore[union-attr]
        assert line.strip() == "ready", holder.stderr.read()  # type: ignore[union-attr]
        code, out, err = run("query", "zanzibar", "--index", str(index))
        assert code == 1 and not out
        assert f"in use by pid {holder.pid} (" in err and "Traceback" not in err
    finally:
        holder.kill()
        holder.communicate()
    code, out, err = run("query", "zanzibar", "--index", str(index), "--json")  # released when it died
    assert code == 0 and json.loads(out)[0]["source"].endswith("alpha.md"), err


# ---------------------------------------------------------------------------- copies
def test_a_copied_index_answers_like_the_original(model_env: str, tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    shutil.copy(SAMPLES / "solar_report.pdf", tmp_path / "docs")
    write_docs(tmp_path / "docs", DOCS)
    index, other = str(tmp_path / "ix"), tmp_path / "other"
    assert run("ingest", str(tmp_path / "docs"), "--index", index, "-q", "--no-ocr")[0] == 0
    code, out, err = run("copy", "--to-path", str(other), "--index", index, "-q")
    assert code == 0, err
    assert f"to {other}" in out
    for query in ("zanzibar inverter fault", "monthly solar output chart"):
        code, a, _ = run("query", query, "--index", index, "--json", "--k", "8")
        code2, b, err = run("query", query, "--index", str(other), "--json", "--k", "8")
        assert code == code2 == 0, err
        ha, hb = json.loads(a), json.loads(b)
        assert len(ha) == len(hb) >= 5
        assert [(h["id"], h["source"], h["score"]) for h in ha] == [(h["id"], h["source"], h["score"]) for h in hb]
        for h in hb:
            if h["kind"] == "image" and "/blobs/" in h["image_path"]:
                assert Path(h["image_path"]).is_relative_to(other) and Path(h["image_path"]).is_file()
    info_a, info_b = run("info", "--index", index)[1], run("info", "--index", str(other))[1]
    assert info_a.replace(index, "X") == info_b.replace(str(other), "X")


def test_changed_reader_options_re_read_the_files(embedder, tmp_path: Path) -> None:
    """The registry records the reader options that change what a file yields: an image ingested
    with OCR off gets its OCR text when ingested again with OCR on; the same options read nothing."""
    docs = tmp_path / "docs"
    write_docs(docs, {"alpha.md": DOCS["alpha.md"]})
    shutil.copy(SAMPLES / "inverter_fault.png", docs / "inverter_fault.png")

    def ocr_texts(rag: MultiModalRAG) -> list[str]:
        return [p.payload.get("ocr_text") or "" for batch in rag.index.scan() for p in batch if p.payload.get("kind") == "image"]

    with MultiModalRAG(tmp_path / "ix", embedder=embedder, show_progress=False) as rag:
        off = rag.ingest(docs, workers=0, ocr=False)
        assert (off.files, off.images) == (2, 1)
        assert ocr_texts(rag) == [""]
        registry = json.loads((tmp_path / "ix" / "sources.json").read_text())
        assert registry[str(docs / "inverter_fault.png")]["reader"] == {"ocr": False}

        on = rag.ingest(docs, workers=0)
        assert (on.files, on.unchanged_files) == (2, 0)
        (text,) = ocr_texts(rag)  # the image point without OCR text is replaced, not kept beside
        assert "E-217" in text
        assert "reader" not in json.loads((tmp_path / "ix" / "sources.json").read_text())[str(docs / "alpha.md")]

        same = rag.ingest(docs, workers=0)
        assert (same.files, same.unchanged_files, same.added, same.deleted) == (0, 2, 0, 0)

        rechunked = rag.ingest(docs, workers=0, chunk_size=400)
        assert (rechunked.files, rechunked.unchanged_files) == (2, 0)
        assert rag.ingest(docs, workers=0, chunk_size=400).files == 0


def test_an_index_inside_the_ingested_folder_is_not_read_as_documents(tmp_path: Path) -> None:
    """``mm-rag ingest . --index ix``: the index folder ``ix`` (and any other index folder met in
    the walk) is not read back as documents, run after run."""
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    with MultiModalRAG(docs / "other", keyword_only=True, show_progress=False) as other:
        other.ingest(docs / "alpha.md", workers=0)  # someone else's index among the documents
    for _ in range(2):
        with MultiModalRAG(docs / "ix", keyword_only=True, show_progress=False) as rag:
            summary = rag.ingest(docs, workers=0)
            sources = {Path(s).name for s in rag.index.sources()}
        assert summary.errors == (), summary.errors
        assert sources == set(DOCS)
