{#- %post --nochroot (sh, in the installer, new system at /mnt/sysimage): put the
    first-boot agent (and, for the fleet file, the host's plan and ssh keys) from the
    install media into the new system. Context: fleet, host (per-host only), media. -#}
# hvseed: copy the first-boot agent{% if fleet %}, this host's plan and ssh keys{% endif %} from the install media.
# HVSEED_* variables exist only so tests can run this against a fake tree.
sysimage=${HVSEED_SYSIMAGE:-/mnt/sysimage}
console=${HVSEED_CONSOLE:-/dev/console}
tmp=${HVSEED_TMP:-/tmp}

say() {
    printf '%s\n' "$*" >> "$console" 2>/dev/null
    printf '%s\n' "$*" >&2
}

# A host must never come up silently unconfigured: say so on the console and fail
# (%post --erroronfail makes anaconda stop with an error instead of rebooting).
fail() {
    say "hvseed: ERROR: $*"
    say "hvseed: this host is NOT set up for CloudStack; fix the cause and install it again."
    exit 1
}

{% if fleet %}
fqdn=$(cat "$tmp/hvseed-fqdn" 2>/dev/null)
[ -n "$fqdn" ] || fail "$tmp/hvseed-fqdn is missing: %pre did not identify this host"
{% else %}
fqdn={{ host.fqdn|shell }}
{% endif %}

{% if media.kind == "cdrom" %}
# The media: anaconda of EL6 mounts an install CD read-only at /mnt/source
# (rhinstaller/anaconda image.py: isys.mount(dev, "/mnt/source", readOnly=1)) and the
# loader uses /mnt/stage2; later anacondas use /mnt/install/source and
# /run/install/repo. With a `url` install the CD may not be mounted at all, so
# failing those, mount every CD and labelled device read-only until one holds
# /hvseed/hvseed-firstboot.
find_media() {
    for d in ${HVSEED_MEDIA_DIRS:-/mnt/source /mnt/stage2 /mnt/install/source /run/install/repo}; do
        if [ -f "$d/hvseed/hvseed-firstboot" ]; then
            echo "$d/hvseed"
            return 0
        fi
    done
    mnt="$tmp/hvseed-media"
    mkdir -p "$mnt" || return 1
    for dev in ${HVSEED_MEDIA_DEVICES:-/dev/cdrom /dev/sr0 /dev/sr1 /dev/scd0 /dev/scd1 /dev/hdc /dev/hdd /dev/disk/by-label/*}; do
        [ -b "$dev" ] || continue
        mount -o ro "$dev" "$mnt" 2>/dev/null || continue
        if [ -f "$mnt/hvseed/hvseed-firstboot" ]; then
            echo "$mnt/hvseed"
            return 0
        fi
        umount "$mnt" 2>/dev/null
    done
    return 1
}
src=$(find_media) || fail "cannot find hvseed's files (/hvseed/hvseed-firstboot) on the install CD"
fetch() {
    cp "$src/$1" "$2"
}
{% else %}
base={{ media.base|shell }}
# The EL6 installer is Python (anaconda) and may lack curl/wget; the installed
# @core has curl. Try each, then Python 2's urllib2.
fetch() {
    rm -f "$2"
    curl -fsS -o "$2" "$base/$1" 2>/dev/null && return 0
    wget -q -O "$2" "$base/$1" 2>/dev/null && return 0
    python -c 'import sys, urllib2; d = urllib2.urlopen(sys.argv[1]).read(); open(sys.argv[2], "wb").write(d)' "$base/$1" "$2"
}
{% endif %}

mkdir -p "$sysimage/usr/sbin" || fail "cannot create $sysimage/usr/sbin"
fetch hvseed-firstboot "$sysimage/usr/sbin/hvseed-firstboot" && [ -s "$sysimage/usr/sbin/hvseed-firstboot" ] ||
    fail "cannot copy the first-boot agent (hvseed-firstboot) from the install media"
chmod 0755 "$sysimage/usr/sbin/hvseed-firstboot" || fail "cannot chmod the first-boot agent"
{% if fleet %}

umask 077
mkdir -p "$sysimage/etc/hvseed" && chmod 0700 "$sysimage/etc/hvseed" || fail "cannot create $sysimage/etc/hvseed"
fetch "hosts/$fqdn/plan.json" "$sysimage/etc/hvseed/plan.json" && [ -s "$sysimage/etc/hvseed/plan.json" ] ||
    fail "cannot copy hosts/$fqdn/plan.json from the install media"
chmod 0600 "$sysimage/etc/hvseed/plan.json" || fail "cannot chmod the plan"
fetch "hosts/$fqdn/authorized_keys" "$tmp/hvseed-authorized_keys" ||
    fail "cannot copy hosts/$fqdn/authorized_keys from the install media"
if [ -s "$tmp/hvseed-authorized_keys" ]; then
    mkdir -p "$sysimage/root/.ssh" && chmod 0700 "$sysimage/root/.ssh" &&
        cp "$tmp/hvseed-authorized_keys" "$sysimage/root/.ssh/authorized_keys" &&
        chmod 0600 "$sysimage/root/.ssh/authorized_keys" ||
        fail "cannot install /root/.ssh/authorized_keys"
fi
{% endif %}
say "hvseed: $fqdn: first-boot agent in place"
