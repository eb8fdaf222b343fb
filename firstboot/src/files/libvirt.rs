//! libvirt's configuration: `libvirtd.conf` and `qemu.conf` (every target), and the
//! places a distribution keeps libvirtd's `--listen` flag: `/etc/sysconfig/libvirtd`
//! (EL), `/etc/default/libvirt-bin` and precise's upstart job, `/etc/default/libvirtd`
//! (Debian and Ubuntu on systemd); and the clients' `libvirt.conf`.

use crate::edit::{Lines, Style};

/// `old` with each of `keys` set (spelled in `style`), every other line as it was.
fn set_keys(old: &str, style: Style, keys: &[(&str, &str)]) -> String {
    let mut l = Lines::parse(old);
    for (k, v) in keys {
        l.set(style, k, v);
    }
    l.text()
}

/// `/etc/libvirt/libvirtd.conf`: the guide's five keys (policy 1, incl. `mdns_adv`).
pub fn libvirtd_conf(old: &str) -> String {
    set_keys(
        old,
        Style::Spaced,
        &[
            ("listen_tls", "0"),
            ("listen_tcp", "1"),
            ("tcp_port", "\"16509\""),
            ("auth_tcp", "\"none\""),
            ("mdns_adv", "0"),
        ],
    )
}

/// `/etc/libvirt/qemu.conf`: VNC on all addresses (policy 3).
pub fn qemu_conf(old: &str) -> String {
    set_keys(old, Style::Spaced, &[("vnc_listen", "\"0.0.0.0\"")])
}

/// el6 `/etc/sysconfig/libvirtd` (policy 2).
pub fn sysconfig_libvirtd(old: &str) -> String {
    set_keys(old, Style::Tight, &[("LIBVIRTD_ARGS", "\"--listen\"")])
}

/// precise `/etc/default/libvirt-bin` (policy 2).
pub fn default_libvirt_bin(old: &str) -> String {
    set_keys(old, Style::Tight, &[("libvirtd_opts", "\"-d -l\"")])
}

/// `/etc/default/libvirtd`, read by libvirtd.service (`EnvironmentFile=`) on Debian 12
/// and Ubuntu ≥ 22.04: libvirtd listens on TCP itself; its sockets are masked, because
/// a socket-activated libvirtd refuses `--listen` (modern-targets, "libvirt on systemd
/// distros").
pub fn default_libvirtd(old: &str) -> String {
    set_keys(old, Style::Tight, &[("LIBVIRTD_ARGS", "\"--listen\"")])
}

/// `/etc/libvirt/libvirt.conf`: the clients (`virsh`, the CloudStack agent) talk to the
/// monolithic libvirtd, not to the modular daemons (`remote_mode="legacy"`, the 4.20
/// guide).
pub fn libvirt_conf(old: &str) -> String {
    set_keys(old, Style::Spaced, &[("remote_mode", "\"legacy\"")])
}

/// precise `/etc/init/libvirt-bin.conf`: its `exec /usr/sbin/libvirtd $libvirtd_opts`
/// takes the options from the job's own `env libvirtd_opts="-d"` (the pre-start script
/// that sources /etc/default/libvirt-bin is another shell), so the exec line itself
/// gets `-l` unless it already listens — what setup-agent does too.
pub fn upstart_libvirt_bin(old: &str) -> String {
    let mut l = Lines::parse(old);
    for line in &mut l.lines {
        let t = line.trim_start();
        if !t.starts_with("exec /usr/sbin/libvirtd") {
            continue;
        }
        let words: Vec<&str> = t.split_whitespace().collect();
        let listens = words.iter().any(|w| {
            *w == "--listen" || (w.starts_with('-') && !w.starts_with("--") && w.contains('l'))
        });
        if !listens {
            line.push_str(" -l");
        }
    }
    l.text()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstart_exec_line_that_listens_is_left_alone() {
        let old = "exec /usr/sbin/libvirtd -d -l\n";
        assert_eq!(upstart_libvirt_bin(old), old);
        let old = "  exec /usr/sbin/libvirtd $libvirtd_opts\n";
        assert_eq!(
            upstart_libvirt_bin(old),
            "  exec /usr/sbin/libvirtd $libvirtd_opts -l\n"
        );
    }
}
