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
cargo test --workspace --no-run
# The live hosts (tests/live) spend their first minutes building a Debian root with
# mmdebstrap, mostly downloads and dpkg: they run beside the other tests instead of
# after them. Guests still boot one at a time (the tests' machine-wide QEMU lock).
live_log=$(mktemp)
cargo test --test lib --no-fail-fast -- live:: >"$live_log" 2>&1 &
live=$!
trap 'kill "$live" 2>/dev/null || true; rm -f "$live_log"' EXIT
rc=0
cargo test --workspace --no-fail-fast -- --skip live:: || rc=$?
wait "$live" || rc=$?
echo "---- live hosts (cargo test --test lib -- live::) ----"
cat "$live_log"
exit "$rc"
