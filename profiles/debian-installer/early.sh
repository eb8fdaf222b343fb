{#- preseed/early_command's script (busybox sh in d-i), run as `sh SCRIPT PRESEED`.
    Context: cluster, fleet, hosts, media. -#}
# hvseed: {% if fleet %}find which host this is by its MACs, set its answers, {% endif %}say who is
# being installed, and keep the late script for late_command. d-i may load an initrd
# preseed twice, so this must be safe to run twice.
# HVSEED_* variables exist only so tests can run this against a fake /sys.
f=$1
sysfs=${HVSEED_SYSFS:-/sys}
console=${HVSEED_CONSOLE:-/dev/console}
tmp=${HVSEED_TMP:-/tmp}
cluster={{ cluster|shell }}

say() {
    printf '%s\n' "$*" >> "$console" 2>/dev/null
    printf '%s\n' "$*" >&2
}

{% if fleet %}
macs=""
found=""
for a in "$sysfs"/class/net/*/address; do
    [ -r "$a" ] || continue
    mac=$(tr 'A-F' 'a-f' < "$a")
    case "$mac" in
    ""|00:00:00:00:00:00|*[!0-9a-f:]*) continue ;;
    esac
    macs="$macs $mac"
    if grep -q "^#hvseed-host $mac " "$f"; then
        case " $found " in
        *" $mac "*) ;;
        *) found="${found:+$found }$mac" ;;
        esac
    fi
done
# An unknown machine stops here, before partitioning: a failing early_command makes
# d-i stop with an error.
if [ -z "$found" ]; then
    say "hvseed: this machine (MAC addresses:${macs:- none}) is not a host of cluster $cluster. Nothing was installed and no disk was touched. Add its trunk NIC's MAC to the inventory and render again, or boot the right machine."
    exit 1
fi
case "$found" in
*" "*)
    say "hvseed: this machine's MAC addresses ($found) belong to more than one host of cluster $cluster; fix the inventory. Nothing was installed."
    exit 1
    ;;
esac
fqdn=$(sed -n "s/^#hvseed-host $found //p" "$f")
sed -n "s/^#hvseed-set $found //p" "$f" > "$tmp/hvseed-settings" || exit 1
# debconf-set talks to debconf over its stdin/stdout, so the list is read on fd 9.
exec 9< "$tmp/hvseed-settings" || exit 1
while read -r q v <&9; do
    debconf-set "$q" "$v" || {
        say "hvseed: ERROR: cannot preseed $q for $fqdn"
        exit 1
    }
done
exec 9<&-
{% else %}
fqdn={{ hosts[0].fqdn|shell }}
{% endif %}
[ -n "$fqdn" ] || exit 1
printf '%s\n' "$fqdn" > "$tmp/hvseed-host" || exit 1
sed -n 's/^#hvseed-late //p' "$f" > "$tmp/hvseed-late.sh" || exit 1
say "hvseed: installing $fqdn"
