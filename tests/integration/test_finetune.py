"""Fine-tuning and reindexing, on coloured shapes drawn at test time (no download).

The data: a shape (circle, triangle, bar) of a colour (red, green, blue, yellow) in the left or
right half of a 64 px picture, captioned "a red circle on the left": 24 kinds. (Squares are left
out: at the model's 32 px a small square and a small circle are a few pixels apart, and which one
a 100-step run tells apart varied from seed to seed.) The model starts
from the tiny open_clip config with random weights (near chance), is fine-tuned with the library's
own code, and must then find the right picture for a held-out caption; the saved folder must load
back with the same score, and an index re-embedded with it must search better.
"""

from __future__ import annotations

import csv
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from mm_rag_plugin import ImageChunk, MultiModalIndex, OpenCLIPEmbedder, TextChunk
from mm_rag_plugin.errors import ConfigurationError, InvalidInputError
from mm_rag_plugin.finetune import (
    Pair,
    WorseModelError,
    dump_pairs,
    evaluate,
    finetune,
    load_pairs,
    pairs_from_index,
    pairs_hash,
)
from mm_rag_plugin.ids import file_sha256, stable_id
from mm_rag_plugin.retrievers import FusedRetriever
from mm_rag_plugin.retrievers.manifest import model_identity
from mm_rag_plugin.testing import SHAPE_COLORS, make_tiny_clip

from .._cli import run

pytestmark = pytest.mark.timeout(1200)  # minutes on a loaded 2-core machine; ~1 min when idle

SHAPES = ("circle", "triangle", "bar")
POSITIONS = ("left", "right")
KINDS = [(c, k, p) for c in SHAPE_COLORS for k in SHAPES for p in POSITIONS]
#: What the main run may spend: 20 epochs of ~5 batches (about 10 s of two idle CPU cores).
STEPS_BUDGET = 100


def caption(color: str, kind: str, pos: str) -> str:
    return f"a {color} {kind} on the {pos}"


def scene(color: str, kind: str, pos: str, rng: random.Random) -> Image.Image:
    """A 64 px picture with one large shape somewhere in its left or right half."""
    img = Image.new("RGB", (64, 64), tuple(rng.randint(225, 255) for _ in range(3)))
    r = rng.uniform(11, 14.5)
    cx = (0 if pos == "left" else 32) + 16 + rng.uniform(-1.5, 1.5)
    cy = rng.uniform(r, 64 - r)
    fill = tuple(max(0, min(255, v + rng.randint(-20, 20))) for v in SHAPE_COLORS[color])
    draw = ImageDraw.Draw(img)
    if kind == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif kind == "bar":  # as wide as a circle, half as high
        draw.rectangle([cx - r, cy - r / 2, cx + r, cy + r / 2], fill=fill)
    else:
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    return img


