"""The index manifest and the guarantees around it: the model identity enforced on open,
``create=False``, old-format folders refused unread, bad vectors refused, damaged indexes reported,
the folder lock, content-shared points, images relative to the index, concurrent searches, and
copies between Qdrant Edge and a Qdrant server (``client=QdrantClient(location=":memory:")`` stands
in for one)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from qdrant_client import QdrantClient

from mm_rag_plugin.errors import ConfigurationError, InvalidInputError, StoreError
from mm_rag_plugin.ids import content_hash
from mm_rag_plugin.retrievers import FusedRetriever, MultiModalIndex
from mm_rag_plugin.retrievers.engine import ListQuery
from mm_rag_plugin.testing import draw_shape
from mm_rag_plugin.types import ImageChunk, TextChunk

TEXTS = [
    "A red circle drawn on white paper.",
    "Quarterly budget for the harbour office.",
    "The timetable of the ferry to Zanzibar.",
    "Notes about a blue square and a green triangle.",
    "Sourdough bread needs a long proof.",
]
QUERIES = ["a red circle", "budget harbour", "ferry timetable", "a blue square", "bread", "green triangle"]


def texts(source: str = "notes.txt") -> list[TextChunk]:
    return [TextChunk(id=f"t{i}", text=t, source=source, position=i) for i, t in enumerate(TEXTS)]


def shapes(folder: Path) -> list[ImageChunk]:
    """Three shape images saved in *folder* (outside any index)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for color, kind in [("red", "circle"), ("blue", "square"), ("green", "triangle")]:
        p = folder / f"{color}_{kind}.png"
        draw_shape(color, kind).save(p)
        out.append(ImageChunk(id=p.stem, source=str(p), image_path=str(p), content_hash=content_hash(p.read_bytes()),
                              caption=f"a {color} {kind}"))
    return out


def open_index(path=None, **kw) -> MultiModalIndex:
    return MultiModalIndex(path, show_progress=False, **kw)


def hit_ids(retriever: FusedRetriever, queries=QUERIES, **kw) -> list[list[tuple[str, float]]]:
    return [[(h.id, round(h.score, 9)) for h in retriever.retrieve(q, **kw)] for q in queries]


@pytest.fixture(scope="module")
def other_clip_dir(tmp_path_factory) -> Path:
    """Another tiny model of the same architecture and size: random weights from another seed."""
    from mm_rag_plugin.testing import make_tiny_clip

    return make_tiny_clip(tmp_path_factory.mktemp("other_clip"), train_steps=0, seed=1)


@pytest.fixture(scope="module")
def other_embedder(other_clip_dir):
    from mm_rag_plugin import OpenCLIPEmbedder

    return OpenCLIPEmbedder(f"local-dir:{other_clip_dir}", device="cpu", batch_size=8)


class Fixed:
    """An embedder of *dim*-d vectors (hash-seeded); ``zero`` texts get an all-zero vector."""

    def __init__(self, dim: int = 8, zero: tuple[str, ...] = ()) -> None:
        self.dim, self.zero = dim, zero

    def _vec(self, key: str) -> np.ndarray:
        if key in self.zero:
            return np.zeros(self.dim, np.float32)
        return np.random.default_rng(int(content_hash(key)[:8], 16)).normal(size=self.dim).astype(np.float32)

    def embed_texts(self, items):
        return np.stack([self._vec(t) for t in items])

    def embed_images(self, images, *, on_error="raise"):
        vecs = np.stack([self._vec(str(p)) for p in images])
        return SimpleNamespace(vectors=vecs, errors=()) if on_error == "collect" else vecs

    def embed_query(self, text=None, *, image=None):
        return self._vec(text or str(image))


