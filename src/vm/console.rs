//! The serial console watcher: which lines mean which milestone, and which end the run
//! early. Pure text in, events out; the run loop feeds it the log as it grows.

use std::fmt;

/// How far a boot got, in order. `--until` names one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Milestone {
    /// The installer's kernel started with hvseed's arguments (its `Command line:`).
    Installer,
    /// hvseed's early script picked the host: `hvseed: installing <fqdn>`.
    Installing,
    /// hvseed's late script handed the host over to the agent and the installer
    /// rebooted.
    Installed,
    /// The first-boot agent reported `ready` (console or HTTP report).
    Ready,
}

impl Milestone {
    pub const ALL: [Milestone; 4] = [
        Milestone::Installer,
        Milestone::Installing,
        Milestone::Installed,
        Milestone::Ready,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Milestone::Installer => "installer",
            Milestone::Installing => "installing",
            Milestone::Installed => "installed",
            Milestone::Ready => "ready",
        }
    }
}

impl std::str::FromStr for Milestone {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Milestone::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| "one of installer, installing, installed, ready".to_string())
    }
}

impl fmt::Display for Milestone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Console texts that end a run early: the boot cannot reach any later milestone.
/// Each is a boot that went wrong somewhere hvseed's media are involved.
pub const FAIL_PATTERNS: &[&str] = &[
    // The firmware found nothing to boot.
    "No bootable device",
    "No bootable option or device was found",
    // OVMF with nothing left to boot falls to its shell or its setup menu.
    "Shell> ",
    UI_APP,
    // A boot loader that fell to its prompt or could not load its pieces.
    "grub> ",
    "Failed to load ldlinux.c32",
    "error: no such device",
    "error: file `/images",
    "error: file `/install",
    "error: file `/hvseed",
    "error: you need to load the kernel first",
    // The installer could not read hvseed's answers.
    "Failed to process the preconfiguration file",
    // hvseed's scripts: an error, or a machine that is not a host of the cluster.
    "hvseed: ERROR",
    NOT_A_HOST,
    "Kernel panic",
    // The agent's report says the host is not ready.
    "hvseed-firstboot: report written to /var/lib/hvseed/report.json: Failed",
];

/// The firmware found nothing (more) to boot.
pub const NOTHING_TO_BOOT: &[&str] = &[
    "No bootable device",
    "No bootable option or device was found",
    "Shell> ",
    UI_APP,
];

/// OVMF (edk2's 4 MiB builds) with no boot option left starts its setup menu.
const UI_APP: &str = "\"UiApp\" from Fv";

/// A kernel starting (any kernel: for a stranger, none may).
const KERNEL: &str = "Linux version";

/// What hvseed's media say on a machine whose MAC is not in the inventory.
pub const NOT_A_HOST: &str = "is not a host of cluster";

/// What the watcher expects of this boot.
#[derive(Debug, Clone)]
pub struct Expect {
    pub fqdn: String,
    /// Arguments the installer's kernel command line must carry, each as a whole word
    /// (hvseed's boot entry or PXE file put them there).
    pub installer_args: Vec<String>,
    /// The guest boots with a MAC the inventory does not know (`--mac`): the media
    /// saying so is what they should do, not a failure; the run goes on until the
    /// firmware finds nothing more to boot (or the timeout), which shows that no
    /// installer started.
    pub stranger: bool,
}

/// One thing the console showed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Reached(Milestone),
    /// A [`FAIL_PATTERNS`] text, with the line it was on (printable).
    Failed {
        pattern: &'static str,
        line: String,
    },
    /// A stranger (see [`Expect::stranger`]): the firmware found nothing more to boot
    /// and no kernel started. What media should do with a machine they do not know.
    Refused {
        pattern: &'static str,
        line: String,
    },
}

/// Reads the console log as it grows; remembers what it has seen.
#[derive(Debug)]
pub struct Watcher {
    expect: Expect,
    /// Bytes of the log already looked at (whole lines only).
    done: usize,
    reached: Vec<Milestone>,
    /// The late script's hand-over line was seen: a restart after it is `installed`.
    handed_over: bool,
    failed: bool,
}

/// Lines the late scripts print when the host is handed over to the agent.
const HANDED_OVER: &[&str] = &[
    // debian-installer targets (late.sh)
    ": handed over to the first-boot agent",
    // centos6 (post-nochroot.sh, post.sh)
    ": first-boot agent in place",
    "the first-boot agent's offline step is done",
];

