#!/usr/bin/env bash
# The main job on a fresh machine: set up (tesseract + .venv), ingest the bundled samples/ folder
# into an embedded index, search it and ask a question. Set GOOGLE_API_KEY for a Gemini-written
# answer (otherwise the answer is extractive, and says so). Without network access to the model hub
# and no local checkpoint ($MM_RAG_MODEL / $MM_RAG_CHECKPOINT), search is keyword-only (BM25 over
# text and OCR) and the CLI says so.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
index="${MM_RAG_DEMO_INDEX:-.mm_rag_demo}"
question="${1:-What does inverter fault E-217 mean and what should I do?}"
echo "== mm-rag ingest samples/ --index $index"
.venv/bin/mm-rag ingest samples --index "$index" --quiet
echo
echo "== mm-rag query \"inverter fault screen\""
.venv/bin/mm-rag query "inverter fault screen" --index "$index" --k 3 --quiet
echo
echo "== mm-rag ask \"$question\""
.venv/bin/mm-rag ask "$question" --index "$index" --quiet
