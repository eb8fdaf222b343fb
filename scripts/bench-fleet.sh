#!/bin/sh
# Writes the benchmarks' generated inventory to stdout: HOSTS hosts of OS in a /16,
# the example's defaults with CloudStack repository REPO, every tenth host installing
# to another disk (so the fleet files carry per-host differences beyond name and
# address). KERNEL_ARGS, when given, becomes `install.kernel_args` (a YAML list).
# Used by bench-render.sh and bench-pxe.sh.
#   scripts/bench-fleet.sh OS REPO HOSTS [KERNEL_ARGS]
set -eu
os=${1:?usage: bench-fleet.sh OS REPO HOSTS [KERNEL_ARGS]}
repo=${2:?usage: bench-fleet.sh OS REPO HOSTS [KERNEL_ARGS]}
n=${3:?usage: bench-fleet.sh OS REPO HOSTS [KERNEL_ARGS]}
kernel_args=${4:-}
# The subiquity targets install from a mirror and need CloudStack 4.19 or later with
# their apt suite's trust said (the bench goes without a key).
source=cdrom version=4.2 apt=""
case "$os" in
ubuntu2204|ubuntu2404)
    source=http://archive.ubuntu.com/ubuntu version=4.20 apt="
    unauthenticated: true"
    ;;
esac
cat <<YAML
version: 1
cluster: bench
defaults:
  os: $os
  install:
    source: $source
    locale: en_US.UTF-8
    keyboard: us
    timezone: Etc/UTC
    root_password_hash: "\$6\$hvseedlab\$t1.kB9z7B8HKic33ra63fhRD9HftPru4/eGjbd2w882XHzsjLP9FI2Gir7yyCr6VcJISEaAu3gFSDunaEoAuu0"
    ssh_authorized_keys: ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHvseedbenchkeybenchkeybenchkey ops@bench"]
    disk: sda
YAML
[ -z "$kernel_args" ] || printf '    kernel_args: %s\n' "$kernel_args"
cat <<YAML
  ntp_servers: [0.pool.ntp.org, 1.pool.ntp.org]
  dns:
    servers: [10.0.0.1]
    search: [bench.example.org]
  cloudstack:
    version: "$version"
    repository: $repo$apt
    management_server: 10.0.0.5
  network:
    type: linux-bridge
    trunk_nic: eth0
    management: { vlan: 100, prefix: 16, gateway: 10.0.0.1 }
    public:     { vlan: 200, bridge: cloudbr0 }
    private:    { vlan: 300, bridge: cloudbr1 }
hosts:
YAML
awk -v n="$n" 'BEGIN {
    for (i = 0; i < n; i++) {
        h = i + 256
        printf "  - fqdn: kvm%05d.bench.example.org\n", i
        printf "    mac: \"02:00:00:%02x:%02x:%02x\"\n", int(i / 65536) % 256, int(i / 256) % 256, i % 256
        printf "    ip: 10.0.%d.%d\n", int(h / 256), h % 256
        if (i % 10 == 0) printf "    install: { disk: sdb }\n"
    }
}'
