"""The notebooks in ``notebooks/`` run top to bottom, offline, as a user would run them:
a real Jupyter kernel (nbclient), the tiny test CLIP model through ``$MM_RAG_MODEL``, the fake
Gemini server through ``$MM_RAG_GEMINI_BASE_URL`` (LangChain and LlamaIndex notebooks) or no
key at all (quickstart: the extractive answer). They are committed without outputs."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

from tests.integration.fake_gemini import FakeGemini, Reply  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NAMES = ["quickstart", "langchain", "llamaindex"]
KEY_VARS = ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI", "MM_RAG_GEMINI_BASE_URL")
ANSWER = "Fault E-217 means the grid voltage is too high [1]; the screen shows it [2]."


@pytest.fixture(scope="module")
def kernel_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A ``python3`` kernelspec that runs this interpreter (this venv), whatever else is installed."""
    from ipykernel.kernelspec import install

    prefix = tmp_path_factory.mktemp("kernel")
    install(kernel_name="python3", prefix=str(prefix))
    return prefix / "share" / "jupyter"


@pytest.fixture
def run_notebook(kernel_path, tiny_clip_dir, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(kernel_path))
    monkeypatch.setenv("MM_RAG_MODEL", f"local-dir:{tiny_clip_dir}")
    for var in KEY_VARS:
        monkeypatch.delenv(var, raising=False)

    def run(name: str) -> dict[str, str]:
        """Execute notebook *name* in ``notebooks/`` (its own folder, as Jupyter does); return
        the text output of each code cell, keyed by the cell's source."""
        nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
        client = nbclient.NotebookClient(
            nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOKS)}}
        )
        client.execute()
        run.stderr = "".join(  # type: ignore[attr-defined]
            o.text for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.get("name") == "stderr"
        )
        return {cell.source: _text(cell) for cell in nb.cells if cell.cell_type == "code"}

    return run


