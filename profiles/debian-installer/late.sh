{#- preseed/late_command's script (busybox sh in d-i; the new system is at /target).
    Context: cluster, fleet, media. -#}
# hvseed: put the first-boot agent, the host's plan and ssh keys into /target and run
# the agent's offline step. The agent is static, so it runs here in d-i.
# HVSEED_* variables exist only so tests can run this against a fake tree.
target=${HVSEED_TARGET:-/target}
console=${HVSEED_CONSOLE:-/dev/console}
tmp=${HVSEED_TMP:-/tmp}

say() {
    printf '%s\n' "$*" >> "$console" 2>/dev/null
    printf '%s\n' "$*" >&2
}

# A host must never come up silently unconfigured: a failing late_command makes d-i
# stop with an error instead of rebooting.
fail() {
    say "hvseed: ERROR: $*"
    say "hvseed: this host is NOT set up for CloudStack; fix the cause and install it again."
    exit 1
}

fqdn=$(cat "$tmp/hvseed-host" 2>/dev/null)
[ -n "$fqdn" ] || fail "$tmp/hvseed-host is missing: early_command did not identify this host"

{% if media.kind == "cdrom" %}
# d-i mounts the install CD at /cdrom (cdrom-detect); failing that, mount every CD
# and labelled device read-only until one holds /hvseed/hvseed-firstboot.
find_media() {
    for d in ${HVSEED_MEDIA_DIRS:-/cdrom /media/cdrom}; do
        if [ -f "$d/hvseed/hvseed-firstboot" ]; then
            echo "$d/hvseed"
            return 0
        fi
    done
    mnt="$tmp/hvseed-media"
    mkdir -p "$mnt" || return 1
    for dev in ${HVSEED_MEDIA_DEVICES:-/dev/sr0 /dev/sr1 /dev/cdrom /dev/scd0 /dev/disk/by-label/*}; do
        [ -b "$dev" ] || continue
        mount -t iso9660 -o ro "$dev" "$mnt" 2>/dev/null || continue
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
fetch() {
    rm -f "$2"
    wget -q -O "$2" "$base/$1"
}
{% endif %}

mkdir -p "$target/usr/sbin" || fail "cannot create $target/usr/sbin"
fetch hvseed-firstboot "$target/usr/sbin/hvseed-firstboot" && [ -s "$target/usr/sbin/hvseed-firstboot" ] ||
    fail "cannot copy the first-boot agent (hvseed-firstboot) from the install media"
chmod 0755 "$target/usr/sbin/hvseed-firstboot" || fail "cannot chmod the first-boot agent"
umask 077
mkdir -p "$target/etc/hvseed" && chmod 0700 "$target/etc/hvseed" || fail "cannot create $target/etc/hvseed"
fetch "hosts/$fqdn/plan.json" "$target/etc/hvseed/plan.json" && [ -s "$target/etc/hvseed/plan.json" ] ||
    fail "cannot copy hosts/$fqdn/plan.json from the install media"
chmod 0600 "$target/etc/hvseed/plan.json" || fail "cannot chmod the plan"
fetch "hosts/$fqdn/authorized_keys" "$tmp/hvseed-authorized_keys" ||
    fail "cannot copy hosts/$fqdn/authorized_keys from the install media"
if [ -s "$tmp/hvseed-authorized_keys" ]; then
    mkdir -p "$target/root/.ssh" && chmod 0700 "$target/root/.ssh" &&
        cp "$tmp/hvseed-authorized_keys" "$target/root/.ssh/authorized_keys" &&
        chmod 0600 "$target/root/.ssh/authorized_keys" ||
        fail "cannot install /root/.ssh/authorized_keys"
fi
"$target/usr/sbin/hvseed-firstboot" apply --plan "$target/etc/hvseed/plan.json" --root "$target" ||
    fail "the first-boot agent's offline step failed"
say "hvseed: $fqdn: handed over to the first-boot agent"
