"""OpenCLIPEmbedder on a real (tiny, briefly trained) open_clip model."""

from __future__ import annotations

import copy
import io
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mm_rag_plugin import EmbeddingResult, InvalidInputError, ModelLoadError, OpenCLIPEmbedder
from mm_rag_plugin.embeddings.open_clip import select_device
from mm_rag_plugin.errors import ConfigurationError
from mm_rag_plugin.testing import SHAPE_COLORS, SHAPE_KINDS, draw_shape

CLASSES = [(c, k) for c in SHAPE_COLORS for k in SHAPE_KINDS]


def _unit(vecs: np.ndarray) -> None:
    assert vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vecs, axis=-1), 1.0, atol=1e-5)


def test_text_query_ranks_the_matching_image_first(embedder: OpenCLIPEmbedder) -> None:
    rng = random.Random(2024)  # fresh drawings the model never saw
    for _ in range(3):
        images = [draw_shape(c, k, rng=rng) for c, k in CLASSES]
        image_vecs = embedder.embed_images(images)
        for i, (color, kind) in enumerate(CLASSES):
            scores = image_vecs @ embedder.embed_query(f"a {color} {kind}")
            assert int(np.argmax(scores)) == i, f"'{color} {kind}' ranked {CLASSES[int(np.argmax(scores))]} first"


def test_image_query_finds_its_neighbour(embedder: OpenCLIPEmbedder) -> None:
    rng = random.Random(7)
    gallery = embedder.embed_images([draw_shape(c, k, rng=rng) for c, k in CLASSES])
    hits = 0
    for i, (c, k) in enumerate(CLASSES):
        q = embedder.embed_query(image=draw_shape(c, k, rng=rng))
        hits += int(np.argmax(gallery @ q)) == i
    assert hits >= len(CLASSES) - 1  # image->image is not trained directly; allow one miss


def test_vectors_are_unit_float32_and_shaped(embedder: OpenCLIPEmbedder) -> None:
    t = embedder.embed_texts(["a red circle", "", "blue"])
    i = embedder.embed_images([draw_shape("red", "circle")])
    assert t.shape == (3, embedder.dim) and i.shape == (1, embedder.dim) and embedder.dim == 64
    _unit(t)
    _unit(i)
    assert embedder.embed_texts([]).shape == (0, 64)
    assert embedder.embed_images([]).shape == (0, 64)


def test_output_order_equals_input_order_and_batching_does_not_change_results(tiny_clip_dir: Path) -> None:
    # fp32: bf16 results depend on the batch shape (other kernels) within bf16's rounding
    kw = {"device": "cpu", "cache_size": 0, "precision": "fp32"}
    e1 = OpenCLIPEmbedder(f"local-dir:{tiny_clip_dir}", batch_size=1, text_batch_size=1, **kw)
    e7 = OpenCLIPEmbedder(f"local-dir:{tiny_clip_dir}", batch_size=7, text_batch_size=5, **kw)
    rng = random.Random(3)
    images = [draw_shape(*rng.choice(CLASSES), rng=rng) for _ in range(17)]
    texts = [f"text number {i} " + "word " * i for i in range(23)]
    np.testing.assert_allclose(e1.embed_images(images), e7.embed_images(images), atol=1e-5)
    np.testing.assert_allclose(e1.embed_texts(texts), e7.embed_texts(texts), atol=1e-5)
    singles = np.stack([e7.embed_texts([t])[0] for t in texts])
    np.testing.assert_allclose(e7.embed_texts(texts), singles, atol=1e-5)
    reversed_ = e7.embed_images(images[::-1])[::-1]
    np.testing.assert_allclose(e7.embed_images(images), reversed_, atol=1e-5)


def test_text_longer_than_the_context_is_truncated_not_a_crash(embedder: OpenCLIPEmbedder) -> None:
    long = "a red circle " + "and many more words " * 2000
    vec = embedder.embed_texts([long])
    _unit(vec)
    # only the first context_length tokens count: a different tail gives the same vector
    other = "a red circle " + "and many more words " * 1000 + "but a blue square at the very end"
    np.testing.assert_allclose(vec[0], embedder.embed_texts([other])[0], atol=1e-6)


def test_image_inputs_path_bytes_data_uri_pil_agree(embedder: OpenCLIPEmbedder, tmp_path: Path) -> None:
    import base64

    img = draw_shape("green", "triangle")
    path = tmp_path / "g.png"
    img.save(path)
    data = path.read_bytes()
    uri = "data:image/png;base64," + base64.b64encode(data).decode()
    vecs = embedder.embed_images([path, str(path), data, uri, img])
    for v in vecs[1:]:
        np.testing.assert_allclose(v, vecs[0], atol=1e-5)


