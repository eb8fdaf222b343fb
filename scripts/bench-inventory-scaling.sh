#!/usr/bin/env bash
# Measures `hvseed check` on inventories whose `defaults` hold long values, with
# many hosts (scripts/gen-inventory.sh): wall time and peak RSS (/usr/bin/time).
# Loading must cost time and memory linear in the file's size, not hosts × the
# length of a default value. Prints a Markdown table for docs/benchmarks.md.
#   scripts/bench-inventory-scaling.sh [RUNS]   (default 3 runs per case; best shown)
set -euo pipefail
runs=${1:-3}
# shellcheck source=scripts/lib/bench-check.sh
. "$(dirname "$0")/lib/bench-check.sh"

# name | hosts kind bytes
cases=(
  "4,000 hosts, one 1 MiB ssh key in defaults (refused: over 8 KiB)|4000 key 1048576"
  "4,000 hosts, one 8,000-byte ssh key in defaults|4000 key 8000"
  "4,000 hosts, 256 ssh keys of 8,000 bytes (2 MiB) in defaults|4000 keys 2048000"
  "8,000 hosts, an 8 MiB ssh key in defaults (refused)|8000 key 8388608"
  "20,000 hosts, a 13 MiB management_server (refused)|20000 server 13631488"
  "100,000 hosts, 256 ssh keys of 8,000 bytes in defaults|100000 keys 2048000"
)
echo "| input | file (MiB) | exit | best wall (s) | peak RSS (MiB) |"
echo "|---|---|---|---|---|"
for c in "${cases[@]}"; do
  name=${c%%|*}
  read -r hosts kind bytes <<<"${c#*|}"
  scripts/gen-inventory.sh "$hosts" "$kind" "$bytes" >"$work/inv.yaml"
  size=$(stat -c %s "$work/inv.yaml")
  measure_check "$work/inv.yaml"
  printf '| %s | %.1f | %s | %s | %.1f |\n' "$name" "$(awk -v s="$size" 'BEGIN{print s/1048576}')" \
    "$code" "$best" "$(awk -v k="$rss" 'BEGIN{print k/1024}')"
done
