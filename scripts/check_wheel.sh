#!/usr/bin/env bash
# Try the wheel as a user of PyPI would: build it, install it with the `all` extra into a fresh
# virtual environment in a temporary folder (CPU-only PyTorch first, as the README says), and run
# the README's Python examples there (the pipeline, then the LangChain and LlamaIndex ones, which
# build on its index), outside the source tree. The model is the tiny one the tests train
# (mm_rag_plugin.testing.make_tiny_clip, so no download), Gemini a fake server on 127.0.0.1
# (tests/integration/fake_gemini.py). Takes several minutes; needs network access to PyPI.
#
#   scripts/check_wheel.sh
#   TORCH_INSTALL="torch==2.14.1 torchvision==0.29.1" scripts/check_wheel.sh   # torch from the default index
#
# BUILD_PYTHON: a Python with `build` and `hatchling` (default .venv/bin/python, see scripts/setup.sh);
# VENV_PYTHON: the Python the fresh environment is made with (default python3); KEEP=1 keeps the folder.
set -euo pipefail
cd "$(dirname "$0")/.."
repo="$PWD"
build_python="${BUILD_PYTHON:-.venv/bin/python}"
venv_python="${VENV_PYTHON:-python3}"
torch_install="${TORCH_INSTALL:-torch torchvision --index-url https://download.pytorch.org/whl/cpu}"

work="$(mktemp -d)"
if [ "${KEEP:-0}" = 1 ]; then echo "check_wheel: working in $work (kept)"; else trap 'rm -rf "$work"' EXIT; fi

echo "== building the wheel"
"$build_python" -m build --no-isolation --wheel --outdir "$work/dist" . >"$work/build.log" 2>&1 \
  || { tail -30 "$work/build.log"; exit 1; }
wheel="$(ls "$work"/dist/mm_rag_plugin-*.whl)"
echo "   $(basename "$wheel")"

echo "== a fresh environment: $("$venv_python" --version)"
"$venv_python" -m venv "$work/venv"
py="$work/venv/bin/python"
"$py" -m pip install -q --upgrade pip
echo "== pip install $torch_install"
# shellcheck disable=SC2086  # the words of TORCH_INSTALL are pip arguments
"$py" -m pip install -q $torch_install
echo "== pip install '$(basename "$wheel")[all]'"
"$py" -m pip install -q "$wheel[all]"
"$py" -m pip check

echo "== the installed command"
"$work/venv/bin/mm-rag" --version
"$py" -m mm_rag_plugin --help | grep -q "MM_RAG_MODEL"

echo "== the README's Python examples, in $work/run"
mkdir "$work/run"
cp -r samples "$work/run/samples"
cp tests/integration/fake_gemini.py "$work/run/fake_gemini.py"
cd "$work/run"
"$py" - "$repo/README.md" <<'EOF'
import os
import re
import subprocess
import sys
from pathlib import Path

import mm_rag_plugin
from mm_rag_plugin.testing import make_tiny_clip

from fake_gemini import FakeGemini

here = Path.cwd()
assert Path(mm_rag_plugin.__file__).is_relative_to(Path(sys.prefix)), f"not the installed wheel: {mm_rag_plugin.__file__}"
blocks = re.findall(r"```python\n(.*?)```", Path(sys.argv[1]).read_text(), re.S)
assert any("integrations.langchain" in b for b in blocks) and any("integrations.llama_index" in b for b in blocks)
(here / "readme_blocks.py").write_text("\n\n".join(blocks))
model = make_tiny_clip(here / "tiny_clip")
env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "PYTHONPATH")}
with FakeGemini() as fake:
    env.update(
        MM_RAG_MODEL=f"local-dir:{model}", MM_RAG_DEVICE="cpu", GOOGLE_API_KEY="test-key",
        GOOGLE_GEMINI_BASE_URL=fake.url, PYTHONUNBUFFERED="1",
    )
    out = subprocess.run([sys.executable, "readme_blocks.py"], env=env, capture_output=True, text=True, timeout=900)
    print(out.stdout[-4000:])
    if out.returncode != 0:
        print(out.stderr[-6000:], file=sys.stderr)
        sys.exit(f"check_wheel: the README's examples failed (exit code {out.returncode})")
    calls = len(fake.requests)
assert calls >= 3, f"ask(), the LangChain chain and the LlamaIndex engine all call Gemini; it was called {calls} times"
assert "This is the fake answer [1]." in out.stdout and "inverter_fault.png" in out.stdout
print(f"check_wheel: {len(blocks)} README blocks ran against the installed wheel; Gemini was called {calls} times")
EOF
echo "check_wheel: ok"
