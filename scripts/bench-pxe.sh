#!/bin/sh
# Benchmark `hvseed pxe` on a generated inventory of N hosts (default 10000), for
# centos6 and ubuntu1204: the full tree into an empty directory, a re-run with nothing
# changed, and a re-run with one host changed (those two ROUNDS times each: median and
# range). Wall time and peak RSS from /usr/bin/time. Goals (issue 5): full tree <= 3 s,
# one host changed <= 0.3 s.
# The source ISOs have the real layouts with Debian's d-i kernel and initrd standing in
# (package debian-installer-12-netboot-amd64) and a tiny package tree.
# Usage: scripts/bench-pxe.sh [HOSTS]
set -eu
n=${1:-10000}
cd "$(dirname "$0")/.."
cargo build --release -q --bin hvseed
cargo build --release -q -p hvseed-firstboot --target x86_64-unknown-linux-musl
bin=${CARGO_TARGET_DIR:-$PWD/target}/release/hvseed
agent=${CARGO_TARGET_DIR:-$PWD/target}/x86_64-unknown-linux-musl/release/hvseed-firstboot
di=/usr/lib/debian-installer/images/12/amd64/text/debian-installer/amd64
work=$(mktemp -d "${TMPDIR:-/tmp}/hvseed-bench-pxe.XXXXXX")
trap 'rm -rf "$work"' EXIT

mkiso() { # OS ISO
    t=$work/isotree-$1
    rm -rf "$t"
    if [ "$1" = centos6 ]; then
        mkdir -p "$t/images/pxeboot" "$t/EFI/BOOT" "$t/Packages" "$t/repodata" "$t/isolinux"
        echo 'default linux' > "$t/isolinux/isolinux.cfg"
        printf '1341569670.539525\nCentOS 6.3\nx86_64\n1\n' > "$t/.discinfo"
        printf '[general]\nfamily = CentOS\nversion = 6.3\narch = x86_64\n' > "$t/.treeinfo"
        cp "$di/linux" "$t/images/pxeboot/vmlinuz"
        cp "$di/initrd.gz" "$t/images/pxeboot/initrd.img"
        echo stage2 > "$t/images/install.img"
        echo efi > "$t/EFI/BOOT/BOOTX64.efi"
        echo rpm > "$t/Packages/a.rpm"
        echo '<repomd/>' > "$t/repodata/repomd.xml"
    else
        mkdir -p "$t/install/netboot/ubuntu-installer/amd64" "$t/.disk" "$t/dists/precise" "$t/pool/main"
        cp "$di/linux" "$di/initrd.gz" "$t/install/netboot/ubuntu-installer/amd64/"
        mkdir -p "$t/isolinux"
        cp "$di/linux" "$t/install/vmlinuz"
        cp "$di/initrd.gz" "$t/install/initrd.gz"
        echo 'include txt.cfg' > "$t/isolinux/isolinux.cfg"
        echo 'default install' > "$t/isolinux/txt.cfg"
        echo 'Ubuntu-Server 12.04.5 LTS "Precise Pangolin" - Release amd64' > "$t/.disk/info"
        echo 'Suite: precise' > "$t/dists/precise/Release"
        echo deb > "$t/pool/main/a.deb"
    fi
    xorriso -as mkisofs -quiet -R -J -o "$2" "$t" 2>/dev/null
}

pxe() { # INVENTORY ISO OUT: one run, its wall time (s) and peak RSS (KiB) in $work/time
    /usr/bin/time -f "%e %M" -o "$work/time" "$bin" -q pxe "$1" --source "$2" --out "$3" \
        --http-base http://10.0.0.2:8080 --firstboot "$agent"
}

run() { # LABEL INVENTORY ISO OUT
    pxe "$2" "$3" "$4"
    read -r wall rss < "$work/time"
    printf '| %s | %s | %s | %s s | %s MiB |\n' "$os" "$where" "$1" "$wall" "$((rss / 1024))"
}

# Re-runs are short and this machine's speed wanders, so each is timed ROUNDS times
# (default 9): "nothing changed" re-runs the same inventory; "one host changed" switches
# between the inventory and its one-host-changed copy, so every run has one host to
# render again. Prints the median, the range and the peak RSS.
reruns() { # LABEL INVENTORY OTHER_INVENTORY ISO OUT
    times=""
    peak=0
    inv=$2
    for round in $(seq 1 "${ROUNDS:-9}"); do
        : "$round"
        if [ "$3" != "$2" ]; then
            if [ "$inv" = "$2" ]; then inv=$3; else inv=$2; fi
        fi
        pxe "$inv" "$4" "$5"
        read -r wall rss < "$work/time"
        times="$times $wall"
        [ "$rss" -gt "$peak" ] && peak=$rss
    done
    stats=$(printf '%s\n' $times | sort -n | awk '{a[NR]=$1} END {printf "%s s (%s-%s, %d runs)", a[int((NR+1)/2)], a[1], a[NR], NR}')
    printf '| %s | %s | %s | %s | %s MiB |\n' "$os" "$where" "$1" "$stats" "$((peak / 1024))"
}

# Each tree is written once to the disk under $TMPDIR and once to tmpfs (/dev/shm, if
# there is one): the disk run includes the filesystem's cost of creating 50,000 files,
# the tmpfs run is hvseed's own. `cp -a` of the finished tree from tmpfs to the disk
# shows what creating those files costs on the disk by itself.
shm=$(mktemp -d /dev/shm/hvseed-bench-pxe.XXXXXX 2>/dev/null || true)
trap 'rm -rf "$work" ${shm:+"$shm"}' EXIT
echo "| os | output on | run ($n hosts) | wall | peak RSS |"
echo "|---|---|---|---|---|"
for os in centos6 ubuntu1204; do
    scripts/bench-fleet.sh "$os" http://cloudstack.apt-get.eu/ "$n" '["console=ttyS0,115200n8"]' > "$work/$os.yaml"
    mkiso "$os" "$work/$os.iso"
    sed 's/^    ip: 10.0.1.0$/    ip: 10.0.250.250/' "$work/$os.yaml" > "$work/$os-1.yaml"
    for where in disk ${shm:+tmpfs}; do
        if [ "$where" = disk ]; then out=$work/tree-$os; else out=$shm/tree-$os; fi
        run "full tree, empty DIR" "$work/$os.yaml" "$work/$os.iso" "$out"
        reruns "re-run, nothing changed" "$work/$os.yaml" "$work/$os.yaml" "$work/$os.iso" "$out"
        reruns "re-run, one host changed" "$work/$os.yaml" "$work/$os-1.yaml" "$work/$os.iso" "$out"
        if [ "$where" = tmpfs ]; then
            sync
            /usr/bin/time -f "%e" -o "$work/time" cp -a "$out" "$work/cp-$os"
            printf '| %s | disk | (cp -a of the same tree from tmpfs) | %s s | |\n' "$os" "$(cat "$work/time")"
            rm -rf "$work/cp-$os"
        fi
        rm -rf "$out"
    done
    /usr/bin/time -f "%e" -o "$work/time" "$bin" -q check "$work/$os-1.yaml" 2>/dev/null
    printf '| %s | | (hvseed check alone: parsing + validating the inventory) | %s s | |\n' "$os" "$(cat "$work/time")"
done
