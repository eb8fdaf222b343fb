//! Integration tests for `hvseed serve`: the real binary on loopback, over a tree laid
//! out here, spoken to by a raw TCP client (so requests are sent exactly as written,
//! with no client-side normalisation of paths or lengths).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use hvseed_plan::plan::Plan;
use hvseed_plan::report::{CheckResult, CpuFacts, Report, ReportStatus, REPORT_SCHEMA};

use crate::util::{self, exchange, hvseed, ServeGuard as Server};

const SECRET: &str = "TOP-SECRET-OUTSIDE-THE-TREE";

/// The plan of the lab's first host (profiles/examples/lab-centos6.yaml), renamed to
/// host `n` of `cluster`, reporting to a server at 192.168.42.2:8080.
fn plan(cluster: &str, fqdn: &str, n: u8) -> Plan {
    let mut inv = util::lab_inventory();
    inv.cluster = cluster.into();
    let mut host = inv.hosts[0].clone();
    host.fqdn = fqdn.into();
    host.mac = format!("52:54:00:12:34:{n:02x}");
    host.ip = [192, 168, 42, 10 + n].into();
    host.plan(
        &inv,
        Some(format!("http://192.168.42.2:8080/report/{fqdn}")),
    )
}

/// A tree as `hvseed pxe` lays it out: DIR/http with hosts, the agent, a package
/// tree file; DIR/tftp; and a secret beside DIR/http that must never be served.
fn tree(hosts: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let http = dir.path().join("http");
    for (i, (cluster, fqdn)) in hosts.iter().enumerate() {
        add_host(dir.path(), cluster, fqdn, u8::try_from(i).unwrap());
    }
    std::fs::create_dir_all(http.join("repodata")).unwrap();
    std::fs::write(
        http.join("repodata/repomd.xml"),
        "<?xml version=\"1.0\"?>\n<repomd/>\n",
    )
    .unwrap();
    // Not text, not a multiple of any buffer size: catches truncation and re-encoding.
    let agent: Vec<u8> = (0..300_007u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(http.join("hvseed-firstboot"), agent).unwrap();
    std::fs::create_dir_all(dir.path().join("tftp")).unwrap();
    std::fs::write(dir.path().join("tftp/pxelinux.0"), SECRET).unwrap();
    std::fs::write(dir.path().join("secret.txt"), SECRET).unwrap();
    dir
}

fn add_host(dir: &Path, cluster: &str, fqdn: &str, n: u8) {
    let host = dir.join("http/hosts").join(fqdn);
    std::fs::create_dir_all(&host).unwrap();
    std::fs::write(host.join("plan.json"), plan(cluster, fqdn, n).to_json()).unwrap();
    std::fs::write(
        host.join("ks.cfg"),
        format!("# kickstart for {fqdn}\ntext\nreboot\n"),
    )
    .unwrap();
}

fn report(cluster: &str, fqdn: &str, flags: &[&str], failed: Option<(&str, &str)>) -> Report {
    let mut checks = vec![CheckResult {
        name: "x86-64".into(),
        ok: true,
        detail: "x86_64".into(),
    }];
    if let Some((name, detail)) = failed {
        checks.push(CheckResult {
            name: name.into(),
            ok: false,
            detail: detail.into(),
        });
    }
    Report {
        schema: REPORT_SCHEMA,
        cluster: cluster.into(),
        fqdn: fqdn.into(),
        agent_version: "0.1.0".into(),
        status: if failed.is_some() {
            ReportStatus::Failed
        } else {
            ReportStatus::Ready
        },
        finished_at: 1_764_340_000,
        checks,
        cpu: CpuFacts {
            model: "Intel(R) Xeon(R) CPU E5-2620 0 @ 2.00GHz".into(),
            flags: flags.iter().map(|f| (*f).to_owned()).collect(),
            count: 12,
        },
    }
}

const FLAGS: [&str; 5] = ["avx", "lm", "sse4_2", "vmx", "x2apic"];

fn host<'a>(status: &'a serde_json::Value, fqdn: &str) -> &'a serde_json::Value {
    status["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["hosts"].as_array().unwrap())
        .find(|h| h["fqdn"] == fqdn)
        .unwrap_or_else(|| panic!("{fqdn} not in status {status:#}"))
}

