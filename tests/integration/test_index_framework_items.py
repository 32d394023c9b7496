"""``MultiModalIndex.add`` takes LangChain Documents and LlamaIndex nodes (text and image)."""

from __future__ import annotations

import base64
from pathlib import Path

from langchain_core.documents import Document as LCDocument
from llama_index.core.schema import ImageNode, TextNode
from PIL import Image

from mm_rag_plugin import FusedRetriever, MultiModalIndex


def test_framework_items_are_indexed_with_their_metadata(embedder, tmp_path: Path) -> None:
    png = tmp_path / "red.png"
    Image.new("RGB", (48, 48), "red").save(png)
    blue = tmp_path / "blue.png"
    Image.new("RGB", (48, 48), "blue").save(blue)
    items = [
        LCDocument(page_content="the invoice total is 12.50", metadata={"source": "inv.txt", "lang": "en"}),
        LCDocument(page_content="a red square", metadata={"kind": "image", "image_path": str(png), "source": "red.png"}),
        TextNode(text="meeting notes from tuesday", metadata={"source": "notes.md", "team": "ops"}),
        ImageNode(image=base64.b64encode(blue.read_bytes()).decode("ascii"), image_mimetype="image/png", text="blue tile"),
        ImageNode(image_url="http://example.com/x.png"),
        object(),
    ]
    with MultiModalIndex(tmp_path / "ix", embedder=embedder) as index:
        report = index.add(items)
        assert report.added == 4
        assert len(report.errors) == 2
        assert "not fetched" in str(report.errors[0]) and "http://example.com/x.png" in str(report.errors[0])
        assert "cannot index a object" in str(report.errors[1])
        retriever = FusedRetriever(index, k=5)
        hits = retriever.retrieve("tuesday", filters={"metadata.team": "ops"})
        assert [h.chunk.source for h in hits] == ["notes.md"]
        inv = retriever.retrieve("invoice", filters={"source": "inv.txt"})
        assert inv[0].chunk.metadata["lang"] == "en"
        images = retriever.retrieve("tile", filters={"kind": "image"})
        assert {h.chunk.caption for h in images} >= {"a red square", "blue tile"}  # type: ignore[union-attr]
        # a second add of the same items adds nothing (content-addressed), and keeps the first
        assert index.add(items[:4]).added == 0
        assert len(index) == 4
