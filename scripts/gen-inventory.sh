#!/usr/bin/env bash
# Writes a generated inventory to stdout, for measuring `hvseed check` (and render,
# iso, pxe, which read the inventory the same way) on large and hostile inputs.
#   scripts/gen-inventory.sh HOSTS [KIND] [BYTES]
# KIND (default `key`):
#   key     valid: one ssh key in `defaults` whose comment has BYTES bytes (at most
#           8 KiB is valid; more gives one error)
#   keys    valid: BYTES/8000 ssh keys of 8,000 bytes each in `defaults` (at most 256)
#   server  invalid: a `cloudstack.management_server` of BYTES bytes in `defaults`
# Every other host overrides `install` and `cloudstack`, so its sections are merged
# over the defaults' key by key; the rest inherit them whole.
set -euo pipefail
hosts=${1:?usage: gen-inventory.sh HOSTS [key|keys|server] [BYTES]}
kind=${2:-key}
bytes=${3:-1000}
exec python3 - "$hosts" "$kind" "$bytes" <<'PY'
import sys
hosts, kind, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
out = sys.stdout
key = lambda i, c: f'      - "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHvseed{i:08} {"c" * c}"\n'
keys = ""
server = "10.0.0.5"
if kind == "key":
    keys = "    ssh_authorized_keys:\n" + key(0, n)
elif kind == "keys":
    keys = "    ssh_authorized_keys:\n" + "".join(key(i, 8000) for i in range(max(1, n // 8000)))
elif kind == "server":
    server = '"' + "x" * n + '"'
else:
    sys.exit(f"unknown kind {kind}")
out.write(f"""version: 1
cluster: big
defaults:
  os: centos6
  install:
    root_password_hash: "$6$hvseedlab$t1.kB9z7B8HKic33ra63fhRD9HftPru4/eGjbd2w882XHzsjLP9FI2Gir7yyCr6VcJISEaAu3gFSDunaEoAuu0"
    disk: sda
{keys}  dns: {{ servers: [10.0.0.1] }}
  cloudstack:
    version: "4.2"
    repository: http://cloudstack.apt-get.eu/rhel/4.2/
    management_server: {server}
  network:
    trunk_nic: eth0
    management: {{ vlan: 100, prefix: 8, gateway: 10.0.0.1 }}
    public: {{ vlan: 200 }}
    private: {{ vlan: 300 }}
hosts:
""")
for i in range(hosts):
    out.write(f'  - fqdn: kvm{i}.example.org\n    mac: "02:00:{i >> 24 & 255:02x}:{i >> 16 & 255:02x}:{i >> 8 & 255:02x}:{i & 255:02x}"\n    ip: 10.{1 + i // 64000}.{i // 250 % 256}.{2 + i % 250}\n')
    if i % 2:
        out.write('    install: { disk: sdb }\n    cloudstack: { version: "4.3" }\n')
PY
