"""What the CLI reads and prints from hostile corpora: links out of the folder, terminal escapes
in text and names, secrets in errors and tracebacks."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from mm_rag_plugin._terminal import SafeStream, terminal_safe

from .._cli import run
from ..integration.fake_gemini import FakeGemini, Reply

ESC = "\x1b"
RLO = "\u202e"




pytestmark = pytest.mark.usefixtures("no_keys")  # tests/reliability/conftest.py


def test_terminal_safe_escapes_controls_and_bidi_but_keeps_text() -> None:
    hostile = f"ok{ESC}[2J{ESC}]0;owned\x07{ESC}]52;c;ZXZpbA==\x07 a\rb {RLO}gnp.txt\u2066x\u200b é ü 中文\n\tend"
    safe = terminal_safe(hostile)
    assert ESC not in safe and "\x07" not in safe and "\r" not in safe and RLO not in safe
    assert "\u2066" not in safe and "\u200b" not in safe
    assert "\\x1b[2J" in safe and "\\u202e" in safe and "\\x0d" in safe
    assert "é ü 中文\n\tend" in safe  # ordinary text, newlines and tabs untouched


def test_links_out_of_the_folder_are_skipped_and_named(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("The vault combination is TOPSECRET4242.")
    corpus = tmp_path / "corpus"
    (corpus / "sub").mkdir(parents=True)
    (corpus / "a.md").write_text("# Notes\n\nSolar panels need cleaning twice a year.")
    (corpus / "notes.txt").symlink_to(outside)  # a link out of the folder
    (corpus / "sub" / "inner.md").symlink_to(corpus / "a.md")  # a link inside it: fine
    (corpus / "sub" / "loop").symlink_to(corpus, target_is_directory=True)  # a loop must not hang
    index = str(tmp_path / "ix")

    code, out, err = run("ingest", str(corpus), "--index", index, "--keyword-only", "--no-ocr", "-q", "--workers", "0")
    assert code == 0, err
    assert "notes.txt" in out and "symbolic link to a file outside" in out
    code, out, _ = run("query", "vault combination TOPSECRET4242", "--index", index, "--json")
    assert code == 0 and json.loads(out) == []  # never indexed, so never sent to a model either
    code, out, _ = run("query", "solar panels cleaning", "--index", index, "--json")
    assert {Path(h["source"]).name for h in json.loads(out)} >= {"a.md"}

    code, out, err = run("ingest", str(corpus), "--index", index, "--keyword-only", "--no-ocr", "-q",
                         "--workers", "0", "--follow-symlinks")
    assert code == 0, err
    code, out, _ = run("query", "vault combination TOPSECRET4242", "--index", index, "--json")
    assert [Path(h["source"]).name for h in json.loads(out)] == ["notes.txt"]


def test_file_text_and_names_reach_the_terminal_escaped_and_json_stays_exact(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    name = f"report{RLO}fdp.md"  # shows as "reportdm.pdf" when printed raw
    body = f"Inverter fault E-217 {ESC}[2J{ESC}]0;pwned\x07{ESC}]52;c;cm0gLXJmIH4=\x07 grid voltage too high\r"
    (corpus / name).write_text(body)
    index = str(tmp_path / "ix")
    code, out, err = run("ingest", str(corpus), "--index", index, "--keyword-only", "--no-ocr", "-q", "--workers", "0")
    assert code == 0, err
    for argv in (("query", "inverter fault E-217"), ("ask", "What is fault E-217?")):
        code, out, err = run(*argv, "--index", index)
        assert code == 0
        printed = out + err
        assert ESC not in printed and RLO not in printed and "\x07" not in printed and "\r" not in printed
        assert "\\u202e" in printed and "\\x1b" in printed
    code, out, _ = run("query", "inverter fault E-217", "--index", index, "--json")
    hit = json.loads(out)[0]
    assert hit["source"].endswith(name) and ESC in hit["text"]  # exact data, escaped by JSON itself
    assert ESC not in out and RLO not in out


def test_secrets_never_printed_even_in_verbose_tracebacks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = "AIzaSy-test-secret-0123456789"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("Fault E-217 means the grid voltage is too high.")
    index = str(tmp_path / "ix")
    assert run("ingest", str(corpus), "--index", index, "--keyword-only", "--no-ocr", "-q", "--workers", "0")[0] == 0
    # the server echoes the key in its error, and the SDK chains it into the traceback
    with FakeGemini(Reply.error(400, f"API key not valid: {key}")) as fake:
        monkeypatch.setenv("GOOGLE_API_KEY", key)
        monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", fake.url)
        code, out, err = run("ask", "What does E-217 mean?", "--index", index, "-v")
    assert code == 1
    assert key not in out and key not in err
    assert "[redacted]" in err and "Traceback" in err


def test_safe_stream_redacts_before_escaping() -> None:
    buf = io.StringIO()
    stream = SafeStream(buf, ["s3cr3t-value", "", "short"])
    stream.write(f"token=s3cr3t-value {ESC}[31mred\n")
    assert buf.getvalue() == "token=[redacted] \\x1b[31mred\n"
