"""Answers from Gemini through the ``google-genai`` SDK (``pip install 'mm-rag-plugin[gemini]'``).

``google-generativeai`` (end-of-life) is not used. The API key comes from the ``api_key`` argument,
else ``GOOGLE_API_KEY``, else ``GEMINI_API_KEY``; ``vertexai=True`` (with ``project`` and
``location``, or an express-mode API key) uses Vertex AI instead. The key never appears in logs,
errors or ``repr``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .._optional import require
from ..errors import ConfigurationError, GenerationError
from ..types import Answer, Hit
from ._retry import RetryPolicy, describe_failure, is_retryable
from .base import AnswerStream, AsyncAnswerStream
from .citations import parse_citations
from .prompt import Prompt, PromptImage, PromptOptions, build_prompt

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_GEMINI_MODEL", "GeminiGenerator", "resolve_api_key"]

#: Default model: a current, fast and inexpensive multimodal Gemini model.
DEFAULT_GEMINI_MODEL = "gemini-2.5-flash"
API_KEY_ENV_VARS = ("GOOGLE_API_KEY", "GEMINI_API_KEY")

T = TypeVar("T")


def resolve_api_key(api_key: object = None) -> str | None:
    """The key to use: *api_key* (a string or a pydantic ``SecretStr``), else the environment."""
    if api_key is not None:
        if hasattr(api_key, "get_secret_value"):
            api_key = api_key.get_secret_value()
        if not isinstance(api_key, str):
            raise ConfigurationError(f"api_key must be a string, got {type(api_key).__name__}")
        return api_key.strip() or None
    for name in API_KEY_ENV_VARS:
        value = os.environ.get(name, "").strip()
        if value:
            return value
    return None


class _Secret:
    """Holds the key for redaction only; prints as ``***``."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value

    def __repr__(self) -> str:
        return "***" if self._value else "None"

    def redact(self, text: str) -> str:
        return text.replace(self._value, "***") if self._value and len(self._value) >= 4 else text


@dataclass
class _StreamState:
    prompt: Prompt | None = None
    model_version: str | None = None
    finish_reason: str | None = None

    def absorb(self, text_and_finish: tuple[str, str | None], chunk: Any) -> str:
        """Record a streamed chunk's finish reason and model version; return its text."""
        text, finish = text_and_finish
        self.finish_reason = finish or self.finish_reason
        self.model_version = getattr(chunk, "model_version", None) or self.model_version
        return text


