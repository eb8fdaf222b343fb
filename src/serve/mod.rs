//! `hvseed serve DIR --listen ADDR:PORT`: serves a PXE tree's `DIR/http` to installers
//! and first-boot agents, stores the agents' reports under `DIR/reports/`, and shows
//! the fleet at `/` (HTML) and `/status.json`.
//!
//! HTTP stack: hyper 1 (HTTP/1.1 only) on a two-thread tokio runtime. Bounds, so that a
//! rack booting at once is served and a misbehaving client cannot starve it:
//! - at most [`MAX_CONNECTIONS`] connections at a time; beyond that, new connections
//!   wait in the kernel's accept backlog until one closes;
//! - request headers must arrive within [`HEADER_TIMEOUT`], at most 64 KiB of them;
//! - a connection on which neither a read nor a write makes progress for
//!   [`STALL_TIMEOUT`] is closed (an idle keep-alive client, a client that stopped
//!   reading a download, a body that stopped arriving);
//! - report bodies: see [`http::MAX_REPORT_BYTES`].
//!
//! Hosts are read from `DIR/http/hosts/*/plan.json` at start; a request naming a host
//! not known yet re-reads them if that host's plan now exists, and the status page
//! re-reads them every time, so a re-run of `hvseed pxe` needs no restart.

mod http;
mod paths;
mod status;
mod store;

use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use anyhow::{bail, Context as _, Result};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Semaphore;
use tokio::time::Sleep;

pub use store::now as now_secs;
use store::Store;

/// Concurrent connections served; a rack of 40–80 hosts installing at once, each with
/// a couple of connections, fits several times over.
pub const MAX_CONNECTIONS: usize = 1024;
/// Time allowed for a request's headers to arrive.
const HEADER_TIMEOUT: Duration = Duration::from_secs(20);
/// A connection with no progress in either direction for this long is closed.
const STALL_TIMEOUT: Duration = Duration::from_secs(30);
/// On Ctrl-C, how long requests in flight get to finish.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// What `hvseed serve` is asked to do.
#[derive(Debug, Clone)]
pub struct Options {
    /// A tree written by `hvseed pxe`: its `http/` is served, reports go to `reports/`.
    pub dir: std::path::PathBuf,
    /// Address and port to listen on (port 0: any free port).
    pub listen: std::net::SocketAddr,
}

/// `hvseed serve`: serves until SIGINT or SIGTERM, then lets requests in flight finish.
pub fn run(c: Options) -> Result<ExitCode> {
    let ready = prepare(&c)?;
    let runtime = runtime()?;
    // The stop signals are caught from before the address is printed: a SIGTERM sent
    // as soon as the line shows stops the server the same way as a later one.
    let stop = {
        let _in_runtime = runtime.enter();
        StopSignals::catch()
    };
    // Printed, not logged, so that it shows with -q too and scripts can read the port.
    crate::say!(
        "hvseed serve: listening on http://{}/ (serving {})",
        ready.local,
        ready.http_dir.display()
    );
    runtime.block_on(serve(ready.listener, ready.store, stop.wait()))?;
    Ok(ExitCode::SUCCESS)
}

