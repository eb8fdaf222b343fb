//! The agent's own settings on a host: `/etc/hvseed/firstboot.conf`, optional. One
//! `key = value` per line, `#` comments. Today one key:
//!
//! - `gateway_tries` (1–60, default 10): rounds of `ping -c 3 -W 2 <gateway>` after the
//!   network restart before the management gateway counts as lost and the network is
//!   rolled back. The default rides out ~30 s of STP listening/learning on a switch
//!   port without portfast; a lab whose gateway answers at once (or never) can say 1.

use crate::fsroot::Root;

pub const SETTINGS_PATH: &str = "/etc/hvseed/firstboot.conf";
pub const GATEWAY_TRIES_DEFAULT: u32 = 10;
pub const GATEWAY_TRIES_MAX: u32 = 60;
/// The file is a few lines; anything bigger is not it.
const SETTINGS_LIMIT: u64 = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub gateway_tries: u32,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            gateway_tries: GATEWAY_TRIES_DEFAULT,
        }
    }
}

/// The settings under `root`; the defaults when the file does not exist. A bad file is
/// an error naming the file, the line and the key, with the fix.
pub fn load(root: &Root) -> Result<Settings, String> {
    let host = root
        .resolve(SETTINGS_PATH)
        .map_err(|e| format!("{SETTINGS_PATH}: cannot read it: {e}"))?;
    let text = match crate::bounded::read_to_string(&host, SETTINGS_LIMIT, true) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Settings::default()),
        Err(e) => return Err(format!("{SETTINGS_PATH}: cannot read it: {e}")),
    };
    parse(&text)
}

pub fn parse(text: &str) -> Result<Settings, String> {
    let mut s = Settings::default();
    for (i, line) in text.lines().enumerate() {
        let at = format!("{SETTINGS_PATH}:{}", i + 1);
        let t = line.split('#').next().unwrap_or("").trim();
        if t.is_empty() {
            continue;
        }
        let Some((key, value)) = t.split_once('=') else {
            return Err(format!(
                "{at}: {t:?} is not `key = value`; write e.g. `gateway_tries = 3`"
            ));
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "gateway_tries" => {
                s.gateway_tries = value
                    .parse::<u32>()
                    .ok()
                    .filter(|n| (1..=GATEWAY_TRIES_MAX).contains(n))
                    .ok_or_else(|| {
                        format!(
                            "{at}: gateway_tries: {value:?} is not a whole number from 1 to \
                             {GATEWAY_TRIES_MAX}; write e.g. `gateway_tries = 3` \
                             (default {GATEWAY_TRIES_DEFAULT})"
                        )
                    })?
            }
            other => {
                return Err(format!(
                    "{at}: unknown setting {other:?}; the agent knows gateway_tries"
                ))
            }
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_and_bad_settings() {
        assert_eq!(parse("").unwrap().gateway_tries, 10);
        assert_eq!(
            parse("# lab\n gateway_tries = 3  # short\n")
                .unwrap()
                .gateway_tries,
            3
        );
        assert_eq!(parse("gateway_tries=60\n").unwrap().gateway_tries, 60);
        for bad in [
            "gateway_tries = 0",
            "gateway_tries = 61",
            "gateway_tries = x",
        ] {
            let e = parse(&format!("\n{bad}\n")).unwrap_err();
            assert!(
                e.starts_with("/etc/hvseed/firstboot.conf:2: gateway_tries:")
                    && e.contains("1 to 60"),
                "{e}"
            );
        }
        let e = parse("gateway_trys = 3\n").unwrap_err();
        assert!(e.contains(":1: unknown setting \"gateway_trys\""), "{e}");
        assert!(parse("gateway_tries 3\n")
            .unwrap_err()
            .contains("key = value"));
    }
}
