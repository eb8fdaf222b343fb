//! The boot-menu templates of the top-level `iso/` folder, compiled in like the
//! install templates of `profiles/`: the entry `hvseed iso` puts on top of an ISO's
//! isolinux, grub-legacy EFI and GRUB2 menus, and the pxelinux, GRUB2 and grub-legacy
//! files of a PXE tree. `iso/README.md` says what each file is and what each loader
//! expects.
//!
//! Values go in as they are given (minijinja escapes nothing here): every caller
//! passes values the inventory checked for a kernel command line or a boot file
//! (kernel arguments by the one kernel-argument rule, names by their syntax), quoted
//! already where the loader needs it (GRUB 2's single quotes, see `pxe::configs`).

use std::sync::OnceLock;

use minijinja::{Environment, UndefinedBehavior, Value};

/// (name under `iso/`, source).
const TEMPLATES: &[(&str, &str)] = &[
    (
        "isolinux/entry.cfg",
        include_str!("../iso/isolinux/entry.cfg"),
    ),
    (
        "grub-legacy/entry.conf",
        include_str!("../iso/grub-legacy/entry.conf"),
    ),
    ("grub2/entry.cfg", include_str!("../iso/grub2/entry.cfg")),
    (
        "pxe/host-header.txt",
        include_str!("../iso/pxe/host-header.txt"),
    ),
    (
        "pxe/installed-header.txt",
        include_str!("../iso/pxe/installed-header.txt"),
    ),
    (
        "pxelinux/host.cfg",
        include_str!("../iso/pxelinux/host.cfg"),
    ),
    (
        "pxelinux/default.cfg",
        include_str!("../iso/pxelinux/default.cfg"),
    ),
    (
        "pxelinux/installed.cfg",
        include_str!("../iso/pxelinux/installed.cfg"),
    ),
    (
        "grub2/pxe-host.cfg",
        include_str!("../iso/grub2/pxe-host.cfg"),
    ),
    (
        "grub2/pxe-default.cfg",
        include_str!("../iso/grub2/pxe-default.cfg"),
    ),
    (
        "grub2/pxe-di-default.cfg",
        include_str!("../iso/grub2/pxe-di-default.cfg"),
    ),
    (
        "grub2/pxe-installed.cfg",
        include_str!("../iso/grub2/pxe-installed.cfg"),
    ),
    (
        "grub-legacy/pxe-host.conf",
        include_str!("../iso/grub-legacy/pxe-host.conf"),
    ),
    (
        "grub-legacy/pxe-default.conf",
        include_str!("../iso/grub-legacy/pxe-default.conf"),
    ),
    (
        "grub-legacy/pxe-installed.conf",
        include_str!("../iso/grub-legacy/pxe-installed.conf"),
    ),
];

fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_keep_trailing_newline(true);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("iso/{name}: {e:#}"));
        }
        env
    })
}

/// Renders the built-in template `iso/<name>`. The templates are part of hvseed and
/// each is rendered by the tests below, so a failure is a bug in hvseed: it panics
/// with the template's name and minijinja's reason.
pub fn render(name: &str, ctx: Value) -> String {
    let env = environment();
    let t = env
        .get_template(name)
        .unwrap_or_else(|e| panic!("iso/{name}: {e:#}"));
    t.render(ctx)
        .unwrap_or_else(|e| panic!("iso/{name}: {e:#}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::context;

    #[test]
    fn every_template_renders_with_the_values_its_callers_give() {
        let args = vec!["a=1", "b"];
        let all = context! {
            label => "hvseed", title => "T", kernel => "k", initrd => "i", args,
            linux_cmd => "linux", initrd_cmd => "initrd",
            timeout => 5, fqdn => "h.example.org", cluster => "c", mac => "00:00:00:00:00:01",
            os => "OS", disk => "sda", serial => "SERIAL 0 115200",
        };
        for (name, _) in TEMPLATES {
            let out = render(name, all.clone());
            assert!(!out.contains("{{") && !out.contains("{%"), "{name}: {out}");
            assert!(out.ends_with('\n'), "{name}: {out:?}");
        }
    }
}
