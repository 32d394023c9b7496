"""The fast embedded engine: exact search in numpy, persisted in one SQLite file.

Why: qdrant-client's local mode scores every point in Python (a sparse dot product per point), so
a fused query takes ~100 ms at 50k points. Here the dense list is one BLAS matrix-vector product
over a contiguous float32 matrix, and BM25 walks an inverted index (term -> rows, values) built
with numpy and scored with ``bincount``. Scores are the ones Qdrant computes (cosine on unit
vectors; the same BM25 document values times Qdrant's IDF over live points that have terms), so
both engines rank alike on the same data; a test pins it.

Durability: every upsert / delete batch is one SQLite transaction (WAL). A process killed during
ingest loses at most the batch in flight; on reopen the file holds every committed batch. One
process at a time may open a folder (a lock file says which).

Quantization (``quantization="int8" | "binary"``, chosen at open time, never stored): RAM holds
int8 rows with a per-row scale (1/4 of float32) or sign bits (1/32) instead of the float32 matrix.
A dense list takes the best ``limit * oversampling`` rows (at least 100) by the quantized score,
then rescores them exactly with the float32 originals read from SQLite, so returned scores and
their order are the exact ones; only a true neighbour that the quantized score ranks below the
candidate cut can be missed. The originals stay on disk; the same folder opens with or without it.
Without a folder the "disk" is an in-memory SQLite database, so quantization saves no RAM there.
"""

from __future__ import annotations

import json
import logging
import math
import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import StoreError
from ._engine import ListQuery, Point, check_quantization
from ._filters import Condition, match
from .bm25 import SparseVector, idf
from .fusion import rrf_sort_key

logger = logging.getLogger(__name__)

__all__ = ["DB_NAME", "NumpyEngine"]

#: The least candidates a quantized dense list rescores.
MIN_CANDIDATES = 100
# int8 rows are scored in chunks of this many values, converted to float32 in a reused 1 MiB buffer:
# chunks this small stay in cache and OpenBLAS runs their gemv on one thread (on a busy 2-core machine
# a multi-threaded gemv measured ~8 ms per call, whatever its size, against 0.02 ms single-threaded)
_CHUNK_VALUES = 1 << 18
_POPCOUNT = np.array([bin(i).count("1") for i in range(256)], np.uint8)  # numpy < 2 has no bitwise_count

DB_NAME = "mm_rag_index.sqlite"
_KINDS = {"text": 0, "image": 1}
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS points (
  pid TEXT PRIMARY KEY, kind TEXT NOT NULL, source TEXT NOT NULL, payload TEXT NOT NULL,
  dense BLOB NOT NULL, sp_idx BLOB NOT NULL, sp_val BLOB NOT NULL);
