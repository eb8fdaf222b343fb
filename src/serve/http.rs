//! Request handling: static files of `DIR/http` for installers and agents, first-boot
//! reports (`POST /report/<fqdn>`), and the fleet status (`/`, `/status.json`).

use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full, LengthLimitError, Limited};
use hvseed_plan::report::{Report, REPORT_SCHEMA};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncSeekExt};

use super::paths::{self, PathRefusal};
use super::status;
use super::store::{now, Seen, Store};

/// Largest accepted report body. A real report is a few KiB (about twenty checks and
/// the CPU flags); this leaves room for verbose check details.
pub const MAX_REPORT_BYTES: usize = 256 * 1024;
/// How long a client may take to send a report body.
const BODY_TIMEOUT: Duration = Duration::from_secs(30);
/// Read size for streamed files.
const CHUNK: usize = 64 * 1024;

pub type Body = BoxBody<Bytes, io::Error>;

/// Entry point for every request: routes it and logs the outcome.
pub async fn handle(
    store: Arc<Store>,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let resp = route(&store, peer, req).await;
    let bytes = if method == Method::HEAD {
        0
    } else {
        resp.headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    tracing::info!(
        "{peer} {method} {path:?} {} {bytes} bytes",
        resp.status().as_u16()
    );
    Ok(resp)
}

async fn route(store: &Arc<Store>, peer: SocketAddr, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let head = req.method() == Method::HEAD;
    match (req.method(), path.as_str()) {
        (&Method::GET | &Method::HEAD, "/") => {
            let store = store.clone();
            match tokio::task::spawn_blocking(move || status::html(&status::collect(&store))).await
            {
                Ok(page) => full(StatusCode::OK, "text/html; charset=utf-8", page, head),
                Err(e) => internal(&e),
            }
        }
        (&Method::GET | &Method::HEAD, "/status.json") => {
            let store = store.clone();
            match tokio::task::spawn_blocking(move || {
                let mut s =
                    serde_json::to_string_pretty(&status::collect(&store)).unwrap_or_default();
                s.push('\n');
                s
            })
            .await
            {
                Ok(json) => full(StatusCode::OK, "application/json", json, head),
                Err(e) => internal(&e),
            }
        }
        (&Method::POST, p) if p.starts_with("/report/") => report(store, req).await,
        (&Method::GET | &Method::HEAD, _) => {
            let range = req
                .headers()
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            static_file(store, peer, &path, range, head).await
        }
        (&Method::POST, _) => {
            let mut r = text(
                StatusCode::METHOD_NOT_ALLOWED,
                "POST is accepted only at /report/<fqdn>\n",
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
            r
        }
        _ => {
            let mut r = text(
                StatusCode::METHOD_NOT_ALLOWED,
                "only GET, HEAD and POST /report/<fqdn> are served\n",
            );
            r.headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD, POST"));
            r
        }
    }
}

/// `POST /report/<fqdn>`: a first-boot report for a host of this tree. Stored only if
/// it is whole, parses, and names the host and cluster it is posted for.
async fn report(store: &Arc<Store>, req: Request<Incoming>) -> Response<Body> {
    let fqdn = req.uri().path()["/report/".len()..].to_owned();
    let lookup = {
        let (store, fqdn) = (store.clone(), fqdn.clone());
        tokio::task::spawn_blocking(move || store.host(&fqdn)).await
    };
    let host = match lookup {
        Ok(Some(h)) => h,
        Ok(None) => {
            return text(
                StatusCode::NOT_FOUND,
                &format!("{fqdn:?} is not a host of this tree (no hosts/<fqdn>/plan.json)\n"),
            )
        }
        Err(e) => return internal(&e),
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_REPORT_BYTES as u64) {
        return too_large();
    }
    // Limited counts what actually arrives, so a body longer than it claimed (chunked,
    // or a wrong length) is cut off at the limit, never buffered whole.
    let body = Limited::new(req.into_body(), MAX_REPORT_BYTES);
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, body.collect()).await {
        Err(_) => {
            return text(
                StatusCode::REQUEST_TIMEOUT,
                "the report body did not arrive in time\n",
            )
        }
        Ok(Err(e)) if e.downcast_ref::<LengthLimitError>().is_some() => return too_large(),
        Ok(Err(e)) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("reading the report body: {e}\n"),
            )
        }
        Ok(Ok(collected)) => collected.to_bytes(),
    };
    let report: Report = match serde_json::from_slice(&bytes) {
        Ok(r) => r,
        Err(e) => {
            return text(
                StatusCode::BAD_REQUEST,
                &format!("not a first-boot report: {e}\n"),
            )
        }
    };
    let problem = if report.schema != REPORT_SCHEMA {
        Some(format!(
            "report schema {} is not supported (this server reads schema {REPORT_SCHEMA})",
            report.schema
        ))
    } else if report.fqdn != host.fqdn {
        Some(format!(
            "the report is for {:?}, but was posted to /report/{}",
            report.fqdn, host.fqdn
        ))
    } else if report.cluster != host.cluster {
        Some(format!(
            "the report names cluster {:?}, but {} is in cluster {:?}",
            report.cluster, host.fqdn, host.cluster
        ))
    } else {
        None
    };
    if let Some(p) = problem {
        return text(StatusCode::BAD_REQUEST, &format!("{p}\n"));
    }
    let saver = store.clone();
    match tokio::task::spawn_blocking(move || saver.store_report(&report)).await {
        Ok(Ok(path)) => {
            tracing::info!("stored the report of {} in {}", host.fqdn, path.display());
            let store = store.clone();
            let _ = tokio::task::spawn_blocking(move || disarm(&store, &host, "its report")).await;
            text(StatusCode::OK, "report stored\n")
        }
        Ok(Err(e)) => {
            tracing::error!("storing the report of {}: {e:#}", host.fqdn);
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the report could not be stored; see the server log\n",
            )
        }
        Err(e) => internal(&e),
    }
}

