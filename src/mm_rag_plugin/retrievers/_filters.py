"""Metadata filters: one small language, evaluated by Qdrant with one meaning on both engines.

The dict form (what users write):

* ``{"source": "a.pdf"}`` equality; ``{"page": [1, 2]}`` any of; ``{"kind": "image"}``;
* ``{"page": {"gte": 2, "lt": 5}}`` a range; ``{"page": {"ne": 3}}``, ``{"page": {"in": [1, 2]}}``,
  ``{"page": {"nin": [1, 2]}}`` (not equal / any of / none of); operators may be spelt with a ``$``
  as LangChain's stores take them (``{"team": {"$in": ["a", "b"]}}``, ``$eq``, ``$gt`` ...), and
  several on one field must all hold (``{"page": {"$gte": 2, "$ne": 3}}``);
* ``{"$or": [{...}, {...}]}``, ``{"$and": [...]}``, ``{"$not": {...}}``: boolean groups;
* dotted keys reach into a chunk's own metadata (``{"metadata.lang": "en"}``).

All top-level entries must hold. In ``scope="chunk"`` (retrievers, tools) a key must be a chunk
field or ``metadata.*``: a misspelled key is an error, not an empty result. In
``scope="metadata"`` (the framework vector stores, whose users filter on their own metadata) a
plain key is a metadata key, and a key that is also a chunk field matches either.

Conditions form a tree (:class:`Condition`): leaves ``eq``, ``any``, ``except``, ``range``,
``empty``; groups ``and``, ``or``, ``not`` (none of its conditions holds) whose value is a tuple of
conditions. :func:`from_qdrant` reads a ``qdrant_client.models.Filter`` into the same tree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from .._payload import RESERVED_KEYS
from ..errors import InvalidInputError, echo

__all__ = [
    "Condition", "FilterKit", "all_of", "any_of", "build", "from_qdrant", "matches_nothing", "none_of", "parse_filters",
]

_RANGE_OPS = ("gt", "gte", "lt", "lte")
_SET_OPS = ("ne", "in", "nin")
_SCALARS = (str, int, float, bool)
_GROUPS = ("and", "or", "not")
#: Top-level payload keys a filter may name (besides ``metadata.*``).
CHUNK_KEYS = frozenset(RESERVED_KEYS | {"sources"})
KINDS = ("text", "image")


@dataclass(frozen=True, slots=True)
class Condition:
    key: str  # "" for a group
    op: str  # "eq" | "any" | "except" | "range" | "empty" | "and" | "or" | "not"
    value: Any


def all_of(*conditions: Condition) -> Condition:
    return Condition("", "and", tuple(conditions))


def any_of(*conditions: Condition) -> Condition:
    return Condition("", "or", tuple(conditions))


def none_of(*conditions: Condition) -> Condition:
    return Condition("", "not", tuple(conditions))


def parse_filters(
    filters: Any, *, scope: Literal["chunk", "metadata"] = "chunk"
) -> tuple[Condition, ...]:
    """Validate *filters* (the dict form, a qdrant ``models.Filter``, or conditions) into
    conditions that must all hold; a bad filter raises :class:`InvalidInputError`."""
    if filters is None:
        return ()
    if isinstance(filters, Condition):
        return (filters,)
    if isinstance(filters, tuple) and all(isinstance(c, Condition) for c in filters):
        return filters
    if not isinstance(filters, Mapping) and type(filters).__name__ == "Filter" and hasattr(filters, "must_not"):
        return (from_qdrant(filters),)
    if not isinstance(filters, Mapping):
        raise InvalidInputError(f"filters must be a mapping of field -> value, got {echo(filters)}", source="filters")
    return tuple(_parse_entry(key, value, scope) for key, value in filters.items())


def _parse_entry(key: Any, value: Any, scope: Literal["chunk", "metadata"]) -> Condition:
    if key in ("$and", "$or"):
        if not isinstance(value, (list, tuple)) or not value or not all(isinstance(v, Mapping) for v in value):
            raise InvalidInputError(f"filter {key!r} takes a non-empty list of filters, got {echo(value)}", source="filters")
        parts = [all_of(*parse_filters(v, scope=scope)) for v in value]
        return Condition("", key[1:], tuple(parts))
    if key == "$not":
        if not isinstance(value, Mapping) or not value:
            raise InvalidInputError(f"filter '$not' takes a filter, got {echo(value)}", source="filters")
        return none_of(all_of(*parse_filters(value, scope=scope)))
    if not isinstance(key, str) or not key or key.startswith("$"):
        raise InvalidInputError(f"filter keys must be field names, got {echo(key)}", source="filters")
    if scope == "metadata":
        if key == "kind" or key.startswith("metadata."):
            return _leaf(key, value)
        if key in CHUNK_KEYS:  # the chunk's own field, or the same name in the caller's metadata
            return any_of(_leaf(key, value), _leaf(f"metadata.{key}", value))
        return _leaf(f"metadata.{key}", value)
    if key not in CHUNK_KEYS and not key.startswith("metadata."):
        close = sorted(k for k in CHUNK_KEYS if _near(k, key))
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise InvalidInputError(
            f"unknown filter field {key!r}{hint}; fields are {', '.join(sorted(CHUNK_KEYS - {'sources'}))}, "
            f"or metadata.<name> for a chunk's own metadata",
            source="filters",
        )
    return _leaf(key, value)


def _near(a: str, b: str) -> bool:
    """Whether *b* looks like a typo of *a* (one edit, or a swap)."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long = sorted((a, b), key=len)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _operators(key: str, value: Mapping[Any, Any]) -> dict[str, Any]:
    """An operator mapping with LangChain's ``$`` spelling (``{"$in": [...]}``, as Chroma, PGVector
    and Pinecone take it) read as the plain one (``{"in": [...]}``)."""
    out: dict[str, Any] = {}
    for op, arg in value.items():
        name = op[1:] if isinstance(op, str) and op.startswith("$") else op
        if name in out:
            raise InvalidInputError(f"filter {key!r}: operator {name!r} given twice", source="filters")
        out[name] = arg
    return out


