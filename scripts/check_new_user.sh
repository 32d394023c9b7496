#!/usr/bin/env bash
# Try the project as a new user: clone this repository into a temporary folder, run the README's
# two commands exactly as written, and check their output. Usage: scripts/check_new_user.sh [REPO]
set -euo pipefail
repo="$(cd "${1:-$(dirname "$0")/..}" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
git clone -q "$repo" "$work/mm-rag-plugin"
# the shared test data lives beside the checkout
[ -d "$repo/../shared" ] && ln -s "$repo/../shared" "$work/shared"
cd "$work/mm-rag-plugin"

grep -q '^\$ ./scripts/demo.sh' README.md && grep -q '^\$ ./scripts/test.sh' README.md

echo "== ./scripts/demo.sh"
./scripts/demo.sh | tee "$work/demo.log"
grep -q "inverter_fault.png" "$work/demo.log" || { echo "check: the answer does not cite the inverter screenshot"; exit 1; }
grep -q "E-217" "$work/demo.log" || { echo "check: the answer does not mention E-217"; exit 1; }

echo "== ./scripts/test.sh"
./scripts/test.sh -q -p no:cacheprovider
echo "check: both README commands work from a clean clone"
