//! Boot-menu edits: put hvseed's unattended entry on top of the installer's own menus
//! (isolinux, grub-legacy EFI `BOOTX64.conf`, GRUB2 `grub.cfg`) and make it the default
//! after a short timeout, leaving every original entry in place below it. The entries
//! themselves are the templates `iso/{isolinux,grub-legacy,grub2}/entry.*`.

use anyhow::{bail, Result};

/// The label of the entry hvseed adds (isolinux).
pub const LABEL: &str = "hvseed";
/// isolinux `timeout` is in tenths of a second.
pub const ISOLINUX_TIMEOUT: u32 = 50;
/// grub-legacy and GRUB2 `timeout` are in seconds.
pub const GRUB_TIMEOUT: u32 = 5;

/// What the new entry boots.
#[derive(Debug, Clone)]
pub struct UnattendedEntry {
    /// The menu text.
    pub title: String,
    /// Kernel arguments (checked by the inventory's kernel-argument rule), without
    /// `initrd=`.
    pub args: Vec<String>,
    /// Replace the original entry's initrd with this path (d-i: the initrd that carries
    /// the preseed); `None` keeps the original's.
    pub initrd: Option<String>,
}

impl UnattendedEntry {
    /// The entry as the boot-menu template `iso/<template>` writes it, booting
    /// `kernel` with `initrd`.
    fn render(&self, template: &str, kernel: &str, initrd: &str) -> String {
        self.render_with(template, kernel, initrd, ("linux", "initrd"))
    }

    /// [`Self::render`] with the GRUB commands that load them (`linux`/`initrd`, or
    /// `linuxefi`/`initrdefi` as EL's menus write them).
    fn render_with(
        &self,
        template: &str,
        kernel: &str,
        initrd: &str,
        (linux_cmd, initrd_cmd): (&str, &str),
    ) -> String {
        crate::bootmenu::render(
            template,
            minijinja::context! {
                label => LABEL,
                title => &self.title,
                kernel,
                initrd,
                linux_cmd,
                initrd_cmd,
                args => &self.args,
                timeout => GRUB_TIMEOUT,
            },
        )
    }
}

fn keyword(line: &str) -> (String, &str) {
    let t = line.trim_start();
    let end = t
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(t.len());
    (
        t[..end].to_ascii_lowercase(),
        t[end..].trim_start_matches([' ', '\t', '=']).trim(),
    )
}

/// isolinux: the stanza an installer boots by default, as (kernel, initrd, other append
/// words). Prefers the `menu default` stanza, then the first with a kernel and an initrd.
fn isolinux_install_stanza(cfg: &str) -> Option<(String, String)> {
    struct Stanza {
        kernel: Option<String>,
        initrd: Option<String>,
        is_default: bool,
    }
    let mut stanzas: Vec<Stanza> = Vec::new();
    for line in cfg.lines() {
        let (kw, rest) = keyword(line);
        match kw.as_str() {
            "label" => stanzas.push(Stanza {
                kernel: None,
                initrd: None,
                is_default: false,
            }),
            "kernel" | "linux" => {
                if let Some(s) = stanzas.last_mut() {
                    s.kernel = rest.split_whitespace().next().map(str::to_string);
                }
            }
            "append" => {
                if let Some(s) = stanzas.last_mut() {
                    s.initrd = rest
                        .split_whitespace()
                        .find_map(|w| w.strip_prefix("initrd="))
                        .map(str::to_string);
                }
            }
            "menu" if rest.trim().eq_ignore_ascii_case("default") => {
                if let Some(s) = stanzas.last_mut() {
                    s.is_default = true;
                }
            }
            _ => {}
        }
    }
    let usable = |s: &&Stanza| s.kernel.is_some() && s.initrd.is_some();
    let pick = stanzas
        .iter()
        .filter(usable)
        .find(|s| s.is_default)
        .or_else(|| stanzas.iter().find(usable))?;
    Some((pick.kernel.clone()?, pick.initrd.clone()?))
}

