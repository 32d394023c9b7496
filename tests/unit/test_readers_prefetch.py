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


def test_a_cpu_model_leaves_the_readers_their_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        monkeypatch.setattr("os.cpu_count", lambda: 2)
        cpu, gpu = SimpleNamespace(device="cpu"), SimpleNamespace(device="cuda")
        with _share_cores(cpu, readers=1) as give_back:
            assert torch.get_num_threads() == 1
            give_back()  # the readers are done: the model gets every core again
            assert torch.get_num_threads() == 2
            give_back()
        assert torch.get_num_threads() == 2
        with _share_cores(cpu, readers=1):
            assert torch.get_num_threads() == 1
        assert torch.get_num_threads() == 2
        with _share_cores(cpu, readers=2):
            assert torch.get_num_threads() == 1  # at least one thread
        with _share_cores(cpu, readers=0), _share_cores(gpu, readers=2), _share_cores(None, readers=2):
            assert torch.get_num_threads() == 2  # no readers, a GPU model, keyword-only: unchanged
        monkeypatch.setattr("os.cpu_count", lambda: 16)
        with _share_cores(cpu, readers=2):
            assert torch.get_num_threads() == 2  # never more threads than it had
    finally:
        torch.set_num_threads(before)


def test_every_file_read_is_said_before_the_last_results_are_taken(tmp_path) -> None:
    """The pipeline gives a CPU model its cores back when the readers are idle: once every file is
    read, not once the caller has taken (embedded and written) every result, long after."""
    from mm_rag_plugin.readers.loader import DocumentLoader

    for i in range(6):
        (tmp_path / f"f{i}.txt").write_text(f"file {i} " * 20, encoding="utf-8")
    loader = DocumentLoader([str(tmp_path)], workers=2)
    seen = []
    for _path, res in loader.lazy_load():
        assert res.chunks
        seen.append(loader.done_reading.is_set())
    assert len(seen) == 6 and seen[-1]  # the last result comes after "every file read"
