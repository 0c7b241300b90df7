#!/usr/bin/env bash
# The one command that runs every test on a fresh machine:
#   bash scripts/test.sh
# It creates a Python virtual environment with boto3 (for the boto3 wire
# compatibility test), then runs the whole Rust test suite. Extra arguments
# go to `cargo test` (e.g. `bash scripts/test.sh --test engine`).
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${SECHUB_TRIAGE_VENV:-$PWD/.venv}"
if ! "$venv/bin/python" -c 'import boto3' 2>/dev/null; then
  echo "==> creating $venv with boto3 (for tests/boto3_wire.rs)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check 'boto3>=1.35'
fi
export SECHUB_TRIAGE_PYTHON="$venv/bin/python"

echo "==> cargo test (target dir: ${CARGO_TARGET_DIR:-target})"
cargo test --locked "$@"
