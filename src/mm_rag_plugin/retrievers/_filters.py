"""Metadata filters: one small language, evaluated by Qdrant or in Python with the same meaning.

``{"source": "a.pdf"}`` equality; ``{"page": [1, 2]}`` any of; ``{"page": {"gte": 2, "lt": 5}}``
a range; ``{"kind": "image"}``; dotted keys reach into the chunk's metadata
(``{"metadata.lang": "en"}``). All conditions must hold.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInputError, echo

__all__ = ["Condition", "match", "matches_nothing", "parse_filters", "to_qdrant"]

_RANGE_OPS = ("gt", "gte", "lt", "lte")
_SCALARS = (str, int, float, bool)


@dataclass(frozen=True, slots=True)
class Condition:
    key: str
    op: str  # "eq" | "any" | "range"
    value: Any


def parse_filters(filters: Mapping[str, Any] | None) -> tuple[Condition, ...]:
    """Validate *filters* into conditions; a bad filter raises :class:`InvalidInputError`."""
    if not filters:
        return ()
    if not isinstance(filters, Mapping):
        raise InvalidInputError(f"filters must be a mapping of field -> value, got {echo(filters)}", source="filters")
    out = []
    for key, value in filters.items():
        if not isinstance(key, str) or not key:
            raise InvalidInputError(f"filter keys must be non-empty strings, got {echo(key)}", source="filters")
        if isinstance(value, _SCALARS):
            out.append(Condition(key, "eq", value))
        elif isinstance(value, (list, tuple, set, frozenset)):
            vals = list(value)
            if not all(isinstance(v, _SCALARS) for v in vals):
                raise InvalidInputError(f"filter {key!r}: list values must be str/int/float/bool", source="filters")
            out.append(Condition(key, "any", tuple(vals)))
        elif isinstance(value, Mapping) and value and set(value) <= set(_RANGE_OPS):
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values()):
                raise InvalidInputError(f"filter {key!r}: range bounds must be numbers", source="filters")
            out.append(Condition(key, "range", dict(value)))
        else:
            raise InvalidInputError(
                f"filter {key!r}: expected a value, a list of values, or a range with {_RANGE_OPS}; got {echo(value)}",
                source="filters",
            )
    return tuple(out)


def _get(payload: Mapping[str, Any], key: str) -> Any:
    cur: Any = payload
    for part in key.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _eq(a: Any, b: Any) -> bool:
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def matches_nothing(conditions: tuple[Condition, ...]) -> bool:
    """True when a condition can match no payload (an empty list of allowed values)."""
    return any(c.op == "any" and not c.value for c in conditions)


def match(payload: Mapping[str, Any], conditions: tuple[Condition, ...]) -> bool:
    """Whether *payload* satisfies every condition (Qdrant's semantics for these operators)."""
    for c in conditions:
        if c.key == "source" and isinstance(payload.get("sources"), list):
            if not any(match({"source": s}, (c,)) for s in payload["sources"]):
                return False
            continue
        v = _get(payload, c.key)
        if c.op == "eq":
            if not _eq(v, c.value):
                return False
        elif c.op == "any":
            if not any(_eq(v, x) for x in c.value):
                return False
        else:
            if not isinstance(v, (int, float)) or isinstance(v, bool):
                return False
            r = c.value
            if ("gt" in r and not v > r["gt"]) or ("gte" in r and not v >= r["gte"]):
                return False
            if ("lt" in r and not v < r["lt"]) or ("lte" in r and not v <= r["lte"]):
                return False
    return True


def to_qdrant(conditions: tuple[Condition, ...], models: Any) -> Any:
    """A ``qdrant_client.models.Filter`` (or None) for *conditions*."""
    must = []
    for c in conditions:
        key = "sources" if c.key == "source" else c.key  # a point lists every path its content was found at
        if c.op == "eq" and isinstance(c.value, float):
            must.append(models.FieldCondition(key=key, range=models.Range(gte=c.value, lte=c.value)))
        elif c.op == "eq":
            must.append(models.FieldCondition(key=key, match=models.MatchValue(value=c.value)))
        elif c.op == "any":
            if not c.value:
                raise ValueError(f"filter {c.key!r} lists no values; it matches nothing (check matches_nothing first)")
            must.append(models.Filter(should=[to_qdrant((Condition(c.key, "eq", v),), models) for v in c.value]))
        else:
            must.append(models.FieldCondition(key=key, range=models.Range(**c.value)))
    return models.Filter(must=must) if must else None
