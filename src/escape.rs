//! Text that came from input (inventory values and keys, file names, command-line
//! arguments) made safe to print on a terminal: control characters (C0, DEL, C1) and
//! the Unicode bidirectional overrides are shown as escapes (`\x1b`, `\r`, `\u{9b}`,
//! `\u{202e}`), so that a value cannot move the cursor, clear the screen, set the
//! window title or forge a line of hvseed's output. Everything hvseed prints that
//! holds such text goes through [`escape`] (one line) or [`escape_lines`].

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether `c` must be escaped before it is printed.
fn needs_escape(c: char) -> bool {
    c.is_control() // C0, DEL, C1
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

fn escaped(s: &str, keep_newlines: bool) -> Cow<'_, str> {
    let keep = |c: char| keep_newlines && c == '\n';
    if !s.chars().any(|c| needs_escape(c) && !keep(c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 16);
    for c in s.chars() {
        if !needs_escape(c) || keep(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x80 => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
    }
    Cow::Owned(out)
}

/// `s` for one line of output: every control character escaped, newlines included.
pub fn escape(s: &str) -> Cow<'_, str> {
    escaped(s, false)
}

/// `s` for output that may span lines (an error holding a tool's stderr): like
/// [`escape`], but `\n` is kept.
pub fn escape_lines(s: &str) -> Cow<'_, str> {
    escaped(s, true)
}

/// A path for one line of output.
pub fn path(p: &std::path::Path) -> String {
    escape(&p.to_string_lossy()).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn controls_are_escaped_and_plain_text_is_borrowed() {
        assert!(matches!(escape("kvm1.lab: ok `us`"), Cow::Borrowed(_)));
        assert_eq!(
            escape("a\x1b]0;t\x07\x1b[2J\r\nb\x7f\u{9b}c\u{202e}"),
            "a\\x1b]0;t\\x07\\x1b[2J\\r\\nb\\x7f\\u{9b}c\\u{202e}"
        );
        assert_eq!(escape_lines("one\ntwo\r\n"), "one\ntwo\\r\n");
        assert_eq!(escape("é ü"), "é ü");
    }
}
