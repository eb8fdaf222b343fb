#!/bin/sh
# Benchmark `hvseed render` on a generated inventory of N hosts (default 10000):
# wall time and peak RSS (/usr/bin/time -v), for centos6 and ubuntu1204, writing to
# tmpfs and to disk. Goals (issue 2): <= 2 s wall, <= 200 MiB peak RSS for 10,000 hosts.
# Usage: scripts/bench-render.sh [HOSTS]   (KEEP=1 keeps the generated inventories)
set -eu
n=${1:-10000}
cd "$(dirname "$0")/.."
cargo build --release -q --bin hvseed
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/hvseed
work=$(mktemp -d "${TMPDIR:-/tmp}/hvseed-bench-render.XXXXXX")
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT

gen() { # OS REPO
    cat <<YAML
version: 1
cluster: bench
defaults:
  os: $1
  install:
    source: cdrom
    locale: en_US.UTF-8
    keyboard: us
    timezone: Etc/UTC
    root_password_hash: "\$6\$hvseedlab\$t1.kB9z7B8HKic33ra63fhRD9HftPru4/eGjbd2w882XHzsjLP9FI2Gir7yyCr6VcJISEaAu3gFSDunaEoAuu0"
    ssh_authorized_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHvseedbenchkeybenchkeybenchkey ops@bench"]
    disk: sda
  ntp_servers: [0.pool.ntp.org, 1.pool.ntp.org]
  dns:
    servers: [10.0.0.1]
    search: [bench.example.org]
  cloudstack:
    version: "4.2"
    repository: $2
    management_server: 10.0.0.5
  network:
    type: linux-bridge
    trunk_nic: eth0
    management: { vlan: 100, prefix: 16, gateway: 10.0.0.1 }
    public:     { vlan: 200, bridge: cloudbr0 }
    private:    { vlan: 300, bridge: cloudbr1 }
hosts:
YAML
    # Every tenth host installs to another disk, so the fleet files carry per-host
    # differences beyond name and address.
    awk -v n="$n" 'BEGIN {
        for (i = 0; i < n; i++) {
            h = i + 256
            printf "  - fqdn: kvm%05d.bench.example.org\n", i
            printf "    mac: \"02:00:00:%02x:%02x:%02x\"\n", int(i / 65536) % 256, int(i / 256) % 256, i % 256
            printf "    ip: 10.0.%d.%d\n", int(h / 256), h % 256
            if (i % 10 == 0) printf "    install: { disk: sdb }\n"
        }
    }'
}

gen centos6 http://cloudstack.apt-get.eu/rhel/4.2/ > "$work/centos6.yaml"
gen ubuntu1204 http://cloudstack.apt-get.eu/ubuntu > "$work/ubuntu1204.yaml"
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
