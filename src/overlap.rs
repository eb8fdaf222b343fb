//! No verb writes over what it reads: every output path is compared with every input
//! before anything is written. The comparison is by file identity (device and inode,
//! after following symlinks), so a symlink, a hard link, a bind mount or a `..` path to
//! an input is caught as surely as the same spelling.
//!
//! An output may not
//! - be an input (`iso --out lab.yaml`, `pxe --bundle CentOS.iso`),
//! - contain an input (`render lab.yaml --out .` with `--force` would replace the
//!   directory holding the inventory),
//! - lie inside an input directory (`--out` inside `--templates DIR`).

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// What a verb reads: a role for the message (`inventory`, `--source`) and its path.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub role: &'a str,
    pub path: &'a Path,
}

/// What a verb writes: a role for the message (`--out`, `--bundle`) and its path.
#[derive(Debug, Clone, Copy)]
pub struct Output<'a> {
    pub role: &'a str,
    pub path: &'a Path,
}

/// How an output and an input overlap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    /// The output path is the input file or directory itself.
    Is,
    /// The output is a directory that holds the input somewhere below it.
    Contains,
    /// The output lies inside the input directory.
    Inside,
}

/// An output that would write over an input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlapError {
    pub output_role: String,
    pub output: PathBuf,
    pub input_role: String,
    pub input: PathBuf,
    pub relation: Relation,
}

impl fmt::Display for OverlapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let out = self.output.display();
        let inp = self.input.display();
        let (o, i) = (&self.output_role, &self.input_role);
        match self.relation {
            Relation::Is => write!(
                f,
                "{o} {out} is the {i} {inp} (the same file); hvseed never writes its inputs: \
                 choose another {o} path"
            ),
            Relation::Contains => write!(
                f,
                "{o} {out} contains the {i} {inp}; hvseed replaces what it writes there, so \
                 choose an {o} directory that holds none of its inputs"
            ),
            Relation::Inside => write!(
                f,
                "{o} {out} is inside the {i} {inp}; hvseed never writes into its inputs: \
                 choose an {o} path outside it"
            ),
        }
    }
}

impl std::error::Error for OverlapError {}

/// Device and inode: what makes two paths the same file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    dev: u64,
    ino: u64,
}

fn id_of(path: &Path) -> Option<FileId> {
    std::fs::metadata(path).ok().map(|m| FileId {
        dev: m.dev(),
        ino: m.ino(),
    })
}

/// Where `path` leads once a verb has created what is missing of it: each existing
/// component is resolved as the kernel would (symlinks followed, `..` from where the
/// link led), each missing one is taken as the plain directory the verb would create,
/// so a `..` after it climbs back (`new/../lab.yaml` is `lab.yaml` once `new` exists).
fn resolved(path: &Path) -> PathBuf {
    let abs = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let mut real = PathBuf::new();
    for c in abs.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => real.push(c),
            Component::CurDir => {}
            Component::ParentDir => {
                real.pop();
            }
            Component::Normal(name) => {
                real.push(name);
                if let Ok(r) = real.canonicalize() {
                    real = r;
                }
            }
        }
    }
    real
}

/// The identities of what `path` leads to (see [`resolved`]) and every directory above
/// it; missing components have none.
fn ids_up_from(path: &Path) -> Vec<FileId> {
    resolved(path).ancestors().filter_map(id_of).collect()
}

/// Refuses any output that is, contains or lies inside any input. Inputs that do not
/// exist are skipped (the verb reports them in its own words).
pub fn check(inputs: &[Input<'_>], outputs: &[Output<'_>]) -> Result<(), OverlapError> {
    for out in outputs {
        let out_id = id_of(&resolved(out.path));
        // The output and the directories above it (resolved).
        let out_up = ids_up_from(out.path);
        for inp in inputs {
            let Some(in_id) = id_of(inp.path) else {
                continue;
            };
            let relation = if out_id == Some(in_id) {
                Some(Relation::Is)
            } else if out_id.is_some_and(|o| ids_up_from(inp.path).contains(&o)) {
                Some(Relation::Contains)
            } else if out_up.contains(&in_id) {
                Some(Relation::Inside)
            } else {
                None
            };
            if let Some(relation) = relation {
                return Err(OverlapError {
                    output_role: out.role.to_string(),
                    output: out.path.to_path_buf(),
                    input_role: inp.role.to_string(),
                    input: inp.path.to_path_buf(),
                    relation,
                });
            }
        }
    }
    Ok(())
}

/// The inputs and outputs of one run, collected and checked in one go.
#[derive(Debug, Default)]
pub struct Paths<'a> {
    inputs: Vec<Input<'a>>,
    outputs: Vec<Output<'a>>,
}

