"""A Qdrant server failing mid-query: a typed :class:`StoreError` in Python, one line from the CLI.

The server is a small ``http.server`` thread on 127.0.0.1 that answers the calls qdrant-client
makes when an index is opened (the collection exists, its info, the point count) with JSON
recorded from a real collection (qdrant-client's local mode, through its REST models), and then
fails the query: HTTP 500, a dropped connection, or no answer before the client's timeout. The
query goes through qdrant-client's real HTTP code.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from typing import Any

import pytest

pytest.importorskip("qdrant_client")
from qdrant_client import QdrantClient

from mm_rag_plugin import MultiModalIndex, TextChunk
from mm_rag_plugin.errors import StoreError
from mm_rag_plugin.retrievers.retriever import FusedRetriever
from tests._cli import run


def _recorded() -> tuple[dict[str, Any], int]:
    """The collection info and point count of a real keyword-only index, as Qdrant's REST API sends them."""
    client = QdrantClient(location=":memory:")
    with MultiModalIndex(client=client, keyword_only=True, show_progress=False) as ix:
        ix.add([TextChunk(id=f"c{i}", text=f"harbour report number {i}", source=f"doc{i}.md") for i in range(3)])
        info = client.get_collection("mm_rag").model_dump(mode="json", exclude_none=True)
        return info, len(ix)


class _Server:
    def __init__(self, failure: str) -> None:
        info, count = _recorded()
        self.failure, self.queries, self.release = failure, 0, threading.Event()
        self.versioned = threading.Event()  # qdrant-client's version check (a thread of its own) answered
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, result: Any, *, wrap: bool = True) -> None:
                body = json.dumps({"result": result, "status": "ok", "time": 0.0} if wrap else result).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                if self.path.rstrip("/").endswith("/exists"):
                    self._send(200, {"exists": True})
                elif self.path.split("?")[0].rstrip("/").endswith("/collections/mm_rag"):
                    self._send(200, info)
                else:
                    self._send(200, {"title": "qdrant", "version": version("qdrant-client")}, wrap=False)  # the version check
                    outer.versioned.set()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                if "/points/count" in self.path:
                    self._send(200, {"count": count})
                    return
                outer.queries += 1  # a search: fail it
                if outer.failure == "500":
                    body = b'{"status": {"error": "Service internal error: boom\\nsecond line"}, "time": 0.0}'
                    self.send_response(500)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                elif outer.failure == "drop":
                    self.close_connection = True
                    self.connection.shutdown(2)  # no response at all
                else:  # "slow": no answer until the client has given up
                    outer.release.wait(30)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.versioned.wait(10)
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("failure", ["500", "drop", "slow"])
def test_a_failing_query_raises_store_error(failure: str) -> None:
    with _Server(failure) as server:
        with MultiModalIndex(url=server.url, keyword_only=True, timeout=1, check_compatibility=False) as ix:
            assert len(ix) == 3  # opened through the recorded answers
            with pytest.raises(StoreError) as err:
                FusedRetriever(ix, k=3).retrieve("harbour")
        assert server.queries >= 1
    message = str(err.value)
    assert "\n" not in message and server.url in message and "query failed" in message
    assert type(err.value.__cause__).__module__.startswith(("qdrant_client", "httpx", "httpcore"))


@pytest.mark.parametrize("failure", ["500", "drop"])
def test_the_cli_reports_a_failing_query_in_one_line(failure: str, tmp_path) -> None:
    with _Server(failure) as server:
        code, out, err = run("query", "--index", str(tmp_path / "images"), "--url", server.url, "--keyword-only", "harbour")
    assert code != 0 and out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "query failed" in lines[0] and server.url in lines[0] and "Traceback" not in err
