{#- The autoinstall body's late command (sh -c in subiquity's live system; the new
    system is mounted at $TARGET_MOUNT_POINT, /target). Context: cluster, host, media. -#}
# hvseed: put the first-boot agent, this host's plan and SSH keys into the new system
# and run the agent's offline step. The agent is static, so it runs here in the
# installer. Subiquity logs a late command's output without showing it, so messages
# also go to the console; a failure stops the install instead of rebooting.
# HVSEED_* variables exist only so tests can run this against a fake tree.
target=${HVSEED_TARGET:-${TARGET_MOUNT_POINT:-/target}}
console=${HVSEED_CONSOLE:-/dev/console}
tmp=${HVSEED_TMP:-/tmp}
fqdn={{ host.fqdn|shell }}

say() {
    printf '%s\n' "$*" >> "$console" 2>/dev/null
    printf '%s\n' "$*" >&2
}

fail() {
    say "hvseed: ERROR: $*"
    say "hvseed: $fqdn is NOT set up for CloudStack; fix the cause and install it again."
    exit 1
}

{% if media.kind == "cdrom" %}
# casper mounts the install medium at /cdrom.
src=${HVSEED_MEDIA:-/cdrom/hvseed}
[ -f "$src/hvseed-firstboot" ] || fail "cannot find hvseed's files ($src/hvseed-firstboot) on the install medium"
fetch() {
    cp "$src/$1" "$2"
}
{% else %}
base={{ media.base|shell }}
# The live system has python3; curl and wget are used when present.
fetch() {
    rm -f "$2"
    if command -v curl >/dev/null 2>&1; then
        curl -fsS -o "$2" "$base/$1"
    elif command -v wget >/dev/null 2>&1; then
        wget -q -O "$2" "$base/$1"
    else
        python3 -c 'import shutil, sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=60) as r, open(sys.argv[2], "wb") as f:
    shutil.copyfileobj(r, f)' "$base/$1" "$2"
    fi
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
