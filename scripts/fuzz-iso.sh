#!/usr/bin/env bash
# A longer run of the ISO identification fuzz test (tests/fuzz_iso.rs): small ISOs of
# both supported layouts, mutated where identification reads (volume descriptors,
# directory records, identity files, length) by a seeded generator. Every mutant must
# be identified as what it really is or refused with a message naming it; never a
# panic, never a hang (xorriso is stopped after a deadline). The suite runs 120
# mutants from a fixed seed; this runs more, from other seeds.
#   scripts/fuzz-iso.sh [ITERATIONS] [SEED...]     (defaults: 2000; seeds 1 2)
# A failure prints its seed, iteration and mutations, and keeps the mutant in
# target/tmp/fuzz-iso-work/.
set -euo pipefail
cd "$(dirname "$0")/.."
iters=${1:-2000}
shift || true
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(1 2)
for seed in "${seeds[@]}"; do
  echo "== seed $seed, $iters iterations" >&2
  HVSEED_FUZZ_SEED=$seed HVSEED_FUZZ_ISO_ITERS=$iters \
    cargo test -q --release --test lib fuzz_iso::mutated -- --nocapture
done
