"""The one rule of ``embed_chunks`` for vectors a model may return: the wrong size, NaN or infinite
values, all zeros. A real CLIP model never returns those on demand, so a deterministic embedder
does here; the rule on real images (a truncated file) is in tests/integration/test_embed_batch.py."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from mm_rag_plugin.embeddings.batch import embed_chunks, vector_problem
from mm_rag_plugin.types import ImageChunk, TextChunk

DIM = 4


class Rows:
    """Returns the row given for each text or image path (in :attr:`rows`); counts its calls."""

    dim = DIM

    def __init__(self, rows: dict[str, list[float]]) -> None:
        self.rows = rows
        self.calls: list[tuple[str, int]] = []

    def embed_texts(self, texts):
        self.calls.append(("texts", len(texts)))
        return np.array([self.rows[t] for t in texts], np.float32)

    def embed_images(self, images, *, on_error="raise"):
        assert on_error == "collect"
        self.calls.append(("images", len(images)))
        return SimpleNamespace(vectors=np.array([self.rows[p] for p in images], np.float32), errors=())


def _text(text: str, source: str) -> TextChunk:
    return TextChunk(id=text, text=text, source=source)


def _image(path: str, source: str | None = None) -> ImageChunk:
    return ImageChunk(id=path, source=source or path, image_path=path, content_hash="h")


def test_bad_vectors_are_one_error_each_naming_the_file_and_the_rest_are_kept_in_order() -> None:
    model = Rows({
        "good": [3, 0, 0, 4],
        "zero": [0, 0, 0, 0],
        "nan": [1, np.nan, 0, 0],
        "inf": [1, np.inf, 0, 0],
        "/img/ok.png": [0, 2, 0, 0],
        "/blobs/x.png": [0, 0, 0, 0],
    })
    chunks = [
        _text("good", "a.txt"), _image("/img/ok.png"), _text("zero", "b.txt"), _text("nan", "c.txt"),
        _image("/blobs/x.png", source="report.pdf"), _text("inf", "d.txt"),
    ]
    out = embed_chunks(model, chunks)
    assert model.calls == [("texts", 4), ("images", 2)]  # one call per kind, whatever the batch mixes
    assert [v is not None for v in out.vectors] == [True, True, False, False, False, False]
    np.testing.assert_allclose(out.vectors[0], [0.6, 0, 0, 0.8], rtol=1e-6)  # unit rows
    assert out.vectors[0].dtype == np.float32
    np.testing.assert_allclose(out.vectors[1], [0, 1, 0, 0])
    assert [str(e) for e in out.errors] == [
        "b.txt: zero vector (all zeros)",
        "c.txt: vector holds NaN or infinite values",
        "report.pdf: zero vector (all zeros)",
        "d.txt: vector holds NaN or infinite values",
    ]
    assert [e.index for e in out.errors] == [2, 3, 4, 5] and out.failed == {2, 3, 4, 5}
    assert all("\n" not in str(e) for e in out.errors)


def test_a_vector_of_the_wrong_size_is_refused() -> None:
    model = Rows({"short": [1, 2, 3]})
    model.dim = DIM
    out = embed_chunks(model, [_text("short", "s.txt")])
    assert out.vectors == [None]
    assert [str(e) for e in out.errors] == ["s.txt: vector of size 3, the index holds 4-d vectors"]


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ([1, 0, 0, 0], None),
        ([0, 0, 0, 0], "zero vector (all zeros)"),
        ([1e-9, 0, 0, 0], "zero vector (all zeros)"),
        ([np.nan, 1, 0, 0], "vector holds NaN or infinite values"),
        ([1, 0, 0], "vector of size 3, the index holds 4-d vectors"),
    ],
)
def test_vector_problem_is_the_one_check(row, problem) -> None:
    assert vector_problem(np.array(row, np.float32), DIM) == problem


def test_an_empty_batch_calls_no_model() -> None:
    model = Rows({})
    out = embed_chunks(model, [])
    assert out.vectors == [] and out.errors == () and model.calls == []


class Failing(Rows):
    """Fails the images whose path is in *bad*, as ``embed_images(on_error="collect")`` does."""

    def __init__(self, rows: dict[str, list[float]], bad: set[str]) -> None:
        super().__init__(rows)
        self.bad = bad
        self.paths: list[str] = []

    def embed_images(self, images, *, on_error="raise"):
        self.calls.append(("images", len(images)))
        self.paths.extend(images)
        ok = [p for p in images if p not in self.bad]
        errors = [SimpleNamespace(index=i, error=ValueError("cannot identify image")) for i, p in enumerate(images) if p in self.bad]
        vecs = np.array([self.rows[p] if p not in self.bad else [0] * DIM for p in images], np.float32)
        assert len(ok) + len(errors) == len(images)
        return SimpleNamespace(vectors=vecs, errors=errors)


def _stored(path: str, file_hash: str | None, source: str) -> ImageChunk:
    return ImageChunk(id=f"{source}:{path}", source=source, image_path=path, content_hash="c", file_hash=file_hash)


def test_an_image_stored_once_and_met_in_many_documents_is_embedded_once() -> None:
    from mm_rag_plugin.embeddings.batch import ImageVectors

    model = Failing({"/blobs/logo.png": [0, 3, 0, 4], "/blobs/chart.png": [1, 0, 0, 0], "/blobs/bad.png": [0] * DIM},
                    bad={"/blobs/bad.png"})
    cache = ImageVectors()
    first = embed_chunks(model, [
        _stored("/blobs/logo.png", "h1", "a.pdf"), _stored("/blobs/bad.png", "h3", "a.pdf"),
        _stored("/blobs/logo.png", "h1", "b.pdf"), _stored("/blobs/bad.png", "h3", "c.pdf"),
    ], cache)
    assert model.paths == ["/blobs/logo.png", "/blobs/bad.png"]  # each stored image once in the batch
    assert first.vectors[0] is not None and np.allclose(first.vectors[0], [0, 0.6, 0, 0.8])
    assert np.array_equal(first.vectors[2], first.vectors[0])
    # the repeat of a failed image fails too, naming its own document
    assert [(e.index, e.source) for e in first.errors] == [(1, "a.pdf"), (3, "c.pdf")]
    assert all("cannot identify image" in e.error for e in first.errors)

    second = embed_chunks(model, [
        _stored("/blobs/logo.png", "h1", "d.pdf"),  # a later batch: taken from the cache
        _stored("/blobs/logo.png", "h2", "e.pdf"),  # same path, other bytes recorded: embedded again
        _stored("/blobs/chart.png", None, "f.pdf"), _stored("/blobs/chart.png", None, "g.pdf"),  # no hash: not shared
        _stored("/blobs/bad.png", "h3", "h.pdf"),  # a failure is not cached: tried again
    ], cache)
    assert model.paths[2:] == ["/blobs/logo.png", "/blobs/chart.png", "/blobs/chart.png", "/blobs/bad.png"]
    assert np.array_equal(second.vectors[0], first.vectors[0])
    assert [e.source for e in second.errors] == ["h.pdf"]


def test_the_image_vector_cache_keeps_the_most_recent() -> None:
    from mm_rag_plugin.embeddings.batch import ImageVectors

    cache = ImageVectors(size=2)
    for name in ("a", "b", "c"):
        cache[(name, "h")] = np.zeros(DIM, np.float32)
    cache[("b", "h")] = np.ones(DIM, np.float32)  # set again: now the most recent
    cache[("d", "h")] = np.zeros(DIM, np.float32)
    assert list(cache) == [("b", "h"), ("d", "h")]
