"""Progress bars: ``tqdm.auto`` when shown, plain ``tqdm`` when not.

``tqdm.auto`` warns at import time in a Jupyter kernel without ipywidgets ("IProgress not found"),
even for a bar that is never shown; so a disabled bar never imports it, and a shown one falls back
to the plain text bar instead of warning.
"""

from __future__ import annotations

import warnings
from typing import Any

__all__ = ["progress_bar"]


def progress_bar(*args: Any, disable: bool = False, **kwargs: Any) -> Any:
    """``tqdm(*args, disable=disable, **kwargs)``: the notebook widget where it works, else text."""
    if disable:
        from tqdm.std import tqdm
    else:
        from tqdm.std import TqdmWarning

        with warnings.catch_warnings():
            warnings.simplefilter("error", TqdmWarning)
            try:
                from tqdm.auto import tqdm
            except (TqdmWarning, ImportError):  # a kernel without ipywidgets
                from tqdm.std import tqdm
    return tqdm(*args, disable=disable, **kwargs)


def quiet_notebook_tqdm() -> None:
    """Import ``tqdm.auto`` without its "IProgress not found" warning, before a dependency
    (huggingface_hub, open_clip, the frameworks) imports it at import time: in a Jupyter kernel
    without ipywidgets it resolves to the plain bar either way, and the warning is only noise."""
    import sys

    if "tqdm.auto" in sys.modules or "IPython" not in sys.modules:
        return
    try:
        from tqdm.std import TqdmWarning
    except ImportError:  # pragma: no cover - tqdm comes with the extras that import it
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TqdmWarning)
        import tqdm.auto  # noqa: F401
