//! The built-in templates (compiled in from profiles/) and `--templates DIR`, which
//! overrides any of them by file name, like Cobbler snippets.

use std::path::Path;

use anyhow::{bail, Context, Result};
use minijinja::{Environment, UndefinedBehavior};

use crate::target::Target;

/// The names of all templates of every target (what `--templates DIR` may override),
/// in the order of [`crate::target::TARGETS`].
pub fn template_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = Vec::new();
    for t in crate::target::TARGETS {
        for (name, _) in t.install.templates {
            if !names.contains(name) {
                names.push(name);
            }
        }
    }
    names
}

/// A template environment with the quoting filters, strict undefined values and the
/// built-in templates of `target` (from `profiles/<target>/`), each replaced by
/// `DIR/<name>` when that file exists.
pub fn environment(target: &Target, overrides: Option<&Path>) -> Result<Environment<'static>> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
    super::filters::register(&mut env);
    if let Some(dir) = overrides {
        let known = template_names();
        let entries = std::fs::read_dir(dir)
            .with_context(|| format!("reading the templates directory {}", dir.display()))?;
        for e in entries {
            let e = e.with_context(|| format!("reading {}", dir.display()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            if !known.contains(&name.as_str()) {
                tracing::warn!(
                    "{}: not a template name hvseed knows ({}); ignored",
                    e.path().display(),
                    known.join(", ")
                );
            }
        }
    }
    for (name, builtin) in target.install.templates {
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
    fn every_target_s_templates_load() {
        for t in crate::target::TARGETS {
            let env = environment(t, None).unwrap();
            for (name, _) in t.install.templates {
                assert!(env.get_template(name).is_ok(), "{}: {name}", t.os);
            }
        }
        let names = template_names();
        assert!(names.contains(&"ks.cfg") && names.contains(&"preseed.cfg"));
    }
}