/// A kernel that restarts the machine (after the installer finished).
const RESTART: &[&str] = &["reboot: Restarting system", "Restarting system."];

impl Watcher {
    pub fn new(expect: Expect) -> Watcher {
        Watcher {
            expect,
            done: 0,
            reached: Vec::new(),
            handed_over: false,
            failed: false,
        }
    }

    /// Milestones reached so far, in the order they were reached.
    pub fn reached(&self) -> &[Milestone] {
        &self.reached
    }

    /// Looks at the complete lines of `log` (the whole log so far) not seen yet.
    pub fn feed(&mut self, log: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        if self.failed {
            return events;
        }
        let new = &log[self.done.min(log.len())..];
        // d-i draws its screens with `\r` and escape sequences: a line ends at either.
        // A prompt (`grub> `) waits at the end of an unfinished line: failures are
        // looked for there too, milestones only on finished lines.
        let end = new
            .iter()
            .rposition(|&b| b == b'\n' || b == b'\r')
            .map_or(0, |e| e + 1);
        let chunk = String::from_utf8_lossy(&new[..end]).into_owned();
        let tail = printable(&String::from_utf8_lossy(&new[end..]));
        self.done += end;
        let finished = chunk.split(['\n', '\r']).map(|l| (printable(l), true));
        for (raw, whole) in finished.chain([(tail, false)]) {
            if let Some(event) = self.failure(&raw) {
                self.failed = true;
                events.push(event);
                return events;
            }
            if !whole || raw.trim().is_empty() {
                continue;
            }
            let line = raw;
            for m in self.line_milestones(line.trim_end()) {
                if !self.reached.contains(&m) {
                    self.reached.push(m);
                    events.push(Event::Reached(m));
                }
            }
        }
        events
    }

    /// The failure `raw` (a console line) shows, if any: for a stranger, a kernel
    /// that starts or firmware with nothing left to boot; for any machine, a
    /// [`FAIL_PATTERNS`] text (but not [`NOT_A_HOST`] for a stranger: media should say
    /// that to one).
    fn failure(&self, raw: &str) -> Option<Event> {
        let stranger = self.expect.stranger;
        let line = || raw.trim_end().to_string();
        if stranger && raw.contains(KERNEL) {
            return Some(Event::Failed {
                pattern: KERNEL,
                line: line(),
            });
        }
        if stranger {
            if let Some(p) = NOTHING_TO_BOOT.iter().find(|p| raw.contains(**p)) {
                return Some(Event::Refused {
                    pattern: p,
                    line: line(),
                });
            }
        }
        FAIL_PATTERNS
            .iter()
            .filter(|p| !(stranger && **p == NOT_A_HOST))
            .find(|p| raw.contains(**p))
            .map(|p| Event::Failed {
                pattern: p,
                line: line(),
            })
    }

    /// Looks at the firmware's own log (SeaBIOS's debug port: what it shows on the
    /// screen, which the serial console does not get) for a firmware with nothing left
    /// to boot.
    pub fn firmware(&mut self, log: &[u8]) -> Option<Event> {
        if self.failed {
            return None;
        }
        let text = String::from_utf8_lossy(log);
        let p = NOTHING_TO_BOOT.iter().find(|p| text.contains(**p))?;
        self.failed = true;
        let line = format!("(firmware) {}", p.trim_end());
        Some(if self.expect.stranger {
            Event::Refused { pattern: p, line }
        } else {
            Event::Failed { pattern: p, line }
        })
    }

    /// The guest stopped of its own (QEMU exited cleanly under `-no-reboot`, which is
    /// how a reboot shows then): after the hand-over, that is `installed`.
    pub fn guest_stopped(&mut self) -> Option<Event> {
        if self.handed_over && !self.reached.contains(&Milestone::Installed) {
            self.reached.push(Milestone::Installed);
            return Some(Event::Reached(Milestone::Installed));
        }
        None
    }

