"""Exception hierarchy.

Every error the library raises on purpose derives from :class:`MMRagError`, and also from the
built-in exception a caller would naturally catch (``ValueError`` for bad input, ``ImportError`` for
a missing extra, ``RuntimeError`` for a failed model or remote call).
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "DecompressionBombError",
    "GenerationError",
    "InvalidInputError",
    "MMRagError",
    "MissingDependencyError",
    "ModelLoadError",
    "StoreError",
    "UnsupportedFormatError",
]

#: Longest piece of user input echoed back in an error message.
MAX_ECHO = 200


def echo(value: object, limit: int = MAX_ECHO) -> str:
    """``repr`` of *value*, cut to *limit* characters so huge inputs never flood a log."""
    text = repr(value)
    if len(text) > limit:
        suffix = f"...<{len(text)} chars>"
        text = text[: max(0, limit - len(suffix))] + suffix
    return text


class MMRagError(Exception):
    """Base class of every error raised by mm-rag-plugin."""


class InvalidInputError(MMRagError, ValueError):
    """An input (file, image, text, argument) cannot be used.

    ``source`` names the offending file or input (a path, or a short description such as
    ``"images[3]"``) so that a batch can report which item failed.
    """

    def __init__(self, message: str, *, source: str | None = None) -> None:
        self.source = source
        self.reason = message
        super().__init__(f"{source}: {message}" if source else message)

    def __reduce__(self):  # keep ``source`` across pickling (worker processes)
        return (_rebuild_input_error, (type(self), self.reason, self.source))


def _rebuild_input_error(cls: type[InvalidInputError], reason: str, source: str | None) -> InvalidInputError:
    return cls(reason, source=source)


class UnsupportedFormatError(InvalidInputError):
    """The file's content is of a type no reader handles."""


class DecompressionBombError(InvalidInputError):
    """An image would decode to more pixels than the configured limit allows."""


class MissingDependencyError(MMRagError, ImportError):
    """An optional dependency (Python package or system binary) is not installed."""


class ConfigurationError(MMRagError, ValueError):
    """The library was configured in a way that cannot work (missing API key, bad option)."""


class ModelLoadError(MMRagError, RuntimeError):
    """A model could not be loaded (offline, unknown name, bad checkpoint path).

    ``reason`` is a short form of what went wrong, without the advice the message adds; ``model``
    which model it was: ``"clip"`` (the index's CLIP model) or ``"text"`` (a text model beside it).
    """

    def __init__(self, message: str, *, reason: str | None = None, model: str = "clip") -> None:
        super().__init__(message)
        self.reason = reason or message
        self.model = model


class StoreError(MMRagError, RuntimeError):
    """The vector store could not be opened, written or queried."""


class IndexNotFoundError(StoreError):
    """An index was opened for reading (``create=False``) where there is none; nothing was created."""


class GenerationError(MMRagError, RuntimeError):
    """The answer generator failed after its retries."""
