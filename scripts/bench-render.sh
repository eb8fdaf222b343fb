#!/bin/sh
# Benchmark `hvseed render` on a generated inventory of N hosts (default 10000):
# wall time and peak RSS (/usr/bin/time -v), for centos6 and ubuntu1204, writing to
# tmpfs and to disk (OSES=ubuntu2404 for the autoinstall targets). Goals (issue 2): <= 2 s wall, <= 200 MiB peak RSS for 10,000 hosts.
# Usage: scripts/bench-render.sh [HOSTS]   (KEEP=1 keeps the generated inventories)
set -eu
n=${1:-10000}
cd "$(dirname "$0")/.."
cargo build --release -q --bin hvseed
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/hvseed
work=$(mktemp -d "${TMPDIR:-/tmp}/hvseed-bench-render.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

scripts/bench-fleet.sh centos6 http://cloudstack.apt-get.eu/rhel/4.2/ "$n" > "$work/centos6.yaml"
scripts/bench-fleet.sh ubuntu1204 http://cloudstack.apt-get.eu/ubuntu "$n" > "$work/ubuntu1204.yaml"
scripts/bench-fleet.sh ubuntu2404 https://download.cloudstack.org/ubuntu "$n" > "$work/ubuntu2404.yaml"
[ -n "${KEEP:-}" ] && echo "inputs in $work"

# One measured run into a fresh directory under $1 (warm page cache and binary: a
# throw-away run first).
measure() { # OUTBASE OS
    out="$1/hvseed-bench-render-out.$$"
    rm -rf "$out"
    "$bin" -q render "$work/$2.yaml" --out "$out" 2> /dev/null
    rm -rf "$out"
    /usr/bin/time -v "$bin" -q render "$work/$2.yaml" --out "$out" 2> "$work/time"
    wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$work/time")
    user=$(sed -n 's/.*User time (seconds): //p' "$work/time")
    sys=$(sed -n 's/.*System time (seconds): //p' "$work/time")
    rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$work/time")
    files=$(find "$out" -type f | wc -l)
    fleet=$(du -k "$out"/fleet/* | cut -f1)
    printf '%-10s out=%-9s %s hosts, %s files, fleet file %s KiB: wall %s (user %s s, sys %s s), peak RSS %s MiB\n' \
        "$2" "$1" "$n" "$files" "$fleet" "$wall" "$user" "$sys" "$((rss / 1024))"
    rm -rf "$out"
}

# tmpfs shows hvseed's own cost; the disk run adds the file system's (30,000 small
# files per 10,000 hosts).
for os in ${OSES:-centos6 ubuntu1204}; do
    for base in ${OUTS:-/dev/shm $work}; do
        measure "$base" "$os"
    done
done
