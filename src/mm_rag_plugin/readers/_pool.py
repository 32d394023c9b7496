"""A small process pool with a per-task time limit.

``concurrent.futures.ProcessPoolExecutor`` cannot stop one task: a hung parser would hold its
worker forever, and killing it breaks the whole executor. Here each worker is a process with its
own pipe; a task past its deadline gets its worker killed and replaced, a worker that dies
(segfault, memory) is replaced, and the task is reported as failed while the others go on.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from ..types import FileError, ReadResult
from ._base import ReaderConfig

logger = logging.getLogger(__name__)

__all__ = ["WorkerPool"]


def _worker_main(conn: Connection, config: ReaderConfig, memory_limit_mb: int | None) -> None:
    if memory_limit_mb:
        try:
            import resource

            limit = memory_limit_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ImportError, ValueError, OSError) as exc:  # Windows, or a lower hard limit
            logger.debug("memory limit not applied: %s", exc)
    from .loader import _safe_read

    cache: dict = {}
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        idx, path = task
        try:
            payload: Any = ("ok", _safe_read(path, config, cache))
        except BaseException as exc:  # configuration errors: hand them to the parent
            payload = ("fatal", exc)
        try:
            conn.send((idx, payload))
        except Exception as exc:  # result not picklable / too large: report instead of dying
            conn.send(
                (idx, ("ok", FileError(path, f"result could not be returned ({exc})", type(exc).__name__)))
            )


@contextlib.contextmanager
def _main_module_hidden() -> Iterator[None]:
    """Start workers without re-importing the caller's ``__main__``.

    ``spawn`` normally re-runs the caller's script in every worker, so a script without an
    ``if __name__ == "__main__":`` guard would start loading again in each worker and every file
    would fail. Workers run only this package's code, so the script is not needed there.
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
    main.__dict__.pop("__file__", None)
    if "__spec__" in saved:
        main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.update(saved)


@dataclass
class _Worker:
    process: Any
    conn: Connection
    task: tuple[int, str] | None = None
    deadline: float = float("inf")


class WorkerPool:
    def __init__(
        self,
        size: int,
        config: ReaderConfig,
        *,
        timeout: float | None,
        memory_limit_mb: int | None,
        start_method: str = "spawn",
    ) -> None:
        self.size = max(1, size)
        self.config = config
        self.timeout = timeout
        self.memory_limit_mb = memory_limit_mb
        self._ctx = mp.get_context(start_method)  # spawn: no fork of a threaded parent (torch, tqdm)
        self._workers: list[_Worker] = []

    def __enter__(self) -> WorkerPool:
        self._workers = [self._spawn() for _ in range(self.size)]
        return self

    def __exit__(self, *exc: object) -> None:
        for w in self._workers:
            with contextlib.suppress(OSError, ValueError):
                w.conn.send(None)
        deadline = time.monotonic() + 2.0
        for w in self._workers:
            w.process.join(max(0.0, deadline - time.monotonic()))
            if w.process.is_alive():
                w.process.kill()
                w.process.join()
            w.conn.close()
        self._workers = []

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(
            target=_worker_main,
            args=(child, self.config, self.memory_limit_mb),
            daemon=True,
            name="mm-rag-reader",
        )
        with _main_module_hidden():
            proc.start()
        child.close()
        return _Worker(proc, parent)

    def _replace(self, w: _Worker) -> None:
        if w.process.is_alive():
            w.process.kill()
        w.process.join()
        w.conn.close()
        self._workers[self._workers.index(w)] = self._spawn()

    def map_ordered(
        self, paths: list[str], on_done: Callable[[], Any] | None = None
    ) -> Iterator[tuple[int, ReadResult | FileError]]:
        """Read *paths*; yield ``(index, result)`` in input order."""
        todo = deque(enumerate(paths))
        done: dict[int, ReadResult | FileError] = {}
        next_out = 0
        while next_out < len(paths):
            for w in list(self._workers):
                if w.task is None and todo:
                    w.task = todo.popleft()
                    w.deadline = time.monotonic() + self.timeout if self.timeout else float("inf")
                    w.conn.send(w.task)
            busy = [w for w in self._workers if w.task is not None]
            wait_for = min(w.deadline for w in busy) - time.monotonic() if busy else 0
            handles: list[Any] = [w.conn for w in busy] + [w.process.sentinel for w in busy]
            ready = set(wait(handles, timeout=max(0.0, min(wait_for, 3600.0))))
            now = time.monotonic()
            for w in busy:
                assert w.task is not None
                idx, path = w.task
                result: ReadResult | FileError | None = None
                if w.conn in ready:
                    try:
                        _idx, (kind, payload) = w.conn.recv()
                    except (EOFError, OSError):
                        kind, payload = "died", None
                    if kind == "fatal":
                        raise payload
                    if kind == "ok":
                        result = payload
                        w.task = None
                    else:
                        result = self._died(w, path)
                elif w.process.sentinel in ready:
                    result = self._died(w, path)
                elif now >= w.deadline:
                    logger.warning("%s: timed out after %ss; stopping its worker", path, self.timeout)
                    result = FileError(
                        path, f"timed out after {self.timeout:g}s; the reader was stopped", "TimeoutError"
                    )
                    w.task = None
                    self._replace(w)
                if result is not None:
                    done[idx] = result
                    if on_done is not None:
                        on_done()
            while next_out in done:
                yield next_out, done.pop(next_out)
                next_out += 1

    def _died(self, w: _Worker, path: str) -> FileError:
        w.process.join(1.0)
        code = w.process.exitcode
        logger.warning("%s: worker process died (exit code %s)", path, code)
        w.task = None
        self._replace(w)
        hint = " (killed: out of memory?)" if code in (-9, 137) else ""
        return FileError(path, f"the reader crashed (worker exit code {code}){hint}", "WorkerCrashed")
