"""Retry policy for remote generator calls: which failures are transient, and how long to wait.

We run our own loop rather than the SDK's ``HttpRetryOptions`` so that sync, async and streaming
calls behave the same (the SDK retries httpx timeouts but not aiohttp ones), so that the final
error can say how many attempts were made, and so that a server's ``Retry-After`` / ``RetryInfo``
hint is honoured.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from typing import Any

__all__ = ["RETRYABLE_STATUS", "RetryPolicy", "describe_failure", "is_retryable", "server_delay"]

#: HTTP statuses worth retrying: request timeout, rate limit, server errors.
RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)s\s*$")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: ``initial_delay * exp_base**(attempt-1)``, plus jitter, capped."""

    max_attempts: int = 4  # including the first call
    initial_delay: float = 1.0
    max_delay: float = 30.0
    exp_base: float = 2.0
    jitter: float = 0.25  # fraction of the delay added at random

    def __post_init__(self) -> None:
        if self.max_attempts < 1 or self.initial_delay < 0 or self.max_delay < 0:
            raise ValueError("max_attempts must be >= 1 and delays >= 0")

    def delay(self, attempt: int, exc: BaseException | None = None) -> float:
        """Seconds to wait after failed attempt number *attempt* (1-based)."""
        hinted = server_delay(exc) if exc is not None else None
        if hinted is not None:
            return min(hinted, self.max_delay)
        base = self.initial_delay * self.exp_base ** (attempt - 1)
        return min(base * (1.0 + random.random() * self.jitter), self.max_delay)


def _status_code(exc: BaseException) -> int | None:
    code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


def _is_timeout(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError):  # asyncio/aiohttp timeouts are TimeoutError subclasses
        return True
    return any(c.__name__ in ("TimeoutException", "ServerTimeoutError") for c in type(exc).__mro__)


def _is_connection_error(exc: BaseException) -> bool:
    names = {c.__name__ for c in type(exc).__mro__}
    return bool(
        names & {"ConnectError", "RemoteProtocolError", "ClientConnectionError", "ServerDisconnectedError"}
    )


def is_retryable(exc: BaseException) -> bool:
    """True for rate limits, server errors, timeouts and dropped connections."""
    code = _status_code(exc)
    if code is not None and hasattr(exc, "status"):  # google.genai.errors.APIError
        return code in RETRYABLE_STATUS
    return _is_timeout(exc) or _is_connection_error(exc)


def server_delay(exc: BaseException | None) -> float | None:
    """The wait the server asked for: a ``Retry-After`` header or a ``RetryInfo.retryDelay``."""
    response = getattr(exc, "response", None)
    headers: Any = getattr(response, "headers", None)
    if headers is not None:
        try:
            value = headers.get("retry-after") or headers.get("Retry-After")
            if value is not None:
                return max(0.0, float(value))
        except (TypeError, ValueError, AttributeError):
            pass
    details = getattr(exc, "details", None)
    try:
        for item in (details or {}).get("error", {}).get("details", []) or []:
            if isinstance(item, dict) and str(item.get("@type", "")).endswith("RetryInfo"):
                m = _DURATION.match(str(item.get("retryDelay", "")))
                if m:
                    return float(m.group(1))
    except AttributeError:
        pass
    return None


def describe_failure(exc: BaseException, timeout: float | None) -> str:
    """A one-line account of a failed call, without the request (or its key)."""
    code = _status_code(exc)
    if code is not None and hasattr(exc, "status"):
        message = getattr(exc, "message", None) or ""
        status = getattr(exc, "status", None) or ""
        return f"HTTP {code} {status}: {str(message)[:300]}".rstrip(": ")
    if _is_timeout(exc):
        return f"timed out after {timeout:g} s" if timeout else "timed out"
    if isinstance(exc, json.JSONDecodeError):
        return f"the response was not valid JSON ({exc.msg} at position {exc.pos})"
    if _is_connection_error(exc):
        return f"connection failed ({type(exc).__name__}: {str(exc)[:200]})"
    return f"{type(exc).__name__}: {str(exc)[:300]}"
