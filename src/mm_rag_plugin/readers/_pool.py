"""A small process pool with a per-task time limit.

``concurrent.futures.ProcessPoolExecutor`` cannot stop one task: a hung parser would hold its
worker forever, and killing it breaks the whole executor. Here each worker is a process with its
own pipe; a task past its deadline gets its worker killed and replaced, a worker that dies
(segfault, memory) is replaced, and the task is reported as failed while the others go on.

Workers do not outlive the pool: each is the leader of its own process group (with the tesseract
processes it starts where Tesseract runs as a program), killed as a group; a guard thread in each
worker kills the group when the parent process is gone (even SIGKILLed) or when a task runs 5 s
past its time limit.

Workers print nothing themselves: their log records (Python warnings included) travel to the
parent over the task pipe and are handled there by the parent's own logging, so whatever the
parent does with its logs (the command line: nothing without ``--verbose``, else terminal-safe
lines on standard error) holds for the workers' too.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import signal
import sys
import threading
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


def _kill_own_group() -> None:
    """Kill this worker and everything it started (tesseract runs as a child process)."""
    try:
        os.killpg(os.getpgrp(), signal.SIGKILL)
    finally:
        os._exit(137)


class _Guard(threading.Thread):
    """Ends the worker's process group when the parent is gone, or when a task runs far past its
    time limit (the parent normally stops it first; this holds when the parent cannot)."""

    def __init__(self, parent_pid: int, timeout: float | None) -> None:
        super().__init__(name="mm-rag-reader-guard", daemon=True)
        self.parent_pid, self.timeout = parent_pid, timeout
        self.started: float | None = None

    def run(self) -> None:
        while True:
            time.sleep(0.25)
            if os.getppid() != self.parent_pid:
                _kill_own_group()
            started = self.started
            if self.timeout is not None and started is not None and time.monotonic() - started > self.timeout + 5.0:
                _kill_own_group()


class _PipeLogHandler(logging.Handler):
    """Sends a worker's log records to the parent (``(-1, ("log", fields))`` on the task pipe),
    formatted as :class:`logging.handlers.QueueHandler` does: the message with its arguments
    merged, a traceback as text."""

    def __init__(self, conn: Connection, lock: threading.Lock) -> None:
        super().__init__()
        self.conn, self.send_lock = conn, lock  # not self.lock: Handler.handle holds that one

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = dict(record.__dict__)
            fields.update(msg=record.getMessage(), args=None, exc_info=None)
            if record.exc_info and not record.exc_text:
                fields["exc_text"] = logging.Formatter().formatException(record.exc_info)
            try:
                with self.send_lock:
                    self.conn.send((-1, ("log", fields)))
            except Exception:  # an extra attribute that does not pickle: the message still goes
                keep = ("name", "levelno", "levelname", "msg", "exc_text", "pathname", "lineno", "created")
                with self.send_lock:
                    self.conn.send((-1, ("log", {k: fields.get(k) for k in keep})))
        except Exception:  # the parent is gone: nothing is printed here either
            pass


def _log_to_parent(conn: Connection, lock: threading.Lock, level: int, disabled: int) -> None:
    """Route every log record (and Python warning) of this worker to the parent; *level* and
    *disabled* (``logging.disable``) are the parent's, so records it would drop are not sent."""
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    root.addHandler(_PipeLogHandler(conn, lock))
    root.setLevel(level)
    logging.disable(disabled)
    logging.captureWarnings(True)


def _relog(fields: dict[str, Any]) -> None:
    """Hand a worker's log record to this process's logging, as if it had been logged here."""
    record = logging.makeLogRecord(fields)
    target = logging.getLogger(record.name)
    if target.isEnabledFor(record.levelno):
        target.handle(record)


def _worker_main(
    conn: Connection,
    config: ReaderConfig,
    memory_limit_mb: int | None,
    timeout: float | None = None,
    parent_pid: int = 0,
    log_level: tuple[int, int] = (logging.WARNING, logging.NOTSET),
) -> None:
    lock = threading.Lock()  # one message at a time on the pipe: results and log records
    _log_to_parent(conn, lock, *log_level)
    # one thread per Tesseract run (it inherits this): the workers already use the cores in
    # parallel, and Tesseract's OpenMP threads would only fight them and the embedding
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    guard = None
    if hasattr(os, "setpgrp"):  # POSIX: the worker and its children form one group, killed together
        os.setpgrp()
        guard = _Guard(parent_pid or os.getppid(), timeout)
        guard.start()
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
        if guard is not None:
            guard.started = time.monotonic()
        try:
            payload: Any = ("ok", _safe_read(path, config, cache))
        except BaseException as exc:  # configuration errors: hand them to the parent
            payload = ("fatal", exc)
        finally:
            if guard is not None:
                guard.started = None
        with lock:
            try:
                conn.send((idx, payload))
            except Exception as exc:  # result not picklable / too large: report instead of dying
                conn.send(
                    (idx, ("ok", FileError(path, f"result could not be returned ({exc})", type(exc).__name__)))
                )


