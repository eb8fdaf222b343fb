//! The built-in templates (compiled in from profiles/) and `--templates DIR`, which
//! overrides any of them by file name, like Cobbler snippets.

use std::path::Path;

use anyhow::{bail, Context, Result};
use minijinja::{Environment, UndefinedBehavior};

/// Built-in templates: (file name, source). The names are what `--templates DIR`
/// overrides; they are listed in docs/render.md.
const BUILTIN: &[(&str, &str)] = &[
    ("ks.cfg", include_str!("../../profiles/centos6/ks.cfg")),
    (
        "fleet-ks.cfg",
        include_str!("../../profiles/centos6/fleet-ks.cfg"),
    ),
    ("host.ks", include_str!("../../profiles/centos6/host.ks")),
    (
        "packages.ks",
        include_str!("../../profiles/centos6/packages.ks"),
    ),
    (
        "fleet-pre.sh",
        include_str!("../../profiles/centos6/fleet-pre.sh"),
    ),
    (
        "post-nochroot.sh",
        include_str!("../../profiles/centos6/post-nochroot.sh"),
    ),
    ("post.sh", include_str!("../../profiles/centos6/post.sh")),
    (
        "preseed.cfg",
        include_str!("../../profiles/ubuntu1204/preseed.cfg"),
    ),
    (
        "settings.cfg",
        include_str!("../../profiles/ubuntu1204/settings.cfg"),
    ),
    (
        "early.sh",
        include_str!("../../profiles/ubuntu1204/early.sh"),
    ),
    ("late.sh", include_str!("../../profiles/ubuntu1204/late.sh")),
];

/// The names of all templates (what `--templates DIR` may override).
pub const TEMPLATE_NAMES: &[&str] = &[
    "ks.cfg",
    "fleet-ks.cfg",
    "host.ks",
    "packages.ks",
    "fleet-pre.sh",
    "post-nochroot.sh",
    "post.sh",
    "preseed.cfg",
    "settings.cfg",
    "early.sh",
    "late.sh",
];

/// A template environment with the quoting filters, strict undefined values and the
/// built-in templates, each replaced by `DIR/<name>` when that file exists.
pub fn environment(overrides: Option<&Path>) -> Result<Environment<'static>> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    super::filters::register(&mut env);
    if let Some(dir) = overrides {
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("reading the templates directory {}", dir.display()))?;
        for e in entries {
            let e = e.with_context(|| format!("reading {}", dir.display()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !TEMPLATE_NAMES.contains(&name.as_str()) {
                tracing::warn!(
                    "{}: not a template name hvseed knows ({}); ignored",
                    e.path().display(),
                    TEMPLATE_NAMES.join(", ")
                );
            }
        }
    }
    for (name, builtin) in BUILTIN {
        let source = match overrides.map(|d| d.join(name)).filter(|p| p.is_file()) {
            Some(p) => {
                tracing::info!("template {name}: using {}", p.display());
                std::fs::read_to_string(&p).with_context(|| format!("reading {}", p.display()))?
            }
            None => (*builtin).to_string(),
        };
        if let Err(e) = env.add_template_owned(*name, source) {
            match overrides {
                Some(d) if d.join(name).is_file() => {
                    bail!("{}: {e:#}", d.join(name).display())
                }
                _ => bail!("built-in template {name}: {e:#}"),
            }
        }
    }
    Ok(env)
}

/// Renders a template, naming it in the error (minijinja's own message carries the
/// line and the reason, e.g. a value a quoting filter refused).
pub fn render(env: &Environment<'_>, name: &str, ctx: minijinja::Value) -> Result<String> {
    let t = env.get_template(name)?;
    t.render(ctx).map_err(|e| {
        let mut msg = format!("template {name}: {e}");
        let mut src = std::error::Error::source(&e);
        while let Some(s) = src {
            msg.push_str(&format!(": {s}"));
            src = s.source();
        }
        if e.name().is_some() {
            msg.push_str(&format!("\n{}", e.display_debug_info()));
        }
        anyhow::anyhow!(msg)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_builtins() {
        let names: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, TEMPLATE_NAMES);
    }
}