def _leaf(key: str, value: Any) -> Condition:
    if isinstance(value, Mapping) and value:
        value = _operators(key, value)
        if set(value) == {"eq"}:
            value = value["eq"]
            if not isinstance(value, _SCALARS):
                raise InvalidInputError(f"filter {key!r}: 'eq' takes a value, got {echo(value)}", source="filters")
        elif len(value) > 1 and set(value) <= {*_RANGE_OPS, *_SET_OPS, "eq"} and not set(value) <= set(_RANGE_OPS):
            # several operators on one field, e.g. {"$gte": 2, "$ne": 3}: all must hold
            rng = {op: arg for op, arg in value.items() if op in _RANGE_OPS}
            parts = [_leaf(key, rng)] if rng else []
            parts += [_leaf(key, {op: arg}) for op, arg in value.items() if op not in _RANGE_OPS]
            return all_of(*parts)
    if isinstance(value, _SCALARS):
        cond = Condition(key, "eq", value)
    elif isinstance(value, (list, tuple, set, frozenset)):
        cond = Condition(key, "any", _scalars(key, value))
    elif isinstance(value, Mapping) and value and set(value) <= set(_RANGE_OPS):
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value.values()):
            raise InvalidInputError(f"filter {key!r}: range bounds must be numbers", source="filters")
        cond = Condition(key, "range", dict(value))
    elif isinstance(value, Mapping) and len(value) == 1 and next(iter(value)) in _SET_OPS:
        op, arg = next(iter(value.items()))
        if op == "ne":
            if not isinstance(arg, _SCALARS):
                raise InvalidInputError(f"filter {key!r}: 'ne' takes a value, got {echo(arg)}", source="filters")
            cond = none_of(Condition(key, "eq", arg))
        elif not isinstance(arg, (list, tuple, set, frozenset)):
            raise InvalidInputError(f"filter {key!r}: {op!r} takes a list of values, got {echo(arg)}", source="filters")
        else:
            cond = Condition(key, "any" if op == "in" else "except", _scalars(key, arg))
    else:
        raise InvalidInputError(
            f"filter {key!r}: expected a value, a list of values, a range with {_RANGE_OPS}, or one of "
            f"{_SET_OPS}; got {echo(value)}",
            source="filters",
        )
    if key == "kind":
        _check_kind(cond)
    return cond


def _scalars(key: str, values: Any) -> tuple[Any, ...]:
    vals = tuple(values)
    if not all(isinstance(v, _SCALARS) for v in vals):
        raise InvalidInputError(f"filter {key!r}: list values must be str/int/float/bool", source="filters")
    return vals


def _check_kind(cond: Condition) -> None:
    values = cond.value if cond.op in ("any", "except") else (cond.value,) if cond.op == "eq" else ()
    if cond.op in ("and", "or", "not"):
        values = tuple(v for c in cond.value for v in ((c.value,) if c.op == "eq" else c.value))
    bad = [v for v in values if v not in KINDS]
    if bad or cond.op == "range":
        raise InvalidInputError(f"filter 'kind': items are 'text' or 'image', got {echo(bad or cond.value)}", source="filters")


