"""The public surface: exported names, lazy imports, optional-dependency errors, core/adapter split."""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

import mm_rag_plugin
from mm_rag_plugin._optional import require, require_binary
from mm_rag_plugin.errors import InvalidInputError, MissingDependencyError, MMRagError, echo

SRC = Path(mm_rag_plugin.__file__).parent

EXPECTED_ALL = {
    "__version__",
    "Answer",
    "Citation",
    "ConfigurationError",
    "DecompressionBombError",
    "DeleteSummary",
    "DocumentLoader",
    "CsvReader",
    "DocxReader",
    "EmbeddingResult",
    "ExtractiveGenerator",
    "FileError",
    "FusedRetriever",
    "GeminiGenerator",
    "GenerationError",
    "Hit",
    "HtmlReader",
    "ImageChunk",
    "ImageReader",
    "IndexNotFoundError",
    "IngestReport",
    "IngestSummary",
    "InvalidInputError",
    "ItemError",
    "MMRagError",
    "MarkdownReader",
    "MissingDependencyError",
    "ModelLoadError",
    "MultiModalIndex",
    "MultiModalRAG",
    "OpenCLIPEmbedder",
    "PdfReader",
    "PptxReader",
    "PromptOptions",
    "ReadResult",
    "ReaderConfig",
    "StoreError",
    "TesseractOCR",
    "TextChunk",
    "UnsupportedFormatError",
    "XlsxReader",
    "aanswer",
    "answer",
    "load_documents",
}

HEAVY = (
    "torch", "open_clip", "langchain_core", "llama_index", "google.genai", "qdrant_client", "qdrant_edge", "pypdfium2",
    "sentence_transformers", "transformers",  # seconds to import: only when a text model is built
)


def test_all_is_pinned() -> None:
    assert set(mm_rag_plugin.__all__) == EXPECTED_ALL
    assert len(mm_rag_plugin.__all__) == len(EXPECTED_ALL), "duplicate names in __all__"


@pytest.mark.parametrize(
    "package",
    ["mm_rag_plugin", "mm_rag_plugin.readers", "mm_rag_plugin.retrievers",
     "mm_rag_plugin.integrations.langchain", "mm_rag_plugin.integrations.llama_index"],
)
def test_every_exported_name_resolves(package: str) -> None:
    """Every name a package exports lazily is there when asked for (a removed function left in an
    export table fails only on first use)."""
    module = importlib.import_module(package)
    for name in module.__all__:
        assert getattr(module, name) is not None, f"{package}.{name}"


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        mm_rag_plugin.nope  # noqa: B018


def test_import_is_light() -> None:
    code = (
        "import sys, mm_rag_plugin, mm_rag_plugin.embeddings, mm_rag_plugin.integrations.langchain, "
        "mm_rag_plugin.integrations.llama_index, mm_rag_plugin.embeddings.text_model, mm_rag_plugin.testing, io\n"
        "from contextlib import redirect_stdout\nfrom mm_rag_plugin.cli import main\n"
        "with redirect_stdout(io.StringIO()):\n    try:\n        main(['ingest', '--help'])\n    except SystemExit:\n        pass\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"import mm_rag_plugin pulled in: {out.stdout.strip()}"


def test_torch_is_imported_only_when_a_model_is_built() -> None:
    code = (
        "import sys, mm_rag_plugin\ncls = mm_rag_plugin.OpenCLIPEmbedder\nprint('torch' in sys.modules)\n"
        "try:\n    cls('local-dir:/no/such/dir', device='cpu')\nexcept mm_rag_plugin.ModelLoadError:\n    pass\n"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_core_never_imports_a_framework() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        if "integrations" in path.relative_to(SRC).parts:
            continue
        bad = _imports(path) & {"langchain", "langchain_core", "langchain_community", "llama_index"}
        if bad:
            offenders.append(f"{path.relative_to(SRC)}: {sorted(bad)}")
    assert not offenders, offenders


def test_missing_extra_names_the_pip_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "open_clip", None)  # makes `import open_clip` fail
    with pytest.raises(MissingDependencyError, match=r"pip install 'mm-rag-plugin\[clip\]'") as info:
        require("open_clip", extra="clip", package="open_clip_torch")
    assert isinstance(info.value, ImportError) and isinstance(info.value, MMRagError)
    assert "open_clip_torch" in str(info.value)


def test_embedder_without_open_clip_raises_missing_dependency(monkeypatch: pytest.MonkeyPatch) -> None:
    from mm_rag_plugin import OpenCLIPEmbedder

    monkeypatch.setitem(sys.modules, "open_clip", None)
    with pytest.raises(MissingDependencyError, match=r"mm-rag-plugin\[clip\]"):
        OpenCLIPEmbedder("ViT-B-32", device="cpu")


def test_missing_binary_says_how_to_install() -> None:
    with pytest.raises(MissingDependencyError, match="apt-get install no-such-pkg"):
        require_binary("no-such-binary-xyz", apt="no-such-pkg")


def test_input_error_is_a_value_error_naming_the_source() -> None:
    err = InvalidInputError("truncated", source="a/b.png")
    assert isinstance(err, ValueError) and str(err) == "a/b.png: truncated" and err.source == "a/b.png"
    import pickle

    back = pickle.loads(pickle.dumps(err))
    assert back.source == "a/b.png" and str(back) == str(err)


def test_echo_cuts_long_input() -> None:
    text = echo("x" * 10_000)
    assert len(text) == 200 and text.endswith("...<10002 chars>")


def test_py_typed_is_shipped() -> None:
    assert (SRC / "py.typed").is_file()


@pytest.mark.parametrize("package", ["langchain", "llama_index"])
def test_adapter_packages_export_resolvable_names(package: str) -> None:
    import importlib

    mod = importlib.import_module(f"mm_rag_plugin.integrations.{package}")
    assert mod.__all__, package
    for name in mod.__all__:
        assert getattr(mod, name) is not None, f"{package}.{name}"