def draw_set(folder: Path, per_kind: int, seed: int) -> list[tuple[Path, str, str, str]]:
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for c, k, p in KINDS:
        for i in range(per_kind):
            path = folder / f"{c}_{k}_{p}_{i}.png"
            scene(c, k, p, rng).save(path)
            out.append((path, c, k, p))
    return out


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny open_clip config with random weights (no training)."""
    return make_tiny_clip(tmp_path_factory.mktemp("base"), train_steps=0)


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """120 pairs (5 pictures of each of the 24 kinds) in a JSONL file with relative image paths."""
    root = tmp_path_factory.mktemp("data")
    items = draw_set(root / "images", 5, seed=0)
    file = root / "pairs.jsonl"
    file.write_text("".join(
        json.dumps({"image": f"images/{path.name}", "text": caption(c, k, p)}) + "\n" for path, c, k, p in items
    ))
    return file


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, base_dir: Path, pairs_file: Path):
    """The whole model trained for 20 epochs (100 steps) at lr 3e-3, fp32, on the CPU."""
    out = tmp_path_factory.mktemp("models") / "shapes"
    return finetune(
        f"local-dir:{base_dir}", pairs_file, out, train="all", lr=3e-3, epochs=20, batch_size=32,
        device="cpu", precision="fp32",
    )


# ---------------------------------------------------------------------------------------------- learning
def test_finetune_goes_from_chance_to_recall_on_held_out_pairs(trained) -> None:
    assert trained.saved and trained.heldout_pairs >= 20 and trained.train_pairs + trained.heldout_pairs == 120
    assert trained.before["text_to_image"]["recall@1"] <= 0.25  # 24 kinds: chance is about 1/20
    assert trained.after["text_to_image"]["recall@1"] >= 0.8
    assert trained.after["image_to_text"]["recall@1"] >= 0.6
    assert trained.after["score"] > trained.before["score"] + 0.4
    assert trained.steps <= STEPS_BUDGET and trained.pairs_per_second > 0
    assert trained.trainable_params == trained.total_params  # train="all"


def test_the_saved_model_loads_from_disk_with_the_same_score(trained) -> None:
    out = Path(trained.out_dir)
    assert {"open_clip_config.json", "open_clip_model.safetensors", "finetune.json", "heldout.jsonl"} <= {
        p.name for p in out.iterdir()
    }
    assert not (out / "checkpoint").exists()
    loaded = OpenCLIPEmbedder(f"local-dir:{out}", device="cpu", precision="fp32")  # trained and scored in fp32
    held = load_pairs(out / "heldout.jsonl")
    assert len(held) == trained.heldout_pairs
    assert evaluate(loaded, held) == trained.after


def test_the_model_folder_records_its_identity_and_an_index_records_it(trained, base_dir, pairs_file, tmp_path) -> None:
    out = Path(trained.out_dir)
    record = json.loads((out / "finetune.json").read_text())
    base_weights = base_dir / "open_clip_pytorch_model.bin"
    assert record["base"]["name"] == f"local-dir:{base_dir.resolve()}"
    assert record["base"]["weights"]["sha256"] == file_sha256(base_weights)
    assert record["data"]["sha256"] == pairs_hash(load_pairs(pairs_file)) and record["data"]["pairs"] == 120
    assert record["settings"]["train"] == "all" and record["settings"]["lr"] == 3e-3 and record["settings"]["loss"] == "clip"
    assert record["before"] == trained.before and record["after"] == trained.after and record["forced"] is False

    tuned = OpenCLIPEmbedder(f"local-dir:{out}", device="cpu")
    ident = model_identity(tuned)
    assert ident["weights"]["sha256"] == record["model"]["weights"]["sha256"] != record["base"]["weights"]["sha256"]
    with MultiModalIndex(tmp_path / "ix", embedder=tuned) as ix:
        assert ix.model["weights"]["sha256"] == ident["weights"]["sha256"]
    base = OpenCLIPEmbedder(f"local-dir:{base_dir}", device="cpu")
    with pytest.raises(ConfigurationError, match="never mixes models"):
        MultiModalIndex(tmp_path / "ix", embedder=base)


def test_a_model_that_got_worse_is_not_saved_unless_forced(trained, pairs_file, tmp_path) -> None:
    out = tmp_path / "worse"
    # a good model, then a learning rate 300x too high: it forgets what it knew
    with pytest.raises(WorseModelError, match="worse than the base model") as info:
        finetune(f"local-dir:{trained.out_dir}", pairs_file, out, train="all", lr=1.0, max_steps=3, device="cpu",
                 precision="fp32")
    report = info.value.report
    assert not report.saved and report.after["score"] < report.before["score"]
    assert report.before == trained.after  # same split (same pairs, same seed), same model
    assert not (out / "finetune.json").exists() and not (out / "open_clip_config.json").exists()
    assert not list(out.glob("*.safetensors")) and (out / "checkpoint" / "state.pt").is_file()

    code, stdout, err = run("finetune", "--pairs", str(pairs_file), "--model", f"local-dir:{trained.out_dir}", "--out",
                         str(tmp_path / "worse_cli"), "--train", "all", "--lr", "1", "--max-steps", "3", "--quiet",
                         "--precision", "fp32", "--device", "cpu", "--json")
    assert code == 1 and "not saved" in err and "--resume --force" in err
    printed = json.loads(stdout)
    assert printed["saved"] is False and printed["after"] == report.after and printed["before"] == trained.after

    # the checkpoint is kept: --resume --force saves it without training again
    forced = finetune(f"local-dir:{trained.out_dir}", pairs_file, out, train="all", lr=1.0, max_steps=3,
                      device="cpu", precision="fp32", resume=True, force=True)
    assert forced.saved and forced.forced and forced.resumed_at == forced.steps == 3
    assert forced.after == report.after
    assert json.loads((out / "finetune.json").read_text())["forced"] is True
    with pytest.raises(ConfigurationError, match="already holds a fine-tuned model"):
        finetune(f"local-dir:{trained.out_dir}", pairs_file, out, device="cpu")


def test_an_interrupted_run_resumes_to_the_same_weights(base_dir, pairs_file, tmp_path) -> None:
    from safetensors.torch import load_file

    settings = dict(train="last", lr=1e-3, max_steps=6, batch_size=16, save_every=2, device="cpu", precision="bf16",
                    force=True)
    whole = finetune(f"local-dir:{base_dir}", pairs_file, tmp_path / "whole", **settings)

    def stop_at_3(step: int, loss: float) -> None:
        assert np.isfinite(loss)
        if step == 3:
            raise KeyboardInterrupt

    out = tmp_path / "resumed"
    with pytest.raises(KeyboardInterrupt):
        finetune(f"local-dir:{base_dir}", pairs_file, out, on_step=stop_at_3, **settings)
    assert (out / "checkpoint" / "state.pt").is_file() and not (out / "finetune.json").exists()
    with pytest.raises(ConfigurationError, match="resume"):
        finetune(f"local-dir:{base_dir}", pairs_file, out, **settings)
    with pytest.raises(ConfigurationError, match="settings changed: lr"):
        finetune(f"local-dir:{base_dir}", pairs_file, out, resume=True, **{**settings, "lr": 2e-3})

    resumed = finetune(f"local-dir:{base_dir}", pairs_file, out, resume=True, **settings)
    assert resumed.resumed_at == 2 and resumed.steps == whole.steps == 6 and resumed.precision == "bf16"
    a, b = load_file(str(tmp_path / "whole" / "open_clip_model.safetensors")), load_file(str(out / "open_clip_model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        assert np.allclose(a[name].numpy(), b[name].numpy(), atol=1e-6), name
    assert resumed.after == whole.after


# ---------------------------------------------------------------------------------------------- what is trained
def test_the_cheap_default_trains_projections_and_the_last_blocks() -> None:
    import open_clip

    from mm_rag_plugin.finetune.train import select_trainable
    from mm_rag_plugin.testing import TINY_CLIP_CONFIG

    resnet = open_clip.CLIP(**TINY_CLIP_CONFIG)
    names = select_trainable(resnet)  # train="last", blocks=1
    assert "text_projection" in names and "logit_scale" in names and "ln_final.weight" in names
    assert any(n.startswith("visual.attnpool.") for n in names) and any(n.startswith("visual.layer4.") for n in names)
    assert not any(n.startswith(("visual.layer3.", "visual.conv1", "token_embedding")) for n in names)
    assert any(n.startswith("transformer.resblocks.1.") for n in names)
    assert not any(n.startswith("transformer.resblocks.0.") for n in names)
    assert [p.requires_grad for _, p in resnet.named_parameters()].count(True) == len(names)

    vit = open_clip.CLIP(embed_dim=32, vision_cfg={"image_size": 32, "patch_size": 8, "width": 32, "layers": 3, "head_width": 16},
                         text_cfg={"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 3})
    names = select_trainable(vit, "last", blocks=2)
    assert "visual.proj" in names and any(n.startswith("visual.ln_post.") for n in names)
    assert any(n.startswith("visual.transformer.resblocks.1.") for n in names)
    assert not any(n.startswith("visual.transformer.resblocks.0.") for n in names)
    assert select_trainable(vit, "projections") == [n for n in select_trainable(vit, "projections")
                                                     if "resblocks" not in n]
    assert not any(n.startswith("visual.") for n in select_trainable(vit, "all", freeze="image"))
    assert all(n.startswith("visual.") or n == "logit_scale" for n in select_trainable(vit, "last", freeze="text"))

    custom = open_clip.CustomTextCLIP(
        embed_dim=32, vision_cfg={"image_size": 32, "patch_size": 8, "width": 32, "layers": 2, "head_width": 16},
        text_cfg={"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}, init_logit_bias=-10,
    )
    names = select_trainable(custom)
    assert "logit_bias" in names and "text.text_projection" in names
    assert any(n.startswith("text.transformer.resblocks.1.") for n in names)
    assert not any(n.startswith("text.transformer.resblocks.0.") for n in names)


def test_the_sigmoid_loss_uses_the_models_bias_or_a_trained_one_of_its_own() -> None:
    import open_clip
    import torch

    from mm_rag_plugin.finetune.train import Trainer
    from mm_rag_plugin.testing import TINY_CLIP_CONFIG

    tokenizer = open_clip.get_tokenizer("ViT-B-32", context_length=16)
    preprocess = open_clip.image_transform(32, is_train=False)
    pixels = torch.randn(6, 3, 32, 32)
    texts = [caption(c, "circle", "left") for c in SHAPE_COLORS] + ["a bar", "a triangle"]
    siglip = open_clip.CustomTextCLIP(
        embed_dim=32, vision_cfg={"image_size": 32, "patch_size": 8, "width": 32, "layers": 2, "head_width": 16},
        text_cfg={"context_length": 16, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 2}, init_logit_bias=-10,
    )
    clip = open_clip.CLIP(**{**TINY_CLIP_CONFIG, "text_cfg": {**TINY_CLIP_CONFIG["text_cfg"], "context_length": 16}})
    for model, loss, own_bias in ((siglip, "auto", True), (clip, "siglip", False), (clip, "auto", None)):
        emb = OpenCLIPEmbedder(model=model, preprocess=preprocess, tokenizer=tokenizer, device="cpu", cache_size=0)
        trainer = Trainer(emb, loss=loss, train="last", lr=1e-3, total_steps=2)
        trainer.train_mode()
        tokens = emb._tokenize(texts[:6])
        assert all(np.isfinite(trainer.step(pixels, tokens)) for _ in range(2))
        if own_bias is None:
            assert trainer.loss_name == "clip" and trainer.extra_bias is None
        else:
            assert trainer.loss_name == "siglip" and (trainer.extra_bias is None) == own_bias
        if trainer.extra_bias is not None:
            assert float(trainer.extra_bias.detach()) != -10.0  # it learns


def test_precision_auto_uses_bf16_only_where_it_measured_faster(monkeypatch) -> None:
    import torch

    import mm_rag_plugin.finetune.train as train

    monkeypatch.setattr(train, "native_bf16", lambda device: True)
    assert train.autocast_dtype("auto", "cpu", "all") is torch.bfloat16
    assert train.autocast_dtype("auto", "cpu", "last") is None and train.autocast_dtype("auto", "cpu", "projections") is None
    assert train.autocast_dtype("auto", "cuda", "last") is torch.bfloat16
    assert train.autocast_dtype("fp32", "cpu", "all") is None and train.autocast_dtype("bf16", "cpu", "last") is torch.bfloat16
    monkeypatch.setattr(train, "native_bf16", lambda device: False)
    assert train.autocast_dtype("auto", "cpu", "all") is None and train.autocast_dtype("auto", "cuda", "all") is None
    assert train.autocast_dtype("bf16", "cpu", "all") is torch.bfloat16  # asked for: emulated, but done


# ---------------------------------------------------------------------------------------------- pairs
def test_pairs_files_jsonl_csv_tsv_and_their_errors(tmp_path: Path) -> None:
    items = draw_set(tmp_path / "img", 1, seed=3)[:4]
    rows = [(f"img/{p.name}", caption(c, k, pos)) for p, c, k, pos in items]
    (tmp_path / "p.jsonl").write_text("\n".join(json.dumps({"image": i, "caption": t}) for i, t in rows) + "\n\n")
    with open(tmp_path / "p.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["filepath", "title"])
        w.writerows(rows)
    (tmp_path / "p.tsv").write_text("image\ttext\n" + "".join(f"{i}\t{t}\n" for i, t in rows))
    (tmp_path / "p.json").write_text(json.dumps([{"image_path": i, "text": t} for i, t in rows]))
    want = [Pair(str(tmp_path / i), t) for i, t in rows]
    for name in ("p.jsonl", "p.csv", "p.tsv", "p.json"):
        assert load_pairs(tmp_path / name) == want, name

    # dump -> load round trip; the data hash ignores order and where the files are
    assert dump_pairs(want, tmp_path / "dump.jsonl") == 4 and load_pairs(tmp_path / "dump.jsonl") == want
    moved = tmp_path / "elsewhere"
    shutil.copytree(tmp_path / "img", moved)
    assert pairs_hash(want) == pairs_hash([Pair(str(moved / Path(p.image).name), p.text) for p in reversed(want)])
    assert pairs_hash(want) != pairs_hash([*want[:3], Pair(want[3].image, "another text")])

    (tmp_path / "missing.jsonl").write_text(json.dumps({"image": "img/nope.png", "text": "x"}) + "\n")
    with pytest.raises(InvalidInputError, match=r"1 image files not found: .*nope\.png"):
        load_pairs(tmp_path / "missing.jsonl")
    (tmp_path / "bad.jsonl").write_text(json.dumps({"image": rows[0][0], "text": "x"}) + "\n{oops\n")
    with pytest.raises(InvalidInputError, match="line 2: not JSON"):
        load_pairs(tmp_path / "bad.jsonl")
    (tmp_path / "empty_text.jsonl").write_text(json.dumps({"image": rows[0][0], "text": " "}) + "\n")
    with pytest.raises(InvalidInputError, match="line 1: needs an image path and a non-empty text"):
        load_pairs(tmp_path / "empty_text.jsonl")
    (tmp_path / "nohead.csv").write_text("a,b\nx,y\n")
    with pytest.raises(InvalidInputError, match="header must name an image column"):
        load_pairs(tmp_path / "nohead.csv")
    with pytest.raises(ConfigurationError, match="at least 10 pairs"):
        finetune("ViT-B-32", want, tmp_path / "m")  # refused before any model loads


# ---------------------------------------------------------------------------------------------- index
def build_index(folder: Path, images: Path, model_name: str) -> dict[str, tuple[str, str, str]]:
    """An index of 48 new pictures (2 per kind): half captioned image files, half figures of a
    one-line document with the sentence before them and the picture in the index's blobs.
    Returns the kind of each stored picture by file name."""
    emb = OpenCLIPEmbedder(model_name, device="cpu")
    items = draw_set(images, 2, seed=1)
    kinds: dict[str, tuple[str, str, str]] = {}
    with MultiModalIndex(folder, embedder=emb) as ix:
        chunks: list[TextChunk | ImageChunk] = []
        for n, (path, c, k, p) in enumerate(items):
            if n % 2 == 0:
                chunks.append(ImageChunk(id=stable_id(path), source=str(path), image_path=str(path),
                                         content_hash=file_sha256(path), caption=caption(c, k, p), ocr_text=f"No. {n}"))
                kinds[path.name] = (c, k, p)
                continue
            blob = ix.blob_dir / path.name
            blob.parent.mkdir(exist_ok=True)
            shutil.copy(path, blob)
            doc = str(images / f"report_{n}.md")
            tid, iid = stable_id(doc, "text"), stable_id(doc, "image")
            chunks.append(TextChunk(id=tid, text=f"The figure below shows {caption(c, k, p)}.", source=doc,
                                    next_id=iid))
            chunks.append(ImageChunk(id=iid, source=doc, image_path=str(blob), content_hash=file_sha256(blob),
                                     position=1, prev_id=tid))
            kinds[blob.name] = (c, k, p)
        assert ix.add(chunks).ok
    (folder / "sources.json").write_text(json.dumps({"/docs/a.pdf": {"size": 1, "mtime_ns": 2, "sha256": "x"}}))
    return kinds


def index_recall(folder: Path, model_name: str, kinds: dict[str, tuple[str, str, str]]) -> float:
    """Share of the 24 captions whose first image (dense text->image search) shows that kind."""
    emb = OpenCLIPEmbedder(model_name, device="cpu")
    with MultiModalIndex(folder, embedder=emb, create=False) as ix:
        retriever = FusedRetriever(ix, emb, weights={"bm25": 0.0, "dense_text": 0.0})
        found = 0
        for c, k, p in KINDS:
            top = retriever.retrieve(caption(c, k, p), k=1)[0].chunk
            found += kinds[Path(top.image_path).name] == (c, k, p)
    return found / len(KINDS)


def test_pairs_from_an_index_dumped_then_fine_tuned_from_the_cli(base_dir, tmp_path: Path) -> None:
    ix = tmp_path / "ix"
    build_index(ix, tmp_path / "images", f"local-dir:{base_dir}")
    pairs = pairs_from_index(ix)
    assert len(pairs) == 48 and {p.origin for p in pairs} == {"caption", "context"}
    context = [p for p in pairs if p.origin == "context"]
    assert all(p.text.startswith("The figure below shows ") and Path(p.image).parent == ix / "blobs" for p in context)
    assert pairs_from_index(ix, context=False) == [p for p in pairs if p.origin == "caption"]
    with_ocr = pairs_from_index(ix, ocr_text=True)
    assert sorted(p.text for p in with_ocr if p.origin == "ocr_text") == sorted(f"No. {n}" for n in range(0, 48, 2))

    code, out, err = run("finetune", "--from-index", "--index", str(ix), "--dump-pairs", str(tmp_path / "pairs.jsonl"))
    assert code == 0, err
    assert "pairs: 48 from the index" in out and "caption 24" in out and "context 24" in out
    assert sorted(load_pairs(tmp_path / "pairs.jsonl"), key=str) == sorted(pairs, key=str)

    model = tmp_path / "model"
    code, out, err = run("finetune", "--from-index", "--index", str(ix), "--out", str(model), "--max-steps", "3",
                         "--train", "projections", "--force", "--quiet", "--device", "cpu")
    assert code == 0, err
    assert "text->image recall@1" in out and f"saved: {model}" in out and "mm-rag reindex" in out
    record = json.loads((model / "finetune.json").read_text())
    assert record["base"]["name"] == f"local-dir:{base_dir.resolve()}"  # the index's own model
    assert record["data"]["origins"] == {"caption": 24, "context": 24} and record["steps"] == 3
    # the base model is loaded in fp32 whatever --precision (the training autocast) says (issue 30)
    assert record["settings"]["base_precision"] == "fp32" and record["settings"]["precision"] in ("fp32", "bf16")

    code, out, err = run("finetune", "--pairs", str(tmp_path / "pairs.jsonl"), "--out", str(model), "--quiet")
    assert code == 1 and "already holds a fine-tuned model" in err


def test_reindex_switches_the_model_resumes_and_searches_better(base_dir, trained, tmp_path, monkeypatch) -> None:
    ix = tmp_path / "ix"
    kinds = build_index(ix, tmp_path / "images", f"local-dir:{base_dir}")
    registry = (ix / "sources.json").read_text()
    before = index_recall(ix, f"local-dir:{base_dir}", kinds)
    new_model = f"local-dir:{trained.out_dir}"

    # interrupted after its first batch of 16 points: the index is left as it was
    calls = {"n": 0}
    write = MultiModalIndex.write_points

    def write_then_stop(self, points):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return write(self, points)

    monkeypatch.setattr(MultiModalIndex, "write_points", write_then_stop)
    code, out, err = run("reindex", "--index", str(ix), "--model", new_model, "--batch-size", "16", "--quiet")
    assert code == 130 and "run the same command again to continue" in err
    monkeypatch.undo()
    with MultiModalIndex(ix, keyword_only=True, create=False) as old:
        assert old.model["name"] == f"local-dir:{base_dir.resolve()}" and len(old) == 72
    with MultiModalIndex(ix.with_name("ix.reindex"), keyword_only=True, create=False) as work:
        assert len(work) == 16 and work.model["name"] == f"local-dir:{Path(trained.out_dir).resolve()}"

    code, out, err = run("reindex", "--index", str(ix), "--model", new_model, "--batch-size", "16", "--quiet")
    assert code == 0, err
    assert "reindexed" in out and "72 items" in out and "16 from an interrupted run" in out
    assert not ix.with_name("ix.reindex").exists() and not ix.with_name("ix.before-reindex").exists()
    assert (ix / "sources.json").read_text() == registry

    tuned = OpenCLIPEmbedder(new_model, device="cpu")
    with MultiModalIndex(ix, create=False, embedder=tuned) as new:
        assert new.model["weights"]["sha256"] == model_identity(tuned)["weights"]["sha256"]
        assert len(new) == 72 and new.verify() == []  # blobs carried over, vectors sound
        texts = [p for batch in new.scan() for p in batch if p.payload["kind"] == "text"]
        assert len(texts) == 24
        want = tuned.embed_texts([p.payload["text"] for p in texts])
        assert np.allclose(np.stack([p.dense for p in texts]), want, atol=1e-5)
    after = index_recall(ix, new_model, kinds)
    assert before <= 0.25 and after >= 0.8 and after > before

    code, out, err = run("reindex", "--index", str(ix), "--model", new_model, "--quiet")
    assert code == 0 and "nothing to do" in out
    code, out, err = run("info", "--index", str(ix))
    assert code == 0 and "weights sha256 " + model_identity(tuned)["weights"]["sha256"][:12] in out


def test_reindex_finishes_a_swap_that_was_interrupted_and_keeps_the_old_index_when_asked(
    base_dir, trained, tmp_path, monkeypatch
) -> None:
    import mm_rag_plugin.finetune.reindexing as module
    from mm_rag_plugin.errors import StoreError

    ix = tmp_path / "ix"
    build_index(ix, tmp_path / "images", f"local-dir:{base_dir}")
    tuned = OpenCLIPEmbedder(f"local-dir:{trained.out_dir}", device="cpu")
    rename = module._rename
    calls = {"n": 0}

    def crash_on_second(a, b):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # after INDEX -> INDEX.before-reindex, before INDEX.reindex -> INDEX
        return rename(a, b)

    monkeypatch.setattr(module, "_rename", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        module.reindex(ix, tuned, keep_old=True)
    monkeypatch.undo()
    assert not ix.exists() and ix.with_name("ix.before-reindex").is_dir() and ix.with_name("ix.reindex").is_dir()
    report = module.reindex(ix, tuned, keep_old=True)
    assert report.points == 72 and report.kept_old == str(ix.with_name("ix.before-reindex"))
    with MultiModalIndex(ix, embedder=tuned, create=False) as new:
        assert len(new) == 72
    with pytest.raises(StoreError, match="before an earlier reindex"):
        module.reindex(ix, OpenCLIPEmbedder(f"local-dir:{base_dir}", device="cpu"))


# ---------------------------------------------------------------------------------------------- CLI arguments
@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["finetune", "--out", "m"], "one of the arguments --pairs --from-index is required"),
        (["finetune", "--pairs", "p.jsonl", "--from-index", "--out", "m"], "not allowed with argument"),
        (["finetune", "--pairs", "p.jsonl"], "give --out DIR"),
        (["finetune", "--pairs", "p.jsonl", "--out", "m", "--holdout", "0.9"], "must be within (0, 0.5]"),
        (["finetune", "--pairs", "p.jsonl", "--out", "m", "--batch-size", "1"], "must be at least 2"),
        (["finetune", "--pairs", "p.jsonl", "--out", "m", "--lr", "-1"], "must be a positive number"),
        (["finetune", "--pairs", "p.jsonl", "--out", "m", "--train", "some"], "invalid choice"),
        (["finetune", "--pairs", "p.jsonl", "--out", "m", "--ocr-text"], "apply to --from-index"),
        (["finetune", "--from-index", "--out", "m", "--url", "http://localhost:6333"], "not on a Qdrant server"),
        (["reindex"], "give the model to re-embed the index with"),
        (["reindex", "--model", "ViT-B-32", "--keyword-only"], "needs a model"),
    ],
)
def test_bad_arguments_exit_2_before_any_model_loads(argv, message, monkeypatch, capsys) -> None:
    def no_model(*a, **k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(OpenCLIPEmbedder, "__init__", no_model)
    with pytest.raises(SystemExit) as exit_info:
        run(*argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and f"usage: mm-rag {argv[0]}" in err and message in err, err


_PARSE = """
import contextlib, io, json, sys
from mm_rag_plugin.cli import main
codes = []
for argv in json.loads(sys.argv[1]):
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            codes.append(main(argv))
        except SystemExit as exc:
            codes.append(exc.code)
