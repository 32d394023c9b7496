"""An index folder is untrusted input (issue 27): a crafted folder's symbolic links are never
followed (no user file emptied, overwritten or read through them), a shard on a nearly full tmpfs
is refused in one line instead of a crash by SIGBUS, and an engine panic prints one line, not the
Rust backtrace. Every command runs ``mm-rag`` in a child process: a crash by signal is seen as such.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="symbolic links, fd 2 and tmpfs: Linux")

VICTIM_TEXT = "a user's own file: must stay as it is\n"


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "MM_RAG_MODEL")}
    env.pop("RUST_BACKTRACE", None)
    env.update(extra)
    return env


def _cli(*argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mm_rag_plugin.cli", *argv],
        capture_output=True, text=True, timeout=120, check=False, env=_env(**env),
    )


def _ingest(corpus: Path, index: Path) -> subprocess.CompletedProcess[str]:
    return _cli("ingest", str(corpus), "--index", str(index), "--keyword-only", "--no-ocr", "-q", "--workers", "0")


def _commands(index: Path, corpus: Path) -> dict[str, tuple[str, ...]]:
    return {
        "info": ("info", "--index", str(index)),
        "query": ("query", "alpha1", "--index", str(index)),
        "verify": ("verify", "--index", str(index)),
        "ingest": ("ingest", str(corpus), "--index", str(index), "--keyword-only", "--no-ocr", "-q", "--workers", "0"),
    }


def _one_line(r: subprocess.CompletedProcess[str], *words: str) -> str:
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr[-3000:]
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(corpus, index): two Markdown files and an image large enough to be stored in ``blobs/``."""
    from PIL import Image

    root = tmp_path_factory.mktemp("crafted")
    corpus, index = root / "corpus", root / "index"
    corpus.mkdir()
    for i in (1, 2):
        (corpus / f"d{i}.md").write_text(f"# Doc {i}\n\nalpha{i} solar output report number {i}.\n")
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((300, 2500, 3)) * 255).astype("uint8")).save(corpus / "big.png")
    r = _ingest(corpus, index)
    assert r.returncode == 0, r.stderr
    assert any((index / "blobs").iterdir())
    return corpus, index


@pytest.fixture
def index(pristine: tuple[Path, Path], tmp_path: Path) -> Path:
    copy = tmp_path / "index"
    shutil.copytree(pristine[1], copy, symlinks=True)
    return copy


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "victim.txt"
    path.write_text(VICTIM_TEXT)
    return path


def _items(index: Path) -> int:
    r = _cli("info", "--index", str(index))
    assert r.returncode == 0, r.stderr
    (line,) = [ln for ln in r.stdout.splitlines() if ln.startswith("items ")]
    return int(line.split()[1])


def _new_file(corpus: Path, tmp_path: Path) -> Path:
    """A copy of the corpus with one more file: an ingest writes the manifest and the registry."""
    more = tmp_path / "corpus"
    shutil.copytree(corpus, more)
    (more / "d3.md").write_text("# Doc 3\n\nalpha3 wind output.\n")
    return more


# ---------------------------------------------------------------------------------- 1. symbolic links
def test_a_lock_link_is_refused_and_its_target_kept(index: Path, victim: Path) -> None:
    (index / "lock").unlink()
    (index / "lock").symlink_to(victim)
    r = _cli("info", "--index", str(index))
    _one_line(r, f"{index / 'lock'}: is a symbolic link")
    assert victim.read_text() == VICTIM_TEXT  # a read-only info emptied it


@pytest.mark.parametrize("name", ["manifest.json.tmp", "sources.json.tmp"])
def test_ingest_never_writes_through_a_temporary_file_link(
    name: str, index: Path, victim: Path, pristine: tuple[Path, Path], tmp_path: Path
) -> None:
    (index / name).symlink_to(victim)
    real = index / name.removesuffix(".tmp")
    before = real.stat().st_ino
    r = _ingest(_new_file(pristine[0], tmp_path), index)
    assert r.returncode == 0, r.stderr
    assert victim.read_text() == VICTIM_TEXT
    assert not (index / name).exists()
    assert real.stat().st_ino != before and not real.is_symlink()  # written anew, beside the link
    assert _items(index) > 0


def test_a_blobs_link_is_refused_and_nothing_written_there(
    index: Path, pristine: tuple[Path, Path], tmp_path: Path
) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.rmtree(index / "blobs")
    (index / "blobs").symlink_to(elsewhere, target_is_directory=True)
    r = _ingest(_new_file(pristine[0], tmp_path), index)
    _one_line(r, f"{index / 'blobs'}: is a symbolic link")
    assert list(elsewhere.iterdir()) == []


