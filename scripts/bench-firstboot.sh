#!/usr/bin/env bash
# Measures the first-boot agent: wall time of `apply` on the fixture roots (goal
# <= 50 ms) and the size of the static binary (goal <= 4 MiB). Prints a Markdown
# table for docs/benchmarks.md ("first-boot agent").
#   scripts/bench-firstboot.sh [RUNS]      (default 30 runs per case)
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-30}
cargo build -q --release -p hvseed-firstboot --target x86_64-unknown-linux-musl
agent=${CARGO_TARGET_DIR:-$PWD/target}/x86_64-unknown-linux-musl/release/hvseed-firstboot
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

plan() { # plan OS NET
  local selinux='"permissive"'; [ "$1" = centos6 ] || selinux=null
  cat <<JSON
{"schema":1,"cluster":"lab1","os":"$1","fqdn":"kvm1.lab.example.org","hostname":"kvm1",
 "domain":"lab.example.org","network":{"type":"$2","trunk_nic":"eth0","mac":"00:04:23:aa:bb:01",
 "management":{"vlan":100,"ip":"192.168.42.11","prefix":24,"netmask":"255.255.255.0","gateway":"192.168.42.1"},
 "public":{"vlan":200,"bridge":"cloudbr0"},"private":{"vlan":300,"bridge":"cloudbr1"}},
 "ntp_servers":["0.pool.ntp.org"],"dns":{"servers":["192.168.42.1"],"search":["lab.example.org"]},
 "cloudstack":{"version":"4.2","repository":"http://cloudstack.apt-get.eu/rhel/4.2/","management_server":"192.168.42.5","port":8250},
 "cpu":{"mode":"host-model"},"security":{"selinux":$selinux,"firewall_sources":["192.168.42.0/24"]}}
JSON
}

ms() { # prints median and max of the numbers (ns) on stdin, in ms
  sort -n | awk '{a[NR]=$1} END {printf "%.1f | %.1f", a[int((NR+1)/2)]/1e6, a[NR]/1e6}'
}

echo "| case | first apply: median (ms) | max (ms) | repeat apply (0 changed): median (ms) | max (ms) |"
echo "|---|---|---|---|---|"
for os in centos6 ubuntu1204; do
  for net in linux-bridge openvswitch; do
    plan "$os" "$net" >"$work/plan.json"
    first=() again=()
    for _ in $(seq "$runs"); do
      rm -rf "$work/root"; cp -a "tests/fixtures/roots/$os" "$work/root"
      t0=$(date +%s%N); "$agent" apply --plan "$work/plan.json" --root "$work/root" >/dev/null; t1=$(date +%s%N)
      "$agent" apply --plan "$work/plan.json" --root "$work/root" >"$work/out"; t2=$(date +%s%N)
      grep -qx '0 changed' "$work/out" || { echo "second apply was not a no-op" >&2; exit 1; }
      first+=($((t1 - t0))) again+=($((t2 - t1)))
    done
    echo "| $os $net | $(printf '%s\n' "${first[@]}" | ms) | $(printf '%s\n' "${again[@]}" | ms) |"
  done
done
size=$(stat -c %s "$agent")
strip -o "$work/stripped" "$agent"
ssize=$(stat -c %s "$work/stripped")
echo
echo "binary: $size bytes as built ($(awk "BEGIN{printf \"%.2f\", $size/1048576}") MiB), $ssize bytes after strip(1) ($(awk "BEGIN{printf \"%.2f\", $ssize/1048576}") MiB); goal <= 4 MiB"
file -b "$agent"