    fn line_milestones(&mut self, line: &str) -> Vec<Milestone> {
        let mut out = Vec::new();
        if let Some(at) = line.find("Command line:") {
            let words: Vec<&str> = line[at + "Command line:".len()..]
                .split_ascii_whitespace()
                .collect();
            // No installer arguments: no installer is booted (`--boot disk`), and any
            // kernel's command line would match.
            if !self.expect.installer_args.is_empty()
                && self
                    .expect
                    .installer_args
                    .iter()
                    .all(|a| words.contains(&a.as_str()))
            {
                out.push(Milestone::Installer);
            }
        }
        if line.contains(&format!("hvseed: installing {}", self.expect.fqdn))
            && line
                .split(&format!("hvseed: installing {}", self.expect.fqdn))
                .nth(1)
                .is_some_and(|rest| {
                    !rest.starts_with(|c: char| c.is_alphanumeric() || c == '.' || c == '-')
                })
        {
            out.push(Milestone::Installing);
        }
        if HANDED_OVER.iter().any(|h| line.contains(h)) && line.contains(&self.expect.fqdn)
            || line.contains("the first-boot agent's offline step is done")
        {
            self.handed_over = true;
        }
        if self.handed_over && RESTART.iter().any(|r| line.contains(r)) {
            out.push(Milestone::Installed);
        }
        if line.contains("hvseed-firstboot: report written to /var/lib/hvseed/report.json: Ready") {
            out.push(Milestone::Ready);
        }
        out
    }
}

/// A console line without control characters and escape sequences (d-i's screen
/// drawing), for matching and for printing.
pub fn printable(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            // CSI: ESC [ params final-byte; other escapes: ESC + one character.
            if chars.peek() == Some(&'[') {
                chars.next();
                for d in chars.by_ref() {
                    if ('@'..='~').contains(&d) {
                        break;
                    }
                }
            } else if chars.next().is_some_and(|c| "()*+".contains(c)) {
                // A character set designation: ESC ( B.
                chars.next();
            }
            continue;
        }
        if !c.is_control() {
            out.push(c);
        }
    }
    out
}