/// A file under `DIR/http`, streamed; a single byte range is honoured.
async fn static_file(
    store: &Arc<Store>,
    peer: SocketAddr,
    raw_path: &str,
    range: Option<String>,
    head: bool,
) -> Response<Body> {
    let request_path = match paths::parse(raw_path) {
        Ok(p) => p,
        Err(PathRefusal::BadPath(why)) => {
            return text(StatusCode::BAD_REQUEST, &format!("bad path: {why}\n"))
        }
        Err(_) => return not_found(),
    };
    let root = store.http.clone();
    let install_file_of = match request_path.segments.as_slice() {
        [hosts, fqdn, file] if hosts == "hosts" && (file == "ks.cfg" || file == "preseed.cfg") => {
            Some((fqdn.clone(), file.clone()))
        }
        _ => None,
    };
    let opened =
        match tokio::task::spawn_blocking(move || paths::open_under(&root, &request_path)).await {
            Ok(r) => r,
            Err(e) => return internal(&e),
        };
    let (file, canonical) = match opened {
        Ok(x) => x,
        Err(PathRefusal::Outside) => {
            tracing::warn!("{peer}: refused {raw_path:?}: it resolves outside the served tree");
            return text(StatusCode::FORBIDDEN, "forbidden\n");
        }
        Err(_) => return not_found(),
    };
    let len = match file.metadata() {
        Ok(m) => m.len(),
        Err(e) => return internal(&e),
    };
    let (status, start, count) = match range.map(|r| parse_range(&r, len)) {
        None | Some(Ok(None)) => (StatusCode::OK, 0, len),
        Some(Ok(Some((s, e)))) => (StatusCode::PARTIAL_CONTENT, s, e - s + 1),
        Some(Err(())) => {
            let mut r = text(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable\n");
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return r;
        }
    };
    let body = if head {
        empty()
    } else {
        let mut file = tokio::fs::File::from_std(file);
        if start > 0 {
            if let Err(e) = file.seek(std::io::SeekFrom::Start(start)).await {
                return internal(&e);
            }
        }
        FileBody {
            file,
            buf: BytesMut::new(),
            left: count,
        }
        .boxed()
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(paths::content_type(&canonical)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", start + count - 1))
        {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    if let (false, Some((fqdn, file))) = (head, install_file_of) {
        // Recorded before the installer gets its file, so the page never lags behind.
        record_seen(store, peer, fqdn, file).await;
    }
    r
}

/// Parses a `Range` header against a file of `len` bytes. `Ok(None)`: serve it whole
/// (no header, or a form we do not serve partially, such as several ranges).
/// `Err(())`: unsatisfiable (416).
pub fn parse_range(value: &str, len: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return Ok(None);
    };
    if spec.contains(',') {
        return Ok(None);
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return Ok(None);
    };
    let (a, b) = (a.trim(), b.trim());
    let (start, end) = if a.is_empty() {
        // Suffix: the last `b` bytes.
        let Ok(n) = b.parse::<u64>() else {
            return Ok(None);
        };
        if n == 0 || len == 0 {
            return Err(());
        }
        (len.saturating_sub(n), len - 1)
    } else {
        let Ok(start) = a.parse::<u64>() else {
            return Ok(None);
        };
        let end = if b.is_empty() {
            len.saturating_sub(1)
        } else {
            match b.parse::<u64>() {
                Ok(e) if e >= start => e.min(len.saturating_sub(1)),
                _ => return Ok(None),
            }
        };
        if start >= len {
            return Err(());
        }
        (start, end)
    };
    Ok(Some((start, end)))
}

/// Streams `left` bytes from a file without holding more than one chunk.
struct FileBody {
    file: tokio::fs::File,
    buf: BytesMut,
    left: u64,
}

impl hyper::body::Body for FileBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        if this.left == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(this.left).map_or(CHUNK, |l| l.min(CHUNK));
        if this.buf.capacity() < want {
            this.buf.reserve(want);
        }
        let mut read_buf = tokio::io::ReadBuf::uninit(&mut this.buf.spare_capacity_mut()[..want]);
        match Pin::new(&mut this.file).poll_read(cx, &mut read_buf) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) => {
                let n = read_buf.filled().len();
                if n == 0 {
                    return Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the file shrank while it was being served",
                    ))));
                }
                // SAFETY: `poll_read` initialised the first `n` bytes of the spare
                // capacity, which ReadBuf::filled() reports.
                unsafe { this.buf.set_len(n) };
                this.left -= n as u64;
                Poll::Ready(Some(Ok(Frame::data(this.buf.split().freeze()))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.left == 0
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.left)
    }
}

