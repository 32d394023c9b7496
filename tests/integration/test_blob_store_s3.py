"""Images on shared storage: a server index whose images live in an S3 blob store.

A real S3-compatible server (moto's server mode) runs on 127.0.0.1; qdrant-client's local mode
stands in for the Qdrant server. Ingest writes a PDF's images to S3 and records the store's URL
in the collection's manifest; another working directory with no index folder then opens the
collection, and an answer carries the exact image bytes, read from S3 and checked by hash.
"""

from __future__ import annotations

import logging
import shutil
import socket
from pathlib import Path

import pytest

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")
boto3 = pytest.importorskip("boto3")

from qdrant_client import QdrantClient  # noqa: E402

from mm_rag_plugin.generators import GeminiGenerator  # noqa: E402
from mm_rag_plugin.readers import load_documents  # noqa: E402
from mm_rag_plugin.retrievers import FusedRetriever, MultiModalIndex  # noqa: E402
from tests.integration.fake_gemini import FakeGemini, Reply  # noqa: E402

PDF = "pdfs/text_figures/unst__embedded-images-tables.pdf"
BUCKET = "mm-rag-images"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3():
    """An S3 server on 127.0.0.1 with one bucket; the endpoint and dummy credentials are given the
    way users give them: the standard AWS environment variables."""
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=_free_port())
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        mp.setenv("AWS_DEFAULT_REGION", "us-east-1")
        mp.setenv("AWS_ENDPOINT_URL", endpoint)
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        try:
            yield client
        finally:
            import s3fs

            s3fs.S3FileSystem.clear_instance_cache()
            server.stop()


@pytest.fixture
def served(s3, shared_data: Path, embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A PDF with images ingested into a "server" collection, its images in S3 under a prefix of
    this test's own; the reader's local copies deleted afterwards. Yields (client, url, originals)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache-ingest"))
    url = f"s3://{BUCKET}/{tmp_path.name}"
    staging = tmp_path / "staging"
    read = load_documents(shared_data / PDF, blob_dir=str(staging), ocr=False, show_progress=False)
    images = [c for c in read.chunks if c.kind == "image"]
    assert len(images) == 2 and not read.errors
    originals = {c.content_hash: Path(c.image_path).read_bytes() for c in images}
    client = QdrantClient(location=":memory:")
    with MultiModalIndex(client=client, embedder=embedder, blobs=url) as ix:
        report = ix.add(read)
        assert report.ok and report.added == len(read.chunks)
    shutil.rmtree(staging)  # nothing of the ingest is left on this machine
    yield client, url, originals


def _other_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """Another working directory, no index folder, an empty cache."""
    elsewhere = tmp_path / name
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("XDG_CACHE_HOME", str(elsewhere / "cache"))


def _keys(s3, url: str) -> dict[str, bytes]:
    prefix = url.split("/", 3)[3] + "/"
    listed = s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])
    return {o["Key"][len(prefix):]: s3.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read() for o in listed}


def test_an_answer_elsewhere_carries_the_image_bytes_from_s3(s3, served, embedder, tmp_path, monkeypatch):
    client, url, originals = served
    # the images are in S3, content-addressed, and nowhere else
    stored = _keys(s3, url)
    assert sorted(stored.values()) == sorted(originals.values())
    assert {k.partition(".")[0] for k in stored} == set(originals)

    _other_machine(tmp_path, monkeypatch, "web-worker")
    assert not any(Path.cwd().iterdir())
    with MultiModalIndex(client=client, embedder=embedder, create=False) as ix:
        assert ix.path is None and ix.blobs == url  # learned from the collection's manifest
        hits = FusedRetriever(ix, embedder).retrieve("figure", k=10, filters={"kind": "image"})
        assert len(hits) == 2
        for hit in hits:
            assert Path(hit.chunk.image_path).read_bytes() == originals[hit.chunk.content_hash]
        with FakeGemini() as server:
            server.default = Reply.answer("The figure [1].")
            GeminiGenerator(api_key="AIzaFAKE-blobs", base_url=server.url, timeout=5).generate(
                "What do the figures show?", hits
            )
            (req,) = server.requests
        sent = [data for _, data in req.images]
        assert sorted(sent) == sorted(originals.values())
        assert ix.verify() == []


def test_changed_or_missing_objects_are_refused_and_reported(s3, served, embedder, tmp_path, monkeypatch, caplog):
    client, url, _ = served
    keys = sorted(_keys(s3, url))
    prefix = url.split("/", 3)[3]
    changed, gone = keys
    s3.put_object(Bucket=BUCKET, Key=f"{prefix}/{changed}", Body=b"\x89PNG not the image that was indexed")
    s3.delete_object(Bucket=BUCKET, Key=f"{prefix}/{gone}")

    _other_machine(tmp_path, monkeypatch, "web-worker")
    with MultiModalIndex(client=client, embedder=embedder, create=False) as ix:
        with caplog.at_level(logging.WARNING, logger="mm_rag_plugin"):
            hits = FusedRetriever(ix, embedder).retrieve("figure", k=10, filters={"kind": "image"})
        # the changed object is refused (one warning), never handed to an answer
        refused = [r.getMessage() for r in caplog.records if "image not read" in r.getMessage()]
        assert len(refused) == 1 and changed in refused[0] and "not the image indexed" in refused[0]
        assert all(not h.chunk.image_path.endswith(changed) for h in hits)
        problems = ix.verify()
    assert len(problems) == 2
    assert any(changed in p and "not the image indexed" in p for p in problems)
    assert any(gone in p and "missing from the blob store" in p for p in problems)
