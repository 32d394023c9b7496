"""A shared index folder is hostile input: its image payloads may point anywhere (issue 27).

A real index is built with the tiny model (a Markdown file whose PNGs, as data: URIs, land in
``blobs/``, and a PNG ingested directly), then crafted as a shared folder could be: an image point
whose path is absolute and outside, a ``../`` path, a symbolic link inside ``blobs/`` to an outside
file, and a blob whose bytes were replaced. The last three name the outside file's own hash (the
place alone refuses them); the absolute path keeps the genuine point's hash (the bytes refuse it). None of the outside bytes may reach Gemini (the loopback fake), ``verify``
must report each, ``copy_to`` must copy none; the genuine images still reach all three.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from mm_rag_plugin import MultiModalRAG
from mm_rag_plugin.generators import GeminiGenerator
from mm_rag_plugin.ids import content_hash
from mm_rag_plugin.retrievers.engine import Point
from mm_rag_plugin.retrievers.index import MultiModalIndex
from tests._cli import run
from tests.integration.fake_gemini import FakeGemini, Reply

WORDS = "zebra lighthouse chart"


def _png(path: Path, color: tuple[int, int, int], shape: str) -> bytes:
    img = Image.new("RGB", (96, 80), (250, 250, 250))
    draw = ImageDraw.Draw(img)
    (draw.ellipse if shape == "circle" else draw.rectangle)((12, 10, 84, 70), fill=color)
    img.save(path, format="PNG")
    return path.read_bytes()


@dataclasses.dataclass
class Crafted:
    folder: Path
    genuine: dict[str, bytes]  # what must still be read: blob (from the Markdown) and the image file
    secrets: dict[str, bytes]  # outside bytes (and the replacement blob) that must never be read
    crafted_sources: dict[str, str]  # case -> the source its crafted point names
    link: Path  # blobs/<hash>.png: a symbolic link to an outside file, planted by planted_link()
    target: Path

    @contextlib.contextmanager
    def planted_link(self) -> Iterator[None]:
        """The link appears once the index is open (opening refuses links under ``blobs/``): the
        images must be checked again when they are read."""
        os.symlink(self.target, self.link)
        try:
            yield
        finally:
            self.link.unlink()


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory, embedder) -> Crafted:
    root = tmp_path_factory.mktemp("crafted")
    docs, outside, folder = root / "docs", root / "outside", root / "ix"
    docs.mkdir()
    outside.mkdir()
    kept = _png(docs / "kept.png", (200, 30, 30), "circle")
    doomed = _png(docs / "doomed.png", (30, 160, 30), "square")
    photo = _png(docs / "photo.png", (30, 30, 200), "circle")
    uri = {name: "data:image/png;base64," + base64.b64encode(data).decode() for name, data in (("kept", kept), ("doomed", doomed))}
    (docs / "notes.md").write_text(
        f"# Notes\n\nThe {WORDS} figures follow.\n\n![{WORDS} one]({uri['kept']})\n\n![{WORDS} two]({uri['doomed']})\n",
        encoding="utf-8",
    )
    secrets = {name: _png(outside / f"{name}.png", (9, i * 40, 99), "square") for i, name in enumerate(
        ("absolute", "dotdot", "symlink", "replaced"), start=1
    )}

    with MultiModalRAG(folder, embedder=embedder, generator=None) as rag:
        summary = rag.ingest([docs / "notes.md", docs / "photo.png"], ocr=False)
        assert not summary.errors
    with MultiModalIndex(folder, embedder=embedder) as ix:
        images = [p for batch in ix.scan() for p in batch if p.payload["kind"] == "image"]
        assert len(images) == 3
        by_hash = {p.payload["content_hash"]: p for p in images}
        kept_point, doomed_point = by_hash[content_hash(kept)], by_hash[content_hash(doomed)]
        assert kept_point.payload["image_path"].startswith("blobs/")
        assert by_hash[content_hash(photo)].payload["image_path"] == str(docs / "photo.png")

        blobs = folder / "blobs"
        link = blobs / f"{content_hash(secrets['symlink'])}.png"  # named as a blob by its hash
        paths = {
            "absolute": (str(outside / "absolute.png"), None),  # an absolute path out of the index
            "dotdot": ("../outside/dotdot.png", "index"),  # joined onto the index folder
            "symlink": (f"blobs/{link.name}", "index"),
        }
        points, sources = [], {}
        for n, (case, (path, root_marker)) in enumerate(paths.items(), start=1):
            payload = dict(kept_point.payload, image_path=path)
            if case != "absolute":
                payload["content_hash"] = content_hash(secrets[case])
            payload.pop("file_hash", None)
            payload.pop("image_root", None)
            if root_marker:
                payload["image_root"] = root_marker
            sources[case] = payload["source"] = f"{docs / case}.md"
            payload["sources"] = [payload["source"]]
            points.append(Point(f"00000000-0000-0000-0000-00000000000{n}", kept_point.dense, kept_point.sparse, payload))
        ix.write_points(points)
        (folder / doomed_point.payload["image_path"]).write_bytes(secrets["replaced"])
        sources["replaced"] = doomed_point.payload["source"]
    return Crafted(folder, {"blob": kept, "file": photo}, secrets, sources, link, outside / "symlink.png")


def test_no_outside_bytes_reach_gemini_and_genuine_images_do(crafted: Crafted, embedder, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="mm_rag_plugin.retrievers.index")
    with FakeGemini() as server, MultiModalRAG(
        crafted.folder, embedder=embedder, generator=GeminiGenerator(base_url=server.url, api_key="AIzaFAKE-key", timeout=10)
    ) as rag:
        server.default = Reply.answer("See [1].")
        with crafted.planted_link():
            rag.ask(f"{WORDS} figure", k=20)
        (req,) = server.requests
    sent = [data for _, data in req.images]
    assert not [name for name, data in crafted.secrets.items() if data in sent]
    assert crafted.genuine["blob"] in sent and crafted.genuine["file"] in sent
    warned = [r.getMessage() for r in caplog.records if "image not read" in r.getMessage()]
    for case, source in crafted.crafted_sources.items():
        assert any(m.startswith(source) for m in warned), (case, warned)
    assert all("\n" not in m for m in warned)


def test_verify_reports_each_crafted_image_and_passes_the_genuine(crafted: Crafted) -> None:
    code, out, _ = run("verify", "--index", str(crafted.folder))
    assert code == 1 and "leaves the index folder" in out and "not the image indexed" in out
    with MultiModalIndex(crafted.folder, create=False) as ix, crafted.planted_link():
        problems = ix.verify()
    image_problems = [p for p in problems if "image" in p]
    assert len(image_problems) == 4, problems
    expected = {
        "absolute": "not the image indexed",
        "dotdot": "leaves the index folder",
        "symlink": "symbolic link inside the index",
        "replaced": "not the image indexed",
    }
    for case, words in expected.items():
        assert any(words in p and p.endswith(f"({crafted.crafted_sources[case]})") for p in image_problems), (case, problems)


def test_copy_to_copies_no_crafted_image_and_every_genuine_one(crafted: Crafted, tmp_path: Path) -> None:
    target = tmp_path / "copy"
    with MultiModalIndex(crafted.folder, create=False) as ix, crafted.planted_link():
        n = len(ix)
        copy = ix.copy_to(target, show_progress=False)
    with copy:
        assert len(copy) == n
        copied = {p: p.read_bytes() for p in (target / "blobs").rglob("*") if p.is_file() or p.is_symlink()}
        assert not [p for p in copied if p.is_symlink()]
        assert not [name for name, data in crafted.secrets.items() if data in copied.values()]
        assert list(copied.values()) == [crafted.genuine["blob"]]
        # the genuine images are read from the copy; what was not copied is missing there, not read
        ids = [p.id for batch in copy.scan() for p in batch if p.payload["kind"] == "image"]
        chunks = copy.chunks(ids).values()
        readable = {Path(c.image_path).read_bytes() for c in chunks if Path(c.image_path).exists()}
        assert readable == {crafted.genuine["blob"], crafted.genuine["file"]}