def test_odd_pixel_modes_and_exif_are_handled(embedder: OpenCLIPEmbedder) -> None:
    base = draw_shape("blue", "square")
    cmyk, pal, rgba = base.convert("CMYK"), base.convert("P"), base.convert("RGBA")
    gray16 = Image.fromarray(np.asarray(base.convert("L"), dtype=np.uint16) * 257)
    assert gray16.mode == "I;16"
    vecs = embedder.embed_images([base, cmyk, pal, rgba, gray16])
    _unit(vecs)
    assert float(vecs[1] @ vecs[0]) > 0.95 and float(vecs[3] @ vecs[0]) > 0.99


def test_bad_image_raises_naming_it_or_is_collected(embedder: OpenCLIPEmbedder, shared_data: Path) -> None:
    good = draw_shape("red", "square")
    bad = shared_data / "malformed_images" / "files" / "truncated_image.png"
    with pytest.raises(InvalidInputError, match=r"truncated_image\.png"):
        embedder.embed_images([good, bad])
    result = embedder.embed_images([good, bad, b"garbage", good], on_error="collect")
    assert isinstance(result, EmbeddingResult)
    assert result.ok.tolist() == [True, False, False, True]
    assert [e.index for e in result.errors] == [1, 2]
    assert "truncated_image.png" in str(result.errors[0])
    assert np.isnan(result.vectors[1]).all() and result.good.shape == (2, embedder.dim)
    np.testing.assert_allclose(result.vectors[0], embedder.embed_images([good])[0], atol=1e-6)


def test_decompression_bomb_limit_is_configurable(tiny_clip_dir: Path) -> None:
    e = OpenCLIPEmbedder(f"local-dir:{tiny_clip_dir}", device="cpu", max_image_pixels=64 * 64)
    with pytest.raises(InvalidInputError, match="over the limit"):
        e.embed_images([Image.new("RGB", (100, 100))])
    assert e.embed_images([Image.new("RGB", (64, 64))]).shape == (1, 64)


def test_text_input_validation(embedder: OpenCLIPEmbedder) -> None:
    with pytest.raises(InvalidInputError, match="not one string"):
        embedder.embed_texts("a red circle")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"texts\[1\]: expected str, got int"):
        embedder.embed_texts(["ok", 3])  # type: ignore[list-item]
    with pytest.raises(InvalidInputError, match="needs a text query"):
        embedder.embed_query()


def test_multimodal_is_the_normalised_weighted_sum(embedder: OpenCLIPEmbedder) -> None:
    img = draw_shape("red", "circle")
    t, i = embedder.embed_texts(["blue"])[0], embedder.embed_images([img])[0]
    for w in (0.0, 0.3, 0.5, 1.0):
        expected = w * t + (1 - w) * i
        expected /= np.linalg.norm(expected)
        np.testing.assert_allclose(embedder.embed_multimodal("blue", img, weight=w), expected, atol=1e-5)
    np.testing.assert_allclose(embedder.embed_query("blue", image=img), embedder.embed_multimodal("blue", img))
    with pytest.raises(ConfigurationError):
        embedder.embed_multimodal("blue", img, weight=1.5)
    batch = embedder.embed_multimodal_batch(["blue", "green"], [img, img])
    assert batch.shape == (2, 64)
    _unit(batch)


def test_composed_query_moves_towards_the_edit(embedder: OpenCLIPEmbedder) -> None:
    """'this circle, but blue': red circle image + text 'blue circle' finds the blue circle."""
    rng = random.Random(11)
    gallery = {(c, k): draw_shape(c, k, rng=rng) for c, k in CLASSES}
    vecs = embedder.embed_images(list(gallery.values()))
    q = embedder.embed_query("a blue circle", image=gallery[("red", "circle")], weight=0.6)
    best = list(gallery)[int(np.argmax(vecs @ q))]
    assert best == ("blue", "circle")


def test_cache_avoids_re_encoding(tiny_clip_dir: Path) -> None:
    e = OpenCLIPEmbedder(f"local-dir:{tiny_clip_dir}", device="cpu", cache_size=100)
    img = draw_shape("red", "circle")
    first = e.embed_images([img, img])
    info = e.cache_info
    again = e.embed_images([img])
    assert e.cache_info["hits"] > info["hits"]
    np.testing.assert_array_equal(first[0], again[0])
    e.embed_texts(["x", "x", "y"])
    assert e.cache_info["size"] == 3  # one image, two distinct texts
    e.clear_cache()
    assert e.cache_info["size"] == 0