# ---------------------------------------------------------------------- model identity
def test_model_identity_is_recorded_and_enforced(tmp_path, embedder, tiny_clip_dir, other_embedder, other_clip_dir):
    folder = tmp_path / "ix"
    with open_index(folder, embedder=embedder) as ix:
        assert ix.add(texts()).added == len(TEXTS)
        recorded = ix.model
    manifest_file = folder / "manifest.json"
    stored = json.loads(manifest_file.read_text())
    assert stored["model"] == recorded and stored["dim"] == 64 and stored["keyword_only"] is False
    assert recorded["name"] == f"local-dir:{tiny_clip_dir.resolve()}"
    assert len(recorded["weights"]["sha256"]) == 64
    before = manifest_file.read_bytes()

    # the same model: opens, adds, searches
    with open_index(folder, embedder=embedder) as ix:
        assert ix.add(texts("copy.txt"), replace_sources=False).unchanged == len(TEXTS)
        assert FusedRetriever(ix).retrieve("a red circle")

    # no model: the recorded identity is there to load it; add() needs it, a retriever loads it
    with open_index(folder) as ix:
        assert ix.model == recorded and ix.dim == 64 and len(ix) == len(TEXTS)
        with pytest.raises(ConfigurationError) as err:
            ix.add(texts("new.txt"))
        assert str(tiny_clip_dir.resolve()) in str(err.value)
        assert len(ix) == len(TEXTS)
        # searching with vectors computed elsewhere works without the model
        qv = embedder.embed_query("a red circle")
        (found,) = ix.search_lists([ListQuery("dense", 3, dense=qv)], ())
        assert len(found) == 3

    # another model of the same size: refused, naming both
    with pytest.raises(ConfigurationError) as err:
        open_index(folder, embedder=other_embedder)
    msg = str(err.value)
    assert str(tiny_clip_dir.resolve()) in msg and str(other_clip_dir.resolve()) in msg
    assert recorded["weights"]["sha256"][:12] in msg
    # a model of another size, and dim= disagreeing with the index
    with pytest.raises(ConfigurationError, match="64-d"):
        open_index(folder, embedder=Fixed(dim=8))
    with pytest.raises(ConfigurationError, match="64-d"):
        open_index(folder, dim=32)
    assert manifest_file.read_bytes() == before  # nothing rewritten by the refused opens
    with open_index(folder, embedder=embedder) as ix:  # and the lock was released each time
        assert len(ix) == len(TEXTS)


def test_keyword_only_index_and_keyword_search_of_a_dense_index(tmp_path, embedder):
    kw = tmp_path / "kw"
    with pytest.raises(ConfigurationError, match="keyword_only"):
        open_index(kw, embedder=embedder, keyword_only=True)
    assert not kw.exists()
    with open_index(kw, keyword_only=True) as ix:
        assert ix.keyword_only and ix.model is None and ix.dim is None
        assert ix.add(texts()).added == len(TEXTS)  # no model needed to add
        hits = FusedRetriever(ix).retrieve("ferry timetable")
        assert hits[0].chunk.text == TEXTS[2] and set(hits[0].ranks) == {"bm25"}
        assert ix.vectors([hits[0].id]) == {}
    manifest = json.loads((kw / "manifest.json").read_text())
    assert manifest["keyword_only"] is True and manifest["model"] is None and manifest["points"] == len(TEXTS)
    with pytest.raises(ConfigurationError, match="keyword-only"):
        open_index(kw, embedder=embedder)
    with open_index(kw) as ix:  # reopened without saying keyword_only: it is
        assert ix.keyword_only and FusedRetriever(ix).retrieve("sourdough bread")[0].chunk.text == TEXTS[4]

    dense = tmp_path / "dense"
    with open_index(dense, embedder=embedder) as ix:
        ix.add(texts())
    with open_index(dense, keyword_only=True) as ix:
        assert not ix.keyword_only and ix.keyword_search_only and ix.model is not None
        r = FusedRetriever(ix)  # no embedder: BM25 only
        hits = r.retrieve("ferry timetable")
        assert hits and hits[0].chunk.text == TEXTS[2]
        assert all(set(h.ranks) == {"bm25"} for h in hits)
        with pytest.raises(ConfigurationError):
            r.retrieve("ferry", image=str(tmp_path / "x.png"))
        with pytest.raises(ConfigurationError, match="model"):
            ix.add(texts("more.txt"))
        assert len(ix) == len(TEXTS)


# ---------------------------------------------------------------------- create=False, old formats
def test_create_false_creates_nothing(tmp_path):
    missing = tmp_path / "missing" / "ix"
    with pytest.raises(StoreError) as err:
        open_index(missing, create=False)
    assert str(missing) in str(err.value)
    assert not missing.exists() and not missing.parent.exists()

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(StoreError) as err:
        open_index(empty, create=False)
    assert str(empty) in str(err.value)
    assert list(empty.iterdir()) == []

    client = QdrantClient(location=":memory:")
    with pytest.raises(StoreError):
        open_index(client=client, create=False)
    assert not client.collection_exists("mm_rag")
    client.close()

    with open_index(tmp_path / "made", dim=8):
        pass
    with open_index(tmp_path / "made", create=False) as ix:  # an existing index opens
        assert ix.dim == 8


