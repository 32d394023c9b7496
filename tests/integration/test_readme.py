"""Every Python block and every ``$ mm-rag`` command in README.md runs (tiny model, fake Gemini)."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .fake_gemini import FakeGemini

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
PYTHON_BLOCKS = re.findall(r"```python\n(.*?)```", README, re.S)
CLI_LINES = [
    line[2:].split("#")[0].strip()
    for block in re.findall(r"```console\n(.*?)```", README, re.S)
    for line in block.splitlines()
    if line.startswith("$ mm-rag ")
]


@pytest.fixture
def workdir(tmp_path: Path, tiny_clip_dir: Path) -> tuple[Path, dict[str, str]]:
    shutil.copytree(ROOT / "samples", tmp_path / "samples")
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY",)}
    env.update(MM_RAG_MODEL=f"local-dir:{tiny_clip_dir}", MM_RAG_DEVICE="cpu", PYTHONUNBUFFERED="1")
    return tmp_path, env


def test_readme_has_the_two_commands_and_code() -> None:
    assert "$ ./scripts/demo.sh" in README and "$ ./scripts/test.sh" in README
    assert len(PYTHON_BLOCKS) >= 4 and len(CLI_LINES) >= 4
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./scripts/test.sh" in ci, ".ci/run must run the README's test command"


def test_python_blocks_run(workdir: tuple[Path, dict[str, str]]) -> None:
    cwd, env = workdir
    script = cwd / "readme_blocks.py"
    script.write_text("\n\n".join(PYTHON_BLOCKS))
    with FakeGemini() as fake:
        env = {**env, "GOOGLE_API_KEY": "test-key", "GOOGLE_GEMINI_BASE_URL": fake.url}
        out = subprocess.run([sys.executable, str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
        assert len(fake.requests) >= 3, "ask(), the LangChain chain and the LlamaIndex engine all call Gemini"
    assert "inverter_fault.png" in out.stdout
    assert "This is the fake answer [1]." in out.stdout


def test_cli_lines_run(workdir: tuple[Path, dict[str, str]]) -> None:
    cwd, env = workdir
    env.pop("GOOGLE_API_KEY", None)
    exe = Path(sys.executable).with_name("mm-rag")
    outputs = []
    for line in CLI_LINES:
        argv = shlex.split(line)
        out = subprocess.run([str(exe), *argv[1:]], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
        assert out.returncode == 0, f"{line}\n{out.stdout[-2000:]}{out.stderr[-3000:]}"
        outputs.append(out.stdout)
    assert "inverter_fault.png" in "".join(outputs)


#: Runs a README block twice in one process; after each run prints the index's item count and the
#: ids of the top k the block retrieved, as one JSON line.
_TWICE = '''
import json, sys
from pathlib import Path
block, folder, top = Path(sys.argv[1]).read_text(), sys.argv[2], sys.argv[3]

def top_ids(ns):
    if top == "docs":
        return [d.id for d in ns["docs"]]
    return [n.node.node_id for n in ns["response"].source_nodes]

for run in range(2):
    ns = {"__name__": "__readme__"}
    exec(compile(block, "README.md", "exec"), ns)
    from mm_rag_plugin import MultiModalIndex
    with MultiModalIndex(folder, show_progress=False) as index:
        count = index.count()
    print("RESULT", json.dumps({"count": count, "top": top_ids(ns)}), flush=True)
'''


def _block(marker: str) -> str:
    (block,) = [b for b in PYTHON_BLOCKS if marker in b]
    return block


@pytest.mark.parametrize(
    ("marker", "folder", "top"),
    [("MultiModalVectorStore(embeddings", ".mm_rag_langchain", "docs"),
     ("MultiModalVectorStoreIndex.from_documents", ".mm_rag_llamaindex", "source_nodes")],
    ids=["langchain", "llamaindex"],
)
def test_framework_examples_run_twice_without_duplicates(
    workdir: tuple[Path, dict[str, str]], marker: str, folder: str, top: str
) -> None:
    """Re-running the README's LangChain / LlamaIndex example (a re-run notebook cell) replaces
    what the first run stored: the same count, and no item twice among the hits."""
    cwd, env = workdir
    (cwd / "block.py").write_text(_block(marker))
    (cwd / "twice.py").write_text(_TWICE)
    with FakeGemini() as fake:
        env = {**env, "GOOGLE_API_KEY": "test-key", "GOOGLE_GEMINI_BASE_URL": fake.url}
        out = subprocess.run([sys.executable, "twice.py", "block.py", folder, top], cwd=cwd, env=env,
                             capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-5000:]
    first, second = [json.loads(line[7:]) for line in out.stdout.splitlines() if line.startswith("RESULT ")]
    assert first["top"] and second["top"]
    assert second["count"] == first["count"], (first, second)
    assert len(set(second["top"])) == len(second["top"]), second["top"]
