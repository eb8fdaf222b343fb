# Sourced by the benchmarks of `hvseed check` (scripts/bench-inventory.sh,
# scripts/bench-inventory-scaling.sh) after they set `runs`: builds the release
# hvseed ($hv), makes a scratch directory ($work, removed on exit) and defines
# measure_check. Runs from the checkout's root.
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
command -v /usr/bin/time >/dev/null || { echo "needs /usr/bin/time (Debian package time)" >&2; exit 1; }
cargo build -q --release --bin hvseed
hv=${CARGO_TARGET_DIR:-$PWD/target}/release/hvseed
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# measure_check FILE: `hvseed check FILE`, $runs times; sets code (its exit status),
# best (the best wall time, s) and rss (the highest peak RSS, KiB).
measure_check() {
  best=999 rss=0 code=0
  for _ in $(seq "$runs"); do
    set +e
    /usr/bin/time -f '%e %M' -o "$work/t" "$hv" check "$1" >/dev/null 2>"$work/err"
    code=$?
    set -e
    # With a failing command, time's first line says so; the last is the format's.
    read -r s kb < <(tail -n 1 "$work/t")
    best=$(awk -v a="$best" -v b="$s" 'BEGIN{print (b<a)?b:a}')
    rss=$(awk -v a="$rss" -v b="$kb" 'BEGIN{print (b>a)?b:a}')
  done
}
