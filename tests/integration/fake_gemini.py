"""A loopback fake of the Gemini REST API, for tests that drive the real ``google-genai`` SDK.

It speaks ``POST /{version}/models/{model}:generateContent`` and
``POST /{version}/models/{model}:streamGenerateContent?alt=sse`` (Server-Sent Events, one
``GenerateContentResponse`` JSON per ``data:`` line), records every request, and replies from a
script: :class:`Reply` objects queued with :meth:`FakeGemini.enqueue` (429, 500, malformed JSON,
slow replies ...), then the default reply.

Point the SDK at it with::

    genai.Client(api_key="test-key", http_options=types.HttpOptions(base_url=server.url))
"""

from __future__ import annotations

import base64
import json
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeGemini", "RecordedRequest", "Reply", "fake_gemini_server"]


@dataclass(frozen=True)
class Reply:
    """One scripted reply. Build with the class methods."""

    status: int = 200
    text: str | None = None  # a model answer, sent as a GenerateContentResponse
    body: bytes | None = None  # raw body, sent as is (malformed JSON, error JSON)
    delay: float = 0.0  # seconds to wait before answering (timeouts)
    chunks: tuple[str, ...] | None = None  # streaming: the text pieces, one SSE event each
    headers: tuple[tuple[str, str], ...] = ()
    finish_reason: str = "STOP"
    block_reason: str | None = None

    @classmethod
    def answer(cls, text: str, *, delay: float = 0.0, finish_reason: str = "STOP") -> Reply:
        return cls(text=text, delay=delay, finish_reason=finish_reason)

    @classmethod
    def stream(cls, *chunks: str) -> Reply:
        return cls(text="".join(chunks), chunks=tuple(chunks))

    @classmethod
    def error(cls, status: int, message: str = "", *, retry_after: float | None = None) -> Reply:
        names = {
            400: "INVALID_ARGUMENT",
            403: "PERMISSION_DENIED",
            429: "RESOURCE_EXHAUSTED",
            500: "INTERNAL",
            503: "UNAVAILABLE",
        }
        payload = {
            "error": {
                "code": status,
                "message": message or f"fake error {status}",
                "status": names.get(status, "UNKNOWN"),
            }
        }
        headers = (("Retry-After", f"{retry_after:g}"),) if retry_after is not None else ()
        return cls(status=status, body=json.dumps(payload).encode(), headers=headers)

    @classmethod
    def raw(cls, body: bytes | str, *, status: int = 200, delay: float = 0.0) -> Reply:
        return cls(status=status, body=body.encode() if isinstance(body, str) else body, delay=delay)

    @classmethod
    def blocked(cls, reason: str = "SAFETY") -> Reply:
        return cls(block_reason=reason)

    @classmethod
    def slow(cls, delay: float, text: str = "slow answer") -> Reply:
        return cls(text=text, delay=delay)


@dataclass
class RecordedRequest:
    """A request the fake server received."""

    method: str
    path: str  # without the query string
    query: dict[str, list[str]]
    headers: dict[str, str]
    raw: bytes
    json: Any = None

    @property
    def model(self) -> str:
        """The model id in the URL (``gemini-2.5-flash``)."""
        last = self.path.rsplit("/", 1)[-1]
        return last.split(":", 1)[0]

    @property
    def method_name(self) -> str:
        """``generateContent`` or ``streamGenerateContent``."""
        return self.path.rsplit(":", 1)[-1]

    @property
    def parts(self) -> list[dict[str, Any]]:
        """All parts of all ``contents`` entries, in order."""
        return [p for c in self.json.get("contents", []) for p in c.get("parts", [])]

    @property
    def text(self) -> str:
        """Every text part of the user contents, joined."""
        return "".join(p["text"] for p in self.parts if "text" in p)

    @property
    def images(self) -> list[tuple[str, bytes]]:
        """``(mime_type, decoded bytes)`` of every inline-data part."""
        out = []
        for p in self.parts:
            blob = p.get("inlineData") or p.get("inline_data")
            if blob:
                # the SDK sends URL-safe base64; the API accepts both alphabets
                data = base64.b64decode(blob["data"].replace("-", "+").replace("_", "/"), validate=True)
                out.append((blob.get("mimeType") or blob.get("mime_type"), data))
        return out

    @property
    def system_instruction(self) -> str:
        si = self.json.get("systemInstruction") or self.json.get("system_instruction") or {}
        return "".join(p.get("text", "") for p in si.get("parts", []))