async def test_async_twins_match_sync(embedder: OpenCLIPEmbedder) -> None:
    img = draw_shape("yellow", "triangle")
    np.testing.assert_allclose(await embedder.aembed_texts(["a"]), embedder.embed_texts(["a"]))
    np.testing.assert_allclose(await embedder.aembed_images([img]), embedder.embed_images([img]))
    np.testing.assert_allclose(await embedder.aembed_query("q"), embedder.embed_query("q"))


# --------------------------------------------------------------------------- loading


def test_plain_directory_path_loads_like_local_dir(tiny_clip_dir: Path) -> None:
    e = OpenCLIPEmbedder(str(tiny_clip_dir), device="cpu")
    assert e.model_name == f"local-dir:{tiny_clip_dir}" and e.dim == 64


def test_checkpoint_file_with_registered_architecture(tiny_clip_dir: Path, tmp_path: Path) -> None:
    import open_clip

    cfg = json.loads((tiny_clip_dir / "open_clip_config.json").read_text())["model_cfg"]
    (tmp_path / "mm-rag-tiny-test.json").write_text(json.dumps(cfg))
    open_clip.add_model_config(tmp_path / "mm-rag-tiny-test.json")
    ckpt = tmp_path / "weights.bin"
    shutil.copy(tiny_clip_dir / "open_clip_pytorch_model.bin", ckpt)
    e = OpenCLIPEmbedder("mm-rag-tiny-test", checkpoint=ckpt, device="cpu")
    ref = OpenCLIPEmbedder(f"local-dir:{tiny_clip_dir}", device="cpu")
    np.testing.assert_allclose(e.embed_texts(["a red circle"]), ref.embed_texts(["a red circle"]), atol=1e-5)


def test_env_vars_select_model_and_device(tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MM_RAG_MODEL", f"local-dir:{tiny_clip_dir}")
    monkeypatch.setenv("MM_RAG_DEVICE", "cpu")
    e = OpenCLIPEmbedder()
    assert e.model_name == f"local-dir:{tiny_clip_dir}" and e.device == "cpu"
    assert select_device("cpu") == "cpu"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"model_name": "local-dir:/no/such/folder"},
        {"model_name": "ViT-B-32", "checkpoint": "/no/such/weights.bin"},
        {"model_name": "not-an-architecture", "pretrained": "x"},
    ],
)
def test_unloadable_model_says_how_to_point_at_a_local_checkpoint(kwargs: dict) -> None:
    with pytest.raises(ModelLoadError) as info:
        OpenCLIPEmbedder(device="cpu", **kwargs)
    msg = str(info.value)
    assert "checkpoint=" in msg and "local-dir:" in msg and "$MM_RAG_MODEL" in msg and "$MM_RAG_CHECKPOINT" in msg


