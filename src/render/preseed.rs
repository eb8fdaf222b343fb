//! Ubuntu 12.04 preseeds: one per host (`hosts/<fqdn>/preseed.cfg`) and one for the
//! cluster (`fleet/preseed.cfg`, whose early_command finds the host by MAC and sets
//! that host's answers with `debconf-set`). Both take the plan, the ssh keys and the
//! agent from the media in late_command.

use std::collections::{HashMap, HashSet};

use anyhow::{bail, Result};
use minijinja::{context, Environment};
use serde::Serialize;

use super::templates::render as render_template;
use super::{HostView, MediaView, RenderedTree};
use crate::inventory::Inventory;

/// One `owner question type value` line of settings.cfg.
#[derive(Debug, Clone)]
struct Setting {
    line: String,
    owner: String,
    question: String,
    kind: String,
    value: String,
}

fn parse_settings(text: &str) -> Result<Vec<Setting>> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if line.ends_with('\\') {
            bail!(
                "settings.cfg line {}: a line may not end in a backslash: {line}",
                i + 1
            );
        }
        let mut rest = line;
        let mut field = || {
            let r = rest.trim_start();
            let end = r.find(char::is_whitespace).unwrap_or(r.len());
            let (f, tail) = r.split_at(end);
            rest = tail;
            f.to_string()
        };
        let owner = field();
        let question = field();
        let kind = field();
        if kind.is_empty() {
            bail!(
                "settings.cfg line {}: want `owner question type value`, got: {line}",
                i + 1
            );
        }
        out.push(Setting {
            line: line.to_string(),
            owner,
            question,
            kind,
            value: rest.trim_start().to_string(),
        });
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

fn script_lines(s: &str) -> Vec<String> {
    s.lines().map(str::to_string).collect()
}

pub(super) fn render(
    env: &Environment<'_>,
    inv: &Inventory,
    media: &MediaView,
    tree: &mut RenderedTree,
) -> Result<()> {
    let cluster = &inv.cluster;
    let mut all = Vec::with_capacity(inv.hosts.len());
    // The late script does not depend on the host (it reads the name from /tmp).
    let late = script_lines(&render_template(
        env,
        "late.sh",
        context! { cluster, fleet => false, media },
    )?);
    for h in &inv.hosts {
        let host = HostView::new(h);
        let settings = parse_settings(&render_template(
            env,
            "settings.cfg",
            context! { host, media },
        )?)?;
        let hosts = vec![TableHost {
            mac: h.mac.clone(),
            fqdn: h.fqdn.clone(),
            sets: vec![],
        }];
        let early = script_lines(&render_template(
            env,
            "early.sh",
            context! { cluster, fleet => false, hosts, media },
        )?);
        let lines: Vec<&str> = settings.iter().map(|s| s.line.as_str()).collect();
        let text = render_template(
            env,
            "preseed.cfg",
            context! { cluster, fleet => false, settings => lines, hosts, early, late, media },
        )?;
        tree.insert(format!("hosts/{}/preseed.cfg", h.fqdn), text.into_bytes());
        all.push(settings);
    }

    // Fleet: lines every host has verbatim stay as they are; a question whose line
    // differs anywhere gets a placeholder line (so d-i knows the question before its
    // component is loaded, and marks it seen) and is set per host by early_command.
    let n = all.len();
    let mut count: HashMap<&str, usize> = HashMap::new();
    for settings in &all {
        let mut seen = HashSet::new();
        for s in settings {
            if seen.insert(s.line.as_str()) {
                *count.entry(s.line.as_str()).or_default() += 1;
            }
        }
    }
    let varying: HashSet<&str> = all
        .iter()
        .flatten()
        .filter(|s| count[s.line.as_str()] != n)
        .map(|s| s.question.as_str())
        .collect();
    let mut lines: Vec<String> = Vec::new();
    let mut placed: HashSet<&str> = HashSet::new();
    for s in all.iter().flatten() {
        if !varying.contains(s.question.as_str()) {
            if count[s.line.as_str()] == n && placed.insert(s.line.as_str()) {
                lines.push(s.line.clone());
            }
        } else if placed.insert(s.question.as_str()) {
            let value = match s.kind.as_str() {
                "boolean" | "select" | "multiselect" => s.value.as_str(),
                _ => "",
            };
            let mut l = format!("{} {} {}", s.owner, s.question, s.kind);
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
                .filter(|s| varying.contains(s.question.as_str()))
                .map(|s| (s.question.clone(), s.value.clone()))
                .collect(),
        })
        .collect();
    let early = script_lines(&render_template(
        env,
        "early.sh",
        context! { cluster, fleet => true, hosts, media },
    )?);
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
        let s = parse_settings("# c\n\nd-i a/b string  x y \nd-i c/d string\n").unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(
            (s[0].owner.as_str(), s[0].question.as_str()),
            ("d-i", "a/b")
        );
        assert_eq!(s[0].value, "x y");
        assert_eq!(s[1].kind, "string");
        assert_eq!(s[1].value, "");
        assert!(parse_settings("d-i a/b string x \\\n").is_err());
        assert!(parse_settings("d-i a/b\n").is_err());
    }
}