def from_qdrant(flt: Any) -> Condition:
    """A ``qdrant_client.models.Filter`` (as langchain-qdrant users write them) as a condition."""
    parts: list[Condition] = []
    for attr, op in (("must", "and"), ("should", "or"), ("must_not", "not")):
        items = getattr(flt, attr, None)
        if items is None:
            continue
        items = items if isinstance(items, list) else [items]
        if items:
            parts.append(Condition("", op, tuple(_from_qdrant_item(i) for i in items)))
    if getattr(flt, "min_should", None) is not None:
        raise InvalidInputError("qdrant filter: min_should is not supported; use should", source="filters")
    return all_of(*parts)


def _from_qdrant_item(item: Any) -> Condition:
    name = type(item).__name__
    if name == "Filter":
        return from_qdrant(item)
    if name == "IsEmptyCondition":
        return Condition(item.is_empty.key, "empty", True)
    if name == "FieldCondition":
        key = item.key
        m, r = getattr(item, "match", None), getattr(item, "range", None)
        others = [a for a in ("geo_bounding_box", "geo_radius", "geo_polygon", "values_count", "is_empty", "is_null") if getattr(item, a, None) is not None]
        if others:
            raise InvalidInputError(f"qdrant filter on {key!r}: {others[0]} is not supported", source="filters")
        if m is not None and r is None:
            kind = type(m).__name__
            if kind == "MatchValue":
                return Condition(key, "eq", m.value)
            if kind == "MatchAny":
                return Condition(key, "any", tuple(m.any))
            if kind == "MatchExcept":
                return Condition(key, "except", tuple(m.except_))
            raise InvalidInputError(f"qdrant filter on {key!r}: {kind} is not supported (use MatchValue, MatchAny, MatchExcept)", source="filters")
        if r is not None and m is None and type(r).__name__ == "Range":
            bounds = {op: getattr(r, op) for op in _RANGE_OPS if getattr(r, op) is not None}
            if bounds:
                return Condition(key, "range", bounds)
    raise InvalidInputError(f"qdrant filter: {name} is not supported here", source="filters")


def matches_nothing(conditions: tuple[Condition, ...]) -> bool:
    """True when a condition can match no payload (an empty list of allowed values)."""
    return any(c.op == "any" and not c.value for c in conditions)


@dataclass(frozen=True, slots=True)
class FilterKit:
    """How one engine spells a filter: Qdrant Edge and qdrant-client use the same class names with
    different constructors, so each engine hands :func:`build` its own kit (:func:`~._edge.edge_kit`,
    :func:`~._remote.client_kit`); nothing here guesses which engine it is talking to."""

    Filter: Callable[..., Any]
    FieldCondition: Callable[..., Any]
    match_value: Callable[[Any], Any]
    range: Callable[..., Any]
    is_empty: Callable[[str], Any]
    has_no_id: Callable[[], Any]


def build(conditions: tuple[Condition, ...], kit: FilterKit, *, extra: list[Any] | None = None) -> Any:
    """A filter for *conditions* (all must hold) built with the engine's *kit*, or None when there
    is nothing to filter on."""
    must = [_build(c, kit) for c in conditions] + list(extra or [])
    return kit.Filter(must=must) if must else None


def _build(c: Condition, kit: FilterKit) -> Any:
    if c.op in _GROUPS:
        parts = [_build(x, kit) for x in c.value]
        if c.op == "and":
            return kit.Filter(must=parts)
        if c.op == "or":
            return kit.Filter(should=parts) if parts else kit.Filter(must=[_impossible(kit)])
        return kit.Filter(must_not=parts)
    key = "sources" if c.key == "source" else c.key  # a point lists every path its content was found at
    if c.op == "empty":
        return kit.is_empty(key)
    if c.op == "eq" and isinstance(c.value, float):
        return kit.FieldCondition(key=key, range=kit.range(gte=c.value, lte=c.value))
    if c.op == "eq":
        return kit.FieldCondition(key=key, match=kit.match_value(c.value))
    if c.op in ("any", "except"):
        if not c.value:
            if c.op == "any":
                return _impossible(kit)
            return kit.Filter(must_not=[kit.is_empty(key)])
        eq = [_build(Condition(c.key, "eq", v), kit) for v in c.value]
        if c.op == "any":
            return kit.Filter(should=eq)
        return kit.Filter(must_not=[*eq, kit.is_empty(key)])
    return kit.FieldCondition(key=key, range=kit.range(**c.value))


def _impossible(kit: FilterKit) -> Any:
    """A condition no point satisfies (an empty list of allowed values)."""
    return kit.Filter(must=[kit.has_no_id()])
