#!/usr/bin/env bash
# Benchmark `hvseed serve`: fleet page cost for large trees, small-file request rate and
# large-file throughput under concurrency, all on loopback. Results go to stdout; record
# them under "serve" in docs/benchmarks.md.
#
# Usage: scripts/bench-serve.sh [HOSTS...]   (default: 1000 10000)
set -euo pipefail
cd "$(dirname "$0")/.."

timeout 900 cargo build --release -q --bin hvseed
hvseed="${CARGO_TARGET_DIR:-$PWD/target}/release/hvseed"
work=$(mktemp -d)
server_pid=
cleanup() {
    [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

for hosts in "${@:-1000 10000}"; do
  for n in $hosts; do
    dir="$work/tree-$n"
    timeout 300 python3 - "$dir" "$n" <<'EOF'
import json, os, sys
dir, n = sys.argv[1], int(sys.argv[2])
http = os.path.join(dir, "http")
reports = os.path.join(dir, "reports")
os.makedirs(reports)
os.makedirs(os.path.join(http, "repodata"))
with open(os.path.join(http, "big.img"), "wb") as f:
    f.write(os.urandom(32 << 20))
flags = "fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat pse36 clflush dts acpi mmx fxsr sse sse2 ss ht tm pbe syscall nx pdpe1gb rdtscp lm constant_tsc arch_perfmon pebs bts rep_good nopl xtopology nonstop_tsc aperfmperf pni pclmulqdq dtes64 monitor ds_cpl vmx smx est tm2 ssse3 cx16 xtpr pdcm pcid dca sse4_1 sse4_2 x2apic popcnt tsc_deadline_timer aes xsave avx lahf_lm ida arat epb xsaveopt pln pts dtherm tpr_shadow vnmi flexpriority ept vpid".split()
for i in range(n):
    cluster = "rack%02d" % (i // 40)
    fqdn = "kvm%05d.%s.example" % (i, cluster)
    host, domain = fqdn.split(".", 1)
    ip = "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255)
    plan = {
        "schema": 1, "cluster": cluster, "os": "centos6", "fqdn": fqdn,
        "hostname": host, "domain": domain,
        "network": {"type": "linux-bridge", "trunk_nic": "eth0",
                    "mac": "52:54:00:%02x:%02x:%02x" % (i >> 16 & 255, i >> 8 & 255, i & 255),
                    "management": {"vlan": 100, "ip": ip, "prefix": 8,
                                   "netmask": "255.0.0.0", "gateway": "10.0.0.1"},
                    "public": {"vlan": 200, "bridge": "cloudbr0"},
                    "private": {"vlan": 300, "bridge": "cloudbr1"}},
        "ntp_servers": ["pool.ntp.org"],
        "dns": {"servers": ["10.0.0.1"], "search": [domain]},
        "cloudstack": {"version": "4.2", "repository": "http://repo.example/rhel/4.2/",
                       "management_server": "10.0.0.2", "port": 8250},
        "cpu": {"mode": "host-model", "features": []},
        "security": {"selinux": "permissive", "firewall_sources": []},
        "report_url": "http://10.0.0.2:8080/report/" + fqdn,
    }
    d = os.path.join(http, "hosts", fqdn)
    os.makedirs(d)
    json.dump(plan, open(os.path.join(d, "plan.json"), "w"), indent=2)
    open(os.path.join(d, "ks.cfg"), "w").write("# kickstart for %s\n" % fqdn + "#" * 3000 + "\n")
    checks = [{"name": "check-%d" % c, "ok": True, "detail": "fine"} for c in range(20)]
    report = {"schema": 1, "cluster": cluster, "fqdn": fqdn, "agent_version": "0.1.0",
              "status": "ready", "finished_at": 1764340000, "checks": checks,
              "cpu": {"model": "Intel(R) Xeon(R) CPU E5-2620 0 @ 2.00GHz",
                      "flags": sorted(flags), "count": 12}}
    json.dump(report, open(os.path.join(reports, fqdn + ".json"), "w"), indent=2)
EOF
    "$hvseed" -q serve "$dir" --listen 127.0.0.1:0 2>"$work/log" &
    server_pid=$!
    for _ in $(seq 50); do grep -q 'listening on' "$work/log" && break; sleep 0.1; done
    addr=$(sed -n 's|.*listening on http://\([^/]*\)/.*|\1|p' "$work/log")
    rss_before=$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")
    timeout 600 python3 - "$addr" "$n" "$server_pid" <<'EOF'
import sys, time, threading, urllib.request
addr, n, pid = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def rss_kib():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
base = "http://" + addr
def get(path):
    with urllib.request.urlopen(base + path, timeout=60) as r:
        return r.read()
def median_ms(path, runs=5):
    t = []
    for _ in range(runs):
        s = time.perf_counter(); get(path); t.append(time.perf_counter() - s)
    return sorted(t)[len(t) // 2] * 1000
print(f"hosts={n}: GET /status.json {median_ms('/status.json'):.0f} ms, GET / {median_ms('/'):.0f} ms (median of 5); server RSS then {rss_kib()} KiB")

def burst(paths, workers):
    errors = []
    def run(part):
        for p in part:
            try: get(p)
            except Exception as e: errors.append(e)
    parts = [paths[i::workers] for i in range(workers)]
    th = [threading.Thread(target=run, args=(p,)) for p in parts]
    s = time.perf_counter()
    for t in th: t.start()
    for t in th: t.join()
    return time.perf_counter() - s, errors

paths = ["/hosts/kvm%05d.rack%02d.example/ks.cfg" % (i % n, (i % n) // 40) for i in range(4000)]
secs, errors = burst(paths, 64)
print(f"hosts={n}: 4000 kickstart GETs from 64 clients: {4000 / secs:.0f} req/s, {len(errors)} errors; server RSS then {rss_kib()} KiB")
secs, errors = burst(["/big.img"] * 64, 64)
print(f"hosts={n}: 64 concurrent downloads of 32 MiB: {64 * 32 / secs:.0f} MiB/s aggregate, {len(errors)} errors")
EOF
    rss_after=$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")
    echo "hosts=$n: server RSS ${rss_before} KiB at start, ${rss_after} KiB after the runs"
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=
    rm -rf "$dir"
  done
done