def _log_level() -> tuple[int, int]:
    """This process's log level for the package and its ``logging.disable`` level, for workers."""
    return logging.getLogger(__package__).getEffectiveLevel(), logging.root.manager.disable


def _receive(conn: Connection) -> tuple[str, Any]:
    """A worker's answer to its task (``("ok" | "fatal", payload)``, ``("died", None)``), or
    ``("pending", None)`` when only log records came so far (handed to this process's logging)."""
    try:
        while True:
            _idx, (kind, payload) = conn.recv()
            if kind != "log":
                return kind, payload
            _relog(payload)
            if not conn.poll():
                return "pending", None
    except (EOFError, OSError):
        return "died", None


def _kill_tree(process: Any) -> None:
    """Kill a worker and its children (its process group on POSIX)."""
    try:
        if hasattr(os, "killpg") and os.getpgid(process.pid) == process.pid:
            os.killpg(process.pid, signal.SIGKILL)
            return
    except (ProcessLookupError, PermissionError):
        pass
    process.kill()


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
    saved: dict[str, Any] = {k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__}
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
        # spawn: no fork of a threaded parent (torch, tqdm); Any: typeshed's BaseContext has no Process
        self._ctx: Any = mp.get_context(start_method)
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
                _kill_tree(w.process)
                w.process.join()
            w.conn.close()
        self._workers = []

    def _spawn(self) -> _Worker:
        parent, child = self._ctx.Pipe(duplex=True)
        proc = self._ctx.Process(
            target=_worker_main,
            args=(child, self.config, self.memory_limit_mb, self.timeout, os.getpid(), _log_level()),
            daemon=True,
            name="mm-rag-reader",
        )
        with _main_module_hidden():
            proc.start()
        child.close()
        return _Worker(proc, parent)

    def _replace(self, w: _Worker) -> None:
        if w.process.is_alive():
            _kill_tree(w.process)
        w.process.join()
        w.conn.close()
        self._workers[self._workers.index(w)] = self._spawn()

    def busy(self) -> int:
        """How many workers are reading a file now (read from any thread: a moment's view)."""
        return sum(w.task is not None for w in list(self._workers))

    def map_ordered(
        self,
        paths: list[str],
        on_done: Callable[[], Any] | None = None,
        stop: threading.Event | None = None,
        on_all_read: Callable[[], Any] | None = None,
    ) -> Iterator[tuple[int, ReadResult | FileError]]:
        """Read *paths*; yield ``(index, result)`` in input order. Setting *stop* ends it within
        half a second (the tasks in flight are abandoned with their workers when the pool exits).
        *on_all_read* is called once every file is read, before the last results are taken (the
        workers are idle from then on)."""
        todo = deque(enumerate(paths))
        done: dict[int, ReadResult | FileError] = {}
        next_out = 0
        slice_s = 0.5 if stop is not None else 3600.0
        while next_out < len(paths):
            if stop is not None and stop.is_set():
                return
            for w in list(self._workers):
                if w.task is None and todo:
                    w.task = todo.popleft()
                    w.deadline = time.monotonic() + self.timeout if self.timeout else float("inf")
                    w.conn.send(w.task)
            busy = [w for w in self._workers if w.task is not None]
            wait_for = min(w.deadline for w in busy) - time.monotonic() if busy else 0
            handles: list[Any] = [w.conn for w in busy] + [w.process.sentinel for w in busy]
            ready = set(wait(handles, timeout=max(0.0, min(wait_for, slice_s))))
            now = time.monotonic()
            for w in busy:
                assert w.task is not None
                idx, path = w.task
                result: ReadResult | FileError | None = None
                if w.conn in ready:
                    kind, payload = _receive(w.conn)
                    if kind == "fatal":
                        raise payload
                    if kind == "ok":
                        result = payload
                        w.task = None
                    elif kind != "pending":
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
            if on_all_read is not None and not todo and all(w.task is None for w in self._workers):
                on_all_read()
                on_all_read = None
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