def _text(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.output_type == "stream":
            if out.name == "stdout":  # stderr holds log lines (e.g. the "no Gemini API key" warning)
                parts.append(out.text)
        elif out.output_type in ("execute_result", "display_data"):
            parts.append(out.data.get("text/plain", ""))
        elif out.output_type == "error":
            parts.append(f"{out.ename}: {out.evalue}")
    return "".join(parts)


def _cell(outputs: dict[str, str], fragment: str) -> str:
    (match,) = [text for source, text in outputs.items() if fragment in source]
    return match


def _first_result_line(text: str) -> str:
    return next(line for line in text.splitlines() if line.strip() and line[0].isdigit())


@pytest.mark.parametrize("name", NAMES)
def test_committed_without_outputs(name):
    nb = nbformat.read(NOTEBOOKS / f"{name}.ipynb", as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert nb.metadata["kernelspec"]["name"] == "python3"


def test_kernelspec_runs_this_interpreter(kernel_path, monkeypatch):
    from jupyter_client.kernelspec import KernelSpecManager

    monkeypatch.setenv("JUPYTER_PATH", str(kernel_path))
    assert KernelSpecManager().get_kernel_spec("python3").argv[0] == sys.executable


def test_quickstart_without_a_key(run_notebook):
    out = run_notebook("quickstart")
    ingest = _cell(out, "rag.ingest(SAMPLES)")
    assert "files=4" in ingest and "errors=()" in ingest and "keyword_only=False" in ingest
    # text -> image: the screenshot is the top image for a description of it
    top = _first_result_line(_cell(out, 'show(rag.search("inverter fault screen", k=3, filters'))
    assert top.split()[1:3] == ["image", "inverter_fault.png"]
    assert "found by:" in top and "bm25" in top
    mixed = _cell(out, 'show(rag.search("inverter fault screen", k=4))')
    assert "inverter_fault.png" in mixed and "maintenance.md" in mixed
    by_image = _cell(out, "show(rag.search(image=")
    assert "image  inverter_fault.png" in by_image and "dense_image" in by_image
    ask = _cell(out, "rag.ask(")
    assert ask.startswith("EXTRACTIVE answer (no Gemini API key set)\n")
    assert "No answer generator was used" in ask
    assert "E-217" in ask
    assert "\nSources:\n[1] " in ask
    sources = ask.split("\nSources:\n", 1)[1]
    assert "inverter_fault.png" in sources or "maintenance.md" in sources
    info = _cell(out, "rag.info()")
    assert "'items': 8" in info and "'images': 4" in info and "'keyword_only': False" in info
    assert "local-dir:" in info


@pytest.fixture
def gemini(monkeypatch):
    with FakeGemini(Reply.answer(ANSWER)) as server:
        monkeypatch.setenv("GOOGLE_API_KEY", "test-key")
        monkeypatch.setenv("MM_RAG_GEMINI_BASE_URL", server.url)
        yield server


def _check_gemini_requests(server: FakeGemini) -> None:
    assert len(server.requests) == 1
    req = server.requests[0]
    assert req.headers["x-goog-api-key"] == "test-key"
    assert "Question: What does fault E-217 mean and what should I do?" in req.text
    assert "E-217" in req.text.split("Question:")[0]  # retrieved context went into the prompt
    assert req.images and all(mime == "image/png" for mime, _ in req.images)  # images too


def test_langchain_notebook(run_notebook, gemini):
    out = run_notebook("langchain")
    docs = _cell(out, 'retriever.invoke("inverter fault screen")')
    assert "image inverter_fault.png" in docs
    chain = _cell(out, "chain.invoke(")
    answer, cited = chain.split("\n\nCited sources:\n")
    assert answer == ANSWER
    lines = cited.splitlines()
    assert [line[:4] for line in lines] == ["[1] ", "[2] "]
    assert any(".png" in line or ".md" in line or ".pdf" in line for line in lines)
    tool = _cell(out, "tool.invoke(")
    assert tool.startswith("2 result(s) for 'inverter fault screen'")
    assert "[1] image | source: " in tool and "inverter_fault.png" in tool.splitlines()[1]
    assert tool.rstrip().splitlines()[-1].startswith("['inverter_fault.png'")
    _check_gemini_requests(gemini)


def test_llamaindex_notebook(run_notebook, gemini):
    out = run_notebook("llamaindex")
    query = _cell(out, "engine.aquery(")
    answer, sources = query.split("\n\nSources:\n")
    assert answer == ANSWER
    assert sources.startswith("[1] ") and len(sources.splitlines()) >= 2
    citations = _cell(out, 'response.metadata["citations"]')
    assert "'number': 1" in citations and "'number': 2" in citations and "'node_id'" in citations
    tool = _cell(out, "tool.call(")
    assert tool.startswith("multimodal_search - ")
    assert "[1] image | source: " in tool and "inverter_fault.png" in tool
    assert tool.rstrip().splitlines()[-1].startswith("['inverter_fault.png'")
    _check_gemini_requests(gemini)


@pytest.mark.parametrize(("name", "answer_cell"), [("langchain", "chain.invoke("), ("llamaindex", "engine.aquery(")])
def test_framework_notebooks_run_without_a_key(run_notebook, name, answer_cell):
    """No Gemini key: the answer cell falls back to the extractive answer, like the quickstart (issue 30)."""
    out = run_notebook(name)
    answer = _cell(out, answer_cell)
    assert answer.startswith("EXTRACTIVE answer (no Gemini API key set)\n") and "E-217" in answer
    assert "No answer generator was used" in answer
    head = "\nCited sources:\n" if name == "langchain" else "\nSources:\n"
    assert answer.split(head, 1)[1].startswith("[1] ")
    tool = _cell(out, "tool.invoke(" if name == "langchain" else "tool.call(")
    assert "inverter_fault.png" in tool
    assert "IProgress" not in run_notebook.stderr  # show_progress=False: no TqdmWarning without ipywidgets