@pytest.mark.parametrize("rel", ["manifest.json", "sources.json", "shard/edge_config.json", "blobs/<first>"])
def test_no_file_outside_the_folder_is_read_through_a_link(rel: str, index: Path, tmp_path: Path) -> None:
    if rel == "blobs/<first>":
        rel = f"blobs/{sorted(p.name for p in (index / 'blobs').iterdir())[0]}"
    outside = tmp_path / "outside"
    (index / rel).rename(outside)  # the real content, moved out and linked: only the link is wrong
    (index / rel).symlink_to(outside)
    for argv in (("info", "--index", str(index)), ("query", "alpha1", "--index", str(index))):
        _one_line(_cli(*argv), f"{index / rel}: is a symbolic link")


def test_the_library_refuses_a_linked_shard(index: Path, tmp_path: Path) -> None:
    from mm_rag_plugin import MultiModalIndex
    from mm_rag_plugin.errors import StoreError

    moved = tmp_path / "shard-elsewhere"
    (index / "shard").rename(moved)
    (index / "shard").symlink_to(moved, target_is_directory=True)
    with pytest.raises(StoreError, match="shard: is a symbolic link"):
        MultiModalIndex(index, keyword_only=True, create=False)
    assert (index / "lock").stat().st_size == 0  # refused before the lock was taken


# ---------------------------------------------------------------------------------- 2. a nearly full tmpfs
@pytest.fixture
def tmpfs(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=70m", "tmpfs", str(mnt)], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or r.returncode})")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True, check=False)


def test_opening_a_shard_on_a_nearly_full_tmpfs_is_one_line(pristine: tuple[Path, Path], tmpfs: Path) -> None:
    corpus, source = pristine
    index = tmpfs / "index"
    # the shard's files are sparse: a plain copy would fill them (and so hide the crash)
    subprocess.run(["cp", "-a", "--sparse=always", str(source), str(index)], check=True)
    filler = tmpfs / "filler"
    st = os.statvfs(tmpfs)
    with open(filler, "wb") as fh:  # leave 20 MiB: loading the segment fills about 30 MiB of holes
        fh.write(b"\1" * (st.f_bavail * st.f_frsize - (20 << 20)))
    for name, argv in _commands(index, corpus).items():
        line = _one_line(_cli(*argv), str(index), "free disk space to open")
        assert "MiB free" in line and "MiB needed" in line, (name, line)
    filler.unlink()
    r = _cli("query", "alpha1", "--index", str(index))
    assert r.returncode == 0, r.stderr
    assert "d1.md" in r.stdout


# ---------------------------------------------------------------------------------- 3. engine panics
def _panicking_copy(index: Path) -> None:
    """Truncating a segment's deletion flags makes Qdrant Edge panic while it loads the shard."""
    (status,) = index.glob("shard/segments/*/vector_storage-bm25/deleted/status.dat")
    status.write_bytes(b"")


@pytest.mark.parametrize("command", ["info", "query", "verify"])
def test_an_engine_panic_is_one_line_even_with_a_backtrace(command: str, index: Path, pristine: tuple[Path, Path]) -> None:
    _panicking_copy(index)
    r = _cli(*_commands(index, pristine[0])[command], RUST_BACKTRACE="1")
    _one_line(r, str(index), "cannot be opened")
    assert "panicked" not in r.stderr and "stack backtrace" not in r.stderr


def test_verbose_shows_what_the_engine_wrote(index: Path) -> None:
    _panicking_copy(index)
    r = _cli("info", "--index", str(index), "--verbose", RUST_BACKTRACE="1")
    assert r.returncode == 1
    assert "Qdrant Edge wrote" in r.stderr  # logged, as one record
    assert "panicked" in r.stderr and "stack backtrace" in r.stderr


def test_fd2_is_restored_after_concurrent_calls_that_fail() -> None:
    from mm_rag_plugin.retrievers._edge import _quiet

    before = os.fstat(2)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def call(i: int) -> None:
        try:
            with _quiet():
                barrier.wait(timeout=30)
                os.write(2, b"engine text\n")
                if i % 2:
                    raise RuntimeError("failed")
        except RuntimeError:
            pass
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    after = os.fstat(2)
    assert (after.st_dev, after.st_ino) == (before.st_dev, before.st_ino)
