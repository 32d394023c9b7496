"""The tree stays ruff-clean and mypy-clean (the rules in pyproject.toml)."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest brings tomli on 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_check_passes() -> None:
    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    assert ruff, "ruff is part of the dev dependency group"
    out = subprocess.run([ruff, "check", ".", "--output-format", "concise"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_mypy_passes() -> None:
    """mypy, with the project's configuration ([tool.mypy]: the whole package, integrations included)."""
    assert importlib.util.find_spec("mypy"), "mypy is part of the lint dependency group"
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mypy"]
    assert config["files"] == ["src/mm_rag_plugin"] and not config.get("exclude"), "mypy checks the whole package"
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--no-error-summary", "--no-pretty"],
        cwd=ROOT, capture_output=True, text=True, timeout=840,
    )
    assert out.returncode == 0, (out.stdout + out.stderr)[-5000:]
