{#- The fleet seed's early command (sh -c in subiquity's live system, before it probes
    disks or networks). Context: cluster. -#}
# hvseed: find which host of this cluster this machine is by its MACs and put that
# host's autoinstall at /autoinstall.yaml, which subiquity reads again after the
# early commands. An unknown machine stops here: a failing early command stops the
# install before any disk is touched.
# HVSEED_* variables exist only so tests can run this against a fake /sys and /cdrom.
sysfs=${HVSEED_SYSFS:-/sys}
media=${HVSEED_CDROM:-/cdrom}/hvseed
root=${HVSEED_ROOT:-}
console=${HVSEED_CONSOLE:-/dev/console}
cluster={{ cluster|shell }}

say() {
    printf '%s\n' "$*" >> "$console" 2>/dev/null
    printf '%s\n' "$*" >&2
}

table="$media/fleet/macs"
if [ ! -r "$table" ]; then
    say "hvseed: $table is missing: this medium is not hvseed's install medium of cluster $cluster. Nothing was installed and no disk was touched."
    exit 1
fi
macs=""
found=""
for a in "$sysfs"/class/net/*/address; do
    [ -r "$a" ] || continue
    mac=$(tr 'A-F' 'a-f' < "$a")
    case "$mac" in
    ""|00:00:00:00:00:00|*[!0-9a-f:]*) continue ;;
    esac
    macs="$macs $mac"
    host=$(sed -n "s/^$mac //p" "$table")
    [ -n "$host" ] || continue
    case " $found " in
    *" $host "*) ;;
    *) found="${found:+$found }$host" ;;
    esac
done
if [ -z "$found" ]; then
    say "hvseed: this machine (MAC addresses:${macs:- none}) is not a host of cluster $cluster. Nothing was installed and no disk was touched. Add its trunk NIC's MAC to the inventory and render again, or boot the right machine."
    exit 1
fi
case "$found" in
*" "*)
    say "hvseed: this machine's MAC addresses belong to more than one host of cluster $cluster ($found); fix the inventory. Nothing was installed and no disk was touched."
    exit 1
    ;;
esac
cp "$media/hosts/$found/autoinstall.yaml" "$root/autoinstall.yaml" || {
    say "hvseed: cannot copy hosts/$found/autoinstall.yaml from the install medium. Nothing was installed and no disk was touched."
    exit 1
}
say "hvseed: this machine is $found (cluster $cluster); installing it"