/// Edits one isolinux config file that holds the installer's `label` stanzas:
/// our stanza goes before the first `label` with `menu default`; other stanzas lose
/// `menu default`; a `default <label>` points at ours; `timeout` becomes short (added
/// when `set_timeout` and absent). `ontimeout` is dropped so the timeout boots ours.
pub fn isolinux(cfg: &str, entry: &UnattendedEntry, set_timeout: bool) -> Result<String> {
    let Some((kernel, orig_initrd)) = isolinux_install_stanza(cfg) else {
        bail!("found no `label` stanza with a `kernel` and an `append initrd=` line to copy");
    };
    if cfg
        .lines()
        .any(|l| keyword(l) == ("label".to_string(), LABEL))
    {
        bail!("it already has a `label {LABEL}` entry (was this ISO made by hvseed already?)");
    }
    let initrd = entry.initrd.clone().unwrap_or(orig_initrd);
    let stanza = entry.render("isolinux/entry.cfg", &kernel, &initrd);

    let mut out = String::with_capacity(cfg.len() + stanza.len() + 128);
    let mut inserted = false;
    let mut saw_timeout = false;
    for line in cfg.lines() {
        let (kw, rest) = keyword(line);
        match kw.as_str() {
            "label" if !inserted => {
                if set_timeout && !saw_timeout {
                    out.push_str(&format!("timeout {ISOLINUX_TIMEOUT}\n"));
                    saw_timeout = true;
                }
                out.push_str(&stanza);
                inserted = true;
                out.push_str(line);
            }
            "timeout" => {
                saw_timeout = true;
                out.push_str(&format!("timeout {ISOLINUX_TIMEOUT}"));
            }
            "ontimeout" => out.push_str(&format!(
                "# {}  (hvseed: the timeout boots {LABEL})",
                line.trim()
            )),
            // `default vesamenu.c32` starts the menu and stays; `default <label>` names
            // the entry booted on timeout, which must be ours.
            "default" if !rest.to_ascii_lowercase().ends_with(".c32") => {
                out.push_str(&format!("default {LABEL}"))
            }
            "menu" if rest.trim().eq_ignore_ascii_case("default") => out.push_str(&format!(
                "  # menu default  (hvseed: {LABEL} is the default)"
            )),
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    if !inserted {
        bail!("found no `label` line to put the new entry before");
    }
    Ok(out)
}

/// An isolinux file that starts gfxboot (Ubuntu's `isolinux.cfg`): gfxboot's theme
/// waits on its own screen and ignores `menu default`, so the menu is handed to
/// vesamenu.c32 (shipped beside it) and given a short timeout.
pub fn isolinux_gfxboot_top(cfg: &str, ui_module: &str) -> String {
    let mut out = String::with_capacity(cfg.len() + 64);
    let mut saw_timeout = false;
    for line in cfg.lines() {
        let (kw, rest) = keyword(line);
        match kw.as_str() {
            "ui" if rest.to_ascii_lowercase().starts_with("gfxboot") => {
                out.push_str(&format!(
                    "# {}  (hvseed: gfxboot waits for a key; the plain menu times out)\nui {ui_module}",
                    line.trim()
                ));
            }
            "timeout" => {
                saw_timeout = true;
                out.push_str(&format!("timeout {ISOLINUX_TIMEOUT}"));
            }
            "default" if !rest.to_ascii_lowercase().ends_with(".c32") => {
                out.push_str(&format!("default {LABEL}"))
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    if !saw_timeout {
        out.push_str(&format!("timeout {ISOLINUX_TIMEOUT}\n"));
    }
    out
}

/// How a GRUB menu's first entry is found, and the kernel and initrd it boots.
struct FirstEntry {
    /// The keyword that starts an entry.
    start: &'static str,
    /// The keywords that end the first entry once its kernel was seen.
    ends: &'static [&'static str],
    /// The keywords whose first word is the kernel, the initrd.
    kernel: &'static [&'static str],
    initrd: &'static [&'static str],
    /// The error when the first entry lacks either.
    missing: &'static str,
}

impl FirstEntry {
    /// Our stanza from `template`, booting the first entry's kernel and its initrd
    /// (or `entry`'s own initrd).
    fn our_stanza(&self, menu: &str, entry: &UnattendedEntry, template: &str) -> Result<String> {
        let (mut kernel, mut initrd) = (None, None);
        let (mut linux_cmd, mut initrd_cmd) = ("linux".to_string(), "initrd".to_string());
        let mut in_first = false;
        for line in menu.lines() {
            let (kw, rest) = keyword(line);
            let kw = kw.as_str();
            let word = || rest.split_whitespace().next().map(str::to_string);
            if kw == self.start && kernel.is_none() {
                in_first = true;
            } else if self.ends.contains(&kw) && in_first && kernel.is_some() {
                break;
            } else if in_first && self.kernel.contains(&kw) {
                kernel = word();
                linux_cmd = kw.to_string();
            } else if in_first && self.initrd.contains(&kw) {
                initrd = word();
                initrd_cmd = kw.to_string();
            }
        }
        let (Some(kernel), Some(orig_initrd)) = (kernel, initrd) else {
            bail!("{}", self.missing);
        };
        let initrd = entry.initrd.clone().unwrap_or(orig_initrd);
        Ok(entry.render_with(template, &kernel, &initrd, (&linux_cmd, &initrd_cmd)))
    }
}

/// grub-legacy (`EFI/BOOT/BOOTX64.conf` of EL6): our `title` stanza first, `default=0`,
/// a short `timeout`.
pub fn grub_legacy(conf: &str, entry: &UnattendedEntry) -> Result<String> {
    let first = FirstEntry {
        start: "title",
        ends: &["title"],
        kernel: &["kernel"],
        initrd: &["initrd"],
        missing: "its first `title` stanza has no `kernel` and `initrd` lines to copy",
    };
    let stanza = first.our_stanza(conf, entry, "grub-legacy/entry.conf")?;

    let mut out = String::with_capacity(conf.len() + stanza.len() + 64);
    let mut head = String::new();
    let (mut saw_default, mut saw_timeout) = (false, false);
    let mut inserted = false;
    for line in conf.lines() {
        let (kw, _) = keyword(line);
        match kw.as_str() {
            "default" if !inserted => {
                saw_default = true;
                out.push_str("default=0");
            }
            "timeout" if !inserted => {
                saw_timeout = true;
                out.push_str(&format!("timeout {GRUB_TIMEOUT}"));
            }
            "title" if !inserted => {
                if !saw_default {
                    head.push_str("default=0\n");
                }
                if !saw_timeout {
                    head.push_str(&format!("timeout {GRUB_TIMEOUT}\n"));
                }
                out.push_str(&stanza);
                out.push_str(line);
                inserted = true;
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    if !inserted {
        bail!("found no `title` line");
    }
    Ok(head + &out)
}

/// A kernel argument as one word of a GRUB2 `linux` line: GRUB's script reads `\` as
/// an escape (`\x20` would reach the kernel as `x20`), so a word with characters other
/// than letters, digits and `- _ . , : = / + @ % ~` goes in single quotes, inside which
/// GRUB keeps everything. (Arguments never hold a `'`: the inventory's rule refuses it
/// and labels are escaped as `\xNN`.)
fn grub2_word(arg: &str) -> String {
    if arg
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_.,:=/+@%~".contains(c))
    {
        arg.to_string()
    } else {
        debug_assert!(!arg.contains('\''), "{arg}");
        format!("'{arg}'")
    }
}

/// GRUB2 (`boot/grub/grub.cfg`): `set default=0`, `set timeout=5` and our `menuentry`
/// before the first `menuentry`; earlier `set default`/`set timeout` lines are commented
/// out so they cannot point elsewhere.
pub fn grub2(cfg: &str, entry: &UnattendedEntry) -> Result<String> {
    let first = FirstEntry {
        start: "menuentry",
        ends: &["menuentry", "}"],
        kernel: &["linux", "linuxefi"],
        initrd: &["initrd", "initrdefi"],
        missing: "its first `menuentry` has no `linux` and `initrd` lines to copy",
    };
    let entry = UnattendedEntry {
        args: entry.args.iter().map(|a| grub2_word(a)).collect(),
        ..entry.clone()
    };
    let stanza = first.our_stanza(cfg, &entry, "grub2/entry.cfg")?;
    let mut out = String::with_capacity(cfg.len() + stanza.len() + 64);
    let mut inserted = false;
    for line in cfg.lines() {
        let t = line.trim_start();
        let (kw, _) = keyword(line);
        if kw == "set" && (t.starts_with("set default") || t.starts_with("set timeout")) {
            out.push_str(&format!(
                "# {}  (hvseed: the first entry is the default)",
                t
            ));
        } else if kw == "menuentry" && !inserted {
            out.push_str(&stanza);
            out.push_str(line);
            inserted = true;
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if !inserted {
        bail!("found no `menuentry`");
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(initrd: Option<&str>) -> UnattendedEntry {
        UnattendedEntry {
            title: "Unattended install of cluster lab1 (hvseed)".into(),
            args: vec![
                "ks=cdrom:/hvseed/fleet/ks.cfg".into(),
                "console=ttyS0".into(),
            ],
            initrd: initrd.map(str::to_string),
        }
    }

    const CENTOS: &str = "default vesamenu.c32\n#prompt 1\ntimeout 600\n\nlabel linux\n  menu label ^Install\n  menu default\n  kernel vmlinuz\n  append initrd=initrd.img\nlabel rescue\n  kernel vmlinuz\n  append initrd=initrd.img rescue\n";

    #[test]
    fn isolinux_entry_goes_first_and_is_the_only_default() {
        let out = isolinux(CENTOS, &entry(None), true).unwrap();
        let ours = out.find("label hvseed").unwrap();
        assert!(ours < out.find("label linux").unwrap(), "{out}");
        assert_eq!(out.matches("\n  menu default\n").count(), 1, "{out}");
        assert!(out.contains(
            "  kernel vmlinuz\n  append initrd=initrd.img ks=cdrom:/hvseed/fleet/ks.cfg console=ttyS0\n"
        ));
        assert!(
            out.contains("\ntimeout 50\n") && !out.contains("600"),
            "{out}"
        );
        assert!(out.contains("append initrd=initrd.img rescue"), "{out}");
        assert!(out.starts_with("default vesamenu.c32\n"));
    }

    #[test]
    fn isolinux_refuses_a_second_run() {
        let once = isolinux(CENTOS, &entry(None), true).unwrap();
        let err = isolinux(&once, &entry(None), true).unwrap_err().to_string();
        assert!(err.contains("already"), "{err}");
    }

    #[test]
    fn isolinux_default_label_points_at_ours() {
        let cfg = "default install\nlabel install\n  kernel /install/vmlinuz\n  append  file=/cdrom/x vga=788 initrd=/install/initrd.gz quiet --\n";
        let out = isolinux(cfg, &entry(Some("/hvseed/initrd.gz")), false).unwrap();
        assert!(out.starts_with("default hvseed\n"), "{out}");
        assert!(out.contains("append initrd=/hvseed/initrd.gz ks="), "{out}");
        assert!(!out.contains("timeout"), "{out}");
    }

    #[test]
    fn ubuntu_top_drops_gfxboot_and_sets_a_timeout() {
        let cfg = "# D-I config version 2.0\ninclude menu.cfg\ndefault vesamenu.c32\nprompt 0\ntimeout 0\nui gfxboot bootlogo\n";
        let out = isolinux_gfxboot_top(cfg, "vesamenu.c32");
        assert!(out.contains("\ntimeout 50\n"), "{out}");
        assert!(out.contains("\nui vesamenu.c32\n"), "{out}");
        assert!(out.contains("# ui gfxboot bootlogo"), "{out}");
    }

    #[test]
    fn grub_legacy_stanza_is_entry_zero() {
        let conf = "#debug --graphics\ndefault=1\nsplashimage=/EFI/BOOT/splash.xpm.gz\ntimeout 60\nhiddenmenu\ntitle CentOS 6.3\n\tkernel /images/pxeboot/vmlinuz\n\tinitrd /images/pxeboot/initrd.img\ntitle rescue\n\tkernel /images/pxeboot/vmlinuz rescue askmethod\n\tinitrd /images/pxeboot/initrd.img\n";
        let out = grub_legacy(conf, &entry(None)).unwrap();
        assert!(
            out.contains("\ndefault=0\n") && out.contains("\ntimeout 5\n"),
            "{out}"
        );
        let ours = out.find("title Unattended").unwrap();
        assert!(ours < out.find("title CentOS 6.3").unwrap());
        assert!(out.contains("\tkernel /images/pxeboot/vmlinuz ks=cdrom:/hvseed/fleet/ks.cfg console=ttyS0\n\tinitrd /images/pxeboot/initrd.img\n"), "{out}");
        assert_eq!(out.matches("title ").count(), 3);
    }

    #[test]
    fn grub_legacy_without_default_gets_one() {
        let conf = "title A\n\tkernel /k\n\tinitrd /i\n";
        let out = grub_legacy(conf, &entry(None)).unwrap();
        assert!(out.starts_with("default=0\ntimeout 5\n"), "{out}");
    }

    #[test]
    fn grub2_quotes_what_its_script_would_unescape() {
        let cfg = "menuentry 'Install Rocky Linux 9.5' --class fedora {\n\tlinuxefi /images/pxeboot/vmlinuz inst.stage2=hd:LABEL=Rocky-9-5-x86_64-dvd quiet\n\tinitrdefi /images/pxeboot/initrd.img\n}\n";
        let e = UnattendedEntry {
            title: "t".into(),
            args: vec![
                "inst.ks=hd:LABEL=EL\\x209:/hvseed/fleet/ks.cfg".into(),
                "console=ttyS0,115200n8".into(),
            ],
            initrd: None,
        };
        let out = grub2(cfg, &e).unwrap();
        assert!(out.contains("\tlinuxefi\t/images/pxeboot/vmlinuz 'inst.ks=hd:LABEL=EL\\x209:/hvseed/fleet/ks.cfg' console=ttyS0,115200n8\n\tinitrdefi\t/images/pxeboot/initrd.img\n"), "{out}");
    }

    #[test]
    fn grub2_entry_first_and_defaults_neutralised() {
        let cfg = "set default=2\nset timeout=-1\nmenuentry \"Install Ubuntu Server\" {\n\tset gfxpayload=keep\n\tlinux\t/install/vmlinuz  file=/cdrom/preseed/ubuntu-server.seed quiet --\n\tinitrd\t/install/initrd.gz\n}\n";
        let out = grub2(cfg, &entry(Some("/hvseed/initrd.gz"))).unwrap();
        assert!(out.contains("# set default=2"), "{out}");
        assert!(out.contains("# set timeout=-1"), "{out}");
        assert!(out.contains("set default=0\nset timeout=5\nmenuentry \"Unattended install of cluster lab1 (hvseed)\" {\n\tset gfxpayload=keep\n\tlinux\t/install/vmlinuz ks=cdrom:/hvseed/fleet/ks.cfg console=ttyS0\n\tinitrd\t/hvseed/initrd.gz\n}\nmenuentry \"Install Ubuntu Server\""), "{out}");
    }
}
