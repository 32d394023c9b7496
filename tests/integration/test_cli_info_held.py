"""``mm-rag info`` answers from the manifest while another process holds the index, naming it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from mm_rag_plugin import MultiModalIndex, TextChunk
from tests._cli import run

SRC = str(Path(__file__).resolve().parents[2] / "src")

# holds the index until its stdin closes; says "ready" once it has the lock
_HOLD = r"""
import sys
from mm_rag_plugin import MultiModalIndex
ix = MultiModalIndex(sys.argv[1], create=False, keyword_only=True)
print("ready", flush=True)
sys.stdin.read()
ix.close()
"""


def test_info_beside_a_holder(tmp_path: Path) -> None:
    folder = tmp_path / "ix"
    with MultiModalIndex(folder, keyword_only=True) as ix:
        ix.add([TextChunk(id=f"t{i}", text=f"text number {i}", source=f"{i}.txt") for i in range(3)])
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(folder)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        line = holder.stdout.readline()  # type: ignore[union-attr]
        assert line.strip() == "ready", holder.stderr.read()  # type: ignore[union-attr]
        code, out, err = run("info", "--index", str(folder))
        assert code == 0, err
        lines = dict(line.split(None, 1) for line in out.splitlines())
        assert lines["held_by"].startswith(f"pid {holder.pid} (")
        assert lines["items"].startswith("3 (from the manifest")
        assert lines["keyword_only"].strip() == "True"
        code, out, err = run("info", "--index", str(folder), "--json")
        assert code == 0, err
        report = json.loads(out)
        assert report["items"] == 3 and report["held_by"].startswith(f"pid {holder.pid} (")
        assert report["texts"] is None and report["keyword_only"] is True
        code, out, err = run("query", "text", "--index", str(folder), "--keyword-only")
        assert code == 1 and f"in use by pid {holder.pid} (" in err  # other commands still refuse
    finally:
        holder.communicate("")  # closing stdin lets it go
    code, out, err = run("info", "--index", str(folder))
    assert code == 0 and "held_by" not in out and "texts" in out


def test_the_holders_command_line_options_are_never_recorded(tmp_path: Path) -> None:
    """The lock names its holder by pid and program only: a secret among the holder's options
    (an API key on its command line) reaches neither the lock file nor another user's ``info``."""
    folder = tmp_path / "ix"
    with MultiModalIndex(folder, keyword_only=True) as ix:
        ix.add([TextChunk(id="t", text="some text", source="t.txt")])
    env = dict(os.environ, PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    secret = "sk-live-9f8e7d6c5b4a"
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(folder), "--qdrant-api-key", secret],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert holder.stdout.readline().strip() == "ready", holder.stderr.read()  # type: ignore[union-attr]
        recorded = (folder / "lock").read_text()
        assert recorded == f"pid {holder.pid} (-c)"
        code, out, err = run("info", "--index", str(folder))
        assert code == 0, err
        assert dict(line.split(None, 1) for line in out.splitlines())["held_by"].startswith(f"pid {holder.pid} (-c)")
        assert secret not in out + err
        code, out, err = run("query", "text", "--index", str(folder), "--keyword-only")
        assert code == 1 and f"in use by pid {holder.pid} (-c)" in err and secret not in out + err
    finally:
        holder.communicate("")


def test_holder_name_keeps_the_program_and_a_subcommand_only() -> None:
    from mm_rag_plugin.retrievers._lock import holder_name

    pid = os.getpid()
    assert holder_name(["/usr/bin/mm-rag", "ingest", "docs/", "--qdrant-api-key", "k"]) == f"pid {pid} (mm-rag ingest)"
    assert holder_name(["/usr/bin/mm-rag", "--qdrant-api-key=abc", "ingest"]) == f"pid {pid} (mm-rag)"
    assert holder_name(["app.py", "sk12345secret"]) == f"pid {pid} (app.py)"
    assert holder_name([]) == f"pid {pid} (python)"
