//! Quoting filters for the templates: every inventory value passes through the one
//! that fits where it lands, so no value can break out of its place.
//!
//! - `shell`: a POSIX shell word (single quotes).
//! - `debconf`: a one-line debconf value (preseed).
//! - `ksarg`: a kickstart option value (anaconda splits command lines with `shlex`).
//! - `kspackage`: a line of `%packages` (not shell-split, so it is checked, not quoted).
//! - `heredoc(target)`: shell that writes a value byte for byte to a file.
//! - `yaml`: a double-quoted YAML scalar (autoinstall, cloud-config, netplan), always a
//!   string whatever the text: PyYAML reads YAML 1.1, where a bare MAC is a sexagesimal
//!   integer and a bare `no` is false.

use minijinja::{Error, ErrorKind};
use sha2::{Digest, Sha256};

use crate::tool::is_plain_word;

fn refuse(what: &str, value: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::InvalidOperation,
        format!("{what}: {value:?} {why}"),
    )
}

/// Refuses (for filter `what`) a value with a control character: `place` is one line.
fn one_line(what: &str, value: &str, place: &str) -> Result<(), Error> {
    match value.chars().find(|c| c.is_control()) {
        Some(c) => Err(refuse(
            what,
            value,
            &format!("contains the control character {c:?}; {place} is one line"),
        )),
        None => Ok(()),
    }
}

/// POSIX single-quoted word; a plain word stays as it is (easier to read): the quoting
/// of hvseed's own log lines, [`crate::tool::shell_words_quote`].
pub fn shell(value: &str) -> Result<String, Error> {
    if value.contains('\0') {
        return Err(refuse("shell", value, "contains a NUL byte"));
    }
    Ok(crate::tool::shell_words_quote(value))
}

/// A debconf value must stay on its line: d-i's preseed parser joins lines ending in
/// `\` and reads one value per line, and backslashes inside values are not carried
/// through every d-i version unchanged, so both are refused rather than mangled.
pub fn debconf(value: &str) -> Result<String, Error> {
    one_line("debconf", value, "a debconf value")?;
    if value.contains('\\') {
        return Err(refuse(
            "debconf",
            value,
            "contains a backslash, which d-i does not pass through preseed values reliably",
        ));
    }
    Ok(value.to_string())
}

