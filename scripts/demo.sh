#!/usr/bin/env bash
# The main job on a fresh machine: set up (tesseract + .venv), ingest the bundled samples/ folder
# into an embedded index (Qdrant Edge in the index folder), search it and ask a question. Set
# GOOGLE_API_KEY for a Gemini-written answer (otherwise the answer is extractive, and says so).
# The default model (ViT-B-32) downloads on first use; point $MM_RAG_MODEL / $MM_RAG_CHECKPOINT at
# local weights on an offline machine. When no model can be loaded, this script says so and builds
# a keyword-only index instead (BM25 over text and OCR), explicitly, with --keyword-only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
index="${MM_RAG_DEMO_INDEX:-.mm_rag_demo}"
question="${1:-What does inverter fault E-217 mean and what should I do?}"
echo "== mm-rag ingest samples/ --index $index"
rc=0
.venv/bin/mm-rag ingest samples --index "$index" --quiet || rc=$?
if [ "$rc" -eq 3 ]; then  # the model could not be loaded (the error above says why)
  echo
  echo "== no embedding model could be loaded: building a keyword-only index instead (--keyword-only)"
  index="$index-keyword-only"
  .venv/bin/mm-rag ingest samples --index "$index" --quiet --keyword-only
elif [ "$rc" -ne 0 ]; then
  exit "$rc"
fi
echo
echo "== mm-rag query \"inverter fault screen\""
.venv/bin/mm-rag query "inverter fault screen" --index "$index" --k 3 --quiet
echo
echo "== mm-rag ask \"$question\""
.venv/bin/mm-rag ask "$question" --index "$index" --quiet
