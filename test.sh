#!/usr/bin/env bash
# Runs every hvseed test, after installing what the tests need (Debian packages, the
# musl target, pykickstart in .venv). The tests that need an external tool fail, not
# skip, when CI=true and the tool is missing.
set -euo pipefail
cd "$(dirname "$0")"
scripts/setup.sh test
cargo fmt --all -- --check
cargo build --release -p hvseed-firstboot --target x86_64-unknown-linux-musl
export HVSEED_FIRSTBOOT="$PWD/target/x86_64-unknown-linux-musl/release/hvseed-firstboot"
export HVSEED_KSVALIDATOR="$PWD/.venv/bin/ksvalidator"
export HVSEED_PYTHON="$PWD/.venv/bin/python"
cargo clippy --all-targets --workspace -- -D warnings
cargo test --workspace --no-fail-fast
