{#- The fleet kickstart's %pre (sh). Context: cluster, hosts, media. -#}
# hvseed: which host of cluster {{ cluster|shell }} is this? Match the MACs in
# /sys/class/net/*/address against the inventory, then write that host's own
# kickstart lines for `%include /tmp/hvseed-host.ks` (anaconda reads the includes
# after %pre has run) and remember its name for %post.
# HVSEED_SYSFS, HVSEED_CONSOLE and HVSEED_TMP exist only so tests can run this
# script against a fake /sys; anaconda sets none of them.
sysfs=${HVSEED_SYSFS:-/sys}
console=${HVSEED_CONSOLE:-/dev/console}
tmp=${HVSEED_TMP:-/tmp}
cluster={{ cluster|shell }}

say() {
    printf '%s\n' "$*" >> "$console" 2>/dev/null
    printf '%s\n' "$*" >&2
}

# Never install a machine hvseed cannot name, and never let anaconda go on to
# partitioning: print why, then wait here for the operator, repeating the message.
# (A failing %pre --erroronfail would only show a dialog or reboot, and a reboot
# loop hides the reason.)
stop() {
    while :; do
        say "$@"
        say "hvseed: the installation is stopped; no disk has been touched. Power the machine off."
        sleep 300
    done
}

hvseed_lookup() {
    case "$1" in
{% for h in hosts %}
    {{ h.mac|shell }}) echo {{ loop.index0 }} ;;
{% endfor %}
    *) return 1 ;;
    esac
}

hvseed_write_host() {
    case "$1" in
{% for h in hosts %}
    {{ loop.index0 }})
        fqdn={{ h.fqdn|shell }}
        {{ h.commands|heredoc('"$tmp/hvseed-host.ks"') }}
        {{ h.packages|heredoc('"$tmp/hvseed-packages.ks"') }}
        ;;
{% endfor %}
    *) return 1 ;;
    esac
}

rm -f "$tmp/hvseed-host.ks" "$tmp/hvseed-packages.ks" "$tmp/hvseed-fqdn"
macs=""
found=""
for f in "$sysfs"/class/net/*/address; do
    [ -r "$f" ] || continue
    mac=$(tr 'A-F' 'a-f' < "$f")
    case "$mac" in
    ""|00:00:00:00:00:00) continue ;;
    esac
    macs="$macs $mac"
    if n=$(hvseed_lookup "$mac"); then
        case " $found " in
        *" $n "*) ;;
        *) found="${found:+$found }$n" ;;
        esac
    fi
done

case "$found" in
"")
    stop "hvseed: this machine (MAC addresses:${macs:- none}) is not a host of cluster $cluster. Add its trunk NIC's MAC to the inventory and render again, or boot the right machine."
    ;;
*" "*)
    stop "hvseed: this machine's MAC addresses ($macs) belong to more than one host of cluster $cluster; fix the inventory."
    ;;
esac

hvseed_write_host "$found"
[ -f "$tmp/hvseed-host.ks" ] && [ -f "$tmp/hvseed-packages.ks" ] ||
    stop "hvseed: could not write this host's settings to $tmp"
printf '%s\n' "$fqdn" > "$tmp/hvseed-fqdn" || stop "hvseed: could not write $tmp/hvseed-fqdn"
say "hvseed: installing $fqdn"
