"""Overlap of reading and indexing: the reader pool runs ahead of the consumer on a thread, and a
CPU model leaves the reader processes their cores while they run."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from mm_rag_plugin.pipeline import _share_cores
from mm_rag_plugin.readers.loader import prefetch


def test_items_come_in_order_and_the_producer_runs_ahead() -> None:
    made: list[tuple[int, float]] = []

    def produce(stop: threading.Event) -> Iterator[int]:
        for i in range(8):
            made.append((i, time.monotonic()))
            yield i

    got = []
    for item in prefetch(produce, depth=4):
        if item == 0:
            time.sleep(0.3)  # the consumer is busy (embedding): the producer must not wait for it
            assert len(made) >= 5, made  # the item handed over, 4 queued, and the one waiting to go in
        got.append(item)
    assert got == list(range(8))


def test_a_producer_error_is_raised_after_the_items_before_it() -> None:
    def produce(stop: threading.Event) -> Iterator[int]:
        yield 1
        yield 2
        raise ValueError("broken reader")

    got = []
    with pytest.raises(ValueError, match="broken reader"):
        for item in prefetch(produce, depth=1):
            got.append(item)
    assert got == [1, 2]


def test_stopping_early_stops_the_producer_and_lets_it_clean_up() -> None:
    cleaned = threading.Event()
    produced: list[int] = []

    def produce(stop: threading.Event) -> Iterator[int]:
        try:
            for i in range(10_000):
                if stop.is_set():
                    return
                produced.append(i)
                yield i
        finally:
            cleaned.set()  # the reader pool's `with` block exits here, on the producer's thread

    it = prefetch(produce, depth=2)
    assert next(it) == 0
    it.close()
    assert cleaned.wait(2.0)
    assert len(produced) < 10, produced
    assert not any(t.name == "mm-rag-reader-prefetch" and t.is_alive() for t in threading.enumerate())


def test_a_cpu_model_gets_the_cores_the_readers_leave(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(4)
        monkeypatch.setattr("os.cpu_count", lambda: 4)
        cpu, gpu = SimpleNamespace(device="cpu"), SimpleNamespace(device="cuda")
        with _share_cores(cpu, readers=2) as share:
            assert torch.get_num_threads() == 2  # both readers start at once
            share(1)  # one reader idle (waiting for the caller, or out of files)
            assert torch.get_num_threads() == 3
            share(0)  # every reader idle: every core
            assert torch.get_num_threads() == 4
            share(2)  # reading again
            assert torch.get_num_threads() == 2
            share(7)  # never fewer than what the readers it was told of leave
            assert torch.get_num_threads() == 2
        assert torch.get_num_threads() == 4  # given back at the end
        monkeypatch.setattr("os.cpu_count", lambda: 2)
        torch.set_num_threads(2)
        with _share_cores(cpu, readers=2):
            assert torch.get_num_threads() == 1  # at least one thread
        with _share_cores(cpu, readers=0), _share_cores(gpu, readers=2), _share_cores(None, readers=2) as share:
            share(0)
            assert torch.get_num_threads() == 2  # no readers, a GPU model, keyword-only: unchanged
        monkeypatch.setattr("os.cpu_count", lambda: 16)
        with _share_cores(cpu, readers=2) as share:
            share(0)
            assert torch.get_num_threads() == 2  # never more threads than it had
    finally:
        torch.set_num_threads(before)


def test_the_readers_read_ahead_while_the_caller_holds_a_result(tmp_path) -> None:
    """While the caller embeds one file's chunks, the readers go on with the files after it (more
    than a few: they finish and leave the model every core), and say when they work."""
    from mm_rag_plugin.readers.loader import READ_AHEAD, DocumentLoader

    n = 16
    assert n <= READ_AHEAD
    for i in range(n):
        (tmp_path / f"f{i:02d}.txt").write_text(f"file {i} " * 20, encoding="utf-8")
    loader = DocumentLoader([str(tmp_path)], workers=2)
    assert loader.busy_readers() == 0  # nothing started
    results = loader.lazy_load()
    first = next(results)
    assert first[0].name == "f00.txt"
    assert loader.done_reading.wait(120)  # every file read while the caller holds the first
    assert loader.busy_readers() == 0
    rest = [p.name for p, _ in results]
    assert rest == [f"f{i:02d}.txt" for i in range(1, n)]
    assert loader.busy_readers() == 0
