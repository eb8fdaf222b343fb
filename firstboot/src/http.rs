//! POSTing the report to `hvseed serve`: plain HTTP/1.1 over a TcpStream with
//! timeouts. Only `http://` URLs — the agent carries no TLS stack (it must stay small
//! and static); the report holds no secrets, and the URL comes from the plan.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum PostError {
    #[error("{0}: only http:// URLs are supported")]
    Scheme(String),
    #[error("{url}: {what}")]
    Failed { url: String, what: String },
}

/// POSTs `body` as JSON; Ok with the status code when it is 2xx.
pub fn post_json(url: &str, body: &[u8], timeout: Duration) -> Result<u16, PostError> {
    if url.chars().any(|c| c.is_control() || c == ' ') {
        return Err(PostError::Failed {
            url: url.escape_debug().to_string(),
            what: "spaces or control characters in the URL".into(),
        });
    }
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| PostError::Scheme(url.to_string()))?;
    let fail = |what: String| PostError::Failed {
        url: url.to_string(),
        what,
    };
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if hostport.is_empty() || hostport.contains('@') {
        return Err(fail("no host in the URL".into()));
    }
    let with_port = if hostport
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        hostport.to_string()
    } else {
        format!("{hostport}:80")
    };
    let addrs = with_port
        .to_socket_addrs()
        .map_err(|e| fail(format!("cannot resolve {hostport}: {e}")))?;
    let mut last = String::from("no address");
    for addr in addrs {
        let mut s = match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => s,
            Err(e) => {
                last = format!("connecting to {addr}: {e}");
                continue;
            }
        };
        s.set_read_timeout(Some(timeout)).ok();
        s.set_write_timeout(Some(timeout)).ok();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\nUser-Agent: hvseed-firstboot/{}\r\n\r\n",
            body.len(),
            env!("CARGO_PKG_VERSION")
        );
        s.write_all(head.as_bytes())
            .and_then(|_| s.write_all(body))
            .map_err(|e| fail(format!("sending: {e}")))?;
        let resp = read_answer(&mut s, timeout);
        let text = String::from_utf8_lossy(&resp);
        let status = text
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| fail("no HTTP status in the answer".into()))?;
        return if (200..300).contains(&status) {
            Ok(status)
        } else {
            Err(fail(format!("the server answered {status}")))
        };
    }
    Err(fail(last))
}

/// The most of an answer that is read: the status line is all the agent needs.
pub const ANSWER_LIMIT: usize = 64 * 1024;

/// Reads the server's answer: at most [`ANSWER_LIMIT`] bytes and, whatever the
/// server does (a byte every few seconds, an endless body), for at most three times
/// `timeout` in all. Reading stops as soon as the status line is complete.
fn read_answer(s: &mut TcpStream, timeout: Duration) -> Vec<u8> {
    let deadline = Instant::now() + timeout * 3;
    let mut resp = Vec::new();
    let mut chunk = [0u8; 4096];
    while resp.len() < ANSWER_LIMIT && !resp.contains(&b'\n') {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        s.set_read_timeout(Some(left.min(timeout))).ok();
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => resp.extend_from_slice(&chunk[..n.min(ANSWER_LIMIT - resp.len())]),
        }
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_it_cannot_or_must_not_send() {
        let t = Duration::from_millis(100);
        assert!(matches!(
            post_json("https://h/x", b"{}", t),
            Err(PostError::Scheme(_))
        ));
        assert!(post_json("http://h/x\r\nX-Evil: 1", b"{}", t).is_err());
        assert!(post_json("http:///x", b"{}", t).is_err());
    }

    /// A server that answers one byte at a time, never finishing its status line (or
    /// an endless one): the POST gives up after a bounded time and size.
    #[test]
    fn a_dripping_or_endless_answer_is_bounded() {
        use std::net::TcpListener;
        for endless in [false, true] {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}/report/x", l.local_addr().unwrap());
            let server = std::thread::spawn(move || {
                let (mut s, _) = l.accept().unwrap();
                let mut sink = [0u8; 4096];
                let _ = s.read(&mut sink);
                // Ends when the agent closes the connection (the write fails).
                loop {
                    let chunk: &[u8] = if endless { &[b'x'; 4096] } else { b"H" };
                    if s.write_all(chunk).is_err() {
                        return;
                    }
                    if !endless {
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            });
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let _ = tx.send(post_json(&url, b"{}", Duration::from_millis(200)));
            });
            // A guard against a hang, not a timing requirement.
            let r = rx
                .recv_timeout(Duration::from_secs(60))
                .expect("post_json did not return");
            let e = r.unwrap_err().to_string();
            assert!(e.contains("no HTTP status"), "{e}");
            server.join().unwrap();
        }
    }
}
