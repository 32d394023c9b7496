"""Building a model without its random initialisation, when every weight is loaded over it.

open_clip builds a model (each layer fills its weights with random numbers through
``torch.nn.init``), then loads the checkpoint over all of them. The random fill is wasted work, and
on a CPU it is most of the time a model takes to load. :func:`skip_random_init` makes the
``torch.nn.init`` fill functions return their tensor untouched, in the calling thread only, while
a model is built; the caller must then load every weight, and check that it did (open_clip's
``create_model_from_pretrained`` refuses a model whose weights were not all loaded).

The functions are replaced module-wide for the duration (layers look them up in
``torch.nn.init`` when they are built), but the replacements skip only in threads inside the
block: any other thread building a model at the same time gets its random weights as usual.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["skip_random_init"]

_lock = threading.Lock()
_local = threading.local()
_installed: dict[str, Callable[..., Any]] = {}  # name -> the original function, while installed
_users = 0


def _skipping() -> bool:
    return getattr(_local, "depth", 0) > 0


def _wrap(original: Callable[..., Any]) -> Callable[..., Any]:
    def fill(tensor: Any, *args: Any, **kwargs: Any) -> Any:
        if _skipping():
            return tensor
        return original(tensor, *args, **kwargs)

    fill.__wrapped__ = original  # type: ignore[attr-defined]
    fill.__name__ = getattr(original, "__name__", "fill")
    fill.__doc__ = getattr(original, "__doc__", None)
    return fill


def _fill_functions(init: Any) -> list[str]:
    """The public in-place initialisers of ``torch.nn.init`` (``normal_``, ``kaiming_uniform_`` ...)."""
    return [n for n in dir(init) if n.endswith("_") and not n.startswith("_") and callable(getattr(init, n))]


@contextlib.contextmanager
def skip_random_init() -> Iterator[None]:
    """Within the block, in this thread, ``torch.nn.init``'s fill functions leave tensors as they
    are (uninitialised memory for a new layer): use it only around building a model whose every
    weight is then loaded from a checkpoint."""
    global _users
    from torch.nn import init

    with _lock:
        if _users == 0:
            for name in _fill_functions(init):
                _installed[name] = getattr(init, name)
                setattr(init, name, _wrap(_installed[name]))
        _users += 1
    _local.depth = getattr(_local, "depth", 0) + 1
    try:
        yield
    finally:
        _local.depth -= 1
        with _lock:
            _users -= 1
            if _users == 0:
                for name, original in _installed.items():
                    setattr(init, name, original)
                _installed.clear()
