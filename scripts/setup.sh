#!/usr/bin/env bash
# Set up everything the tests, the demo and the notebooks need, on a fresh Debian/Ubuntu machine:
# Debian's tesseract-ocr, and a virtual environment .venv with mm-rag-plugin (editable, all extras)
# and the dev tools, pinned by constraints/ci.txt. Safe to run again: it only redoes what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v tesseract >/dev/null 2>&1; then
  echo "setup: installing tesseract-ocr (Debian package)"
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr >/dev/null
fi

python="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $($python --version)"
  "$python" -m venv .venv
fi

stamp=.venv/.mm-rag-setup
want="$(cat pyproject.toml constraints/ci.txt | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "setup: installing mm-rag-plugin[all] and the dev group into .venv (first time: a few minutes)"
  # PyTorch's Linux wheels bring several GB of NVIDIA libraries; pip's download cache would keep a
  # second copy of them, so it is off, and before PyTorch's first install a short disk is named
  # before pip runs out of it.
  if ! compgen -G ".venv/lib/python*/site-packages/torch" >/dev/null; then
    read -r free_mib mount < <(df -Pm . | awk 'NR==2 {print $4, $6}')
    if [ "${free_mib:-0}" -lt 9216 ]; then
      echo "setup: warning: ${free_mib} MiB free on ${mount};" \
           "a first install needs about 9 GiB (PyTorch and its NVIDIA libraries: ~6 GiB installed, ~3 GiB of downloads)" >&2
    fi
  fi
  export PIP_NO_CACHE_DIR=1
  .venv/bin/python -m pip install -q --upgrade "pip>=25.1"
  .venv/bin/python -m pip install -q -c constraints/ci.txt -e ".[all]" --group dev
  echo "$want" > "$stamp"
fi
