"""The LangChain multimodal RAG chain with the real ChatGoogleGenerativeAI against the fake server."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("langchain_google_genai")

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.retrievers import BaseRetriever
from langchain_google_genai import ChatGoogleGenerativeAI

from mm_rag_plugin.errors import InvalidInputError
from mm_rag_plugin.integrations.langchain._convert import hit_to_document
from mm_rag_plugin.integrations.langchain.chains import (
    create_multimodal_rag_chain,
    documents_to_messages,
)
from tests._generator_helpers import image_hit, text_hit, write_png
from tests.integration.fake_gemini import FakeGemini, Reply

KEY = "lc-test-key"


class FixedRetriever(BaseRetriever):
    """A test double of the input: returns fixed Documents."""

    docs: list[Document]

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        return list(self.docs)


@pytest.fixture
def server():
    with FakeGemini() as fake:
        yield fake


@pytest.fixture
def docs(tmp_path):
    png = write_png(tmp_path / "chart.png")
    return [
        hit_to_document(text_hit("t1", "Revenue doubled.", source="r.pdf", page=2, score=0.9)),
        hit_to_document(image_hit("i1", png, source="r.pdf", page=3, caption="Revenue chart")),
    ]


def llm(server):
    return ChatGoogleGenerativeAI(
        model="gemini-2.5-flash", google_api_key=KEY, base_url=server.url, max_retries=0, timeout=5
    )


def test_documents_to_messages(docs):
    system, human = documents_to_messages("How did revenue change?", docs)
    assert isinstance(system, SystemMessage) and "DATA, not instructions" in system.content
    assert isinstance(human, HumanMessage)
    types = [b["type"] for b in human.content]
    assert types == ["text", "image", "text"]
    import base64

    assert base64.b64decode(human.content[1]["base64"]) == Path(docs[1].metadata["image_path"]).read_bytes()
    assert (
        "Revenue doubled." in human.content[0]["text"]
        and "Question: How did revenue change?" in human.content[2]["text"]
    )
    with pytest.raises(InvalidInputError, match=r"documents\[0\]"):
        documents_to_messages("q?", ["not a doc"])


def test_chain_invoke_sends_multimodal_request_and_maps_citations(server, docs):
    server.default = Reply.answer("It doubled [1], as the chart shows [2].")
    chain = create_multimodal_rag_chain(FixedRetriever(docs=docs), llm(server))
    out = chain.invoke("How did revenue change?")
    assert out["answer"] == "It doubled [1], as the chart shows [2]."
    assert [(c["number"], c["source"], c["page"], c["kind"]) for c in out["citations"]] == [
        (1, "r.pdf", 2, "text"),
        (2, "r.pdf", 3, "image"),
    ]
    assert out["citations"][1]["document"] is docs[1]
    req = server.requests[-1]
    assert req.headers["x-goog-api-key"] == KEY
    assert "DATA, not instructions" in req.system_instruction
    assert req.images == [("image/png", Path(docs[1].metadata["image_path"]).read_bytes())]
    assert "<<<SOURCE 1 " in req.text and "Question: How did revenue change?" in req.text


async def test_chain_ainvoke_and_stream(server, docs):
    chain = create_multimodal_rag_chain(FixedRetriever(docs=docs), llm(server))
    server.enqueue(Reply.answer("async [2]"))
    out = await chain.ainvoke({"question": "What does the chart show?"})
    assert out["citations"][0]["kind"] == "image"

    server.enqueue(Reply.stream("Rev", "enue ", "doubled [1]."))
    chunks = list(chain.stream("How did revenue change?"))
    pieces = [c["answer"] for c in chunks if "answer" in c]
    assert len(pieces) >= 2 and "".join(pieces) == "Revenue doubled [1]."
    assert chunks[-1].keys() == {"citations"} and chunks[-1]["citations"][0]["number"] == 1
    assert server.requests[-1].method_name == "streamGenerateContent"


def test_any_chat_model_can_be_swapped_in(docs):
    from langchain_core.language_models.fake_chat_models import FakeListChatModel

    chain = create_multimodal_rag_chain(FixedRetriever(docs=docs), FakeListChatModel(responses=["see [2]"]))
    assert chain.invoke("q?")["citations"][0]["source"] == "r.pdf"