class GeminiGenerator:
    """Answer questions over retrieved text and images with Gemini, citing sources as ``[n]``.

    Parameters: *model* name; *api_key* (else ``GOOGLE_API_KEY`` / ``GEMINI_API_KEY``); *vertexai*,
    *project*, *location* (and optional google-auth *credentials*) for Vertex AI; *client* (a ready ``google.genai.Client``, used as is);
    *base_url* (another endpoint, e.g. a proxy); *timeout* per request in seconds; *max_retries*
    after the first attempt on 408/429/5xx, timeouts and dropped connections (exponential backoff
    from *retry_initial_delay*, honouring the server's ``Retry-After``); *prompt_options* for image
    and size limits; *temperature*, *max_output_tokens*, *thinking_budget* for generation.
    """

    def __init__(
        self,
        model: str = DEFAULT_GEMINI_MODEL,
        *,
        api_key: Any = None,
        vertexai: bool | None = None,
        project: str | None = None,
        location: str | None = None,
        credentials: Any = None,
        client: Any = None,
        base_url: str | None = None,
        timeout: float | None = 60.0,
        max_retries: int = 3,
        retry_initial_delay: float = 1.0,
        retry_max_delay: float = 30.0,
        temperature: float | None = 0.2,
        max_output_tokens: int | None = None,
        thinking_budget: int | None = None,
        prompt_options: PromptOptions | None = None,
    ) -> None:
        if not isinstance(model, str) or not model.strip():
            raise ConfigurationError(f"model must be a non-empty string such as {DEFAULT_GEMINI_MODEL!r}")
        if timeout is not None and timeout <= 0:
            raise ConfigurationError(f"timeout must be a positive number of seconds or None, got {timeout!r}")
        if max_retries < 0:
            raise ConfigurationError(f"max_retries must be >= 0, got {max_retries!r}")
        require("google.genai", extra="gemini", package="google-genai")
        from google.genai import types as genai_types

        self._types = genai_types
        self.model = model.strip()
        self.timeout = timeout
        self.retry = RetryPolicy(
            max_retries + 1, retry_initial_delay, max(retry_max_delay, retry_initial_delay)
        )
        self.prompt_options = prompt_options or PromptOptions()
        self.temperature = temperature
        self.max_output_tokens = max_output_tokens
        self.thinking_budget = thinking_budget
        if vertexai is None:
            vertexai = os.environ.get("GOOGLE_GENAI_USE_VERTEXAI", "").strip().lower() in ("1", "true", "yes")
        self.vertexai = bool(vertexai)
        self._owns_client = client is None
        if client is not None:
            self._secret = _Secret(resolve_api_key(api_key) if api_key is not None else None)
            self._client = client
        else:
            self._client = self._make_client(api_key, project, location, base_url, credentials)

    def _make_client(
        self, api_key: Any, project: str | None, location: str | None, base_url: str | None, credentials: Any
    ) -> Any:
        from google import genai

        http = self._types.HttpOptions(
            base_url=base_url, timeout=int(self.timeout * 1000) if self.timeout else None
        )
        kwargs: dict[str, Any] = {"http_options": http}
        if self.vertexai:
            key = resolve_api_key(api_key) if api_key is not None else None
            kwargs["vertexai"] = True
            if key:  # Vertex AI express mode: an API key instead of a project
                kwargs["api_key"] = key
            else:
                kwargs["project"] = project or os.environ.get("GOOGLE_CLOUD_PROJECT")
                kwargs["location"] = location or os.environ.get("GOOGLE_CLOUD_LOCATION") or "global"
                if credentials is not None:
                    kwargs["credentials"] = credentials
                if not kwargs["project"]:
                    raise ConfigurationError(
                        "Vertex AI needs a project: pass project=... (and location=...) or set "
                        "GOOGLE_CLOUD_PROJECT, or pass an express-mode api_key"
                    )
        else:
            key = resolve_api_key(api_key)
            if not key:
                raise ConfigurationError(
                    "no Gemini API key: pass api_key=..., set GOOGLE_API_KEY or GEMINI_API_KEY, or use "
                    "vertexai=True with a Google Cloud project; without a key use ExtractiveGenerator "
                    "(or default_generator(), which picks it automatically)"
                )
            kwargs["api_key"] = key
        self._secret = _Secret(key)
        try:
            return genai.Client(**kwargs)
        except Exception as exc:
            raise ConfigurationError(
                f"could not configure the Gemini client: {self._secret.redact(str(exc))[:300]}"
            ) from None

    # -- plumbing ----------------------------------------------------------------------------------
    def __repr__(self) -> str:
        backend = "vertexai" if self.vertexai else "gemini-api"
        key = "set" if self._secret._value else "unset"
        return f"GeminiGenerator(model={self.model!r}, backend={backend!r}, api_key=<{key}>, timeout={self.timeout!r})"

    def close(self) -> None:
        """Close the HTTP connections of a client this generator created."""
        if self._owns_client and hasattr(self._client, "close"):
            self._client.close()

    async def aclose(self) -> None:
        if self._owns_client and hasattr(self._client, "aio"):
            await self._client.aio.aclose()

    def __enter__(self) -> GeminiGenerator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def build_prompt(self, question: str, hits: Sequence[Hit]) -> Prompt:
        return build_prompt(question, hits, self.prompt_options)

    def _request(self, prompt: Prompt) -> dict[str, Any]:
        t = self._types
        parts = [
            t.Part.from_bytes(data=p.data, mime_type=p.mime_type)
            if isinstance(p, PromptImage)
            else t.Part.from_text(text=p)
            for p in prompt.parts
        ]
        config = t.GenerateContentConfig(
            system_instruction=prompt.system_instruction,
            temperature=self.temperature,
            max_output_tokens=self.max_output_tokens,
            thinking_config=t.ThinkingConfig(thinking_budget=self.thinking_budget)
            if self.thinking_budget is not None
            else None,
            automatic_function_calling=t.AutomaticFunctionCallingConfig(disable=True),
        )
        return {"model": self.model, "contents": [t.Content(role="user", parts=parts)], "config": config}

    def _error(self, exc: BaseException, attempts: int, streaming: bool = False) -> GenerationError:
        what = describe_failure(exc, self.timeout)
        hint = ""
        code = getattr(exc, "code", None)
        if code in (401, 403):
            hint = " (check the API key or the project's permissions)"
        elif code == 404:
            hint = f" (check the model name {self.model!r})"
        elif code == 429:
            hint = " (rate limit or quota exhausted; retry later or lower the request rate)"
        where = "while streaming the answer" if streaming else f"after {attempts} attempt(s)"
        return GenerationError(
            self._secret.redact(f"Gemini request to {self.model!r} failed {where}: {what}{hint}")
        )

    def _should_retry(self, exc: Exception, attempt: int) -> float | None:
        """Seconds to wait before the next attempt, or None to give up."""
        if isinstance(exc, GenerationError) or not is_retryable(exc) or attempt >= self.retry.max_attempts:
            return None
        delay = self.retry.delay(attempt, exc)
        logger.warning(
            "Gemini request failed (%s); retrying in %.2f s (attempt %d of %d)",
            self._secret.redact(describe_failure(exc, self.timeout)),
            delay,
            attempt + 1,
            self.retry.max_attempts,
        )
        return delay

    def _call(self, fn: Callable[[], T]) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                return fn()
            except Exception as exc:
                delay = self._should_retry(exc, attempt)
                if delay is None:
                    if isinstance(exc, GenerationError):
                        raise
                    raise self._error(exc, attempt) from exc
            time.sleep(delay)

    async def _acall(self, fn: Callable[[], Awaitable[T]]) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                return await fn()
            except Exception as exc:
                delay = self._should_retry(exc, attempt)
                if delay is None:
                    if isinstance(exc, GenerationError):
                        raise
                    raise self._error(exc, attempt) from exc
            await asyncio.sleep(delay)

    def _read(self, response: Any) -> tuple[str, str | None]:
        """Answer text (thought parts left out) and finish reason; GenerationError if blocked."""
        feedback = getattr(response, "prompt_feedback", None)
        if feedback is not None and feedback.block_reason:
            reason = getattr(feedback.block_reason, "value", feedback.block_reason)
            raise GenerationError(f"Gemini ({self.model!r}) refused the prompt: blocked for {reason}")
        candidates = getattr(response, "candidates", None) or []
        if not candidates:
            return "", None
        cand = candidates[0]
        parts = (cand.content.parts if cand.content else None) or []
        text = "".join(p.text for p in parts if p.text and not p.thought)
        finish = getattr(cand.finish_reason, "value", cand.finish_reason)
        return text, (str(finish) if finish else None)

    def _finish(self, prompt: Prompt, text: str, finish: str | None, model_version: str | None) -> Answer:
        if not text.strip():
            raise GenerationError(
                f"Gemini ({self.model!r}) returned no answer text (finish reason: {finish})"
            )
        if finish == "MAX_TOKENS":
            logger.warning("Gemini answer was cut at max_output_tokens=%s", self.max_output_tokens)
        return Answer(
            text,
            prompt.sources,
            tuple(parse_citations(text, prompt.sources)),
            True,
            model_version or self.model,
        )

    # -- public API --------------------------------------------------------------------------------
    def generate(self, question: str, hits: Sequence[Hit]) -> Answer:
        """Answer *question* from *hits* (best first); raises :class:`GenerationError` on failure."""
        prompt = self.build_prompt(question, hits)
        request = self._request(prompt)
        response = self._call(lambda: self._client.models.generate_content(**request))
        text, finish = self._read(response)
        return self._finish(prompt, text, finish, getattr(response, "model_version", None))

    async def agenerate(self, question: str, hits: Sequence[Hit]) -> Answer:
        """Async :meth:`generate` (``client.aio``); image preparation runs in a worker thread."""
        prompt = await asyncio.to_thread(self.build_prompt, question, hits)
        request = self._request(prompt)
        response = await self._acall(lambda: self._client.aio.models.generate_content(**request))
        text, finish = self._read(response)
        return self._finish(prompt, text, finish, getattr(response, "model_version", None))

    def stream(self, question: str, hits: Sequence[Hit]) -> AnswerStream:
        """Stream the answer: iterate for text pieces, then read ``.answer``.

        The request is sent on the first iteration; retries cover opening the stream, a failure
        after text has arrived raises :class:`GenerationError` at once.
        """
        prompt = self.build_prompt(question, hits)
        request = self._request(prompt)
        state = _StreamState(prompt)

        def open_stream() -> tuple[Any, Iterator[Any]]:
            it = iter(self._client.models.generate_content_stream(**request))
            return next(it, None), it

        def deltas() -> Iterator[str]:
            first, rest = self._call(open_stream)
            chunk = first
            try:
                while chunk is not None:
                    text = state.absorb(self._read(chunk), chunk)
                    if text:
                        yield text
                    chunk = next(rest, None)
            except GenerationError:
                raise
            except Exception as exc:
                raise self._error(exc, 1, streaming=True) from exc

        return AnswerStream(
            deltas(), lambda text: self._finish(prompt, text, state.finish_reason, state.model_version)
        )

    def astream(self, question: str, hits: Sequence[Hit]) -> AsyncAnswerStream:
        """Async :meth:`stream`: ``async for piece in gen.astream(q, hits)``, then ``.answer``."""
        state = _StreamState()

        async def open_stream(request: dict[str, Any]) -> tuple[Any, AsyncIterator[Any]]:
            it = (await self._client.aio.models.generate_content_stream(**request)).__aiter__()
            try:
                return await it.__anext__(), it
            except StopAsyncIteration:
                return None, it

        async def deltas() -> AsyncIterator[str]:
            state.prompt = await asyncio.to_thread(self.build_prompt, question, hits)
            request = self._request(state.prompt)
            chunk, rest = await self._acall(lambda: open_stream(request))
            try:
                while chunk is not None:
                    text = state.absorb(self._read(chunk), chunk)
                    if text:
                        yield text
                    try:
                        chunk = await rest.__anext__()
                    except StopAsyncIteration:
                        chunk = None
            except GenerationError:
                raise
            except Exception as exc:
                raise self._error(exc, 1, streaming=True) from exc

        def finish(text: str) -> Answer:
            assert state.prompt is not None
            return self._finish(state.prompt, text, state.finish_reason, state.model_version)

        return AsyncAnswerStream(deltas(), finish)
