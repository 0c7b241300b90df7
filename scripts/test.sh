#!/usr/bin/env bash
# The one command that runs every test on a fresh machine:
#   bash scripts/test.sh
# It creates a Python virtual environment with boto3 (for the boto3 wire
# compatibility test), then runs the whole Rust test suite. Extra arguments
# go to `cargo test`. The integration tests are one binary
# (tests/integration/main.rs) with one module per area; run one module by
# its path prefix, or one test by its name:
#   bash scripts/test.sh --test integration engine::
#   bash scripts/test.sh --test integration plan::some_test_name
#   bash scripts/test.sh --lib retry::       (unit tests only)
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${SECHUB_TRIAGE_VENV:-$PWD/.venv}"
# The wire test needs boto3 whose botocore knows the new Security Hub (V2)
# operations, and the AWS CLI (v1, `awscli`) in the same environment.
knows_v2='import botocore.session; m = botocore.session.get_session().get_service_model("securityhub"); assert "BatchUpdateFindingsV2" in m.operation_names'
if ! "$venv/bin/python" -c "$knows_v2" 2>/dev/null || [ ! -x "$venv/bin/aws" ]; then
  echo "==> creating $venv with boto3 and awscli (for tests/integration/boto3_wire.rs)"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check --upgrade 'boto3>=1.35' awscli
fi
export SECHUB_TRIAGE_PYTHON="$venv/bin/python"

# tests/integration/completions_man.rs renders the man page with `man -l` (man-db and
# groff). Installed here when apt-get can do it; otherwise that test fails
# and says what to install.
if ! command -v man >/dev/null 2>&1 || ! command -v groff >/dev/null 2>&1; then
  if command -v apt-get >/dev/null 2>&1; then
    sudo=""
    if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; fi
    echo "==> installing man-db and groff-base (for tests/integration/completions_man.rs)"
    { $sudo apt-get install -y --no-install-recommends man-db groff-base \
      || { $sudo apt-get update -qq && $sudo apt-get install -y --no-install-recommends man-db groff-base; }; } \
      >/dev/null 2>&1 \
      || echo "warning: could not install man-db and groff-base; tests/integration/completions_man.rs will fail until they are installed"
  else
    echo "warning: man or groff missing and no apt-get; install man-db and groff for tests/integration/completions_man.rs"
  fi
fi

# In CI, warnings are errors: the [lints] table in Cargo.toml (missing docs,
# needless `pub`, a clippy set) and rustfmt hold every change.
if [ "${CI:-}" = "true" ]; then
  echo "==> cargo fmt --check, cargo clippy -D warnings (CI)"
  cargo fmt --check
  cargo clippy --locked --all-targets --quiet -- -D warnings
fi

echo "==> cargo test (target dir: ${CARGO_TARGET_DIR:-target})"
cargo test --locked "$@"