/// The last `n` non-empty printable lines of a console log.
pub fn last_lines(log: &[u8], n: usize) -> Vec<String> {
    let text = String::from_utf8_lossy(log);
    let lines: Vec<String> = text
        .split(['\n', '\r'])
        .map(|l| printable(l).trim_end().to_string())
        .filter(|l| !l.trim().is_empty())
        .collect();
    lines[lines.len().saturating_sub(n)..].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watcher() -> Watcher {
        Watcher::new(Expect {
            fqdn: "kvm21.lab.example.org".into(),
            installer_args: vec![
                "auto=true".into(),
                "console=ttyS0,115200n8".into(),
                "BOOTIF=01-52-54-00-12-34-21".into(),
            ],
            stranger: false,
        })
    }

    /// `--boot disk` expects no installer: the installed system's own kernel line is
    /// not the `installer` milestone.
    #[test]
    fn a_disk_boot_has_no_installer_milestone() {
        let mut w = Watcher::new(Expect {
            fqdn: "kvm41.lab.example.org".into(),
            installer_args: vec![],
            stranger: false,
        });
        let log = b"[    0.000000] Command line: root=/dev/sda rw console=ttyS0 net.ifnames=0
            hvseed-firstboot: report written to /var/lib/hvseed/report.json: Ready
";
        assert_eq!(w.feed(log), vec![Event::Reached(Milestone::Ready)]);
    }

    #[test]
    fn milestones_in_order_from_real_console_shapes() {
        let mut w = watcher();
        // A partial line is not judged until it ends.
        let mut log = b"SeaBIOS (version 1.16)\r\n[    0.000000] Command line: auto=true console=ttyS0,115200n8 BOOTIF=01-52-54-00-12-34-2".to_vec();
        assert_eq!(w.feed(&log), vec![]);
        log.extend_from_slice(b"1\n");
        assert_eq!(w.feed(&log), vec![Event::Reached(Milestone::Installer)]);
        // d-i's screen drawing around the early script's line.
        log.extend_from_slice(
            b"\x1b[1;1H\x1b[37;44mhvseed: installing kvm21.lab.example.org\x1b[0m\r\n",
        );
        assert_eq!(w.feed(&log), vec![Event::Reached(Milestone::Installing)]);
        log.extend_from_slice(b"hvseed: kvm21.lab.example.org: handed over to the first-boot agent\n[  900.1] reboot: Restarting system\n");
        assert_eq!(w.feed(&log), vec![Event::Reached(Milestone::Installed)]);
        log.extend_from_slice(
            b"hvseed-firstboot: report written to /var/lib/hvseed/report.json: Ready\n",
        );
        assert_eq!(w.feed(&log), vec![Event::Reached(Milestone::Ready)]);
        assert_eq!(w.reached(), &Milestone::ALL);
    }

    #[test]
    fn another_hosts_name_or_missing_arguments_reach_nothing() {
        let mut w = watcher();
        let log = b"Command line: auto=true console=ttyS0,115200n8\nCommand line: auto=true console=ttyS0,115200n8 BOOTIF=01-52-54-00-12-34-211\nhvseed: installing kvm21.lab.example.org.evil\nhvseed: installing kvm211.lab.example.org\nreboot: Restarting system\n";
        assert_eq!(w.feed(log), vec![]);
        // A stop without the hand-over is no install.
        assert_eq!(w.guest_stopped(), None);
    }

    #[test]
    fn fail_patterns_end_the_watch_with_their_line() {
        for (text, pattern) in [
            ("No bootable device.", "No bootable device"),
            ("BdsDxe: No bootable option or device was found.", "No bootable option or device was found"),
            ("grub> ", "grub> "),
            ("hvseed: ERROR: cannot preseed netcfg/get_hostname for x", "hvseed: ERROR"),
            ("[    2.1] Kernel panic - not syncing: VFS", "Kernel panic"),
            ("hvseed: this machine (MAC addresses: 52:54:00:99:99:99) is not a host of cluster lab2.", "is not a host of cluster"),
        ] {
            let mut w = watcher();
            let log = format!("{text}\n");
            match &w.feed(log.as_bytes())[..] {
                [Event::Failed { pattern: p, line }] => {
                    assert_eq!(*p, pattern);
                    assert_eq!(line, text.trim_end());
                }
                other => panic!("{text}: {other:?}"),
            }
            // Nothing after a failure counts.
            assert_eq!(w.feed(format!("{log}hvseed: installing kvm21.lab.example.org\n").as_bytes()), vec![]);
        }
    }

    #[test]
    fn a_stranger_being_refused_is_no_failure_but_the_firmware_giving_up_is() {
        let mut w = watcher();
        w.expect.stranger = true;
        let log =
            b"hvseed: grub: this machine (52:54:00:99:99:99) is not a host of cluster pxelab\n";
        assert_eq!(w.feed(log), vec![]);
        let mut more = log.to_vec();
        more.extend_from_slice(b"No bootable device.");
        assert!(matches!(
            &w.feed(&more)[..],
            [Event::Refused {
                pattern: "No bootable device",
                ..
            }]
        ));
        // OVMF's setup menu after the last boot option is also nothing to boot.
        let mut w = watcher();
        w.expect.stranger = true;
        let ui = b"BdsDxe: loading Boot0000 \"UiApp\" from Fv(7CB8BDC9-F8EB-4F34-AAEA-3EE4AF6516A1)/FvFile(462CAA21)\r\n";
        assert!(matches!(&w.feed(ui)[..], [Event::Refused { .. }]));
        // Any kernel starting for a stranger fails the run.
        let mut w = watcher();
        w.expect.stranger = true;
        assert!(matches!(
            &w.feed(b"[    0.000000] Linux version 6.1.0-37-amd64\n")[..],
            [Event::Failed {
                pattern: "Linux version",
                ..
            }]
        ));
    }

    #[test]
    fn seabios_with_nothing_to_boot_on_its_debug_port() {
        let fw = b"Booting from Hard Disk...\nBoot failed: could not read the boot disk\n\nNo bootable device.";
        let mut w = watcher();
        assert_eq!(w.firmware(b"Booting from Hard Disk...\n"), None);
        assert!(matches!(
            w.firmware(fw),
            Some(Event::Failed {
                pattern: "No bootable device",
                ..
            })
        ));
        let mut w = watcher();
        w.expect.stranger = true;
        assert!(matches!(
            w.firmware(fw),
            Some(Event::Refused {
                pattern: "No bootable device",
                ..
            })
        ));
    }

    #[test]
    fn a_clean_stop_after_the_hand_over_is_installed() {
        let mut w = watcher();
        w.feed(b"hvseed: kvm21.lab.example.org: handed over to the first-boot agent\n");
        assert_eq!(
            w.guest_stopped(),
            Some(Event::Reached(Milestone::Installed))
        );
        assert_eq!(w.guest_stopped(), None);
    }

    #[test]
    fn printable_drops_escapes_and_controls() {
        assert_eq!(printable("\x1b[1;44mab\x07c\x1b(B d  "), "abc d  ");
        assert_eq!(
            last_lines(b"a\r\n\r\nb\x1b[0m\nc", 2),
            vec!["b".to_string(), "c".to_string()]
        );
    }
}
