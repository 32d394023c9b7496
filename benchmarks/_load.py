"""The benchmark's background load: another job keeping every core busy.

``BackgroundLoad(procs)`` starts *procs* processes (default: one per CPU) that each run a pure
Python busy loop (no I/O, no memory traffic to speak of), then stops them (``SIGSTOP``) at once.
``with load.on():`` resumes them (``SIGCONT``) for the measured block and stops them again after,
so quiet and loaded blocks can be interleaved without restart costs. The loop is the same on every
machine; what it costs a contestant is how well that contestant shares the CPUs with one
CPU-bound process per core (the operating system's scheduler decides the rest).

    .venv/bin/python -m benchmarks._load 30    # run the load alone for 30 s (to watch it with top)

The smoke run (``benchmarks.run --smoke``, the test suite's check that every section still runs)
calls :func:`light` first: its loaded halves then run beside one spinner at the lowest priority
(``nice 19``), which exercises the same code (start, resume, stop) without halving the speed of
a test machine that is running other tests at the same time. Its loaded figures mean nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

# busy, and gone soon after its parent (a benchmark killed mid-run leaves no spinner behind)
SPIN = "import os\nparent = os.getppid()\nwhile os.getppid() == parent:\n    for _ in range(200_000):\n        pass\n"


_LIGHT = False


def light() -> None:
    """From now on, a load is one spinner at the lowest priority (the smoke run; figures meaningless)."""
    global _LIGHT
    _LIGHT = True


class BackgroundLoad:
    def __init__(self, procs: int | None = None) -> None:
        self.light = _LIGHT
        self.procs = 1 if self.light else procs or os.cpu_count() or 1
        self._children = [
            subprocess.Popen(
                [sys.executable, "-c", SPIN], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                preexec_fn=(lambda: os.nice(19)) if self.light else None,
            )
            for _ in range(self.procs)
        ]
        self._signal(signal.SIGSTOP)

    def describe(self) -> str:
        if self.light:
            return "one busy-loop Python process at nice 19 (smoke run: loaded figures are not measurements)"
        return (
            f"{self.procs} busy-loop Python processes (one per CPU) running beside the contestant "
            "(benchmarks/_load.py)"
        )

    def _signal(self, sig: int) -> None:
        for p in self._children:
            with contextlib.suppress(ProcessLookupError):
                os.kill(p.pid, sig)

    @contextlib.contextmanager
    def on(self) -> Iterator[None]:
        self._signal(signal.SIGCONT)
        time.sleep(0.2)  # let the scheduler see them running
        try:
            yield
        finally:
            self._signal(signal.SIGSTOP)

    def close(self) -> None:
        self._signal(signal.SIGCONT)
        for p in self._children:
            p.kill()
            p.wait()

    def __enter__(self) -> BackgroundLoad:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


if __name__ == "__main__":
    with BackgroundLoad() as load, load.on():
        time.sleep(float(sys.argv[1]) if len(sys.argv) > 1 else 10)