def test_unreachable_hub_fails_fast_with_guidance(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import time

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    for var in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: refused at once
    started = time.perf_counter()
    with pytest.raises(ModelLoadError, match="hub is unreachable and the weights are not in the local cache"):
        OpenCLIPEmbedder("ViT-B-32", "laion2b_s34b_b79k", device="cpu", cache_dir=str(tmp_path))
    assert time.perf_counter() - started < 20, "must not sit in download retries"


def test_random_weights_for_benchmarks() -> None:
    e = OpenCLIPEmbedder("RN50", load_weights=False, device="cpu")
    assert e.pretrained is None and e.dim == 1024


def test_bad_configuration_is_rejected(tiny_clip_dir: Path) -> None:
    d = f"local-dir:{tiny_clip_dir}"
    with pytest.raises(ConfigurationError, match="needs a GPU"):
        OpenCLIPEmbedder(d, device="cpu", precision="fp16")
    with pytest.raises(ConfigurationError, match="batch sizes"):
        OpenCLIPEmbedder(d, device="cpu", batch_size=0)
    with pytest.raises(ConfigurationError, match="precision"):
        OpenCLIPEmbedder(d, device="cpu", precision="fp8")  # type: ignore[arg-type]


def test_prebuilt_model_objects_can_be_passed(tiny_clip_dir: Path) -> None:
    import open_clip

    name = f"local-dir:{tiny_clip_dir}"
    model, _, preprocess = open_clip.create_model_and_transforms(name)
    e = OpenCLIPEmbedder(model=model, preprocess=preprocess, tokenizer=open_clip.get_tokenizer(name), device="cpu")
    ref = OpenCLIPEmbedder(name, device="cpu", precision="fp32")  # open_clip builds it in fp32
    assert e.precision == "fp32"
    np.testing.assert_allclose(e.embed_texts(["hi"]), ref.embed_texts(["hi"]), atol=1e-6)
    buf = io.BytesIO()
    draw_shape("red", "circle").save(buf, format="PNG")
    np.testing.assert_allclose(e.embed_images([buf.getvalue()]), ref.embed_images([buf.getvalue()]), atol=1e-6)


def test_padding_trim_gives_exactly_what_open_clip_encode_text_gives(tiny_clip_dir: Path) -> None:
    import torch

    embedder = OpenCLIPEmbedder(f"local-dir:{tiny_clip_dir}", device="cpu", precision="fp32")
    assert embedder._trim_padding, "the tiny CLIP has a causal text tower with EOT pooling"
    rng = random.Random(5)
    words = ["red", "blue", "green", "circle", "square", "triangle", "a", "the", "of", "photo"]
    texts = [" ".join(rng.choice(words) for _ in range(rng.randint(0, 60))) for _ in range(30)]
    embedder.clear_cache()
    ours = embedder.embed_texts(texts)
    with torch.inference_mode():
        tokens = embedder.tokenizer(texts, context_length=embedder.context_length)
        ref = torch.nn.functional.normalize(embedder.model.encode_text(tokens), dim=-1).numpy()
    np.testing.assert_allclose(ours, ref, atol=1e-6)


async def test_one_text_or_one_image_gives_one_vector(embedder: OpenCLIPEmbedder, tmp_path: Path) -> None:
    path = tmp_path / "x.png"
    draw_shape("red", "circle").save(path)
    for image in (str(path), path, path.read_bytes(), draw_shape("red", "circle")):
        vec = embedder.embed_image(image)
        assert vec.shape == (embedder.dim,) and vec.dtype == np.float32
        np.testing.assert_allclose(vec, embedder.embed_images([str(path)])[0], atol=1e-5)
    np.testing.assert_allclose(await embedder.aembed_image(str(path)), embedder.embed_image(str(path)))
    text = embedder.embed_text("a red circle")
    assert text.shape == (embedder.dim,)
    np.testing.assert_allclose(text, embedder.embed_texts(["a red circle"])[0])
    np.testing.assert_allclose(await embedder.aembed_text("a red circle"), text)
    with pytest.raises(InvalidInputError, match=r"not one \(use embed_image\)"):
        embedder.embed_images(str(path))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"not a list \(use embed_images\)"):
        embedder.embed_image([str(path)])  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match=r"use embed_texts"):
        embedder.embed_text(["a"])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------- precision
def test_precision_auto_is_bf16_only_where_the_cpu_computes_it_natively(monkeypatch: pytest.MonkeyPatch) -> None:
    from mm_rag_plugin.embeddings import open_clip as oc

    monkeypatch.delenv("MM_RAG_PRECISION", raising=False)
    monkeypatch.setattr(oc, "native_bf16", lambda device: True)
    assert oc.resolve_precision("auto", "cpu") == "bf16"
    assert oc.resolve_precision(None, "cpu") == "bf16"
    assert oc.resolve_precision("auto", "cuda") == "fp32"  # GPUs: fp32 unless asked
    assert oc.resolve_precision("fp32", "cpu") == "fp32"
    monkeypatch.setenv("MM_RAG_PRECISION", "fp32")
    assert oc.resolve_precision("auto", "cpu") == "fp32"  # the environment overrides auto ...
    assert oc.resolve_precision("bf16", "cpu") == "bf16"  # ... not an explicit choice
    monkeypatch.setenv("MM_RAG_PRECISION", "half")
    with pytest.raises(ConfigurationError, match="MM_RAG_PRECISION"):
        oc.resolve_precision("auto", "cpu")
    monkeypatch.delenv("MM_RAG_PRECISION")
    monkeypatch.setattr(oc, "native_bf16", lambda device: False)
    assert oc.resolve_precision("auto", "cpu") == "fp32"  # emulated bf16 is slower than fp32
    with pytest.raises(ConfigurationError, match="needs a GPU"):
        oc.resolve_precision("fp16", "cpu")
    with pytest.raises(ConfigurationError, match="precision must be one of"):
        oc.resolve_precision("int4", "cpu")


