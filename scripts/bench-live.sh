#!/bin/sh
# Power-on to the first-boot report of the live Debian 12 hosts (tests/live/debian12.rs)
# under TCG, split into boot, the agent's own steps and the wait for the management
# gateway, as the tests measure it from the serial console (each agent line stamped
# with the time the test first saw it) and from `hvseed serve` receiving the report.
#
#   scripts/bench-live.sh [RUNS]     (default 1; root, as the live tests need)
#
# Needs the static agent built (cargo build --release -p hvseed-firstboot --target
# x86_64-unknown-linux-musl) and HVSEED_FIRSTBOOT pointing at it when
# CARGO_TARGET_DIR is not ./target. The images come from the test cache
# (docs/testing.md, "Live hosts"); a first run builds them.
set -eu
runs=${1:-1}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
i=1
while [ "$i" -le "$runs" ]; do
    CI=true cargo test --test lib -- live::debian12:: --test-threads=1 --nocapture \
        >"$out/run$i.log" 2>&1 || {
        echo "bench-live: run $i failed; its log:" >&2
        tail -60 "$out/run$i.log" >&2
        exit 1
    }
    grep -E '^live: (debian12 .*bench|rollback):' "$out/run$i.log" | sed "s/^/run $i: /"
    i=$((i + 1))
done
