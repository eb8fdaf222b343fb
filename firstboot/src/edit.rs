//! In-place edits of `key=value` style configuration files: the keys hvseed owns are
//! set, every other line (comments, site-local keys, blank lines) stays where it was.
//! A key that is missing is put right after the distribution's commented example of it
//! (`#listen_tcp = 1`), so the file still reads like the stock one with one line
//! switched on.

/// How a file spells an assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// `KEY=value` — shell fragments (sysconfig, ifcfg, /etc/default) and Java
    /// properties (agent.properties).
    Tight,
    /// `key = value` — libvirtd.conf and qemu.conf.
    Spaced,
}

/// The lines of a text file; the result always ends with a newline.
#[derive(Debug, Clone)]
pub struct Lines {
    pub lines: Vec<String>,
}

impl Lines {
    pub fn parse(text: &str) -> Lines {
        Lines {
            lines: text.lines().map(str::to_string).collect(),
        }
    }

    pub fn text(&self) -> String {
        let mut s = String::new();
        for l in &self.lines {
            s.push_str(l);
            s.push('\n');
        }
        s
    }
}

/// A line that assigns a key, maybe commented out.
#[derive(Debug, PartialEq, Eq)]
pub struct Assign<'a> {
    pub key: &'a str,
    pub value: &'a str,
    pub commented: bool,
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Reads `key=value`, `key = value`, `#key=value` or `# key = value`.
pub fn parse_assign(line: &str) -> Option<Assign<'_>> {
    let mut s = line.trim_start();
    let commented = s.starts_with('#');
    if commented {
        s = s.trim_start_matches('#').trim_start();
    }
    let end = s.find(|c: char| !is_key_char(c)).unwrap_or(s.len());
    let (key, rest) = s.split_at(end);
    if key.is_empty() {
        return None;
    }
    let rest = rest.trim_start_matches([' ', '\t']);
    let value = rest.strip_prefix('=')?;
    let value = value.trim_start_matches([' ', '\t']);
    Some(Assign {
        key,
        value: value.trim_end(),
        commented,
    })
}

pub fn render(style: Style, key: &str, value: &str) -> String {
    match style {
        Style::Tight => format!("{key}={value}"),
        Style::Spaced => format!("{key} = {value}"),
    }
}

impl Lines {
    /// The value of the last uncommented assignment of `key` (the one that wins).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.lines
            .iter()
            .rev()
            .filter_map(|l| parse_assign(l))
            .find(|a| !a.commented && a.key == key)
            .map(|a| a.value)
    }

    /// Sets `key` to `value`: the first uncommented assignment is rewritten and later
    /// ones (which would override it) are dropped; with none, the line goes after the
    /// stock commented example, or at the end.
    pub fn set(&mut self, style: Style, key: &str, value: &str) {
        let new = render(style, key, value);
        let live: Vec<usize> = self
            .lines
            .iter()
            .enumerate()
            .filter(|(_, l)| parse_assign(l).is_some_and(|a| !a.commented && a.key == key))
            .map(|(i, _)| i)
            .collect();
        if let Some((&first, rest)) = live.split_first() {
            self.lines[first] = new;
            for &i in rest.iter().rev() {
                self.lines.remove(i);
            }
            return;
        }
        let examples: Vec<(usize, bool)> = self
            .lines
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                let a = parse_assign(l)?;
                (a.commented && a.key == key).then(|| (i, !a.value.contains([' ', '\t'])))
            })
            .collect();
        // Prefer an example that looks like a setting (`# guest.cpu.model=`) over one
        // that is prose (`#public.network.device= the public nic device`).
        let anchor = examples
            .iter()
            .find(|(_, value_like)| *value_like)
            .or(examples.last())
            .map(|(i, _)| *i);
        match anchor {
            Some(i) => self.lines.insert(i + 1, new),
            None => self.lines.push(new),
        }
    }

    /// Removes every uncommented assignment of `key`.
    pub fn remove(&mut self, key: &str) {
        self.lines
            .retain(|l| !parse_assign(l).is_some_and(|a| !a.commented && a.key == key));
    }
}

/// Quotes a value for a shell-sourced file (ifcfg, sysconfig) when it needs it.
pub fn shell_value(v: &str) -> String {
    if !v.is_empty()
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-:/,@+%".contains(&b))
    {
        v.to_string()
    } else {
        format!("\"{}\"", v.replace(['"', '\\', '$', '`'], ""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_spellings_of_an_assignment() {
        assert_eq!(
            parse_assign("#listen_tcp = 1"),
            Some(Assign {
                key: "listen_tcp",
                value: "1",
                commented: true
            })
        );
        assert_eq!(parse_assign("# This is a comment"), None);
        assert_eq!(parse_assign("KEY=\"a b\"").unwrap().value, "\"a b\"");
    }

    #[test]
    fn set_goes_after_the_example_and_replaces_live_lines() {
        let mut l = Lines::parse("# x\n#listen_tcp = 1\n# y\n");
        l.set(Style::Spaced, "listen_tcp", "1");
        assert_eq!(l.text(), "# x\n#listen_tcp = 1\nlisten_tcp = 1\n# y\n");
        let mut l = Lines::parse("a=1\nb=2\na=3\n");
        l.set(Style::Tight, "a", "9");
        assert_eq!(l.text(), "a=9\nb=2\n");
    }
}