def test_bf16_agrees_with_fp32_and_still_ranks_right(tiny_clip_dir: Path) -> None:
    """bf16 runs every weight in bfloat16 (open_clip's mixed "bf16" fails on ViT image towers)."""
    import torch

    fp32 = OpenCLIPEmbedder(f"local-dir:{tiny_clip_dir}", device="cpu", precision="fp32")
    bf16 = OpenCLIPEmbedder(f"local-dir:{tiny_clip_dir}", device="cpu", precision="bf16")
    assert bf16.precision == "bf16" and all(p.dtype == torch.bfloat16 for p in bf16.model.parameters())
    rng = random.Random(11)
    classes = [rng.choice(CLASSES) for _ in range(24)]
    images = [draw_shape(c, k, rng=rng) for c, k in classes]
    texts = [f"a {c} {k}" for c, k in classes]
    for a, b in ((fp32.embed_images(images), bf16.embed_images(images)), (fp32.embed_texts(texts), bf16.embed_texts(texts))):
        assert b.dtype == np.float32 and np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
        cos = (a * b).sum(axis=1)
        assert cos.min() >= 0.99, cos.min()
    query = bf16.embed_text("a red circle")
    gallery = bf16.embed_images([draw_shape(c, k) for c, k in CLASSES])
    assert CLASSES[int(np.argmax(gallery @ query))] == ("red", "circle")


def test_a_vit_image_tower_runs_in_bf16() -> None:
    vit = OpenCLIPEmbedder("ViT-B-32", load_weights=False, device="cpu", precision="bf16", batch_size=2)
    vecs = vit.embed_images([draw_shape("red", "circle"), draw_shape("blue", "square")])
    assert vecs.shape == (2, 512) and np.isfinite(vecs).all()


def test_a_callers_model_keeps_its_precision_and_the_index_records_it(tiny_clip_dir: Path, tmp_path: Path) -> None:
    import torch

    from mm_rag_plugin import MultiModalIndex

    base = OpenCLIPEmbedder(f"local-dir:{tiny_clip_dir}", device="cpu", precision="fp32")
    theirs = OpenCLIPEmbedder(
        model=copy.deepcopy(base.model).to(torch.bfloat16), preprocess=base.preprocess, tokenizer=base.tokenizer, precision="fp32"
    )
    assert theirs.precision == "bf16"  # what the given model computes in, not what was asked
    with MultiModalIndex(tmp_path / "ix", embedder=base) as index:
        assert index.model is not None and index.model["precision"] == "fp32"


def test_loaded_weights_are_exactly_the_checkpoints_and_a_folder_without_weights_is_refused(
    tiny_clip_dir: Path, tmp_path: Path
) -> None:
    """The model is built without its random fill (every weight then comes from the file): what
    is loaded equals the file bit for bit, and a folder whose weights are missing is an error
    rather than a randomly initialised (or uninitialised) model."""
    import torch

    saved = torch.load(tiny_clip_dir / "open_clip_pytorch_model.bin", weights_only=True)
    e = OpenCLIPEmbedder(f"local-dir:{tiny_clip_dir}", device="cpu", precision="fp32")
    state = e.model.state_dict()
    assert set(saved) <= set(state)
    for key, value in saved.items():
        assert torch.equal(state[key], value), key
    no_weights = tmp_path / "config-only"
    no_weights.mkdir()
    shutil.copy(tiny_clip_dir / "open_clip_config.json", no_weights)
    with pytest.raises(ModelLoadError, match="could not load open_clip model"):
        OpenCLIPEmbedder(f"local-dir:{no_weights}", device="cpu")
    # random weights, asked for, are still random numbers
    rnd = OpenCLIPEmbedder(f"local-dir:{tiny_clip_dir}", load_weights=False, device="cpu", precision="fp32")
    assert not torch.equal(rnd.model.state_dict()["text_projection"], saved["text_projection"])


def test_skip_random_init_is_for_the_calling_thread_only() -> None:
    """While one thread builds a model without the random fill, layers built by another thread
    still get it; afterwards torch.nn.init is as it was."""
    import threading

    import torch
    from torch.nn import init

    from mm_rag_plugin.embeddings._skip_init import skip_random_init

    originals = {n: getattr(init, n) for n in ("normal_", "kaiming_uniform_", "zeros_", "trunc_normal_")}
    inside, other_done = threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def builder() -> None:
        with skip_random_init():
            layer = torch.nn.Linear(64, 64)
            layer.weight.data.fill_(7.0)
            init.kaiming_uniform_(layer.weight)  # skipped in this thread
            seen["skipped here"] = bool((layer.weight == 7.0).all())
            inside.set()
            other_done.wait(10)

    def other() -> None:
        inside.wait(10)
        t = torch.full((64, 64), 7.0)
        init.normal_(t)  # filled in this thread, though the builder is inside its block
        seen["filled there"] = not bool((t == 7.0).any())
        other_done.set()

    threads = [threading.Thread(target=builder), threading.Thread(target=other)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    assert seen == {"skipped here": True, "filled there": True}
    assert all(getattr(init, n) is f for n, f in originals.items())