CREATE INDEX IF NOT EXISTS points_source ON points(source);
"""


class _Postings:
    """Inverted index: a big CSR block by term plus a small block of recent additions."""

    def __init__(self) -> None:
        self._main = self._build([])
        self._pending: list[tuple[int, np.ndarray, np.ndarray]] = []
        self._delta: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._main_size = 0

    @staticmethod
    def _build(items: list[tuple[int, np.ndarray, np.ndarray]]):
        if not items:
            e = np.empty(0)
            return e.astype(np.uint32), np.zeros(1, np.int64), e.astype(np.int32), e.astype(np.float32)
        terms = np.concatenate([i for _, i, _ in items])
        rows = np.concatenate([np.full(len(i), r, np.int32) for r, i, _ in items])
        vals = np.concatenate([v for _, _, v in items])
        order = np.argsort(terms, kind="stable")
        terms, rows, vals = terms[order], rows[order], vals[order]
        uniq, starts = np.unique(terms, return_index=True)
        ptr = np.append(starts, len(terms)).astype(np.int64)
        return uniq, ptr, rows, vals

    def _build_rows(self, merged, main_rows):
        """Main block (given as expanded terms + rows) plus the pending items, as one block."""
        items = self._pending
        terms = np.concatenate([*(t for _, t, _ in merged), *(i for _, i, _ in items)])
        rows = np.concatenate([*(main_rows for _ in merged), *(np.full(len(i), r, np.int32) for r, i, _ in items)])
        vals = np.concatenate([*(v for _, _, v in merged), *(v for _, _, v in items)])
        order = np.argsort(terms, kind="stable")
        terms, rows, vals = terms[order], rows[order], vals[order]
        uniq, starts = np.unique(terms, return_index=True)
        return uniq, np.append(starts, len(terms)).astype(np.int64), rows, vals

    def add(self, row: int, sv: SparseVector) -> None:
        if len(sv):
            self._pending.append((row, sv.indices, sv.values))
            self._delta = None

    def rebuild(self, items: list[tuple[int, np.ndarray, np.ndarray]]) -> None:
        self._main, self._pending, self._delta = self._build(items), [], None
        self._main_size = len(self._main[2])

    def _blocks(self):
        pend = sum(len(i) for _, i, _ in self._pending)
        if pend and pend > max(20_000, self._main_size // 8):  # merge the delta into the main block
            uniq, ptr, rows, vals = self._main
            merged = [(-1, np.repeat(uniq, np.diff(ptr)), vals)] if len(rows) else []
            self._main = self._build_rows(merged, rows)
            self._main_size, self._pending, self._delta = len(self._main[2]), [], None
        if self._pending and self._delta is None:
            self._delta = self._build(self._pending)
        return [self._main] + ([self._delta] if self._pending and self._delta is not None else [])

    def nbytes(self) -> int:
        blocks = [self._main, *([self._delta] if self._delta is not None else [])]
        return sum(a.nbytes for b in blocks for a in b) + sum(i.nbytes + v.nbytes for _, i, v in self._pending)

    def lookup(self, terms: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query term, the (rows, values) postings across blocks."""
        out: list[tuple[list[np.ndarray], list[np.ndarray]]] = [([], []) for _ in terms]
        for uniq, ptr, rows, vals in self._blocks():
            if not len(uniq):
                continue
            pos = np.searchsorted(uniq, terms)
            for j, p in enumerate(pos):
                if p < len(uniq) and uniq[p] == terms[j]:
                    out[j][0].append(rows[ptr[p] : ptr[p + 1]])
                    out[j][1].append(vals[ptr[p] : ptr[p + 1]])
        return [
            (np.concatenate(r) if r else np.empty(0, np.int32), np.concatenate(v) if v else np.empty(0, np.float32))
            for r, v in out
        ]


