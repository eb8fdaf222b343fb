#!/usr/bin/env bash
# Measures `hvseed check`: wall time and peak RSS on a generated 10,000-host inventory
# (the size the render goal names: <= 2 s and <= 200 MiB for the whole render) and on
# hostile files (each must fail with one error in well under a second, memory bounded).
# Prints a Markdown table for docs/benchmarks.md ("inventory (hvseed check)").
#   scripts/bench-inventory.sh [RUNS]      (default 5 runs per case; the best is shown)
set -euo pipefail
runs=${1:-5}
# shellcheck source=scripts/lib/bench-check.sh
. "$(dirname "$0")/lib/bench-check.sh"

# 10,000 hosts in a /16 (the example's defaults, one override every 10th host).
{
  sed -e '/^hosts:/,$d' -e 's/prefix: 24, gateway: 192.168.42.1/prefix: 16, gateway: 10.20.0.1/' \
    profiles/examples/lab-centos6.yaml
  echo "hosts:"
  for i in $(seq 1 10000); do
    printf '  - fqdn: kvm%d.lab.example.org\n    mac: "02:00:00:00:%02x:%02x"\n    ip: 10.20.%d.%d\n' \
      "$i" $((i / 256)) $((i % 256)) $((i / 250 + 1)) $((i % 250 + 2))
    if [ $((i % 10)) = 0 ]; then echo "    install: { disk: sdb }"; fi
  done
} >"$work/10k.yaml"

# A billion-laughs alias bomb, a wide alias replay, 10,000-deep nesting, a 100 MB file,
# and a 15 MiB file of valid YAML (just under the cap).
{
  echo 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'
  prev=a
  for n in b c d e f g h i j; do
    printf '%s: &%s [%s]\n' "$n" "$n" "$(printf '*%s,' $prev $prev $prev $prev $prev $prev $prev $prev $prev | sed 's/,$//')"
    prev=$n
  done
} >"$work/bomb.yaml"
python3 -c "print('a: &a [' + ','.join(['xxxxxxxxxx']*900) + ']'); print('b: [' + ','.join(['*a']*900) + ']')" >"$work/wide.yaml"
python3 -c "print('['*10000 + ']'*10000)" >"$work/deep.yaml"
truncate -s 100000000 "$work/huge.yaml"
python3 -c "
import sys
line = 'k%07d: ' + 'v'*60 + '\n'
n = (15*1024*1024) // len(line % 0)
sys.stdout.write(''.join(line % i for i in range(n)))" >"$work/15mib.yaml"

echo "| input | exit | best wall (s) | peak RSS (MiB) |"
echo "|---|---|---|---|"
for f in 10k bomb wide deep huge 15mib; do
  measure_check "$work/$f.yaml"
  printf '| %s | %s | %s | %.1f |\n' "$f" "$code" "$best" "$(awk -v k="$rss" 'BEGIN{print k/1024}')"
done
