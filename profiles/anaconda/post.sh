{#- %post (sh, chrooted into the new system): per host, write the plan and ssh keys;
    then run the agent's offline step. Context: fleet, host, plan_json,
    authorized_keys (per-host only). -#}
# hvseed: hand the host over to the first-boot agent.
# HVSEED_ROOT and HVSEED_CONSOLE exist only so tests can run this against a fake tree.
root=${HVSEED_ROOT:-}
console=${HVSEED_CONSOLE:-/dev/console}

say() {
    printf '%s\n' "$*" >> "$console" 2>/dev/null
    printf '%s\n' "$*" >&2
}

fail() {
    say "hvseed: ERROR: $*"
    say "hvseed: this host is NOT set up for CloudStack; see /root/hvseed-post.log and install it again."
    exit 1
}

{% if not fleet %}
umask 077
mkdir -p "$root/etc/hvseed" && chmod 0700 "$root/etc/hvseed" || fail "cannot create /etc/hvseed"
{{ plan_json|heredoc('"$root/etc/hvseed/plan.json"') }}
[ -s "$root/etc/hvseed/plan.json" ] || fail "cannot write /etc/hvseed/plan.json"
chmod 0600 "$root/etc/hvseed/plan.json" || fail "cannot chmod /etc/hvseed/plan.json"
{% if authorized_keys %}
mkdir -p "$root/root/.ssh" && chmod 0700 "$root/root/.ssh" || fail "cannot create /root/.ssh"
{{ authorized_keys|heredoc('"$root/root/.ssh/authorized_keys"') }}
[ -s "$root/root/.ssh/authorized_keys" ] || fail "cannot write /root/.ssh/authorized_keys"
chmod 0600 "$root/root/.ssh/authorized_keys" || fail "cannot chmod /root/.ssh/authorized_keys"
{% endif %}

{% endif %}
[ -x "$root/usr/sbin/hvseed-firstboot" ] || fail "/usr/sbin/hvseed-firstboot is missing"
[ -s "$root/etc/hvseed/plan.json" ] || fail "/etc/hvseed/plan.json is missing"
# Files written here get the SELinux labels of their place (sshd checks them).
if [ -z "$root" ] && command -v restorecon > /dev/null 2>&1; then
    restorecon -R /etc/hvseed /root/.ssh 2>/dev/null || true
fi
"$root/usr/sbin/hvseed-firstboot" apply --plan "$root/etc/hvseed/plan.json" --root "${root:-/}" ||
    fail "the first-boot agent's offline step failed"
say "hvseed: the first-boot agent's offline step is done; it finishes at first boot"