/// A kickstart option value. anaconda (and pykickstart) split command lines with
/// Python's `shlex` in POSIX mode with comments: plain words pass unquoted; anything
/// else is double-quoted with `\` and `"` escaped (the only escapes shlex honours
/// inside double quotes).
pub fn ksarg(value: &str) -> Result<String, Error> {
    one_line("ksarg", value, "a kickstart command")?;
    if is_plain_word(value, b"@%+=:,./_-$") {
        return Ok(value.to_string());
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Ok(out)
}

/// A `%packages` line is taken literally (no quoting exists there), so only package
/// names, globs and `@group`s are let through.
pub fn kspackage(value: &str) -> Result<String, Error> {
    let ok = !value.starts_with('%') && !value.starts_with('-') && is_plain_word(value, b"@+._-*:");
    if ok {
        Ok(value.to_string())
    } else {
        Err(refuse(
            "kspackage",
            value,
            "is not a package name (letters, digits and @+._-*: only)",
        ))
    }
}

/// Shell that writes `content` byte for byte to `target` (shell text written by the
/// template itself, e.g. `"$root/etc/hvseed/plan.json"`; never an inventory value): a quoted here-document whose
/// delimiter is derived from the content's hash (so the content cannot end it early),
/// every line prefixed with `|` and stripped by `sed` (so no line of it can start with
/// `%`, which kickstart would read as a section header or `%end`).
pub fn heredoc(content: &str, target: &str) -> Result<String, Error> {
    if content.contains('\0') {
        return Err(refuse("heredoc", content, "contains a NUL byte"));
    }
    let digest = Sha256::digest(content.as_bytes());
    let hex: String = digest[..12].iter().map(|b| format!("{b:02X}")).collect();
    let delim = format!("HVSEED_EOF_{hex}");
    // The here-document's lines, each prefixed with `|`, then its delimiter.
    let document = |text: &str| {
        let mut d = String::with_capacity(text.len() + delim.len() + 64);
        for line in text.split('\n') {
            d.push('|');
            d.push_str(line);
            d.push('\n');
        }
        d.push_str(&delim);
        d
    };
    Ok(match content.strip_suffix('\n') {
        None if content.is_empty() => format!(": > {target}"),
        // Content without a final newline: printf the last line without one.
        None => format!(
            "printf '%s' \"$(sed -e 's/^|//' <<'{delim}'\n{}\n)\" > {target}",
            document(content)
        ),
        Some(body) => format!("sed -e 's/^|//' > {target} <<'{delim}'\n{}", document(body)),
    })
}

/// A double-quoted YAML scalar: `"` and `\` escaped, and every character YAML does
/// not allow in a stream as it is (PyYAML's reader refuses controls, DEL, the C1
/// block but NEL, U+FFFE/U+FFFF) or that a reader would fold (tab, line breaks)
/// written as an escape, so the value is read back byte for byte.
pub fn yaml(value: &str) -> Result<String, Error> {
    if value.contains('\0') {
        return Err(refuse("yaml", value, "contains a NUL byte"));
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || ('\u{7f}'..='\u{9f}').contains(&c) => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    Ok(out)
}

/// Registers the filters on a template environment.
pub fn register(env: &mut minijinja::Environment<'_>) {
    env.add_filter("shell", |v: String| shell(&v));
    env.add_filter("debconf", |v: String| debconf(&v));
    env.add_filter("ksarg", |v: String| ksarg(&v));
    env.add_filter("kspackage", |v: String| kspackage(&v));
    env.add_filter("heredoc", |v: String, path: String| heredoc(&v, &path));
    env.add_filter("yaml", |v: String| yaml(&v));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn yaml_escapes_what_a_reader_would_change() {
        assert_eq!(yaml("52:54:00:12:34:56").unwrap(), "\"52:54:00:12:34:56\"");
        assert_eq!(yaml("no").unwrap(), "\"no\"");
        assert_eq!(yaml("a\"b\\c").unwrap(), "\"a\\\"b\\\\c\"");
        assert_eq!(
            yaml("x\ny\t\u{7f}\u{85}").unwrap(),
            "\"x\\ny\\t\\x7f\\x85\""
        );
        assert!(yaml("a\0").is_err());
    }

    #[test]
    fn shell_quotes_anything_but_plain_words() {
        assert_eq!(shell("eth0").unwrap(), "eth0");
        assert_eq!(shell("").unwrap(), "''");
        assert_eq!(shell("a b").unwrap(), "'a b'");
        assert_eq!(shell("it's").unwrap(), "'it'\\''s'");
        assert_eq!(shell("$(x)`y`;z").unwrap(), "'$(x)`y`;z'");
    }

    #[test]
    fn debconf_refuses_what_would_leave_the_line() {
        assert!(debconf("a\nb").is_err());
        assert!(debconf("a\\").is_err());
        assert!(debconf("a\rb").is_err());
        assert_eq!(
            debconf("deb http://x/ precise 4.2").unwrap(),
            "deb http://x/ precise 4.2"
        );
    }

    #[test]
    fn ksarg_quotes_for_shlex() {
        assert_eq!(ksarg("http://x/y/").unwrap(), "http://x/y/");
        assert_eq!(ksarg("$6$salt$hash").unwrap(), "$6$salt$hash");
        assert_eq!(ksarg("a b\"c\\").unwrap(), "\"a b\\\"c\\\\\"");
        assert!(ksarg("a\nb").is_err());
    }

    #[test]
    fn kspackage_allows_names_only() {
        assert_eq!(kspackage("@core").unwrap(), "@core");
        assert!(kspackage("%end").is_err());
        assert!(kspackage("-kernel").is_err());
        assert!(kspackage("a b").is_err());
    }

    #[test]
    fn heredoc_delimiter_is_not_in_the_content() {
        let s = heredoc("%end\nx\n", "\"$root/etc/x\"").unwrap();
        assert!(s.starts_with("sed -e 's/^|//' > \"$root/etc/x\" <<'HVSEED_EOF_"));
        assert!(s.contains("\n|%end\n|x\nHVSEED_EOF_"));
    }
}
