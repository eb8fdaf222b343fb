//! Preseeds (the debian-installer targets): one per host (`hosts/<fqdn>/preseed.cfg`)
//! and one for the cluster (`fleet/preseed.cfg`, whose early_command finds the host by
//! MAC and sets that host's answers with `debconf-set`). Both take the plan, the ssh keys and the
//! agent from the media in late_command.

use std::collections::{HashMap, HashSet};

use anyhow::{bail, Result};
use minijinja::{context, Environment};
use serde::Serialize;

use super::templates::render as render_template;
use super::{HostView, MediaView, RenderedTree};
use crate::inventory::Inventory;

/// One `owner question type value` line of settings.cfg; the fields are byte ranges
/// of `line` (a 10,000-host fleet holds hundreds of thousands of these).
#[derive(Debug, Clone)]
struct Setting {
    line: String,
    question: (usize, usize),
    kind: (usize, usize),
    value: usize,
}

impl Setting {
    fn owner(&self) -> &str {
        self.line.split_whitespace().next().unwrap_or("")
    }
    fn question(&self) -> &str {
        &self.line[self.question.0..self.question.1]
    }
    fn kind(&self) -> &str {
        &self.line[self.kind.0..self.kind.1]
    }
    fn value(&self) -> &str {
        &self.line[self.value..]
    }
}

/// Parses settings.cfg output, interning lines: a line many hosts share is stored once
/// (`pool`), each host keeps indices into the pool.
fn parse_settings(
    text: &str,
    pool: &mut Vec<Setting>,
    index: &mut HashMap<String, u32>,
) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(&k) = index.get(line) {
            out.push(k);
            continue;
        }
        if line.ends_with('\\') {
            bail!(
                "settings.cfg line {}: a line may not end in a backslash: {line}",
                i + 1
            );
        }
        // Byte ranges of the first three whitespace-separated fields.
        let mut fields = Vec::with_capacity(3);
        let mut pos = 0;
        for _ in 0..3 {
            let start = line[pos..]
                .find(|c: char| !c.is_whitespace())
                .map_or(line.len(), |o| pos + o);
            let end = line[start..]
                .find(char::is_whitespace)
                .map_or(line.len(), |o| start + o);
            fields.push((start, end));
            pos = end;
        }
        if fields[2].0 == fields[2].1 {
            bail!(
                "settings.cfg line {}: want `owner question type value`, got: {line}",
                i + 1
            );
        }
        let value = line[pos..]
            .find(|c: char| !c.is_whitespace())
            .map_or(line.len(), |o| pos + o);
        let k = u32::try_from(pool.len()).expect("fewer than 4 billion settings");
        pool.push(Setting {
            line: line.to_string(),
            question: fields[1],
            kind: fields[2],
            value,
        });
        index.insert(line.to_string(), k);
        out.push(k);
    }
    Ok(out)
}

#[derive(Serialize)]
struct TableHost {
    mac: String,
    fqdn: String,
    /// (question, value) pairs early_command sets with debconf-set.
    sets: Vec<(String, String)>,
}

/// A script as comment lines `#<tag> <line>` (d-i's parser skips comments; the
/// early_command extracts them again with sed).
fn script_comment(tag: &str, script: &str) -> String {
    let mut out = String::with_capacity(script.len() + 16 * script.lines().count());
    for l in script.lines() {
        out.push('#');
        out.push_str(tag);
        out.push(' ');
        out.push_str(l);
        out.push('\n');
    }
    out
}

