//! Names that the agent turns into command arguments and file names (`ifcfg-<name>`,
//! `auto <name>`, `ovs-vsctl br-exists <name>`) must not start with `-`, where they
//! would be read as options: a plan carrying such a name is refused before ROOT is
//! touched, by `apply` and `verify` alike.

mod common;

use std::fs;

use common::*;

#[test]
fn a_plan_with_a_name_starting_with_a_dash_is_refused() {
    let cases: &[(&str, &[&str], &str)] = &[
        ("linux-bridge", &["network", "trunk_nic"], "--help"),
        ("linux-bridge", &["network", "public", "bridge"], "-rf"),
        ("linux-bridge", &["network", "private", "bridge"], "-"),
        ("openvswitch", &["network", "trunk_bridge"], "-rf"),
        ("openvswitch", &["network", "management", "bridge"], "--all"),
        ("linux-bridge", &["cpu", "model"], "-x"),
    ];
    for (net, path, name) in cases {
        for os in ["centos6", "ubuntu1204"] {
            let (tmp, root) = fixture_root(os);
            let before = tree_sum(&root);
            let mut p = plan_json(os, net, &[]);
            let mut v = &mut p;
            for k in &path[..path.len() - 1] {
                v = &mut v[*k];
            }
            v[path[path.len() - 1]] = (*name).into();
            let plan = tmp.path().join("dash.json");
            fs::write(&plan, p.to_string()).unwrap();
            for verb in ["apply", "verify"] {
                let out = run(agent()
                    .arg(verb)
                    .arg("--plan")
                    .arg(&plan)
                    .arg("--root")
                    .arg(&root));
                let err = String::from_utf8_lossy(&out.stderr);
                assert!(
                    !out.status.success(),
                    "{verb} accepted {path:?} = {name:?} on {os}: {err}"
                );
                let field = if path[0] == "cpu" {
                    "cpu".to_string()
                } else {
                    path.join(".")
                };
                assert!(
                    err.contains(&field) && err.contains(name),
                    "{verb}: {field} / {name} not in {err}"
                );
            }
            assert_eq!(tree_sum(&root), before, "ROOT touched for {name:?}");
        }
    }
}
