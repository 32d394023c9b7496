"""Run the ``mm-rag`` CLI in-process and capture what it prints."""

from __future__ import annotations

import io

from mm_rag_plugin.cli import main


def run(*argv: str) -> tuple[int, str, str]:
    """``(exit code, stdout, stderr)`` of ``mm-rag *argv``."""
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()