class _Trap:
    """Unpickling this creates the marker file (what a malicious pickle could do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_old_format_folder_is_refused_unread(tmp_path):
    proof = tmp_path / "proof"
    pickle.loads(pickle.dumps(_Trap(proof))).close()
    assert proof.exists()  # the payload does what it says when unpickled

    marker = tmp_path / "UNPICKLED"
    folder = tmp_path / "old"
    storage = folder / "collection" / "mm_rag"
    storage.mkdir(parents=True)
    (folder / "meta.json").write_text(json.dumps({"collections": {"mm_rag": {"vectors": {}}}, "aliases": {}}))
    db = sqlite3.connect(storage / "storage.sqlite")  # as qdrant-client's local mode lays it out
    db.execute("CREATE TABLE points (id TEXT PRIMARY KEY, point BLOB)")
    db.execute("INSERT INTO points VALUES (?, ?)", (pickle.dumps("id"), pickle.dumps(_Trap(marker))))
    db.commit()
    db.close()
    before = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))

    for kw in ({}, {"create": False}, {"dim": 8}, {"keyword_only": True}):
        with pytest.raises(StoreError, match="older version") as err:
            open_index(folder, **kw)
        assert str(folder) in str(err.value)
    assert not marker.exists()
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")) == before  # nothing added

    # a folder of other files is not taken over either
    other = tmp_path / "other"
    other.mkdir()
    (other / "thesis.docx").write_bytes(b"mine")
    with pytest.raises(StoreError, match="no manifest"):
        open_index(other, dim=8)
    assert [p.name for p in other.iterdir()] == ["thesis.docx"]


# ---------------------------------------------------------------------- bad vectors
def test_zero_nan_inf_and_wrong_size_vectors_are_refused(tmp_path):
    chunk = [TextChunk(id="a", text="alpha", source="a.txt")]
    two = [*chunk, TextChunk(id="b", text="beta", source="b.txt")]
    good = np.ones((1, 8), np.float32)
    with open_index(tmp_path / "ix", dim=8) as ix:
        assert ix.add_embedded([TextChunk(id="c", text="gamma", source="c.txt")], good) == 1
        bad_rows = {
            "all zeros": np.zeros((1, 8), np.float32),
            "NaN": np.array([[1, 2, np.nan, 0, 0, 0, 0, 0]], np.float32),
            "infinite": np.array([[1, np.inf, 0, 0, 0, 0, 0, 0]], np.float32),
        }
        for words, vec in bad_rows.items():
            with pytest.raises(InvalidInputError, match=words):
                ix.add_embedded(chunk, vec)
            with pytest.raises(InvalidInputError):  # one bad row: nothing of the call is stored
                ix.add_embedded(two, np.concatenate([good, vec]))
        with pytest.raises(InvalidInputError, match="shape"):
            ix.add_embedded(chunk, np.ones((1, 9), np.float32))
        with pytest.raises(InvalidInputError, match="shape"):
            ix.add_embedded(two, good)
        ix.flush()  # the manifest's count is stored lazily (every few seconds, flush, optimize, close)
        assert len(ix) == ix.manifest["points"] == 1

    # through add(): a zero vector is an error of its file; the others are stored
    with open_index(tmp_path / "ingest", embedder=Fixed(zero=("beta",))) as ix:
        report = ix.add(two)
        assert report.added == 1 and [e.source for e in report.errors] == ["b.txt"]
        assert "zeros" in report.errors[0].error
        assert len(ix) == 1 and ix.with_source("b.txt") == {}


# ---------------------------------------------------------------------- damaged indexes
def test_damaged_manifest_and_missing_points_are_reported(tmp_path):
    folder = tmp_path / "ix"
    with open_index(folder, dim=8):
        pass
    manifest = folder / "manifest.json"
    good = manifest.read_text()

    manifest.write_text("{not json")
    with pytest.raises(StoreError, match=r"manifest\.json") as err:
        open_index(folder)
    assert "damaged" in str(err.value)

    manifest.write_text(json.dumps(dict(json.loads(good), format=1)))
    with pytest.raises(StoreError, match="format"):
        open_index(folder)

    manifest.write_text(json.dumps(dict(json.loads(good), points=900)))  # over an empty shard
    with pytest.raises(StoreError, match="damaged") as err:
        open_index(folder)
    assert "900" in str(err.value) and "manifest.json" in str(err.value)

    manifest.write_text(good)
    with open_index(folder) as ix:  # every failed open released the folder
        assert len(ix) == 0


# ---------------------------------------------------------------------- lock
def test_one_open_per_folder_names_the_holder(tmp_path):
    folder = tmp_path / "ix"
    probe = (
        "import sys\n"
        "from mm_rag_plugin.errors import StoreError\n"
        "from mm_rag_plugin.retrievers import MultiModalIndex\n"
        "try:\n"
        "    MultiModalIndex(sys.argv[1], show_progress=False).close()\n"
        "except StoreError as e:\n"
        "    print(e); sys.exit(3)\n"
        "print('opened')\n"
    )

    def other_process() -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", probe, str(folder)], capture_output=True, text=True, timeout=120)

    ix = open_index(folder, dim=8)
    try:
        with open_index(folder) as shared:  # this process's second open shares the shard (issue 30)
            assert shared.dim == 8
        out = other_process()
        assert out.returncode == 3, out.stderr[-2000:]
        assert f"pid {os.getpid()}" in out.stdout and str(folder) in out.stdout
    finally:
        ix.close()
    with open_index(folder) as again:
        assert again.dim == 8
    out = other_process()
    assert out.returncode == 0 and "opened" in out.stdout, out.stderr[-2000:]


# ---------------------------------------------------------------------- content shared by paths
def test_same_content_at_two_paths_is_one_point(tmp_path, embedder):
    same = "The same paragraph, found in two files."
    a = TextChunk(id="a1", text=same, source="a.txt")
    b = TextChunk(id="b1", text=same, source="b.txt")
    with open_index(tmp_path / "ix", embedder=embedder) as ix:
        assert ix.add([a]).added == 1
        report = ix.add([b])
        assert (report.added, report.unchanged, report.deleted) == (0, 1, 0)
        assert len(ix) == 1
        (pid,) = ix.existing([ix.point_id(a)[0]])
        assert ix.point_id(b)[0] == pid
        assert ix.fetch([pid])[pid].payload["sources"] == ["a.txt", "b.txt"]
        r = FusedRetriever(ix)
        for src in ("a.txt", "b.txt"):
            assert [h.chunk.text for h in r.retrieve("same paragraph", filters={"source": src})] == [same]
        assert [h.chunk.text for h in r.retrieve("same paragraph", filters={"source": ["b.txt", "c.txt"]})] == [same]
        assert r.retrieve("same paragraph", filters={"source": "c.txt"}) == []

        assert ix.delete_source("a.txt") == 0  # b.txt still has it
        assert len(ix) == 1 and ix.fetch([pid])[pid].payload["sources"] == ["b.txt"]
        assert r.retrieve("same paragraph", filters={"source": "a.txt"}) == []
        (hit,) = r.retrieve("same paragraph", filters={"source": "b.txt"})
        assert hit.chunk.source == "b.txt"  # a hit never cites a path that no longer holds it
        assert ix.delete_source("b.txt") == 1
        ix.flush()
        assert len(ix) == 0 and ix.manifest["points"] == 0

        # both paths in one call; then one copy changes: the other keeps the old content
        assert ix.add([a, b]).added == 1
        assert ix.fetch([pid])[pid].payload["sources"] == ["a.txt", "b.txt"]
        report = ix.add([TextChunk(id="a1", text="A revised paragraph.", source="a.txt")])
        assert (report.added, report.deleted) == (1, 0)
        assert len(ix) == 2 and ix.fetch([pid])[pid].payload["sources"] == ["b.txt"]


@pytest.mark.parametrize("where", ["edge", "remote"])
def test_a_shared_image_file_keeps_a_path_that_exists(tmp_path, where):
    """Byte-identical image files at two paths are one point; when the first path is removed, the
    point's image_path must follow to the remaining path (it is the source's own file)."""
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
    draw_shape("red", "circle").save(tmp_path / "a" / "x.png")
    shutil.copy(tmp_path / "a" / "x.png", tmp_path / "b" / "x.png")

    def chunk(p: Path) -> ImageChunk:
        return ImageChunk(id=p.name, source=str(p), image_path=str(p), content_hash=content_hash(p.read_bytes()))

    a, b = chunk(tmp_path / "a" / "x.png"), chunk(tmp_path / "b" / "x.png")
    client = QdrantClient(location=":memory:") if where == "remote" else None
    at = {"client": client} if client is not None else {"path": tmp_path / "ix"}
    with open_index(embedder=Fixed(), **at) as ix:
        ix.add([a])
        ix.add([b])
        assert len(ix) == 1
        (tmp_path / "a" / "x.png").unlink()
        assert ix.delete_source(a.source) == 0
        pid = ix.point_id(b)[0]
        got = ix.chunks([pid])[pid]
        assert got.source == b.source
        assert got.image_path == b.image_path and Path(got.image_path).is_file()
        assert ix.delete_source(b.source) == 1 and len(ix) == 0
    if client is not None:
        client.close()


# ---------------------------------------------------------------------- images inside the index
def test_images_in_the_index_folder_are_stored_relative_and_follow_a_move(tmp_path, embedder, monkeypatch):
    folder = tmp_path / "ix"
    outside = shapes(tmp_path / "outside")[0]
    with open_index(folder, embedder=embedder) as ix:
        blob = ix.blob_dir / "doc" / "page1.png"
        blob.parent.mkdir(parents=True)
        draw_shape("blue", "square").save(blob)
        inside = ImageChunk(id="b", source="doc.pdf", image_path=str(blob), content_hash=content_hash(blob.read_bytes()),
                            page=1, caption="a blue square")
        assert ix.add([inside, outside]).added == 2
        pid_in, pid_out = ix.point_id(inside)[0], ix.point_id(outside)[0]
        raw = {pid: p.payload for pid, p in ix.fetch([pid_in, pid_out]).items()}
        assert raw[pid_in]["image_path"] == "blobs/doc/page1.png"
        assert raw[pid_out]["image_path"] == outside.image_path  # outside the index: as given
        got = ix.chunks([pid_in, pid_out])
        assert got[pid_in].image_path == str(blob) and Path(got[pid_in].image_path).is_file()
        assert got[pid_out].image_path == outside.image_path

    moved = tmp_path / "elsewhere" / "moved-ix"
    moved.parent.mkdir()
    shutil.move(str(folder), str(moved))
    cwd = tmp_path / "somewhere-else"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    with open_index(moved, embedder=embedder) as ix:
        assert len(ix) == 2
        path = Path(ix.chunks([pid_in])[pid_in].image_path)
        assert path == moved / "blobs" / "doc" / "page1.png" and path.is_file()
        hits = FusedRetriever(ix).retrieve("a blue square", filters={"source": "doc.pdf"})
        assert [h.chunk.id for h in hits] == ["b"] and Path(hits[0].chunk.image_path).is_file()
        assert hits[0].chunk.image_path == str(path)
    # a relative path to the index works the same
    monkeypatch.chdir(moved.parent)
    with open_index("moved-ix") as ix:
        assert ix.chunks([pid_in])[pid_in].image_path == str(moved / "blobs" / "doc" / "page1.png")


# ---------------------------------------------------------------------- concurrent searches
def test_threaded_searches_match_sequential_ones(tmp_path, embedder):
    with open_index(tmp_path / "ix", embedder=embedder) as ix:
        ix.add([*texts(), *shapes(tmp_path / "img")])
        vectors = {q: embedder.embed_query(q) for q in QUERIES}

        class Cached:  # the index is under test here, not the model: queries embedded once
            dim = embedder.dim

            def embed_query(self, text=None, *, image=None):
                return vectors[text]

        retrievers = [FusedRetriever(ix, Cached(), k=5), FusedRetriever(ix, Cached(), k=5, fusion="server", explain=True)]
        want = {(n, q): [(h.id, h.score, h.ranks) for h in r.retrieve(q)] for n, r in enumerate(retrievers) for q in QUERIES}
        assert all(want.values())
        errors: list[BaseException] = []
        wrong: list[tuple] = []
        start = threading.Barrier(8)

        def work(t: int) -> None:
            try:
                start.wait()
                for j in range(50):
                    n, q = (t + j) % 2, QUERIES[(t * 7 + j) % len(QUERIES)]
                    got = [(h.id, h.score, h.ranks) for h in retrievers[n].retrieve(q)]
                    if got != want[n, q]:
                        wrong.append((t, j, q))
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=120)
        assert not any(th.is_alive() for th in threads)
        assert errors == [] and wrong == []


# ---------------------------------------------------------------------- copies
def test_copy_to_a_server_and_back(tmp_path, embedder):
    folder = tmp_path / "ix"
    with open_index(folder, embedder=embedder) as ix:
        ix.add([*texts(), *shapes(tmp_path / "img")])
        blob = ix.blob_dir / "page.png"
        blob.parent.mkdir()
        draw_shape("yellow", "circle").save(blob)
        extracted = ImageChunk(id="y", source="doc.pdf", image_path=str(blob), content_hash=content_hash(blob.read_bytes()),
                               caption="a yellow circle")
        ix.add([extracted])
        pid_blob = ix.point_id(extracted)[0]
        n = len(ix)
        want = hit_ids(FusedRetriever(ix))
        ids = {p.id for batch in ix.scan() for p in batch}

        client = QdrantClient(location=":memory:")
        remote = ix.copy_to(tmp_path / "server-files", client=client, show_progress=False)
        try:
            assert remote.engine == "qdrant" and len(remote) == n
            assert {k: v for k, v in remote.manifest.items() if k != "points"} == {
                k: v for k, v in ix.manifest.items() if k != "points"
            }
            assert remote.manifest["points"] == n
            assert hit_ids(FusedRetriever(remote, embedder)) == want
            image = remote.chunks([pid_blob])[pid_blob].image_path
            assert image == str(tmp_path / "server-files" / "blobs" / "page.png") and Path(image).is_file()

            # interrupted copies are finished by running it again: nothing duplicated
            again = ix.copy_to(tmp_path / "server-files", client=client, show_progress=False)
            assert len(again) == n and {p.id for batch in again.scan() for p in batch} == ids
            again.delete(sorted(ids)[: n // 2])
            assert len(again) == n - n // 2
            again.close()
            again = ix.copy_to(tmp_path / "server-files", client=client, show_progress=False)
            assert len(again) == n and {p.id for batch in again.scan() for p in batch} == ids
            again.close()

            # a server index reopened later: the same manifest, and it needs the same model
            with open_index(client=client, embedder=embedder) as reopened:
                assert reopened.manifest == remote.manifest | {"points": n}
                assert hit_ids(FusedRetriever(reopened)) == want

            # and back into a folder
            back = remote.copy_to(tmp_path / "back", show_progress=False)
            back.close()
            with open_index(tmp_path / "back", embedder=embedder) as b:
                assert b.engine == "qdrant-edge" and len(b) == n and b.model == ix.model
                assert hit_ids(FusedRetriever(b)) == want
                image = Path(b.chunks([pid_blob])[pid_blob].image_path)
                assert image == tmp_path / "back" / "blobs" / "page.png" and image.is_file()
            back = remote.copy_to(tmp_path / "back", show_progress=False)  # again: nothing added
            assert len(back) == n and {p.id for batch in back.scan() for p in batch} == ids
            back.close()
        finally:
            remote.close()
            client.close()
    # a copy into an index of another model is refused
    with open_index(tmp_path / "other", embedder=Fixed(dim=64)) as other_model:
        other_model.add([TextChunk(id="x", text="x", source="x.txt")])
    with open_index(folder) as ix, pytest.raises(ConfigurationError, match="cannot copy"):
        ix.copy_to(tmp_path / "other", show_progress=False)


def test_weights_given_alone_load_the_architecture_the_index_records(tmp_path, tiny_clip_dir, monkeypatch):
    """``MultiModalRAG(folder, checkpoint=FILE)`` (``mm-rag query --checkpoint FILE``) on an existing
    index builds the index's own architecture from that file, not the default model: a checkpoint
    moved to another path still opens its index."""
    import open_clip

    from mm_rag_plugin import MultiModalRAG

    monkeypatch.delenv("MM_RAG_MODEL", raising=False)
    monkeypatch.delenv("MM_RAG_CHECKPOINT", raising=False)
    cfg = json.loads((tiny_clip_dir / "open_clip_config.json").read_text())["model_cfg"]
    (tmp_path / "mm-rag-tiny-arch.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / "mm-rag-tiny-arch.json")
    ckpt = tmp_path / "weights.bin"
    shutil.copy(tiny_clip_dir / "open_clip_pytorch_model.bin", ckpt)
    folder = tmp_path / "ix"
    with MultiModalRAG(folder, model_name="mm-rag-tiny-arch", checkpoint=ckpt) as rag:
        assert rag.index.add(texts()).added == len(TEXTS)
    moved = tmp_path / "moved" / "weights.bin"
    moved.parent.mkdir()
    shutil.move(ckpt, moved)
    with MultiModalRAG(folder, checkpoint=moved, create=False) as rag:
        assert rag.index.model["name"] == "mm-rag-tiny-arch" and rag.embedder.dim == 64
        assert rag.retriever.retrieve("a red circle")[0].chunk.text == TEXTS[0]