impl<'a> Paths<'a> {
    pub fn new() -> Paths<'a> {
        Paths::default()
    }

    /// Adds an input, if there is one.
    pub fn input(mut self, role: &'a str, path: Option<&'a Path>) -> Paths<'a> {
        if let Some(path) = path {
            self.inputs.push(Input { role, path });
        }
        self
    }

    /// Adds an output, if there is one.
    pub fn output(mut self, role: &'a str, path: Option<&'a Path>) -> Paths<'a> {
        if let Some(path) = path {
            self.outputs.push(Output { role, path });
        }
        self
    }

    /// [`check`], as the verbs report it.
    pub fn check(&self) -> anyhow::Result<()> {
        check(&self.inputs, &self.outputs)
            .map_err(|e| anyhow::Error::new(e).context("nothing was written"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rel(inputs: &[(&str, &Path)], out: &Path) -> Option<Relation> {
        let inputs: Vec<Input> = inputs
            .iter()
            .map(|(role, path)| Input { role, path })
            .collect();
        check(
            &inputs,
            &[Output {
                role: "--out",
                path: out,
            }],
        )
        .err()
        .map(|e| e.relation)
    }

    #[test]
    fn same_file_through_symlink_hard_link_and_dotdot() {
        let d = tempfile::tempdir().unwrap();
        let inv = d.path().join("lab.yaml");
        std::fs::write(&inv, "version: 1\n").unwrap();
        let link = d.path().join("link.yaml");
        std::os::unix::fs::symlink(&inv, &link).unwrap();
        let hard = d.path().join("hard.yaml");
        std::fs::hard_link(&inv, &hard).unwrap();
        std::fs::create_dir(d.path().join("sub")).unwrap();
        let dotdot = d.path().join("sub/../lab.yaml");
        for out in [&inv, &link, &hard, &dotdot] {
            assert_eq!(
                rel(&[("inventory", &inv)], out),
                Some(Relation::Is),
                "{out:?}"
            );
        }
        // A new file beside it is fine.
        assert_eq!(rel(&[("inventory", &inv)], &d.path().join("x.iso")), None);
    }

    #[test]
    fn output_dir_holding_an_input_is_refused_also_through_a_symlinked_dir() {
        let d = tempfile::tempdir().unwrap();
        let out = d.path().join("out");
        std::fs::create_dir_all(out.join("deep")).unwrap();
        let inv = out.join("deep/lab.yaml");
        std::fs::write(&inv, "version: 1\n").unwrap();
        assert_eq!(rel(&[("inventory", &inv)], &out), Some(Relation::Contains));
        // The inventory reached through a symlink that points into the output.
        let via = d.path().join("via");
        std::os::unix::fs::symlink(out.join("deep"), &via).unwrap();
        assert_eq!(
            rel(&[("inventory", &via.join("lab.yaml"))], &out),
            Some(Relation::Contains)
        );
        // The output named through a symlink to the directory.
        let out_link = d.path().join("out-link");
        std::os::unix::fs::symlink(&out, &out_link).unwrap();
        assert_eq!(
            rel(&[("inventory", &inv)], &out_link),
            Some(Relation::Contains)
        );
        // A sibling directory does not contain it.
        std::fs::create_dir(d.path().join("other")).unwrap();
        assert_eq!(rel(&[("inventory", &inv)], &d.path().join("other")), None);
    }

    #[test]
    fn output_inside_an_input_directory_is_refused_even_before_it_exists() {
        let d = tempfile::tempdir().unwrap();
        let templates = d.path().join("templates");
        std::fs::create_dir(&templates).unwrap();
        assert_eq!(
            rel(&[("--templates", &templates)], &templates.join("a/b/out")),
            Some(Relation::Inside)
        );
        let link = d.path().join("t-link");
        std::os::unix::fs::symlink(&templates, &link).unwrap();
        assert_eq!(
            rel(&[("--templates", &templates)], &link.join("out.iso")),
            Some(Relation::Inside)
        );
        assert_eq!(
            rel(&[("--templates", &templates)], &d.path().join("out")),
            None
        );
    }

    #[test]
    fn a_dotdot_after_a_directory_not_made_yet_is_followed() {
        // The verb creates `new` (create_dir_all of --out or of its parent), then
        // writes `new/..`: the input's own directory or file.
        let d = tempfile::tempdir().unwrap();
        let holder = d.path().join("holder");
        std::fs::create_dir(&holder).unwrap();
        let inv = holder.join("lab.yaml");
        std::fs::write(&inv, "version: 1\n").unwrap();
        assert_eq!(
            rel(&[("inventory", &inv)], &holder.join("new/../lab.yaml")),
            Some(Relation::Is)
        );
        assert_eq!(
            rel(&[("inventory", &inv)], &holder.join("new/deeper/../..")),
            Some(Relation::Contains)
        );
        assert_eq!(
            rel(
                &[("inventory", &inv)],
                &d.path().join("new/../holder/new/x")
            ),
            None
        );
        // Back up through a missing directory, then down a link to the input's
        // directory: the link is followed as the kernel will.
        let templates = d.path().join("templates");
        std::fs::create_dir(&templates).unwrap();
        std::os::unix::fs::symlink(&templates, holder.join("t-link")).unwrap();
        assert_eq!(
            rel(
                &[("--templates", &templates)],
                &holder.join("new/../t-link/out")
            ),
            Some(Relation::Inside)
        );
        // A `..` right after a link climbs from where the link led.
        std::fs::create_dir(templates.join("sub")).unwrap();
        std::os::unix::fs::symlink(templates.join("sub"), d.path().join("s-link")).unwrap();
        assert_eq!(
            rel(
                &[("--templates", &templates)],
                &d.path().join("s-link/../new/out")
            ),
            Some(Relation::Inside)
        );
    }

    #[test]
    fn missing_inputs_are_left_to_the_verb() {
        let d = tempfile::tempdir().unwrap();
        assert_eq!(
            rel(&[("inventory", &d.path().join("nope.yaml"))], d.path()),
            None
        );
    }

    #[test]
    fn the_message_names_both_paths_and_what_to_do() {
        let d = tempfile::tempdir().unwrap();
        let inv = d.path().join("lab.yaml");
        std::fs::write(&inv, "x").unwrap();
        let e = check(
            &[Input {
                role: "inventory",
                path: &inv,
            }],
            &[Output {
                role: "--bundle",
                path: &inv,
            }],
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("--bundle "), "{e}");
        assert!(e.contains("is the inventory"), "{e}");
        assert!(e.contains("choose another --bundle path"), "{e}");
    }
}