/// Notes that an installer fetched `fqdn`'s install file. A failure is logged, not
/// returned: the install must go on even if the status page cannot follow it.
async fn record_seen(store: &Arc<Store>, peer: SocketAddr, fqdn: String, file: String) {
    let store = store.clone();
    let _ = tokio::task::spawn_blocking(move || {
        let Some(host) = store.host(&fqdn) else {
            return;
        };
        let why = format!("its installer fetched {file} from {peer}");
        let seen = Seen {
            file,
            at: now(),
            peer: peer.to_string(),
        };
        if let Err(e) = store.record_seen(&fqdn, &seen) {
            tracing::warn!("recording that {fqdn} is installing: {e:#}");
        }
        disarm(&store, &host, &why);
    })
    .await;
}

/// "PXE just once": the host's PXE entry now boots its local disk. A failure is
/// logged, not returned: the install goes on (and reinstalls at its next PXE boot).
fn disarm(store: &Store, host: &super::store::HostInfo, why: &str) {
    match store.mark_installed(host, why) {
        Ok(true) => tracing::info!(
            "{}: PXE entry disarmed ({why}): it boots from its local disk from now on; \
             `hvseed pxe ... --reinstall {}` arms it again",
            host.fqdn,
            host.fqdn
        ),
        Ok(false) => {}
        Err(e) => tracing::error!(
            "{}: disarming its PXE entry failed, so its next PXE boot installs it again: {e:#}",
            host.fqdn
        ),
    }
}

fn empty() -> Body {
    Empty::<Bytes>::new()
        .map_err(|never| match never {})
        .boxed()
}

fn full(
    status: StatusCode,
    content_type: &'static str,
    body: String,
    head: bool,
) -> Response<Body> {
    let len = body.len();
    let body = if head {
        empty()
    } else {
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed()
    };
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn text(status: StatusCode, msg: &str) -> Response<Body> {
    full(status, "text/plain; charset=utf-8", msg.to_owned(), false)
}

fn not_found() -> Response<Body> {
    text(StatusCode::NOT_FOUND, "not found\n")
}

fn too_large() -> Response<Body> {
    let mut r = text(
        StatusCode::PAYLOAD_TOO_LARGE,
        &format!("a report may be at most {MAX_REPORT_BYTES} bytes\n"),
    );
    // The unread rest of the body makes the connection unusable for another request.
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

fn internal(e: &dyn std::fmt::Display) -> Response<Body> {
    tracing::error!("internal error: {e}");
    text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n")
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges_follow_rfc_9110() {
        assert_eq!(parse_range("bytes=0-9", 100), Ok(Some((0, 9))));
        assert_eq!(parse_range("bytes=90-", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=90-500", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=-10", 100), Ok(Some((90, 99))));
        assert_eq!(parse_range("bytes=-500", 100), Ok(Some((0, 99))));
        assert_eq!(parse_range("bytes=100-", 100), Err(()));
        assert_eq!(parse_range("bytes=-0", 100), Err(()));
        assert_eq!(parse_range("bytes=0-0", 0), Err(()));
        // Forms served whole rather than refused.
        assert_eq!(parse_range("bytes=0-1,5-6", 100), Ok(None));
        assert_eq!(parse_range("bytes=9-1", 100), Ok(None));
        assert_eq!(parse_range("items=0-1", 100), Ok(None));
        assert_eq!(parse_range("bytes=x-1", 100), Ok(None));
    }
}
