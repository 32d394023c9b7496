"""Shared pieces of the benchmark suite: timing, machine description, memory, child processes."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("MM_RAG_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results"


def machine() -> dict[str, Any]:
    """What the figures were measured on (CPU model, cores, memory, GPU, library versions)."""
    import numpy

    info: dict[str, Any] = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpus": os.cpu_count(),
        "cpu": _cpu_model(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "numpy": numpy.__version__,
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
        info["gpu"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        info["torch"] = None
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of *repeats* calls (seconds)."""
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def latencies_ms(fn: Callable[[Any], object], queries: list[Any], warmup: int = 2) -> list[float]:
    for q in queries[:warmup]:
        fn(q)
    out = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - t) * 1000)
    return out


def spread(values: list[float], digits: int = 3) -> dict[str, float]:
    """Median, lowest and highest of repeated measurements (rounds), and how many there were."""
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
        "runs": len(values),
    }


def spread_cell(d: dict[str, float] | None, scale: float = 1.0, fmt: str = "{:.2f}") -> str:
    """A ``spread`` as "median (min-max)", scaled; just the median when it was measured once."""
    if not d:
        return "-"
    med = fmt.format(d["median"] * scale)
    if d.get("runs", 2) < 2:
        return med
    return f"{med} ({fmt.format(d['min'] * scale)}-{fmt.format(d['max'] * scale)})"


def percentiles(ms: list[float]) -> dict[str, float]:
    s = sorted(ms)
    p95 = s[min(len(s) - 1, round(0.95 * (len(s) - 1)))]
    return {"p50_ms": round(statistics.median(s), 3), "p95_ms": round(p95, 3), "queries": len(s)}


def rss_bytes() -> int:
    """Current resident set size of this process."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def peak_rss_bytes() -> int:
    """Peak resident set size of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def dir_size(path: Path) -> int:
    """Apparent size of the files under *path* (sparse files count their full length)."""
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def disk_allocated(path: Path) -> int:
    """Bytes actually allocated on disk under *path* (sparse, preallocated files count what they use)."""
    return sum(f.stat().st_blocks * 512 for f in Path(path).rglob("*") if f.is_file())


def page_count(files: list[Path]) -> int:
    """Pages in the PDF *files* (pypdfium2)."""
    import pypdfium2 as pdfium

    total = 0
    for f in files:
        doc = pdfium.PdfDocument(str(f))
        total += len(doc)
        doc.close()
    return total


def save(res: dict[str, Any], out: str | Path, markdown: Callable[[dict[str, Any]], list[str]]) -> None:
    """A section run on its own: add the machine, print its markdown, write its JSON to *out*."""
    res["machine"] = machine()
    print("\n".join(markdown(res)))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(json.dumps(res, indent=1))


def interleaved(
    contestants: tuple[str, ...],
    rounds: int,
    load: Any,
    measure: Callable[[str], dict[str, Any]],
    log: Callable[[int, str, str, dict[str, Any]], None],
) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """``measure(contestant)`` once per contestant and round, quiet and, with a
    :class:`~benchmarks._load.BackgroundLoad` *load*, again under it; each round starts one
    contestant later, so none always runs first. Returns the samples by contestant and mode;
    ``log(round, mode, contestant, sample)`` after each."""
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {c: {"quiet": [], "loaded": []} for c in contestants}
    for r in range(rounds):
        order = contestants[r % len(contestants) :] + contestants[: r % len(contestants)]
        for mode in ("quiet", "loaded") if load is not None else ("quiet",):
            for c in order:
                with load.on() if mode == "loaded" else contextlib.nullcontext():
                    m = measure(c)
                samples[c][mode].append(m)
                log(r, mode, c, m)
    return samples


def finish(res: dict[str, Any], module: str, argv: list[str] | None, started: str, out: str, markdown: Callable[[dict[str, Any]], list[str]]) -> None:
    """Stamp *res* with the command, start time and commit, save it (JSON) and its Markdown beside it."""
    res["command"] = f"python -m {module} " + " ".join(argv if argv is not None else sys.argv[1:])
    res["started"], res["commit"] = started, commit()
    save(res, out, markdown)
    Path(out).with_suffix(".md").write_text("\n".join(markdown(res)) + "\n")


def run_child(module: str, args: list[str], timeout: float = 3600) -> dict[str, Any]:
    """Run ``python -m <module> <args>`` in a fresh process (clean memory figures) and return the
    JSON object it prints on its last stdout line."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def commit() -> str:
    """The commit measured, and whether src/ or benchmarks/ differ from it."""
    git = ["git", "-C", str(ROOT)]
    head = subprocess.run([*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "src", "benchmarks"], capture_output=True, text=True).stdout
    return head + (" + uncommitted changes" if dirty.strip() else "")


#: A launcher that runs its arguments as a command and prints the command's wall time and peak RSS
#: (its own ~10 MiB are the only thing ``ru_maxrss`` of a child can carry over).
_TIMED = (
    "import json,resource,subprocess,sys,time\n"
    "t=time.perf_counter(); p=subprocess.run(sys.argv[1:],capture_output=True,text=True); s=time.perf_counter()-t\n"
    "print(json.dumps({'wall_s':s,'peak_rss_bytes':resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss*1024,"
    "'rc':p.returncode,'out':p.stdout,'err':p.stderr[-2000:]}))\n"
)


def run_timed(cmd: list[str], what: str, timeout: float = 3600) -> dict[str, Any]:
    """Run *cmd* in a fresh process under a small launcher: its wall time (``wall_s``), peak RSS,
    and standard output; a non-zero exit raises, naming *what* failed."""
    proc = subprocess.run([sys.executable, "-c", _TIMED, *cmd], capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    if res["rc"] != 0:
        raise RuntimeError(f"{what} failed ({res['rc']}): {res['err']}")
    return res


def mib(n: float) -> float:
    return round(n / 2**20, 1)


class TreeMemorySampler:
    """Peak resident memory of this process plus all its descendants (sampled every 20 ms; the
    list of descendants is refreshed every 0.25 s).

    ``ru_maxrss`` of children is useless for worker processes: Linux keeps the parent's RSS at
    fork time across ``exec``, so every worker would report the parent's size. Finding the
    descendants reads the status of every process on the machine; done every 20 ms it took 8% of a
    core and the GIL from the process measured, so it is done less often than the RSS reads.
    """

    def __init__(self, interval: float = 0.02, refresh: float = 0.25) -> None:
        self.interval = interval
        self.refresh = refresh
        self.peak = 0  # whole tree
        self.peak_children = 0
        self._stop = None
        self._thread = None

    def _sample(self) -> None:
        import time

        import psutil

        me = psutil.Process()
        known: list[Any] = []
        listed = float("-inf")
        while not self._stop.is_set():
            if time.monotonic() - listed >= self.refresh:
                with contextlib.suppress(psutil.Error):
                    known = me.children(recursive=True)
                listed = time.monotonic()
            children = 0
            try:
                for c in known:
                    with contextlib.suppress(psutil.Error):
                        children += c.memory_info().rss
                total = me.memory_info().rss + children
            except psutil.Error:
                continue
            self.peak = max(self.peak, total)
            self.peak_children = max(self.peak_children, children)
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeMemorySampler:
        import threading

        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def edge_engine(index: Any) -> Any:
    """The Qdrant Edge engine under a :class:`MultiModalIndex`, for the benchmarks' search-width
    sweeps only (they set its private search parameters; nothing in the library reaches it)."""
    engine = index._engine
    while hasattr(engine, "_inner"):  # the name-safe wrapper
        engine = engine._inner
    return engine