print(json.dumps({"codes": codes, "heavy": sorted({m.split(".")[0] for m in sys.modules} & {"torch", "open_clip", "qdrant_edge"})}))
"""


def test_argument_errors_load_neither_torch_nor_an_index() -> None:
    import subprocess
    import sys

    argvs = [["finetune", "--pairs", "p.jsonl"], ["finetune", "--from-index", "--out", "m", "--lr", "0"], ["reindex"]]
    proc = subprocess.run([sys.executable, "-c", _PARSE, json.dumps(argvs)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    res = json.loads(proc.stdout)
    assert res == {"codes": [2, 2, 2], "heavy": []}


def test_reindex_of_a_missing_index_fails_before_loading_a_model(tmp_path, monkeypatch) -> None:
    def no_model(*a, **k):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(OpenCLIPEmbedder, "__init__", no_model)
    code, _, err = run("reindex", "--index", str(tmp_path / "none"), "--model", "ViT-B-32")
    assert code == 1 and "no index here" in err


def test_the_readme_section_commands_parse_and_its_python_compiles() -> None:
    """The section's commands need a real corpus, so the README test does not run them: here they
    must at least parse, and the Python must compile and import what it uses."""
    import re
    import shlex

    from mm_rag_plugin.cli import _parse

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("## Fine-tune on your data", 1)[1].split("\n## ", 1)[0]
    lines = [line.split("#")[0].strip() for line in section.splitlines() if line.startswith("mm-rag ")]
    assert {line.split()[1] for line in lines} == {"finetune", "reindex"}
    for line in lines:
        _parse(shlex.split(line)[1:])
    code = [b for b in re.findall(r"```\n(.*?)```", section, re.S) if "import" in b]
    assert len(code) == 1
    compile(code[0], "README.md", "exec")
    exec("\n".join(line for line in code[0].splitlines() if line.startswith("from ")), {})
