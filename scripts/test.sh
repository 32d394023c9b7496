#!/usr/bin/env bash
# Run the test suite (sets the environment up first if needed). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Two workers (pytest-xdist), each taking whole test files so a module's fixtures are built once;
# MM_RAG_TEST_WORKERS=0 runs everything in this process (a later -n among the arguments wins too).
exec .venv/bin/python -m pytest -n "${MM_RAG_TEST_WORKERS:-2}" --dist loadfile "$@"