class NumpyEngine:
    name = "numpy"
    supports_server_fusion = False

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        quantization: str | None = None,
        oversampling: float | None = None,
    ) -> None:
        self.quantization, self.oversampling = check_quantization(quantization, oversampling)
        self._reps = {None: ("_dense",), "int8": ("_q", "_qscale"), "binary": ("_q",)}[quantization]
        # per-row columns; quantized rows also keep their SQLite rowid, to read originals by it
        self._cols = ("_alive", "_has_terms", "_kind", "_source_code", *(("_rid",) if quantization else ()))
        self._lock = None
        if path is None:
            db = ":memory:"
        else:
            folder = Path(path)
            folder.mkdir(parents=True, exist_ok=True)
            self._lock = _lock_folder(folder)
            db = str(folder / DB_NAME)
        try:
            self._db = sqlite3.connect(db, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as exc:
            self._release()
            raise StoreError(f"cannot open the index file {db}: {exc}") from exc
        self._dim = 0
        self._reset(0)
        cfg = self.stored_config()
        if cfg:
            self._dim = int(cfg["dim"])
            self._load()

    # ------------------------------------------------------------------ memory layout
    def _reset(self, cap: int) -> None:
        self._n = 0
        self._ids: list[str] = []
        self._row: dict[str, int] = {}
        # the dense representation: float32 rows, or int8 rows + scales, or sign bits
        self._dense = np.zeros((cap, self._dim), np.float32) if self.quantization is None else None
        self._q = None
        if self.quantization == "int8":
            self._q, self._qscale = np.zeros((cap, self._dim), np.int8), np.zeros(cap, np.float32)
        elif self.quantization == "binary":
            self._q = np.zeros((cap, (self._dim + 7) // 8), np.uint8)
        self._alive = np.zeros(cap, bool)
        self._has_terms = np.zeros(cap, bool)
        self._kind = np.zeros(cap, np.int8)
        self._source_code = np.zeros(cap, np.int32)
        self._rid = np.zeros(cap, np.int64) if self.quantization else None
        self._sources: dict[str, int] = {}
        self._payload: list[dict[str, Any]] = []
        self._sparse: list[SparseVector | None] = []
        self._post = _Postings()
        self._dead = 0

    def _grow(self, extra: int) -> None:
        need = self._n + extra
        if need <= len(self._alive):
            return
        cap = max(need, int(len(self._alive) * 1.5) + 1024)
        for name in (*self._reps, *self._cols):
            old = getattr(self, name)
            new = np.zeros((cap, *old.shape[1:]), old.dtype)
            new[: self._n] = old[: self._n]
            setattr(self, name, new)

    def _append(self, pid: str, kind: str, source: str, payload: dict, sv: SparseVector) -> None:
        """Append one row; its dense vector is written by :meth:`_put_dense` (rows are contiguous)."""
        old = self._row.get(pid)
        if old is not None:
            self._kill(old)
        r = self._n
        self._n += 1
        self._ids.append(pid)
        self._row[pid] = r
        self._alive[r] = True
        self._has_terms[r] = len(sv) > 0
        self._kind[r] = _KINDS[kind]
        self._source_code[r] = self._sources.setdefault(source, len(self._sources))
        self._payload.append(payload)
        self._sparse.append(sv if len(sv) else None)
        self._post.add(r, sv)

    def _kill(self, r: int) -> None:
        if self._alive[r]:
            self._alive[r] = False
            self._dead += 1
            self._row.pop(self._ids[r], None)

    def _put_dense(self, start: int, mat: np.ndarray) -> None:
        """Write unit float32 rows ``mat`` at rows ``start...`` in the in-memory representation."""
        end = start + len(mat)
        if self.quantization is None:
            self._dense[start:end] = mat
        elif self.quantization == "int8":
            top = np.abs(mat).max(axis=1)
            top[top == 0] = 1.0
            self._q[start:end] = np.rint(mat * (127.0 / top)[:, None])
            self._qscale[start:end] = top / 127.0
        else:
            self._q[start:end] = np.packbits(mat > 0, axis=1)

    def _load(self) -> None:
        total = self._db.execute("SELECT COUNT(*) FROM points").fetchone()[0]
        self._reset(total)
        sql = "SELECT pid, kind, source, payload, dense, sp_idx, sp_val, rowid FROM points ORDER BY rowid"
        cur = self._db.execute(sql)
        while batch := cur.fetchmany(4096):  # in blocks: never all the float32 originals in RAM at once
            start = self._n
            for pid, kind, source, payload, _, sp_idx, sp_val, _ in batch:
                sv = SparseVector(np.frombuffer(sp_idx, np.uint32), np.frombuffer(sp_val, np.float32))
                self._append(pid, kind, source, json.loads(payload), sv)
            if self._rid is not None:
                self._rid[start : self._n] = [b[7] for b in batch]
            self._put_dense(start, np.frombuffer(b"".join(b[4] for b in batch), np.float32).reshape(len(batch), self._dim))

    def _compact(self) -> None:
        live = np.flatnonzero(self._alive[: self._n])
        ids = [self._ids[i] for i in live]
        reps = {name: getattr(self, name)[live] for name in (*self._reps, *(("_rid",) if self.quantization else ()))}
        kinds, codes = self._kind[live].copy(), self._source_code[live].copy()
        payloads = [self._payload[i] for i in live]
        sparse = [self._sparse[i] for i in live]
        inv = {v: k for k, v in self._sources.items()}
        self._reset(len(live))
        empty = SparseVector(np.empty(0, np.uint32), np.empty(0, np.float32))
        kind_names = {v: k for k, v in _KINDS.items()}
        for j, pid in enumerate(ids):
            self._append(pid, kind_names[int(kinds[j])], inv[int(codes[j])], payloads[j], sparse[j] or empty)
        for name, arr in reps.items():
            getattr(self, name)[: len(live)] = arr
        self._post.rebuild([(r, s.indices, s.values) for r, s in enumerate(self._sparse) if s is not None])

    # ------------------------------------------------------------------ config
    def stored_config(self) -> dict[str, Any] | None:
        row = self._db.execute("SELECT value FROM meta WHERE key='config'").fetchone()
        return json.loads(row[0]) if row else None

    def create(self, config: dict[str, Any]) -> None:
        with self._tx():
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('config', ?)", (json.dumps(config),))
        self._dim = int(config["dim"])
        self._reset(0)

    def _tx(self):
        return _Transaction(self._db)

    # ------------------------------------------------------------------ writes
    def existing(self, ids: Sequence[str]) -> set[str]:
        return {i for i in ids if i in self._row}

    def upsert(self, points: Sequence[Point]) -> None:
        if not points:
            return
        mat = np.empty((len(points), self._dim), np.float32)
        for j, p in enumerate(points):
            d = np.asarray(p.dense, np.float32)
            mat[j] = d / max(float(np.linalg.norm(d)), 1e-12)
        rows = list(zip(points, mat, strict=True))
        try:
            with self._tx():
                self._db.executemany(
                    "INSERT OR REPLACE INTO points VALUES (?,?,?,?,?,?,?)",
                    [
                        (p.id, p.kind, p.source, json.dumps(p.payload), d.tobytes(),
                         p.sparse.indices.astype(np.uint32).tobytes(), p.sparse.values.astype(np.float32).tobytes())
                        for p, d in rows
                    ],
                )
                if self.quantization:
                    sql = "SELECT pid, rowid FROM points WHERE pid IN (SELECT value FROM json_each(?))"
                    rowids = dict(self._db.execute(sql, (json.dumps([p.id for p in points]),)))
        except sqlite3.Error as exc:
            raise StoreError(f"upsert of {len(rows)} points failed: {exc}") from exc
        self._grow(len(rows))
        start = self._n
        for p in points:
            self._append(p.id, p.kind, p.source, p.payload, p.sparse)
        self._put_dense(start, mat)
        if self._rid is not None:
            self._rid[start : self._n] = [rowids[p.id] for p in points]

    def delete(self, ids: Sequence[str]) -> None:
        ids = [i for i in ids if i in self._row]
        if not ids:
            return
        with self._tx():
            self._db.executemany("DELETE FROM points WHERE pid=?", [(i,) for i in ids])
        for i in ids:
            self._kill(self._row[i])
        if self._dead > 1000 and self._dead > self._n // 4:
            self._compact()

    def ids_for_source(self, source: str) -> set[str]:
        code = self._sources.get(source)
        if code is None:
            return set()
        rows = np.flatnonzero(self._alive[: self._n] & (self._source_code[: self._n] == code))
        return {self._ids[r] for r in rows}

    def count(self, kind: str | None = None) -> int:
        mask = self._alive[: self._n]
        if kind is not None:
            mask = mask & (self._kind[: self._n] == _KINDS.get(kind, -1))
        return int(np.count_nonzero(mask))

    # ------------------------------------------------------------------ reads
    def _mask(self, conditions: tuple[Condition, ...], kind: str | None) -> np.ndarray:
        n = self._n
        mask = self._alive[:n].copy()
        if kind is not None:
            mask &= self._kind[:n] == _KINDS.get(kind, -1)
        rest = []
        for c in conditions:
            if c.key == "kind" and c.op in ("eq", "any"):
                vals = (c.value,) if c.op == "eq" else c.value
                mask &= np.isin(self._kind[:n], [_KINDS[v] for v in vals if isinstance(v, str) and v in _KINDS])
            elif c.key == "source" and c.op in ("eq", "any"):
                vals = (c.value,) if c.op == "eq" else c.value
                codes = [self._sources[v] for v in vals if isinstance(v, str) and v in self._sources]
                mask &= np.isin(self._source_code[:n], codes)
            else:
                rest.append(c)
        if rest:
            conds = tuple(rest)
            for r in np.flatnonzero(mask):
                if not match(self._payload[r], conds):
                    mask[r] = False
        return mask

    def _top(self, scores: np.ndarray, mask: np.ndarray, limit: int, min_score: float | None) -> list[tuple[str, float]]:
        if min_score is not None:
            mask = mask & (scores >= min_score)
        cand = np.flatnonzero(mask)
        return self._rank(cand, scores[cand], limit)

    def _rank(self, cand: np.ndarray, s: np.ndarray, limit: int) -> list[tuple[str, float]]:
        """The best *limit* of rows *cand* with scores *s*: score desc, ties by id (``rrf_sort_key``)."""
        if not len(cand) or limit <= 0:
            return []
        if len(cand) > limit:
            part = np.argpartition(-s, limit - 1)[:limit]
            cut = s[part].min()
            keep = (s > cut) | (s == cut)  # every item tied with the last one, resolved by id below
            cand, s = cand[keep], s[keep]
        ids = self._ids
        order = sorted(range(len(cand)), key=lambda j: rrf_sort_key(float(s[j]), ids[cand[j]]))[:limit]
        return [(ids[cand[j]], float(s[j])) for j in order]

    def _bm25(self, sv: SparseVector) -> tuple[np.ndarray, np.ndarray]:
        n = self._n
        alive_terms = self._alive[:n] & self._has_terms[:n]
        num_docs = int(np.count_nonzero(alive_terms))
        rows_all, w_all = [], []
        for rows, vals in self._post.lookup(sv.indices):
            if not len(rows):
                continue
            df = int(np.count_nonzero(alive_terms[rows]))
            rows_all.append(rows)
            w_all.append(vals.astype(np.float64) * float(idf(df, num_docs)))
        if not rows_all:
            return np.zeros(n, np.float64), np.zeros(n, bool)
        rows = np.concatenate(rows_all)
        weights = np.concatenate(w_all)
        # query values are 1 per term, so a term's contribution is doc value * idf
        scores = np.bincount(rows, weights=weights, minlength=n)
        touched = np.bincount(rows, minlength=n) > 0
        return scores, touched

    def _approx(self, v: np.ndarray) -> np.ndarray:
        """Quantized scores of every row for unit query *v* (higher is better; only the order counts)."""
        n = self._n
        if self.quantization == "binary":
            x = self._q[:n] ^ np.packbits(v > 0)
            bits = np.bitwise_count(x) if hasattr(np, "bitwise_count") else _POPCOUNT[x]
            return -bits.sum(axis=1, dtype=np.int32)  # minus the Hamming distance
        out = np.empty(n, np.float32)
        step = max(1, _CHUNK_VALUES // max(self._dim, 1))
        buf = np.empty((min(step, n), self._dim), np.float32)
        for s in range(0, n, step):
            m = min(step, n - s)
            np.copyto(buf[:m], self._q[s : s + m])
            np.dot(buf[:m], v, out=out[s : s + m])
        return out * self._qscale[:n]

    def _originals(self, rows: Sequence[int], cache: dict[int, np.ndarray]) -> None:
        """Read the float32 originals of *rows* from SQLite into *cache* (row -> vector)."""
        by_rid = {int(self._rid[r]): r for r in rows if r not in cache}
        if not by_rid:
            return
        # by rowid: ~1.5x faster than by pid (no index lookup); a row deleted meanwhile is not found
        sql = "SELECT rowid, dense FROM points WHERE rowid IN (SELECT value FROM json_each(?))"
        for rid, blob in self._db.execute(sql, (json.dumps(sorted(by_rid)),)):
            cache[by_rid[rid]] = np.frombuffer(blob, np.float32)

    def _rescored(
        self, v: np.ndarray, approx: np.ndarray, mask: np.ndarray, q: ListQuery, cache: dict[int, np.ndarray]
    ) -> list[tuple[str, float]]:
        """Quantized candidates under *mask*, rescored exactly with the float32 originals."""
        if q.limit <= 0:
            return []
        cand = np.flatnonzero(mask)
        want = max(math.ceil(q.limit * self.oversampling), MIN_CANDIDATES)
        if len(cand) > want:
            cand = cand[np.argpartition(-approx[cand], want - 1)[:want]]
        self._originals(cand.tolist(), cache)
        cand = np.array([r for r in cand.tolist() if r in cache], np.int64)  # a row deleted meanwhile is gone
        if not len(cand):
            return []
        s = np.stack([cache[r] for r in cand.tolist()]) @ v
        if q.min_score is not None:
            keep = s >= q.min_score
            cand, s = cand[keep], s[keep]
        return self._rank(cand, s, q.limit)

    def search(self, queries: Sequence[ListQuery], conditions: tuple[Condition, ...]) -> list[list[tuple[str, float]]]:
        out: list[list[tuple[str, float]]] = []
        dense_cache: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        originals: dict[int, np.ndarray] = {}  # quantized: float32 rows read for this call
        base = self._mask(conditions, None) if conditions else self._alive[: self._n]
        for q in queries:
            mask = base if q.kind is None else base & (self._kind[: self._n] == _KINDS.get(q.kind, -1))
            if q.sparse is not None:
                scores, touched = self._bm25(q.sparse)
                out.append(self._top(scores, mask & touched, q.limit, q.min_score))
            else:
                key = id(q.dense)
                if key not in dense_cache:
                    v = np.asarray(q.dense, np.float32)
                    v = (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)
                    dense_cache[key] = (v, self._dense[: self._n] @ v if self.quantization is None else self._approx(v))
                v, scores = dense_cache[key]
                if self.quantization is None:
                    out.append(self._top(scores, mask, q.limit, q.min_score))
                else:
                    out.append(self._rescored(v, scores, mask, q, originals))
        return out

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {i: self._payload[self._row[i]] for i in ids if i in self._row}

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        """Float32 unit vectors by id (read from SQLite when quantized)."""
        if self.quantization is None:
            return {i: self._dense[self._row[i]] for i in ids if i in self._row}
        cache: dict[int, np.ndarray] = {}
        self._originals([self._row[i] for i in ids if i in self._row], cache)
        return {i: cache[self._row[i]] for i in ids if i in self._row and self._row[i] in cache}

    def memory_bytes(self) -> dict[str, int]:
        """Bytes held in RAM by the dense representation, the per-row columns and the BM25 postings."""
        return {
            "dense": sum(getattr(self, name).nbytes for name in self._reps),
            "columns": sum(getattr(self, name).nbytes for name in self._cols),
            "postings": self._post.nbytes(),
        }

    def close(self) -> None:
        try:
            self._db.close()
        finally:
            self._release()

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type, exc, tb) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")


def _lock_folder(folder: Path):
    """An exclusive lock on ``folder/.mm_rag.lock`` held while the engine is open."""
    import portalocker

    fh = open(folder / ".mm_rag.lock", "a")  # noqa: SIM115 - held until close()
    try:
        portalocker.lock(fh, portalocker.LOCK_EX | portalocker.LOCK_NB)
    except portalocker.LockException as exc:
        fh.close()
        raise StoreError(
            f"the index folder {folder} is open in another process or client; close it first "
            "(or use a Qdrant server for concurrent access)"
        ) from exc
    return fh
