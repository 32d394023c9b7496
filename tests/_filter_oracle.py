"""A Python evaluator of filter conditions with Qdrant's semantics: the oracle the engine tests
compare both engines' filtering against (tests only; the library filters in the engine)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mm_rag_plugin.retrievers._filters import Condition


def match(payload: Mapping[str, Any], conditions: tuple[Condition, ...]) -> bool:
    """Whether *payload* satisfies every condition (Qdrant's semantics for these operators)."""
    return all(_holds(payload, c) for c in conditions)


def _get(payload: Mapping[str, Any], key: str) -> Any:
    cur: Any = payload
    for part in key.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _eq(a: Any, b: Any) -> bool:
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _values(payload: Mapping[str, Any], key: str) -> list[Any]:
    """The values a key holds (an array field holds several; ``source`` means every path)."""
    if key == "source" and isinstance(payload.get("sources"), list):
        return list(payload["sources"])
    v = _get(payload, key)
    if v is None:
        return []
    return list(v) if isinstance(v, list) else [v]


def _holds(payload: Mapping[str, Any], c: Condition) -> bool:
    if c.op == "and":
        return all(_holds(payload, x) for x in c.value)
    if c.op == "or":
        return any(_holds(payload, x) for x in c.value)
    if c.op == "not":
        return not any(_holds(payload, x) for x in c.value)
    values = _values(payload, c.key)
    if c.op == "empty":
        return not values
    if c.op == "eq":
        return any(_eq(v, c.value) for v in values)
    if c.op == "any":
        return any(_eq(v, x) for v in values for x in c.value)
    if c.op == "except":
        return bool(values) and not any(_eq(v, x) for v in values for x in c.value)
    r = c.value
    for v in values:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            continue
        if ("gt" in r and not v > r["gt"]) or ("gte" in r and not v >= r["gte"]):
            continue
        if ("lt" in r and not v < r["lt"]) or ("lte" in r and not v <= r["lte"]):
            continue
        return True
    return False


