"""Optional dependencies: import on demand, fail with the command that fixes it."""

from __future__ import annotations

import importlib
import shutil
from functools import cache
from types import ModuleType

from .errors import MissingDependencyError

__all__ = ["require", "require_binary"]


def require(module: str, *, extra: str, package: str | None = None) -> ModuleType:
    """Import *module* or raise :class:`MissingDependencyError` naming the extra to install.

    Call it once, at construction time, never inside a loop.
    """
    from ._progress import quiet_notebook_tqdm

    quiet_notebook_tqdm()  # before a dependency imports tqdm.auto (in a notebook without ipywidgets it warns)
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        pkg = package or module.split(".")[0]
        raise MissingDependencyError(
            f"{pkg!r} is required for this feature but could not be imported ({exc}). "
            f"Install it with: pip install 'mm-rag-plugin[{extra}]'"
        ) from exc


@cache
def require_binary(name: str, *, apt: str, brew: str | None = None, purpose: str = "") -> str:
    """Return the path of executable *name* or raise a :class:`MissingDependencyError` saying how
    to install it."""
    path = shutil.which(name)
    if path is None:
        how = f"apt-get install {apt}"
        if brew:
            how += f" (Debian/Ubuntu), or brew install {brew} (macOS)"
        raise MissingDependencyError(
            f"the {name!r} program{' (' + purpose + ')' if purpose else ''} was not found on PATH. "
            f"Install it with: {how}"
        )
    return path