/// A server running on a thread of its own inside another verb (`hvseed vm --pxe`):
/// stopped, letting requests in flight finish, when dropped.
pub struct Embedded {
    /// The address it listens on.
    pub addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// Starts serving `c.dir` as `hvseed serve` would, on a thread; errors (a tree that is
/// not one, an address in use) come before it returns.
pub fn start_embedded(c: &Options) -> Result<Embedded> {
    let ready = prepare(c)?;
    let runtime = runtime()?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let addr = ready.local;
    let thread = std::thread::Builder::new()
        .name("serve".into())
        .spawn(move || {
            let stop = async move {
                let _ = rx.await;
            };
            if let Err(e) = runtime.block_on(serve(ready.listener, ready.store, stop)) {
                tracing::warn!("the embedded server stopped: {e:#}");
            }
        })
        .context("starting the embedded server's thread")?;
    Ok(Embedded {
        addr,
        stop: Some(tx),
        thread: Some(thread),
    })
}

impl Drop for Embedded {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A bound listener and the store of a tree, checked.
struct Prepared {
    listener: std::net::TcpListener,
    store: Arc<Store>,
    local: std::net::SocketAddr,
    http_dir: std::path::PathBuf,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the server runtime")
}

fn prepare(c: &Options) -> Result<Prepared> {
    let http_dir = c.dir.join("http");
    if !http_dir.is_dir() {
        bail!(
            "{} is not a directory: serve a tree written by `hvseed pxe` (DIR must hold http/)",
            http_dir.display()
        );
    }
    let http_dir = http_dir
        .canonicalize()
        .with_context(|| format!("resolving {}", http_dir.display()))?;
    let listener = std::net::TcpListener::bind(c.listen).map_err(|e| {
        let hint = match e.kind() {
            io::ErrorKind::AddrInUse => {
                "; another program listens there: stop it or choose another --listen"
            }
            io::ErrorKind::PermissionDenied => {
                "; ports below 1024 need root or CAP_NET_BIND_SERVICE: choose a port above 1023"
            }
            io::ErrorKind::AddrNotAvailable => "; no interface of this machine has that address",
            _ => "",
        };
        anyhow::anyhow!("cannot listen on {}: {e}{hint}", c.listen)
    })?;
    listener
        .set_nonblocking(true)
        .context("setting the listening socket non-blocking")?;
    let local = listener.local_addr().context("reading the bound address")?;

    let dir = crate::pxe::beneath::Beneath::open(&c.dir)?;
    // Reports are written only inside DIR: a link at DIR/reports is refused now rather
    // than at the first report.
    dir.dir("reports", false)?;
    // Temporaries a killed serve left where it writes (reports, PXE state, the per-MAC
    // boot files it disarms): only names with an owner tag of a run that is gone.
    // A directory reached through a link is left alone (nothing outside DIR).
    for d in [
        "reports",
        crate::pxe::PXE_STATE_DIR,
        "tftp",
        "tftp/pxelinux.cfg",
        "tftp/grub",
    ] {
        let mut p = c.dir.clone();
        let real = d.split('/').all(|part| {
            p.push(part);
            std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_dir())
        });
        if real {
            crate::interrupt::remove_stale(&p, crate::pxe::beneath::TMP_PREFIX, "");
        }
    }
    let store = Arc::new(Store::new(http_dir.clone(), dir));
    let hosts = store.rescan();
    let clusters: std::collections::BTreeSet<_> = hosts.values().map(|h| &h.cluster).collect();
    tracing::info!(
        "{} host(s) in {} cluster(s) under {}",
        hosts.len(),
        clusters.len(),
        http_dir.join("hosts").display()
    );
    Ok(Prepared {
        listener,
        store,
        local,
        http_dir,
    })
}

async fn serve(
    listener: std::net::TcpListener,
    store: Arc<Store>,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<()> {
    let listener =
        tokio::net::TcpListener::from_std(listener).context("registering the listening socket")?;
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // Tells open connections to finish their current request and close.
    let (stopping_tx, stopping_rx) = tokio::sync::watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => p.context("connection limiter closed")?,
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let store = store.clone();
        let mut stopping = stopping_rx.clone();
        tokio::spawn(async move {
            let io = TokioIo::new(StallGuard::new(stream, STALL_TIMEOUT));
            let service = service_fn(move |req| http::handle(store.clone(), peer, req));
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_TIMEOUT)
                .max_buf_size(64 * 1024)
                .serve_connection(io, service);
            tokio::pin!(conn);
            let result = tokio::select! {
                r = conn.as_mut() => r,
                () = stop_requested(&mut stopping) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!("{peer}: connection ended: {e}");
            }
            drop(permit);
        });
    }
    let _ = stopping_tx.send(true);
    drop(listener);
    tracing::info!("stopping: no new connections; waiting for requests in flight");
    let all = u32::try_from(MAX_CONNECTIONS).unwrap_or(u32::MAX);
    if tokio::time::timeout(DRAIN_TIMEOUT, slots.acquire_many(all))
        .await
        .is_err()
    {
        tracing::info!("stopping with connections still open");
    }
    Ok(())
}

/// Resolves once the server is stopping; never if the sender went away without that.
async fn stop_requested(stopping: &mut tokio::sync::watch::Receiver<bool>) {
    while !*stopping.borrow_and_update() {
        if stopping.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Ctrl-C (SIGINT) or SIGTERM.
/// SIGINT, SIGTERM and SIGHUP all stop the server the same way: it stops accepting,
/// lets each open connection finish its request (a report being stored is written
/// whole) and exits 0.
struct StopSignals(Vec<tokio::signal::unix::Signal>);

impl StopSignals {
    /// Takes over the three signals (inside the runtime).
    fn catch() -> StopSignals {
        use tokio::signal::unix::{signal, SignalKind};
        StopSignals(
            [
                SignalKind::interrupt(),
                SignalKind::terminate(),
                SignalKind::hangup(),
            ]
            .into_iter()
            .filter_map(|k| signal(k).ok())
            .collect(),
        )
    }

    /// Resolves at the first of them.
    async fn wait(mut self) {
        let waits = self.0.iter_mut().map(|s| Box::pin(s.recv()));
        if waits.len() == 0 {
            return std::future::pending().await;
        }
        futures_select_all(waits).await;
    }
}

/// The first of several futures to finish (a tiny `select_all`).
async fn futures_select_all<F: std::future::Future + Unpin>(futs: impl Iterator<Item = F>) {
    let mut futs: Vec<F> = futs.collect();
    std::future::poll_fn(move |cx| {
        for f in futs.iter_mut() {
            if std::pin::Pin::new(f).poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await
}

/// A socket that fails with `TimedOut` once neither reads nor writes have made any
/// progress for `limit`: one timer for both directions, so a long download that keeps
/// flowing is never cut while the read side waits idle beside it.
struct StallGuard<T> {
    inner: T,
    limit: Duration,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<T> StallGuard<T> {
    fn new(inner: T, limit: Duration) -> Self {
        StallGuard {
            inner,
            limit,
            timer: None,
        }
    }

    fn progressed<R>(&mut self, r: R) -> Poll<R> {
        self.timer = None;
        Poll::Ready(r)
    }

    fn waiting<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let limit = self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no progress for {}s", limit.as_secs()),
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for StallGuard<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_read(cx, buf) {
            Poll::Ready(r) => this.progressed(r),
            Poll::Pending => this.waiting(cx),
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for StallGuard<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write(cx, buf) {
            Poll::Ready(r) => this.progressed(r),
            Poll::Pending => this.waiting(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => this.progressed(r),
            Poll::Pending => this.waiting(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_flush(cx) {
            Poll::Ready(r) => this.progressed(r),
            Poll::Pending => this.waiting(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_shutdown(cx) {
            Poll::Ready(r) => this.progressed(r),
            Poll::Pending => this.waiting(cx),
        }
    }
}
