"""The sentence-transformers text model beside CLIP, run for real: a tiny BERT written offline.

The model (``mm_rag_plugin.testing.make_tiny_text_model``) has random weights, so its rankings
mean nothing, but it is deterministic: a query equal to a chunk's text gets that chunk's vector,
which the tests use to know what the ``text_model`` list must put first.
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from mm_rag_plugin import TextChunk
from mm_rag_plugin.embeddings.text_model import SentenceTransformerTextEmbedder, load_text_model
from mm_rag_plugin.errors import ConfigurationError, ModelLoadError
from mm_rag_plugin.retrievers import FusedRetriever, MultiModalIndex
from mm_rag_plugin.testing import make_tiny_text_model

TEXTS = [
    "the automobile museum closed early today",
    "car engine repair manual for old vehicles",
    "bread recipes with rye flour",
    "the history of sailing ships",
    "garden soil and compost",
]
ONLY_TEXT_MODEL = {"dense_text": 0.0, "dense_image": 0.0, "bm25": 0.0}


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    # a hub name must fail here, never try the network (where it is unreachable, Hugging Face's
    # retries take about 70 s); huggingface_hub reads HF_HUB_OFFLINE when first imported, which
    # another test of this worker may have done already, so its constant is set too
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)


@pytest.fixture(scope="session")
def st_models(tmp_path_factory):
    """Three tiny models: ``a`` and ``b`` (32-d, other weights, other folders) and ``narrow`` (16-d)."""
    root = tmp_path_factory.mktemp("st")
    words = [*TEXTS, "query passage automobile"]
    return {
        "a": make_tiny_text_model(root / "a", words, dim=32, seed=0),
        "b": make_tiny_text_model(root / "b", words, dim=32, seed=1),
        "narrow": make_tiny_text_model(root / "narrow", words, dim=16, seed=2),
    }


def _chunks() -> list[TextChunk]:
    return [TextChunk(id=f"c{i}", text=t, source="doc.txt", position=i) for i, t in enumerate(TEXTS)]


def test_embedder_dim_unit_rows_and_prompts(st_models):
    model = SentenceTransformerTextEmbedder(st_models["a"])
    assert model.dim == 32
    rows = model.embed_documents(TEXTS)
    assert rows.shape == (5, 32) and rows.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, rtol=1e-5)
    assert model.embed_documents([]).shape == (0, 32)
    np.testing.assert_allclose(model.embed_query(TEXTS[2]), rows[2], atol=1e-5)  # no prompts: same text, same vector
    assert model.identity() == {"kind": "sentence-transformers", "name": str(st_models["a"].resolve())}
    prompted = SentenceTransformerTextEmbedder(st_models["a"], query_prompt="automobile ")
    np.testing.assert_allclose(prompted.embed_query("bread"), model.embed_query("automobile bread"), atol=1e-5)
    assert not np.allclose(prompted.embed_query("bread"), model.embed_query("bread"), atol=1e-3)
    assert prompted.identity()["prompts"] == ["automobile ", ""]
    assert SentenceTransformerTextEmbedder(st_models["narrow"]).dim == 16


def test_the_models_own_query_and_document_prompts_are_used(tmp_path, st_models):
    folder = make_tiny_text_model(tmp_path / "p", [*TEXTS, "query passage automobile"], prompts={"query": "automobile ", "document": "passage "})
    own = SentenceTransformerTextEmbedder(folder)
    plain = SentenceTransformerTextEmbedder(st_models["a"])  # the same weights (seed 0), no prompts
    np.testing.assert_allclose(own.embed_query("bread"), plain.embed_query("automobile bread"), atol=1e-5)
    np.testing.assert_allclose(own.embed_documents(["bread"])[0], plain.embed_documents(["passage bread"])[0], atol=1e-5)
    # a prompt given here replaces the model's own
    given = SentenceTransformerTextEmbedder(folder, query_prompt="query ")
    np.testing.assert_allclose(given.embed_query("bread"), plain.embed_query("query bread"), atol=1e-5)


def test_index_ingests_searches_and_reloads_the_model(tmp_path, embedder, st_models):
    path = tmp_path / "ix"
    with MultiModalIndex(path, embedder=embedder, text_embedder=SentenceTransformerTextEmbedder(st_models["a"])) as ix:
        assert ix.add(_chunks()).added == 5
        assert ix.text_model == {"kind": "sentence-transformers", "name": str(st_models["a"].resolve()), "dim": 32}
        assert all(p.text is not None and len(p.text) == 32 for batch in ix.scan() for p in batch)
        for i, text in enumerate(TEXTS):
            hits = FusedRetriever(ix, weights=ONLY_TEXT_MODEL, dedupe=False).retrieve(text, k=5)
            assert hits[0].chunk.id == f"c{i}" and hits[0].ranks["text_model"] == 1
            assert hits[0].list_scores["text_model"] == pytest.approx(1.0, abs=1e-4)
        fused = FusedRetriever(ix).retrieve(TEXTS[3], k=5)
        assert any("text_model" in h.ranks for h in fused) and fused[0].chunk.id == "c3"
        recorded = ix.text_model
    reloaded = load_text_model(recorded)
    assert reloaded.identity()["name"] == str(st_models["a"].resolve()) and reloaded.dim == 32
    np.testing.assert_allclose(reloaded.embed_query(TEXTS[0]), SentenceTransformerTextEmbedder(st_models["a"]).embed_query(TEXTS[0]), atol=1e-6)
    with MultiModalIndex(path, embedder=embedder) as ix:  # opened without it: a search loads it by its folder
        hits = FusedRetriever(ix, weights=ONLY_TEXT_MODEL, dedupe=False).retrieve(TEXTS[1], k=3)
        assert hits[0].chunk.id == "c1"


def test_reopening_with_another_model_is_refused_in_one_line(tmp_path, embedder, st_models):
    path = tmp_path / "ix"
    MultiModalIndex(path, embedder=embedder, text_embedder=SentenceTransformerTextEmbedder(st_models["a"])).close()
    for other in ("b", "narrow"):  # another folder of the same width, another width
        with pytest.raises(ConfigurationError, match=r"built with text model sentence-transformers .*, 32-d, not") as err:
            MultiModalIndex(path, embedder=embedder, text_embedder=SentenceTransformerTextEmbedder(st_models[other]))
        assert "\n" not in str(err.value) and str(st_models[other].resolve()) in str(err.value)


def test_a_missing_or_damaged_folder_is_a_model_load_error_naming_it(tmp_path, st_models):
    missing = tmp_path / "no-such-model"
    with pytest.raises(ModelLoadError, match="no-such-model") as err:
        SentenceTransformerTextEmbedder(missing)
    assert "\n" not in str(err.value)
    damaged = tmp_path / "damaged"
    shutil.copytree(st_models["a"], damaged)
    (damaged / "config.json").write_text("{ not json", encoding="utf-8")
    with pytest.raises(ModelLoadError, match="damaged") as err:
        SentenceTransformerTextEmbedder(damaged)
    assert "\n" not in str(err.value)
    # the index records a folder that is gone: loading it by name says which
    gone = tmp_path / "gone"
    shutil.copytree(st_models["a"], gone)
    identity = {"kind": "sentence-transformers", "name": str(gone.resolve()), "dim": 32}
    assert load_text_model(identity).dim == 32
    shutil.rmtree(gone)
    with pytest.raises(ModelLoadError, match="gone"):
        load_text_model(identity)


def test_cli_ingest_records_the_model_and_refuses_another(tmp_path, model_env, st_models, capsys):
    from tests._cli import run

    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(TEXTS):
        (docs / f"d{i}.md").write_text(text + "\n", encoding="utf-8")
    index = str(tmp_path / "ix")
    capsys.readouterr()
    code, _, err = run("ingest", str(docs), "--index", index, "--text-model", str(st_models["a"]), "-q")
    assert code == 0, err
    assert capsys.readouterr().err == ""  # -q: nothing else writes to stderr (no model-loading bars)
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert manifest["text_model"] == {"kind": "sentence-transformers", "name": str(st_models["a"].resolve()), "dim": 32}
    code, out, err = run("query", TEXTS[4], "--index", index, "--k", "5", "--json")  # the index loads its model
    assert code == 0, err
    hits = json.loads(out)
    assert hits[0]["source"].endswith("d4.md") and hits[0]["found_by"]["text_model"]["rank"] == 1
    code, out, err = run("ask", TEXTS[4], "--index", index, "--json")
    assert code == 0, err
    assert json.loads(out)["sources"][0]["source"].endswith("d4.md")
    (docs / "d9.md").write_text("one more page about compost\n", encoding="utf-8")
    code, _, err = run("ingest", str(docs), "--index", index, "--text-model", str(st_models["b"]), "-q")
    assert code != 0 and len(err.strip().splitlines()) == 1
    assert "built with text model" in err and str(st_models["b"].resolve()) in err


def test_cli_names_the_text_model_when_it_cannot_be_loaded(tmp_path, model_env):
    from tests._cli import run

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text(TEXTS[0] + "\n", encoding="utf-8")
    # a hub name offline: the CLIP model loads (the tiny one), the text model cannot
    code, _, err = run("ingest", str(docs), "--index", str(tmp_path / "ix"), "--text-model", "no-such-org/no-such-model", "-q")
    assert code == 3 and len(err.strip().splitlines()) == 1
    assert "could not load the text model" in err and "--text-model FOLDER" in err
    assert "open_clip_config" not in err  # not the CLIP model's advice
    assert not (tmp_path / "ix").exists()  # nothing created
