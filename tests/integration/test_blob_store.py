"""The blob store behind ``blobs=``: fsspec's ``memory://`` and a local folder (``file://``).

What the manifest records and refuses, the store's writes (content-addressed, once), the hash
check of bytes read back, ``copy_to(..., blobs=)`` from a folder's ``blobs/`` to a store, and the
one-line error when the ``blobs`` extra is missing. The S3 round trip is in test_blob_store_s3.py.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from PIL import Image
from qdrant_client import QdrantClient

from mm_rag_plugin.errors import ConfigurationError, MissingDependencyError, StoreError
from mm_rag_plugin.retrievers import MultiModalIndex
from mm_rag_plugin.retrievers.blobstore import FsspecBlobs, blob_url, open_blob_store
from mm_rag_plugin.types import ImageChunk
from tests._cli import run as run_cli

pytest.importorskip("fsspec")


def _png(path: Path, color: tuple[int, int, int]) -> Path:
    Image.new("RGB", (64, 48), color).save(path)
    return path


def _image_chunk(path: Path) -> ImageChunk:
    from mm_rag_plugin.ids import content_hash

    digest = content_hash(path.read_bytes())
    return ImageChunk(id=digest, source=str(path), image_path=str(path), content_hash=digest, caption="a red square")


def test_memory_store_writes_each_key_once_and_reads_what_was_written():
    store = open_blob_store(blob_url("memory://unit-store/prefix"))
    assert isinstance(store, FsspecBlobs)
    key = "0" * 32 + ".png"
    assert store.get(key, 100) is None
    assert store.put(key, b"first") is True
    assert store.put(key, b"second") is False  # content-addressed: a key there is kept
    assert store.get(key, 100) == b"first"


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("nosuchscheme://bucket/x", "not one fsspec knows"),
        ("s3://key:secret@bucket/x", "must not hold credentials"),
        ("s3://", "must be a URL"),
    ],
)
def test_a_bad_blob_url_is_refused_in_one_line(value, why, tmp_path):
    with pytest.raises(ConfigurationError, match=why) as err:
        MultiModalIndex(tmp_path / "ix", dim=4, blobs=value)
    assert "\n" not in str(err.value) and "secret" not in str(err.value)
    assert not (tmp_path / "ix").exists()


def test_the_manifest_records_the_url_and_reopening_holds_to_it(embedder, tmp_path):
    url = "memory://manifest-test/images"
    png = _png(tmp_path / "red.png", (200, 0, 0))
    with MultiModalIndex(tmp_path / "ix", embedder=embedder, blobs=url, blob_options={"skip_instance_cache": False}) as ix:
        ix.add([_image_chunk(png)])
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    assert manifest["blobs"] == url and "skip_instance_cache" not in json.dumps(manifest)  # options never recorded
    png.unlink()  # only the store has the bytes now
    with MultiModalIndex(tmp_path / "ix", embedder=embedder) as ix:
        assert ix.blobs == url
        (payload,) = ix.payloads(ix.ids_where(())).values()
        assert Image.open(payload["image_path"]).getpixel((0, 0)) == (200, 0, 0)
        assert ix.verify() == []
    with pytest.raises(ConfigurationError, match="keeps its images in memory://manifest-test/images, not in memory://other") as err:
        MultiModalIndex(tmp_path / "ix", embedder=embedder, blobs="memory://other")
    assert "\n" not in str(err.value)


def test_a_crafted_blob_url_in_the_manifest_is_refused(embedder, tmp_path):
    with MultiModalIndex(tmp_path / "ix", embedder=embedder, blobs="memory://crafted") as ix:
        ix.add([_image_chunk(_png(tmp_path / "a.png", (0, 0, 200)))])
    path = tmp_path / "ix" / "manifest.json"
    manifest = json.loads(path.read_text())
    for bad in ("nosuchscheme://x/y", 17, "s3://user:pw@bucket"):
        path.write_text(json.dumps({**manifest, "blobs": bad}))
        with pytest.raises(StoreError, match="damaged index: blobs") as err:
            MultiModalIndex(tmp_path / "ix", embedder=embedder)
        assert "\n" not in str(err.value)


def test_copy_to_a_server_moves_folder_images_into_the_store(embedder, tmp_path):
    png = _png(tmp_path / "green.png", (0, 200, 0))
    blob_dir = tmp_path / "ix" / "blobs"
    blob_dir.mkdir(parents=True)
    inside = blob_dir / png.name
    inside.write_bytes(png.read_bytes())
    chunk = _image_chunk(png)
    client = QdrantClient(location=":memory:")
    with MultiModalIndex(tmp_path / "ix", embedder=embedder) as ix:
        extracted = ImageChunk(id=chunk.id, source="doc.pdf", image_path=str(inside), content_hash=chunk.content_hash)
        ix.add([extracted])
        target = ix.copy_to(url=None, client=client, blobs="file://" + str(tmp_path / "store"), show_progress=False)
    with target:
        assert target.blobs == f"file://{tmp_path / 'store'}"
        (stored,) = (tmp_path / "store").iterdir()
        assert stored.read_bytes() == png.read_bytes() and stored.name == f"{chunk.content_hash}.png"
    inside.unlink()
    png.unlink()
    with MultiModalIndex(client=client, embedder=embedder, create=False) as server:
        (payload,) = server.payloads(server.ids_where(())).values()
        assert Path(payload["image_path"]).read_bytes() == stored.read_bytes()
        assert server.verify() == []
        stored.write_bytes(b"replaced")  # a store is checked like a folder: changed bytes are refused
        assert any("not the image indexed" in p for p in server.verify())


def test_without_fsspec_the_error_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "fsspec", None)  # makes `import fsspec` fail
    with pytest.raises(MissingDependencyError, match=r"pip install 'mm-rag-plugin\[blobs\]'") as err:
        FsspecBlobs("memory://x/y")
    assert "\n" not in str(err.value)


def test_cli_ingest_records_blobs_and_verify_reads_them(model_env, tmp_path):
    store = tmp_path / "store"
    _png(tmp_path / "docs.png", (9, 9, 9))
    code, out, err = run_cli("ingest", str(tmp_path / "docs.png"), "--index", str(tmp_path / "ix"), "--blobs", str(store), "-q")
    assert code == 0, err
    code, out, err = run_cli("info", "--index", str(tmp_path / "ix"), "--json")
    assert json.loads(out)["blobs"] == store.as_uri()
    assert len(list(store.iterdir())) == 1
    code, out, _ = run_cli("verify", "--index", str(tmp_path / "ix"))
    assert code == 0 and out.startswith("ok")
    next(store.iterdir()).unlink()
    code, out, _ = run_cli("verify", "--index", str(tmp_path / "ix"))
    assert code == 1 and "missing from the blob store" in out