def _response_json(text: str, *, finish_reason: str = "STOP", model: str = "fake") -> dict[str, Any]:
    return {
        "candidates": [
            {
                "content": {"role": "model", "parts": [{"text": text}]},
                "finishReason": finish_reason,
                "index": 0,
            }
        ],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
        "modelVersion": model,
    }


class FakeGemini:
    """The fake server; use as a context manager (or call :meth:`close`)."""

    def __init__(self, default: Reply | Callable[[RecordedRequest], Reply] | None = None) -> None:
        self.requests: list[RecordedRequest] = []  # POSTs (generate calls)
        self.gets: list[RecordedRequest] = []  # GETs (model metadata)
        self.default = default or Reply.answer("This is the fake answer [1].")
        self._script: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="fake-gemini", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def enqueue(self, *replies: Reply) -> None:
        """Answer the next requests with *replies*, in order, then with the default reply."""
        with self._lock:
            self._script.extend(replies)

    def _record(self, req: RecordedRequest) -> None:
        with self._lock:
            self.gets.append(req)

    def _next_reply(self, req: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(req)
            if self._script:
                return self._script.popleft()
        return self.default(req) if callable(self.default) else self.default

    def close(self) -> None:
        self._closing.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def __enter__(self) -> FakeGemini:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:  # models.get: model metadata (LlamaIndex asks for it)
                path = urlsplit(self.path).path
                fake._record(
                    RecordedRequest("GET", path, {}, {k.lower(): v for k, v in self.headers.items()}, b"")
                )
                name = path.split("/models/", 1)[-1]
                data = json.dumps(
                    {
                        "name": f"models/{name}",
                        "displayName": name,
                        "inputTokenLimit": 1_048_576,
                        "outputTokenLimit": 65_536,
                        "supportedGenerationMethods": ["generateContent"],
                    }
                )
                self._send_plain(Reply(body=data.encode()), name)

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = None
                req = RecordedRequest(
                    "POST",
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    raw,
                    body,
                )
                reply = fake._next_reply(req)
                if reply.delay and fake._closing.wait(reply.delay):
                    return
                try:
                    if (
                        req.method_name == "streamGenerateContent"
                        and reply.body is None
                        and reply.status == 200
                    ):
                        self._send_sse(reply, req.model)
                    else:
                        self._send_plain(reply, req.model)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
                    pass

            def _send_plain(self, reply: Reply, model: str) -> None:
                if reply.body is not None:
                    data = reply.body
                elif reply.block_reason:
                    data = json.dumps({"promptFeedback": {"blockReason": reply.block_reason}}).encode()
                else:
                    data = json.dumps(
                        _response_json(reply.text or "", finish_reason=reply.finish_reason, model=model)
                    ).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in reply.headers:
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            def _events(self, reply: Reply, model: str) -> Iterator[dict[str, Any]]:
                if reply.block_reason:
                    yield {"promptFeedback": {"blockReason": reply.block_reason}}
                    return
                text = reply.text or ""
                pieces = (
                    list(reply.chunks) if reply.chunks else [text[i : i + 8] for i in range(0, len(text), 8)]
                )
                pieces = pieces or [""]
                for i, piece in enumerate(pieces):
                    event = _response_json(piece, model=model)
                    if i < len(pieces) - 1:
                        del event["candidates"][0]["finishReason"]
                    yield event

            def _send_sse(self, reply: Reply, model: str) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for event in self._events(reply, model):
                    payload = f"data: {json.dumps(event)}\r\n\r\n".encode()
                    self.wfile.write(f"{len(payload):X}\r\n".encode() + payload + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

        return Handler


def fake_gemini_server() -> Iterator[FakeGemini]:
    """Generator body for a pytest fixture: ``fake = pytest.fixture(fake_gemini_server)``."""
    with FakeGemini() as server:
        yield server