fn cluster<'a>(status: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    status["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("cluster {name} not in status {status:#}"))
}

/// Every file under DIR/reports (the directory may not exist yet).
fn stored(dir: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(dir.join("reports")) {
        Ok(entries) => entries.map(|e| e.unwrap().path()).collect(),
        Err(_) => Vec::new(),
    }
}

#[test]
fn files_are_served_byte_identical_with_their_content_types() {
    let dir = tree(&[("lab", "kvm1.lab.example"), ("lab", "kvm2.lab.example")]);
    let http = dir.path().join("http");
    let server = Server::start(dir.path());

    for (path, file, ctype) in [
        (
            "/hosts/kvm1.lab.example/ks.cfg",
            "hosts/kvm1.lab.example/ks.cfg",
            "text/plain; charset=utf-8",
        ),
        (
            "/hosts/kvm1.lab.example/plan.json",
            "hosts/kvm1.lab.example/plan.json",
            "application/json",
        ),
        (
            "/hvseed-firstboot",
            "hvseed-firstboot",
            "application/octet-stream",
        ),
        (
            "/repodata/repomd.xml",
            "repodata/repomd.xml",
            "application/xml",
        ),
    ] {
        let want = std::fs::read(http.join(file)).unwrap();
        let r = server.get(path);
        assert_eq!(r.status, 200, "{path}: {}", r.text());
        assert_eq!(r.header("content-type"), Some(ctype), "{path}");
        assert_eq!(
            r.header("content-length"),
            Some(want.len().to_string().as_str())
        );
        assert!(r.body == want, "{path}: body differs from {file}");

        let h = server.raw(
            format!("HEAD {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        );
        assert_eq!(h.status, 200);
        assert_eq!(
            h.header("content-length"),
            Some(want.len().to_string().as_str())
        );
        assert!(h.body.is_empty(), "HEAD {path} sent a body");
    }

    // A byte range, as installers resume downloads.
    let agent = std::fs::read(http.join("hvseed-firstboot")).unwrap();
    let r = server.raw(
        b"GET /hvseed-firstboot HTTP/1.1\r\nHost: x\r\nRange: bytes=1000-1999\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 206);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 1000-1999/{}", agent.len()).as_str())
    );
    assert_eq!(r.body, agent[1000..2000]);
    let r = server.raw(
        b"GET /hvseed-firstboot HTTP/1.1\r\nHost: x\r\nRange: bytes=999999999-\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 416);

    assert_eq!(server.get("/hosts/nope.lab.example/ks.cfg").status, 404);
    assert_eq!(server.get("/hosts/").status, 404);

    // Fetching the kickstart marks the host as installing, durably.
    let status = server.status_json();
    assert_eq!(host(&status, "kvm1.lab.example")["state"], "installing");
    assert_eq!(host(&status, "kvm1.lab.example")["seen"]["file"], "ks.cfg");
    assert_eq!(host(&status, "kvm2.lab.example")["state"], "not-seen");
    assert!(dir.path().join("reports/kvm1.lab.example.seen").is_file());
    let page = server.get("/");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(page.text().contains("installing"));

    // Each request is logged with method, path, status, size and peer.
    let log = server.log_with("GET \"/hvseed-firstboot\" 200 300007 bytes");
    assert!(
        log.lines().any(|l| l.contains("127.0.0.1:")
            && l.contains("GET \"/hvseed-firstboot\" 200 300007 bytes")),
        "request not logged:\n{log}"
    );
}

#[test]
fn no_path_escapes_the_tree_in_any_encoding() {
    let dir = tree(&[("lab", "kvm1.lab.example")]);
    let http = dir.path().join("http");
    std::os::unix::fs::symlink("../secret.txt", http.join("leak")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("tftp"), http.join("tftp-link")).unwrap();
    std::os::unix::fs::symlink("/etc", http.join("etc-link")).unwrap();
    // A symlink that stays inside the tree is fine.
    std::os::unix::fs::symlink("hosts/kvm1.lab.example/ks.cfg", http.join("ks-link.cfg")).unwrap();
    let server = Server::start(dir.path());

    let attempts = [
        "/../secret.txt",
        "/hosts/../../secret.txt",
        "/hosts/kvm1.lab.example/../../../secret.txt",
        "/%2e%2e/secret.txt",
        "/%2E%2E%2Fsecret.txt",
        "/..%2fsecret.txt",
        "/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/%252e%252e/secret.txt",
        "/%252e%252e%252fsecret.txt",
        "/..%5csecret.txt",
        "/..\\secret.txt",
        "/hosts\\..\\..\\secret.txt",
        "/secret.txt%00",
        "/hosts/kvm1.lab.example/ks.cfg%00../../../secret.txt",
        "/%c0%ae%c0%ae/secret.txt",
        "/leak",
        "/tftp-link/pxelinux.0",
        "/etc-link/passwd",
        "/etc-link/hostname",
        "//etc/passwd",
        "http://127.0.0.1/../secret.txt",
        "/%2fetc%2fpasswd",
    ];
    for path in attempts {
        let r = server.get(path);
        assert!(
            (400..500).contains(&r.status),
            "{path:?} answered {} {:?}",
            r.status,
            r.text()
        );
        let body = r.text();
        assert!(
            !body.contains(SECRET) && !body.contains("root:"),
            "{path:?} leaked {body:?}"
        );
    }
    // Raw bytes that no client library would send.
    for raw in [
        &b"GET /..%00/secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..],
        &b"GET ../secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..],
        &b"GET /secret.txt\x00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"[..],
    ] {
        let mut s = TcpStream::connect(server.addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(raw).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let out = String::from_utf8_lossy(&out);
        assert!(out.starts_with("HTTP/1.1 4"), "{raw:?} answered {out:?}");
        assert!(!out.contains(SECRET), "{raw:?} leaked {out:?}");
    }

    let r = server.get("/ks-link.cfg");
    assert_eq!(r.status, 200);
    assert!(r.text().starts_with("# kickstart for kvm1.lab.example"));
    // The server is still healthy after all that.
    assert_eq!(server.get("/hosts/kvm1.lab.example/plan.json").status, 200);
}

#[test]
fn bad_reports_get_4xx_and_write_nothing() {
    let dir = tree(&[("lab", "kvm1.lab.example"), ("lab", "kvm2.lab.example")]);
    let server = Server::start(dir.path());
    let good = serde_json::to_vec(&report("lab", "kvm1.lab.example", &FLAGS, None)).unwrap();

    let r = server.post("/report/kvm1.lab.example", b"{\"schema\": 1, ");
    assert_eq!(r.status, 400, "{}", r.text());
    let r = server.post("/report/kvm1.lab.example", b"{\"schema\": 1}");
    assert_eq!(r.status, 400, "{}", r.text());
    let mut unknown_field: serde_json::Value = serde_json::from_slice(&good).unwrap();
    unknown_field["extra"] = "x".into();
    let r = server.post(
        "/report/kvm1.lab.example",
        &serde_json::to_vec(&unknown_field).unwrap(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let mut wrong_schema = report("lab", "kvm1.lab.example", &FLAGS, None);
    wrong_schema.schema = 99;
    let r = server.post(
        "/report/kvm1.lab.example",
        &serde_json::to_vec(&wrong_schema).unwrap(),
    );
    assert_eq!(r.status, 400, "{}", r.text());

    // Posted to one host, about another; and the wrong cluster.
    let r = server.post("/report/kvm2.lab.example", &good);
    assert_eq!(r.status, 400, "{}", r.text());
    let other = serde_json::to_vec(&report("other", "kvm1.lab.example", &FLAGS, None)).unwrap();
    let r = server.post("/report/kvm1.lab.example", &other);
    assert_eq!(r.status, 400, "{}", r.text());

    // Hosts not in the tree.
    let stranger = serde_json::to_vec(&report("lab", "kvm9.lab.example", &FLAGS, None)).unwrap();
    assert_eq!(
        server.post("/report/kvm9.lab.example", &stranger).status,
        404
    );
    assert_eq!(server.post("/report/..%2f..%2fsecret", &good).status, 404);
    assert_eq!(server.post("/report/", &good).status, 404);

    // Oversized, honestly declared: refused from the header alone.
    let r = server.raw(
        b"POST /report/kvm1.lab.example HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\
          Connection: close\r\n\r\n",
    );
    assert_eq!(r.status, 413, "{}", r.text());
    // Oversized and chunked (no length declared): cut off while reading.
    let mut chunked =
        b"POST /report/kvm1.lab.example HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
          Connection: close\r\n\r\n"
            .to_vec();
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..8 {
        chunked.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        chunked.extend_from_slice(&chunk);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    assert_eq!(server.raw(&chunked).status, 413);
    // A length that lies: a valid report padded far beyond what was declared. Only the
    // declared bytes are read; they are not a whole report.
    let mut lying = b"POST /report/kvm1.lab.example HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\
         Connection: close\r\n\r\n"
        .to_vec();
    lying.extend_from_slice(&good);
    lying.extend(std::iter::repeat_n(b' ', 512 * 1024));
    let r = server.raw(&lying);
    assert_eq!(r.status, 400, "{}", r.text());

    assert!(
        stored(dir.path()).is_empty(),
        "written on 4xx: {:?}",
        stored(dir.path())
    );
    let status = server.status_json();
    assert_eq!(host(&status, "kvm1.lab.example")["state"], "not-seen");
    // GET on the report URL is not a way in either.
    assert_eq!(server.get("/report/kvm1.lab.example").status, 404);
}

#[test]
fn reports_are_stored_shown_escaped_and_survive_a_restart() {
    let dir = tree(&[("lab", "kvm1.lab.example"), ("lab", "kvm2.lab.example")]);
    let server = Server::start(dir.path());

    let ready = report("lab", "kvm1.lab.example", &FLAGS, None);
    let r = server.post(
        "/report/kvm1.lab.example",
        &serde_json::to_vec(&ready).unwrap(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let hostile = "<script>alert('x')</script> & \"quoted\"";
    let failed = report(
        "lab",
        "kvm2.lab.example",
        &FLAGS,
        Some(("libvirtd-listening", hostile)),
    );
    let r = server.post(
        "/report/kvm2.lab.example",
        &serde_json::to_vec(&failed).unwrap(),
    );
    assert_eq!(r.status, 200, "{}", r.text());

    let on_disk: Report = serde_json::from_slice(
        &std::fs::read(dir.path().join("reports/kvm1.lab.example.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(on_disk, ready);
    let leftovers: Vec<_> = stored(dir.path())
        .into_iter()
        .filter(|p| p.extension().is_none_or(|e| e != "json"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");

    let check = |server: &Server| {
        let status = server.status_json();
        let kvm1 = host(&status, "kvm1.lab.example");
        assert_eq!(kvm1["state"], "ready");
        // A host that reported is installed: its PXE entry boots the local disk.
        assert_eq!(kvm1["pxe"], "disarmed");
        assert_eq!(kvm1["report"]["cpu"]["count"], 12);
        let kvm2 = host(&status, "kvm2.lab.example");
        assert_eq!(kvm2["state"], "failed");
        assert_eq!(
            kvm2["report"]["failed_checks"],
            serde_json::json!([{"name": "libvirtd-listening", "detail": hostile}])
        );
        let lab = cluster(&status, "lab");
        assert_eq!(lab["cpu"]["consistent"], true);
        assert_eq!(lab["cpu"]["reported"], 2);

        let page = server.get("/").text();
        assert!(page.contains("ready") && page.contains("failed"), "{page}");
        assert!(page.contains("libvirtd-listening"));
        assert!(
            page.contains(
                "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;"
            ),
            "{page}"
        );
        assert!(!page.contains("<script>"), "unescaped value in the page");
        assert!(
            page.contains("match across the 2 reporting host(s)"),
            "{page}"
        );
    };
    check(&server);
    drop(server);

    let server = Server::start(dir.path());
    check(&server);

    // A host added to the tree after start (a re-run of `hvseed pxe`) can report.
    add_host(dir.path(), "lab", "kvm3.lab.example", 3);
    let third = report("lab", "kvm3.lab.example", &FLAGS, None);
    let r = server.post(
        "/report/kvm3.lab.example",
        &serde_json::to_vec(&third).unwrap(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        host(&server.status_json(), "kvm3.lab.example")["state"],
        "ready"
    );

    // A reinstall after the report shows the host installing again.
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(server.get("/hosts/kvm1.lab.example/ks.cfg").status, 200);
    let state = host(&server.status_json(), "kvm1.lab.example")["state"].clone();
    assert_eq!(state, "installing");
}

#[test]
fn cpu_differences_within_a_cluster_are_shown() {
    let dir = tree(&[
        ("lab", "kvm1.lab.example"),
        ("lab", "kvm2.lab.example"),
        ("lab", "kvm3.lab.example"),
        ("edge", "edge1.lab.example"),
    ]);
    let server = Server::start(dir.path());
    let older = ["lm", "sse4_2", "vmx", "x2apic", "pdpe1gb"];
    for (cluster, fqdn, flags) in [
        ("lab", "kvm1.lab.example", &FLAGS[..]),
        ("lab", "kvm2.lab.example", &older[..]),
        ("lab", "kvm3.lab.example", &FLAGS[..]),
        // Another cluster's different CPU is no mismatch for this one.
        ("edge", "edge1.lab.example", &older[..]),
    ] {
        let r = server.post(
            &format!("/report/{fqdn}"),
            &serde_json::to_vec(&report(cluster, fqdn, flags, None)).unwrap(),
        );
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let status = server.status_json();
    let lab = &cluster(&status, "lab")["cpu"];
    assert_eq!(lab["consistent"], false);
    assert_eq!(lab["reported"], 3);
    assert_eq!(lab["flags"], serde_json::json!(FLAGS));
    assert_eq!(
        lab["differing"],
        serde_json::json!([{
            "fqdn": "kvm2.lab.example",
            "model": "Intel(R) Xeon(R) CPU E5-2620 0 @ 2.00GHz",
            "missing_flags": ["avx"],
            "extra_flags": ["pdpe1gb"],
        }])
    );
    assert_eq!(cluster(&status, "edge")["cpu"]["consistent"], true);

    let page = server.get("/").text();
    assert!(page.contains("CPU MISMATCH"), "{page}");
    assert!(
        page.contains("<li>kvm2.lab.example: missing flags avx extra flags pdpe1gb</li>"),
        "{page}"
    );
}

#[test]
fn a_burst_of_100_concurrent_clients_is_served_beside_stuck_ones() {
    let dir = tree(&[("lab", "kvm1.lab.example")]);
    std::fs::write(dir.path().join("http/big.img"), vec![0u8; 8 << 20]).unwrap();
    let server = Server::start(dir.path());
    let agent = Arc::new(std::fs::read(dir.path().join("http/hvseed-firstboot")).unwrap());
    let addr = server.addr;

    // Slow and stuck clients first: silent connections, half-sent headers, and
    // downloads nobody reads. They must not take the server from everyone else.
    let mut stuck = Vec::new();
    for i in 0..70 {
        let mut s = TcpStream::connect(addr).unwrap();
        match i % 7 {
            0..=2 => {}
            3..=5 => s.write_all(b"GET /status.json HTTP/1.1\r\nHo").unwrap(),
            _ => s
                .write_all(b"GET /big.img HTTP/1.1\r\nHost: x\r\n\r\n")
                .unwrap(),
        }
        stuck.push(s);
    }

    let start = Arc::new(Barrier::new(100));
    let clients: Vec<_> = (0..100)
        .map(|i| {
            let (start, agent) = (start.clone(), agent.clone());
            std::thread::spawn(move || {
                start.wait();
                let path = match i % 3 {
                    0 => "/hvseed-firstboot",
                    1 => "/hosts/kvm1.lab.example/plan.json",
                    _ => "/status.json",
                };
                let r = exchange(
                    addr,
                    format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                        .as_bytes(),
                );
                assert_eq!(r.status, 200, "client {i}: {path}");
                if i % 3 == 0 {
                    assert!(r.body == *agent, "client {i}: the agent arrived damaged");
                }
            })
        })
        .collect();
    let failures = clients.into_iter().filter_map(|c| c.join().err()).count();
    assert_eq!(failures, 0, "{failures} of 100 clients failed");
    drop(stuck);
}

#[test]
fn ctrl_c_stops_the_server_and_bind_errors_name_the_address() {
    let dir = tree(&[("lab", "kvm1.lab.example")]);
    let mut server = Server::start(dir.path());

    let second = hvseed()
        .arg("serve")
        .arg(dir.path())
        .args(["--listen", &server.addr.to_string()])
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(1));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains(&format!("cannot listen on {}", server.addr)) && err.contains("in use"),
        "{err}"
    );

    let missing = hvseed()
        .args(["serve", "/nonexistent/tree", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/tree/http"));

    // An idle keep-alive connection does not hold the shutdown up.
    let mut idle = TcpStream::connect(server.addr).unwrap();
    idle.write_all(b"GET /status.json HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    stops_cleanly_on(&mut server, "-INT");
    drop(idle);
}

/// Sends `sig` (as `kill` spells it) and asserts serve exits 0 within 10 s, saying
/// it is stopping.
fn stops_cleanly_on(server: &mut Server, sig: &str) {
    let pid = server.child.id().to_string();
    let kill = std::process::Command::new("kill")
        .args([sig, &pid])
        .status()
        .unwrap();
    assert!(kill.success());
    let mut exited = None;
    for _ in 0..100 {
        if let Some(s) = server.child.try_wait().unwrap() {
            exited = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let exited = exited.unwrap_or_else(|| panic!("serve did not stop on kill {sig} within 10 s"));
    assert!(exited.success(), "kill {sig}: exit status {exited}");
    assert!(server.log_with("stopping").contains("stopping"), "{sig}");
}

/// A killed serve (SIGKILL) can leave a half-written report or boot file behind; the
/// next start removes those whose run is gone and keeps everything else.
#[test]
fn a_killed_serves_temporaries_go_at_the_next_start() {
    let dir = tree(&[("lab", "kvm1.lab.example")]);
    let node = hvseed::interrupt::owner()
        .rsplit('-')
        .next()
        .unwrap()
        .to_string();
    // pid_max is at most 4194304: no process has this pid.
    let dead = format!(".hvseed-tmp-4194305-1-{node}-AbC1");
    let user = ".hvseed-tmp-notes".to_string();
    let live = format!(".hvseed-tmp-{}-AbC2", hvseed::interrupt::owner());
    for d in ["reports", "tftp/pxelinux.cfg"] {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
        for n in [&dead, &user, &live] {
            std::fs::write(dir.path().join(d).join(n), b"x").unwrap();
        }
    }
    let _server = Server::start(dir.path());
    for d in ["reports", "tftp/pxelinux.cfg"] {
        let d = dir.path().join(d);
        assert!(!d.join(&dead).exists(), "{} kept {dead}", d.display());
        assert!(
            d.join(&user).exists() && d.join(&live).exists(),
            "{}",
            d.display()
        );
    }
}

#[test]
fn sigterm_and_sighup_stop_the_server_like_ctrl_c() {
    for sig in ["-TERM", "-HUP"] {
        let dir = tree(&[("lab", "kvm1.lab.example")]);
        let mut server = Server::start(dir.path());
        stops_cleanly_on(&mut server, sig);
    }
}

#[test]
fn the_agents_own_http_client_delivers_its_report() {
    use hvseed_firstboot::http::post_json;
    let dir = tree(&[("lab", "kvm1.lab.example")]);
    let server = Server::start(dir.path());
    // What `hvseed-firstboot run` sends: the report as it writes it to disk.
    let mut json = serde_json::to_string_pretty(&report(
        "lab",
        "kvm1.lab.example",
        &FLAGS,
        Some(("no-vms", "1 VM defined")),
    ))
    .unwrap();
    json.push('\n');
    let url = format!("http://{}/report/kvm1.lab.example", server.addr);
    let code = post_json(&url, json.as_bytes(), Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}\n{}", server.log_text()));
    assert_eq!(code, 200);
    let kvm1 = host(&server.status_json(), "kvm1.lab.example").clone();
    assert_eq!(kvm1["state"], "failed");
    assert_eq!(kvm1["report"]["failed_checks"][0]["name"], "no-vms");

    // The agent learns of a refusal (and keeps its own copy of the report).
    let stranger = format!("http://{}/report/kvm9.lab.example", server.addr);
    let err = post_json(&stranger, json.as_bytes(), Duration::from_secs(10)).unwrap_err();
    assert!(err.to_string().contains("404"), "{err}");
}

/// Every file under `dir` with its bytes and mtime, and how many entries there are.
fn snapshot(dir: &Path) -> (Vec<(PathBuf, Vec<u8>, std::time::SystemTime)>, usize) {
    let mut files = Vec::new();
    let mut n = 0;
    for e in walkdir::WalkDir::new(dir).sort_by_file_name() {
        let e = e.unwrap();
        n += 1;
        if e.file_type().is_file() {
            let m = e.metadata().unwrap();
            files.push((
                e.path().to_path_buf(),
                std::fs::read(e.path()).unwrap(),
                m.modified().unwrap(),
            ));
        }
    }
    (files, n)
}

/// A symbolic link at DIR/reports or at a report file never makes the server write
/// outside DIR: a linked reports directory is refused at start (and, linked in while
/// the server runs, the report gets a 500 and the target is untouched); a linked
/// report file is replaced by the report, its target untouched.
#[test]
fn links_in_the_reports_directory_are_never_written_through() {
    let dir = tree(&[("lab", "kvm1.lab.example"), ("lab", "kvm2.lab.example")]);
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("kvm1.lab.example.json"), "precious\n").unwrap();
    std::fs::write(outside.path().join("victim"), "precious too\n").unwrap();
    let before = snapshot(outside.path());
    let body = serde_json::to_vec(&report("lab", "kvm1.lab.example", &FLAGS, None)).unwrap();

    // DIR/reports is a link out of the tree: serve refuses to start, naming it.
    std::os::unix::fs::symlink(outside.path(), dir.path().join("reports")).unwrap();
    let mut child = hvseed()
        .arg("serve")
        .arg(dir.path())
        .args(["--listen", "127.0.0.1:0"])
        .env("NO_COLOR", "1")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A server that started anyway is stopped (and the test fails below).
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let err = util::stderr_text(&mut child);
    assert!(status.is_some_and(|s| !s.success()), "serve started: {err}");
    assert!(
        err.contains("reports is a symbolic link") && err.contains("rm "),
        "{err}"
    );

    // Linked in while the server runs: the report is refused, nothing is written.
    std::fs::remove_file(dir.path().join("reports")).unwrap();
    let server = Server::start(dir.path());
    std::os::unix::fs::symlink(outside.path(), dir.path().join("reports")).unwrap();
    let r = server.post("/report/kvm1.lab.example", &body);
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(snapshot(outside.path()), before);

    // A report file that is a link: replaced by a real file, the target untouched.
    std::fs::remove_file(dir.path().join("reports")).unwrap();
    std::fs::create_dir(dir.path().join("reports")).unwrap();
    let linked = dir.path().join("reports/kvm1.lab.example.json");
    std::os::unix::fs::symlink(outside.path().join("victim"), &linked).unwrap();
    let r = server.post("/report/kvm1.lab.example", &body);
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(std::fs::symlink_metadata(&linked).unwrap().is_file());
    assert_eq!(std::fs::read(&linked).unwrap(), body_pretty(&body));
    assert_eq!(snapshot(outside.path()), before);
    // An installer fetching its file: the seen record is not written through a link.
    std::os::unix::fs::symlink(
        outside.path().join("victim"),
        dir.path().join("reports/kvm2.lab.example.seen"),
    )
    .unwrap();
    assert_eq!(server.get("/hosts/kvm2.lab.example/ks.cfg").status, 200);
    assert_eq!(snapshot(outside.path()), before);
    drop(server);
}

/// A report as the server stores it (pretty JSON and a newline).
fn body_pretty(body: &[u8]) -> Vec<u8> {
    let r: Report = serde_json::from_slice(body).unwrap();
    let mut v = serde_json::to_vec_pretty(&r).unwrap();
    v.push(b'\n');
    v
}
