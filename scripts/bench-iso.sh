#!/usr/bin/env bash
# Benchmark of `hvseed iso` against a plain `cp` of the same ISO, side by side in one
# run, on a ~4 GiB CentOS-6-layout ISO built from the test fixture plus filler files of
# random bytes (so cp really copies data: no holes, no dedupe). Also reports hvseed's
# peak RSS (GNU time: the largest of hvseed and the xorriso it waits for) and, for
# scale, the whole-image rewrite (`xorriso -indev/-outdev ... replay`).
# Goal (issue 4): hvseed iso <= 1.2x cp, memory flat in the ISO size.
# Rounds alternate which of the two goes first (ROUNDS, default 8: each first as
# often), and every timed run starts from the same state (see `quiesce`): nothing
# dirty, the source ISO in the page cache and nothing else of earlier runs, the disk
# idle. Without that, each run inherited what the one before left (dirty pages, the
# cached output, blocks still being trimmed) and the same copy scattered from 1 s to 7 s.
# TARGET=el9 runs the same on the EL9-DVD-layout fixture (filler under BaseOS/Packages,
# profiles/examples/lab-el9.yaml).
# Usage: [ROUNDS=8] [SYNC=1] [TARGET=centos6|el9] scripts/bench-iso.sh [SIZE_GIB]   (needs
# ~4x SIZE free on the checkout's disk)
set -euo pipefail
cd "$(dirname "$0")/.."
gib=${1:-4}
work=$(mktemp -d "${CARGO_TARGET_DIR:-$PWD/target}/bench-iso.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "bench-iso: working in $work ($(df -h --output=avail "$PWD" | tail -1 | tr -d ' ') free)" >&2

cargo build --release -q
cargo build --release -q -p hvseed-firstboot --target x86_64-unknown-linux-musl
hvseed=${CARGO_TARGET_DIR:-$PWD/target}/release/hvseed
agent=${CARGO_TARGET_DIR:-$PWD/target}/x86_64-unknown-linux-musl/release/hvseed-firstboot
tests/fixtures/iso/make-fixtures.sh "$work/fx" >/dev/null 2>&1
case ${TARGET:-centos6} in
centos6) fixture=centos6.iso example=profiles/examples/lab-centos6.yaml packages=/Packages ;;
el9) fixture=el9.iso example=profiles/examples/lab-el9.yaml packages=/BaseOS/Packages ;;
*) echo "bench-iso: TARGET is centos6 or el9" >&2; exit 2 ;;
esac

# 64 MiB of random bytes, as many distinct files as needed for the size (xorriso
# writes one copy of a file mapped twice, so each filler is its own file).
head -c $((64 << 20)) /dev/urandom > "$work/chunk"
n=$((gib * 16))
mkdir "$work/filler"
for i in $(seq 1 "$n"); do { echo "filler $i"; cat "$work/chunk"; } > "$work/filler/filler-$i.rpm"; done
rm -f "$work/chunk"
timeout 1200 xorriso -indev "$work/fx/$fixture" -outdev "$work/src.iso" -compliance no_emul_toc \
  -boot_image any replay -map "$work/filler" "$packages" -commit >/dev/null 2>&1
rm -rf "$work/filler"
size=$(stat -c %s "$work/src.iso")
echo "bench-iso: source ISO $((size >> 20)) MiB" >&2

# SYNC=1 also times writing the output to the disk (a `sync` after each command):
# what it costs until the ISO is really on the disk, rather than in the page cache.
t() { # prints elapsed seconds of "$@"
  local s e
  s=$(date +%s.%N)
  "$@" >/dev/null 2>&1
  [ "${SYNC:-0}" = 1 ] && sync
  e=$(date +%s.%N)
  echo "$e - $s" | bc
}
dev=$(basename "$(df --output=source "$work" | tail -1)")
dropping=yes
if ! { sync && echo 1 > /proc/sys/vm/drop_caches; } 2>/dev/null; then
  dropping=no
  echo "bench-iso: WARNING: cannot drop the page cache (not root?): runs will pay for" \
    "each other's cached pages and the times will scatter" >&2
fi
# Before each timed run: write back everything, drop the clean page cache (the last
# run's output), read the source back into the cache (both commands read it from
# memory), and wait until the disk has had no I/O for a second (ext4 mounted with
# `discard` trims the freed blocks of the last output after the fact).
quiesce() {
  sync
  [ "$dropping" = yes ] && echo 1 > /proc/sys/vm/drop_caches
  cat "$work/src.iso" > /dev/null
  local a b
  a=$(cat "/sys/class/block/$dev/stat" 2>/dev/null || true)
  while sleep 1; b=$(cat "/sys/class/block/$dev/stat" 2>/dev/null || true); [ "$a" != "$b" ]; do a=$b; done
}
declare -a cp_t hv_t
for round in $(seq 1 "${ROUNDS:-8}"); do
  for which in $( [ $((round % 2)) = 1 ] && echo "cp hv" || echo "hv cp"); do
    quiesce
    if [ "$which" = cp ]; then
      cp_t+=("$(t cp "$work/src.iso" "$work/cp.iso")")
      rm -f "$work/cp.iso"
    else
      hv_t+=("$(t "$hvseed" -q iso "$example" --source "$work/src.iso" --out "$work/hv.iso" --firstboot "$agent")")
      rm -f "$work/hv.iso"
    fi
  done
done
# hvseed's own account of one run: what it does besides the copy (preparing the
# session overlaps the copy; the xorriso session is appended after it).
quiesce
RUST_LOG=hvseed=debug "$hvseed" iso "$example" --source "$work/src.iso" \
  --out "$work/hv.iso" --firstboot "$agent" 2>&1 >/dev/null | grep -E 'prepared|waited|xorriso wrote' | sed 's/^ *DEBUG /bench-iso: /' >&2
rm -f "$work/hv.iso"; quiesce
rss=$( { /usr/bin/time -f '%M' "$hvseed" -q iso "$example" --source "$work/src.iso" \
  --out "$work/hv.iso" --firstboot "$agent" >/dev/null; } 2>&1 | tail -1)
rm -f "$work/hv.iso"; quiesce
full=$(t xorriso -indev "$work/src.iso" -outdev "$work/full.iso" -compliance no_emul_toc -boot_image any replay \
  -map "$example" /hvseed/x -commit)
rm -f "$work/full.iso"

# The median of the rounds.
best() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
cpb=$(best "${cp_t[@]}")
hvb=$(best "${hv_t[@]}")
ratio=$(echo "scale=2; $hvb / $cpb" | bc)
fratio=$(echo "scale=2; $full / $cpb" | bc)
cat <<EOF
| ISO size | cp (s) | hvseed iso (s) | hvseed / cp | hvseed peak RSS | xorriso -indev/-outdev (s) | rewrite / cp |
|---|---|---|---|---|---|---|
| $((size >> 20)) MiB | ${cp_t[*]} (median $cpb) | ${hv_t[*]} (median $hvb) | $ratio | $((rss / 1024)) MiB | $full | $fratio |
EOF