pub(super) fn render(
    env: &Environment<'_>,
    inv: &Inventory,
    media: &MediaView,
    tree: &mut RenderedTree,
    fleet: bool,
) -> Result<()> {
    let cluster = &inv.cluster;
    let mut all: Vec<Vec<u32>> = Vec::with_capacity(inv.hosts.len());
    let mut pool: Vec<Setting> = Vec::new();
    let mut index: HashMap<String, u32> = HashMap::new();
    // The early script picks its host by MAC from `hosts`: the one host of a host's
    // preseed, every host in the fleet file.
    let early_script = |in_fleet: bool, hosts: &[TableHost]| -> Result<String> {
        let script = render_template(
            env,
            "early.sh",
            context! { cluster, fleet => in_fleet, hosts, media },
        )?;
        Ok(script_comment("hvseed-early", &script))
    };
    // The late script does not depend on the host (it reads the name from /tmp).
    let late = script_comment(
        "hvseed-late",
        &render_template(env, "late.sh", context! { cluster, fleet => false, media })?,
    );
    for h in &inv.hosts {
        let host = HostView::new(h);
        let settings = parse_settings(
            &render_template(env, "settings.cfg", context! { host, media })?,
            &mut pool,
            &mut index,
        )?;
        let hosts = vec![TableHost {
            mac: h.mac.clone(),
            fqdn: h.fqdn.clone(),
            sets: vec![],
        }];
        let early = early_script(false, &hosts)?;
        let mut lines = String::new();
        for &k in &settings {
            lines.push_str(&pool[k as usize].line);
            lines.push('\n');
        }
        lines.pop();
        let text = render_template(
            env,
            "preseed.cfg",
            context! { cluster, fleet => false, settings => lines, hosts, early, late, media },
        )?;
        tree.insert(format!("hosts/{}/preseed.cfg", h.fqdn), text.into_bytes());
        all.push(settings);
    }
    drop(index);
    if !fleet {
        return Ok(());
    }

    // Fleet: lines every host has verbatim stay as they are; a question whose line
    // differs anywhere gets a placeholder line (so d-i knows the question before its
    // component is loaded, and marks it seen) and is set per host by early_command.
    let n = all.len();
    let mut count = vec![0usize; pool.len()];
    for settings in &all {
        let mut seen = HashSet::new();
        for &k in settings {
            if seen.insert(k) {
                count[k as usize] += 1;
            }
        }
    }
    let varying: HashSet<&str> = (0..pool.len())
        .filter(|&k| count[k] != n)
        .map(|k| pool[k].question())
        .collect();
    let mut lines: Vec<String> = Vec::new();
    let mut placed: HashSet<&str> = HashSet::new();
    for &k in all.iter().flatten() {
        let s = &pool[k as usize];
        if !varying.contains(s.question()) {
            if count[k as usize] == n && placed.insert(s.line.as_str()) {
                lines.push(s.line.clone());
            }
        } else if placed.insert(s.question()) {
            let value = match s.kind() {
                "boolean" | "select" | "multiselect" => s.value(),
                _ => "",
            };
            let mut l = format!("{} {} {}", s.owner(), s.question(), s.kind());
            if !value.is_empty() {
                l.push(' ');
                l.push_str(value);
            }
            lines.push(l);
        }
    }
    let hosts: Vec<TableHost> = inv
        .hosts
        .iter()
        .zip(&all)
        .map(|(h, settings)| TableHost {
            mac: h.mac.clone(),
            fqdn: h.fqdn.clone(),
            sets: settings
                .iter()
                .map(|&k| &pool[k as usize])
                .filter(|s| varying.contains(s.question()))
                .map(|s| (s.question().to_string(), s.value().to_string()))
                .collect(),
        })
        .collect();
    let early = early_script(true, &hosts)?;
    let lines = lines.join("\n");
    let text = render_template(
        env,
        "preseed.cfg",
        context! { cluster, fleet => true, settings => lines, hosts, early, late, media },
    )?;
    tree.insert("fleet/preseed.cfg".into(), text.into_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_split_like_d_i() {
        let (mut pool, mut index) = (Vec::new(), HashMap::new());
        let s = parse_settings(
            "# c\n\nd-i a/b string  x y \nd-i c/d string\nd-i a/b string  x y\n",
            &mut pool,
            &mut index,
        )
        .unwrap();
        assert_eq!(s, vec![0, 1, 0]);
        assert_eq!((pool[0].owner(), pool[0].question()), ("d-i", "a/b"));
        assert_eq!(pool[0].value(), "x y");
        assert_eq!(pool[1].kind(), "string");
        assert_eq!(pool[1].value(), "");
        assert!(parse_settings("d-i a/b string x \\\n", &mut pool, &mut index).is_err());
        assert!(parse_settings("d-i a/b\n", &mut pool, &mut index).is_err());
    }
}
