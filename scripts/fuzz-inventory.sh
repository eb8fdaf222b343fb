#!/usr/bin/env bash
# A longer run of the inventory loader's fuzz test (tests/inventory_bounds.rs): the
# examples mutated byte-wise and structurally by a seeded generator; every input must
# load without a panic, with memory in proportion to its size, and with a position in
# every finding. The suite runs 400 inputs from a fixed seed; this runs more, from
# other seeds, in a release build.
#   scripts/fuzz-inventory.sh [ITERATIONS] [SEED...]
#   (defaults: 20000 iterations; seeds 1 2 3 4; env HVSEED_FUZZ_ITERS/HVSEED_FUZZ_SEED
#   are set from these; inputs grow up to HVSEED_FUZZ_MAX_BYTES, default here 1 MiB)
# A failure prints its seed and iteration and keeps the input in
# target/fuzz-inventory-failure.yaml.
set -euo pipefail
cd "$(dirname "$0")/.."
iters=${1:-20000}
shift || true
seeds=("$@")
[ ${#seeds[@]} -gt 0 ] || seeds=(1 2 3 4)
for seed in "${seeds[@]}"; do
  echo "== seed $seed, $iters iterations" >&2
  HVSEED_FUZZ_SEED=$seed HVSEED_FUZZ_ITERS=$iters HVSEED_FUZZ_MAX_BYTES=${HVSEED_FUZZ_MAX_BYTES:-1048576} \
    cargo test -q --release --test inventory_bounds fuzzed -- --nocapture
done
