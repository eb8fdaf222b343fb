//! Findings about an inventory: [`Diagnostic`] (file:line:col, key path, message),
//! and how the checker collects them — each finding once, however many hosts read the
//! value it is about, and at most [`MAX_DIAGNOSTICS`] of them.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;

use super::reader::Checker;
use super::yaml::{Node, Origin};

/// How serious a finding is: errors stop `check` (exit 1) and everything after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
    Error,
}

/// One finding about the inventory, printed as `FILE:LINE:COL: key.path: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    /// 1-based; 0 when the finding has no position (e.g. an unreadable file).
    pub line: usize,
    pub column: usize,
    /// Key path such as `hosts[1].mac` or `defaults.network.public.vlan`; empty when
    /// the finding concerns the whole file.
    pub key: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// One line: the file name, key path and message (which quote inventory values) are
/// escaped, so no control character from the input reaches the terminal.
impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::escape::escape;
        write!(f, "{}", escape(&self.file.to_string_lossy()))?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        if self.severity == Severity::Warning {
            write!(f, ": warning")?;
        }
        if !self.key.is_empty() {
            write!(f, ": {}", escape(&self.key))?;
        }
        write!(f, ": {}", escape(&self.message))
    }
}

/// The full key path of a node: `defaults.x`, `hosts[3].x`, or `x` at the top.
pub(super) fn path(origin: Origin, rel: &str) -> String {
    match origin {
        Origin::Top => rel.to_string(),
        Origin::Defaults => format!("defaults.{rel}"),
        Origin::Host(i) => format!("hosts[{i}].{rel}"),
    }
}

/// A place in the file a later finding can point at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Loc {
    pub(super) line: usize,
    pub(super) column: usize,
    pub(super) key: String,
}

impl Loc {
    pub(super) fn of(n: &Node, rel: &str) -> Loc {
        Loc {
            line: n.line,
            column: n.column,
            key: path(n.origin, rel),
        }
    }
}

/// A required key that was missing in one host (the defaults lacked it too).
pub(super) struct Missing {
    pub(super) rel: String,
    pub(super) host: usize,
}

/// The most findings reported for one file; a file that is mostly wrong (or not an
/// inventory at all) would otherwise print and hold one message per line.
pub const MAX_DIAGNOSTICS: usize = 500;

impl Checker<'_> {
    pub(super) fn push_at(
        &mut self,
        severity: Severity,
        line: usize,
        column: usize,
        key: String,
        message: String,
    ) {
        self.push(Diagnostic {
            severity,
            file: self.file.to_path_buf(),
            line,
            column,
            key,
            message,
        });
    }

    /// Records `d` unless the same finding was recorded before.
    pub(super) fn push(&mut self, d: Diagnostic) {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (d.line, d.column, &d.key, &d.message, d.severity).hash(&mut h);
        if !self.seen.insert(h.finish()) {
            return;
        }
        if self.diags.len() >= MAX_DIAGNOSTICS {
            self.dropped += 1;
            return;
        }
        self.diags.push(d);
    }

    /// Takes over what another checker (of a later part of the hosts) found. Past
    /// [`MAX_DIAGNOSTICS`], the count of findings not shown may include repeats of
    /// shown ones.
    pub(super) fn absorb(&mut self, other: Checker) {
        for d in other.diags {
            self.push(d);
        }
        self.dropped += other.dropped;
        self.missing.extend(other.missing);
    }

    pub(super) fn error(&mut self, n: &Node, rel: &str, message: impl Into<String>) {
        self.push_at(
            Severity::Error,
            n.line,
            n.column,
            path(n.origin, rel),
            message.into(),
        );
    }

    pub(super) fn warn(&mut self, n: &Node, rel: &str, message: impl Into<String>) {
        self.push_at(
            Severity::Warning,
            n.line,
            n.column,
            path(n.origin, rel),
            message.into(),
        );
    }

    pub(super) fn error_at(&mut self, at: &Loc, message: impl Into<String>) {
        self.push_at(
            Severity::Error,
            at.line,
            at.column,
            at.key.clone(),
            message.into(),
        );
    }
}
