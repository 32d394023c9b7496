"""The sdist and the wheel as a user gets them: license, project links, classifiers, extras.

Builds both with ``python -m build --no-isolation`` (``build`` and ``hatchling`` are in the test
dependency group), the wheel from the sdist, as PyPI's users would. ``scripts/check_wheel.sh``
goes further: it installs the wheel into a fresh environment and runs the README's examples.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tarfile
import zipfile
from email.message import Message
from email.parser import Parser
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest brings tomli on 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
LICENSE = (ROOT / "LICENSE").read_text()

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (wheel,) = out.glob("mm_rag_plugin-*.whl")
    (sdist,) = out.glob("mm_rag_plugin-*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


def _wheel_files(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as z:
        return {name: z.read(name) for name in z.namelist()}


def _sdist_files(sdist: Path) -> dict[str, bytes]:
    with tarfile.open(sdist) as t:
        out = {}
        for m in t.getmembers():
            if m.isfile():
                f = t.extractfile(m)
                assert f is not None
                out[m.name.split("/", 1)[1]] = f.read()
        return out


def _metadata(text: bytes) -> Message:
    return Parser().parsestr(text.decode())


def _wheel_metadata(wheel: Path) -> Message:
    files = _wheel_files(wheel)
    (name,) = [n for n in files if n.endswith(".dist-info/METADATA")]
    return _metadata(files[name])


def _check_metadata(meta: Message) -> None:
    assert meta["Name"] == "mm-rag-plugin"
    assert meta["License-Expression"] == "Apache-2.0"
    assert "LICENSE" in meta.get_all("License-File", [])
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL", []))
    assert set(urls) >= {"Homepage", "Repository", "Issues", "Documentation"}
    assert all(u.startswith("https://") for u in urls.values())
    classifiers = meta.get_all("Classifier", [])
    for c in (
        "Development Status :: 4 - Beta",
        "Operating System :: OS Independent",
        "Intended Audience :: Developers",
        "Programming Language :: Python :: 3.10",
        "Programming Language :: Python :: 3.11",
        "Typing :: Typed",
    ):
        assert c in classifiers, c
    # PEP 639: with a License-Expression the "License ::" classifiers are deprecated (setuptools refuses them)
    assert not [c for c in classifiers if c.startswith("License ::")]

    requires = [Requirement(r) for r in meta.get_all("Requires-Dist", [])]
    names = {canonicalize_name(r.name) for r in requires}
    assert "filetype" not in names  # nothing imports it
    in_all = {
        canonicalize_name(r.name) for r in requires if r.marker is not None and r.marker.evaluate({"extra": "all"})
    }
    # the README's LangChain chain and LlamaIndex query engine run after pip install 'mm-rag-plugin[all]'
    assert {"langchain-google-genai", "llama-index-llms-google-genai", "langchain-core", "llama-index-core"} <= in_all
    assert {"torch", "open-clip-torch", "qdrant-edge-py", "google-genai", "pytesseract", "tesserocr"} <= in_all


def test_the_wheel_carries_the_license_the_links_and_the_all_extra(dist: dict[str, Path]) -> None:
    files = _wheel_files(dist["wheel"])
    (license_file,) = [n for n in files if n.endswith(".dist-info/licenses/LICENSE")]
    assert files[license_file].decode() == LICENSE
    assert "mm_rag_plugin/__main__.py" in files and "mm_rag_plugin/py.typed" in files
    (entry_points,) = [n for n in files if n.endswith(".dist-info/entry_points.txt")]
    assert "mm-rag = mm_rag_plugin.cli:main" in files[entry_points].decode()
    _check_metadata(_wheel_metadata(dist["wheel"]))


def test_the_sdist_carries_the_license_and_the_same_metadata(dist: dict[str, Path]) -> None:
    files = _sdist_files(dist["sdist"])
    assert files["LICENSE"].decode() == LICENSE
    assert "pyproject.toml" in files and "README.md" in files and "src/mm_rag_plugin/cli.py" in files
    _check_metadata(_metadata(files["PKG-INFO"]))


def test_the_license_is_the_apache_2_0_text() -> None:
    assert PYPROJECT["project"]["license"] == "Apache-2.0"
    assert LICENSE.lstrip().startswith("Apache License\n") and "Version 2.0, January 2004" in LICENSE
    assert "END OF TERMS AND CONDITIONS" in LICENSE and "APPENDIX: How to apply the Apache License" in LICENSE


def _imported_top_level_modules() -> set[str]:
    names: set[str] = set()
    for path in (ROOT / "src" / "mm_rag_plugin").rglob("*.py"):
        text = path.read_text()
        names |= set(re.findall(r"^\s*(?:import|from)\s+([A-Za-z_]\w*)", text, re.M))
        names |= set(re.findall(r"\b(?:require|import_module)\(\s*[\"']([A-Za-z_]\w*)", text))  # lazy imports
    return names


def _declared() -> set[str]:
    project = PYPROJECT["project"]
    specs = [*project["dependencies"], *(s for extra in project["optional-dependencies"].values() for s in extra)]
    return {canonicalize_name(Requirement(s).name) for s in specs}


def test_filetype_and_portalocker_are_declared_exactly_when_imported() -> None:
    imported, declared = _imported_top_level_modules(), _declared()
    assert {"numpy", "PIL", "open_clip", "qdrant_edge"} <= imported and "torch" in declared  # the scans work
    for module in ("filetype", "portalocker"):  # portalocker: today only qdrant-client's own dependency
        assert (module in imported) == (module in declared), module


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints" / "ci.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version
    return pins


def test_every_declared_dependency_is_pinned_in_the_ci_constraints() -> None:
    """``scripts/setup.sh`` installs ``-e .[all]`` and the dev group with ``-c constraints/ci.txt``:
    each requirement must be pinned there, at a version it accepts."""
    project = PYPROJECT["project"]
    specs = list(project["dependencies"])
    specs += [s for extra in project["optional-dependencies"].values() for s in extra]
    specs += [s for group in PYPROJECT["dependency-groups"].values() for s in group if isinstance(s, str)]
    pins = _constraints()
    problems = []
    for spec in specs:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        if name == "mm-rag-plugin":
            continue
        if name not in pins:
            problems.append(f"{spec}: not in constraints/ci.txt")
        elif not req.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{spec}: constraints/ci.txt pins {pins[name]}")
    assert not problems, problems
    assert "filetype" in pins  # still installed: langchain-google-genai depends on it
