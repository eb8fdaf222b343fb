#!/usr/bin/env bash
# Measures `hvseed check` on inventories whose `defaults` hold long values, with
# many hosts (scripts/gen-inventory.sh): wall time and peak RSS (/usr/bin/time -v).
# Loading must cost time and memory linear in the file's size, not hosts × the
# length of a default value. Prints a Markdown table for docs/benchmarks.md.
#   scripts/bench-inventory-scaling.sh [RUNS]   (default 3 runs per case; best shown)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (Debian package time)" >&2; exit 1; }
cargo build -q --release --bin hvseed
hv=${CARGO_TARGET_DIR:-$PWD/target}/release/hvseed
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

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
  best=999 rss=0 code=0
  for _ in $(seq "$runs"); do
    set +e
    /usr/bin/time -v -o "$work/t" "$hv" check "$work/inv.yaml" >/dev/null 2>"$work/err"
    code=$?
    set -e
    s=$(awk -F': ' '/Elapsed \(wall clock\)/{n=split($2,a,":"); t=0; for(i=1;i<=n;i++) t=t*60+a[i]; print t}' "$work/t")
    kb=$(awk -F': ' '/Maximum resident set size/{print $2}' "$work/t")
    best=$(awk -v a="$best" -v b="$s" 'BEGIN{print (b<a)?b:a}')
    rss=$(awk -v a="$rss" -v b="$kb" 'BEGIN{print (b>a)?b:a}')
  done
  printf '| %s | %.1f | %s | %s | %.1f |\n' "$name" "$(awk -v s="$size" 'BEGIN{print s/1048576}')" \
    "$code" "$best" "$(awk -v k="$rss" 'BEGIN{print k/1024}')"
done
