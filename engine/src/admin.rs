//! The admin HTTP endpoint: `/metrics`, `/health`, `/ready`, `/status` and `/latency`.
//!
//! A deliberately small HTTP/1.1 server on std sockets: one accept thread plus one short-lived
//! thread per connection, at most [`AdminLimits::max_connections`] at once, one request per
//! connection (`Connection: close`), a bounded request head and a deadline for the whole
//! request. Request heads are parsed by `httparse` (hyper's parser). A full HTTP framework
//! would bring an async runtime into a daemon whose data plane is pinned threads, for five
//! GET routes scraped every few seconds; tiny_http has no connection cap and no per-request
//! deadline, which is what keeps a stuck client from tying up housekeeping.
//!
//! The server never touches the data plane: every answer comes from [`AdminHandler`], which
//! reads atomics and snapshots.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::metrics;

/// What the engine provides to the admin server. Called from admin threads, concurrently.
/// The query of `POST /promote?force&alone`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PromoteOptions {
    pub force: bool,
    pub alone: bool,
}

impl PromoteOptions {
    fn parse(path: &str) -> Result<PromoteOptions, &'static str> {
        let mut options = PromoteOptions::default();
        for word in path.split_once('?').map_or("", |(_, q)| q).split('&').filter(|w| !w.is_empty()) {
            match word {
                "force" | "force=1" => options.force = true,
                "alone" | "alone=1" => options.alone = true,
                _ => return Err("unknown option: POST /promote takes ?force and ?alone\n"),
            }
        }
        Ok(options)
    }
}

pub trait AdminHandler: Send + Sync {
    /// Appends the Prometheus text exposition (format 0.0.4) to `out`.
    fn metrics(&self, out: &mut String);
    /// Whether the engine is ready to trade: recovered, listeners bound, not stopping.
    fn ready(&self) -> bool;
    /// A JSON object describing the engine for operators (sessions, sequence, lag, ...).
    fn status_json(&self) -> String;
    /// A JSON object with the latency histograms since start, encoded so that a client can
    /// subtract two reads ([`crate::latency_export::latency_json`]).
    fn latency_json(&self) -> String;
    /// `POST /promote`: a standby checks that promoting it loses no acknowledged order and
    /// starts its promotion (`Ok`, what it does) or says why not (`Err`). `force`: promote even
    /// when it cannot tell; `alone`: the new primary acknowledges without a standby until one
    /// has caught up, whatever `on_standby_loss` says.
    fn promote(&self, options: PromoteOptions) -> Result<String, String> {
        let _ = options;
        Err("refused: this engine is not a standby\n".to_owned())
    }
}

/// Bounds of the admin server. The defaults suit Prometheus and an operator's curl.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AdminLimits {
    /// Connections served at once; more are answered 503 and closed.
    pub max_connections: usize,
    /// Largest request head (request line and headers), in bytes; larger gets 431.
    pub request_head_max_bytes: usize,
    /// Time allowed from accept to a complete request head; slower clients get 408.
    pub request_deadline: Duration,
    /// Time allowed to write one response.
    pub write_timeout: Duration,
}

impl Default for AdminLimits {
    fn default() -> AdminLimits {
        AdminLimits {
            max_connections: 16,
            request_head_max_bytes: 8 * 1024,
            request_deadline: Duration::from_secs(5),
            write_timeout: Duration::from_secs(5),
        }
    }
}

/// Why the admin server could not start.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot listen for the admin endpoint on {addr} ([admin] listen): {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start the admin server thread: {0}")]
    Spawn(#[source] std::io::Error),
}

/// A running admin server. Dropping it stops it (as [`AdminServer::shutdown`] does).
pub struct AdminServer {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
}

impl AdminServer {
    /// The bound address (the real port when the configuration asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and waits for the accept thread. Connections already being served
    /// finish on their own threads within their deadlines.
    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        let Some(thread) = self.accept_thread.take() else { return };
        self.stop.store(true, Ordering::SeqCst);
        // accept() has no timeout: wake it with a connection of our own. If that fails the
        // listener is already broken and the thread is exiting anyway.
        let _ = TcpStream::connect_timeout(&wake_addr(self.local_addr), Duration::from_secs(1));
        let _ = thread.join();
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

fn wake_addr(bound: SocketAddr) -> SocketAddr {
    let mut addr = bound;
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

/// Starts the admin server on `addr` with the default limits.
pub fn serve(addr: SocketAddr, handler: Arc<dyn AdminHandler>) -> Result<AdminServer, AdminError> {
    serve_with(addr, handler, AdminLimits::default())
}

/// Starts the admin server on `addr`. The address is used as given: the configuration
/// already refuses a non-loopback address unless `allow_non_loopback` is set.
pub fn serve_with(
    addr: SocketAddr,
    handler: Arc<dyn AdminHandler>,
    limits: AdminLimits,
) -> Result<AdminServer, AdminError> {
    assert!(limits.max_connections > 0 && limits.request_head_max_bytes >= 64);
    let listener = TcpListener::bind(addr).map_err(|source| AdminError::Bind { addr, source })?;
    let local_addr = listener.local_addr().map_err(|source| AdminError::Bind { addr, source })?;
    let stop = Arc::new(AtomicBool::new(false));
    let accept_thread = std::thread::Builder::new()
        .name("admin-accept".into())
        .spawn({
            let stop = stop.clone();
            move || accept_loop(listener, handler, limits, stop)
        })
        .map_err(AdminError::Spawn)?;
    Ok(AdminServer { local_addr, stop, accept_thread: Some(accept_thread) })
}

fn accept_loop(
    listener: TcpListener,
    handler: Arc<dyn AdminHandler>,
    limits: AdminLimits,
    stop: Arc<AtomicBool>,
) {
    let active = Arc::new(AtomicUsize::new(0));
    loop {
        let (mut stream, peer) = match listener.accept() {
            Ok(conn) => conn,
            Err(e) if stop.load(Ordering::SeqCst) => {
                tracing::debug!(error = %e, "admin accept after stop");
                return;
            }
            // EMFILE and friends: log, back off briefly instead of spinning on the error.
            Err(e) => {
                tracing::warn!(error = %e, "admin endpoint cannot accept a connection");
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let _ = stream.set_write_timeout(Some(limits.write_timeout));
        if active.fetch_add(1, Ordering::SeqCst) >= limits.max_connections {
            active.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(%peer, limit = limits.max_connections, "admin endpoint busy, refusing a connection");
            let busy = b"too many admin connections\n";
            if respond(&mut stream, 503, "text/plain; charset=utf-8", busy, false).is_ok() {
                linger(&mut stream, LINGER_REFUSED);
            }
            continue;
        }
        let handler = handler.clone();
        let guard = ActiveGuard(active.clone());
        let spawned = std::thread::Builder::new().name("admin-conn".into()).spawn(move || {
            let _guard = guard;
            serve_connection(stream, &*handler, limits);
        });
        if let Err(e) = spawned {
            // The guard moved into the closure that was dropped with the failed spawn.
            tracing::warn!(error = %e, "cannot start an admin connection thread");
        }
    }
}

struct ActiveGuard(Arc<AtomicUsize>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What a request head said, or why it cannot be served.
enum Head {
    Get { path: String, head_only: bool },
    Post { path: String },
    Reply { status: u16, body: &'static str },
}

fn serve_connection(mut stream: TcpStream, handler: &dyn AdminHandler, limits: AdminLimits) {
    let head = read_head(&mut stream, limits);
    let text = "text/plain; charset=utf-8";
    let result = match head {
        Head::Reply { status, body } => respond(&mut stream, status, text, body.as_bytes(), false),
        Head::Post { path } => match PromoteOptions::parse(&path) {
            Err(message) => respond(&mut stream, 400, text, message.as_bytes(), false),
            Ok(options) => match handler.promote(options) {
                Ok(message) => respond(&mut stream, 200, text, message.as_bytes(), false),
                Err(message) => respond(&mut stream, 409, text, message.as_bytes(), false),
            },
        },
        Head::Get { path, head_only } => {
            let route = path.split('?').next().unwrap_or("");
            match route {
                "/metrics" => {
                    let mut body = String::with_capacity(16 * 1024);
                    handler.metrics(&mut body);
                    respond(&mut stream, 200, metrics::CONTENT_TYPE, body.as_bytes(), head_only)
                }
                "/health" => respond(&mut stream, 200, text, b"ok\n", head_only),
                "/ready" if handler.ready() => respond(&mut stream, 200, text, b"ready\n", head_only),
                "/ready" => respond(&mut stream, 503, text, b"not ready\n", head_only),
                "/status" => {
                    let body = handler.status_json();
                    respond(&mut stream, 200, "application/json", body.as_bytes(), head_only)
                }
                "/latency" => {
                    let body = handler.latency_json();
                    respond(&mut stream, 200, "application/json", body.as_bytes(), head_only)
                }
                _ => respond(
                    &mut stream,
                    404,
                    text,
                    b"not found: try /metrics, /health, /ready, /status, /latency\n",
                    head_only,
                ),
            }
        }
    };
    match result {
        Ok(()) => linger(&mut stream, LINGER_SERVED),
        Err(e) => tracing::debug!(error = %e, "admin response not delivered"),
    }
}

/// Half-closes and reads what the client still sends (bounded in bytes and time) before the
/// socket goes: closing with unread request bytes sends a RST that can destroy the response
/// in flight.
fn linger(stream: &mut TcpStream, limit: Duration) {
    let deadline = Instant::now() + limit;
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut sink = [0u8; 1024];
    for _ in 0..LINGER_READS_MAX {
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() || stream.set_read_timeout(Some(remaining)).is_err() {
            break;
        }
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

/// Reads while lingering before close; with 1 KiB reads that bounds what a client can make
/// us swallow after its response.
const LINGER_READS_MAX: usize = 64;
/// Linger of a served connection (its own thread).
const LINGER_SERVED: Duration = Duration::from_secs(1);
/// Linger of a refused connection, on the accept thread: short, so that a client that never
/// closes delays the next accept by at most this.
const LINGER_REFUSED: Duration = Duration::from_millis(100);

fn read_head(stream: &mut TcpStream, limits: AdminLimits) -> Head {
    let deadline = Instant::now() + limits.request_deadline;
    let mut buf = vec![0u8; limits.request_head_max_bytes];
    let mut filled = 0;
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        match request.parse(&buf[..filled]) {
            Ok(httparse::Status::Complete(_)) => {
                let path = request.path.unwrap_or("").to_owned();
                return match request.method {
                    Some("GET") => Head::Get { path, head_only: false },
                    Some("HEAD") => Head::Get { path, head_only: true },
                    Some("POST") if path.split('?').next() == Some("/promote") => Head::Post { path },
                    _ => Head::Reply {
                        status: 405,
                        body: "only GET and HEAD are served (and POST /promote)\n",
                    },
                };
            }
            Ok(httparse::Status::Partial) => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Head::Reply { status: 431, body: "too many request headers\n" }
            }
            Err(_) => return Head::Reply { status: 400, body: "malformed HTTP request\n" },
        }
        if filled == buf.len() {
            return Head::Reply { status: 431, body: "request head too large\n" };
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        if remaining.is_zero() || stream.set_read_timeout(Some(remaining)).is_err() {
            return Head::Reply { status: 408, body: "request not received in time\n" };
        }
        match stream.read(&mut buf[filled..]) {
            // The client went away before finishing; the 400 below goes nowhere, harmlessly.
            Ok(0) => return Head::Reply { status: 400, body: "incomplete HTTP request\n" },
            Ok(n) => filled += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Head::Reply { status: 408, body: "request not received in time\n" }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return Head::Reply { status: 400, body: "cannot read the request\n" },
        }
    }
}

fn respond(
    stream: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => unreachable!("status {status} is not one the admin server sends"),
    };
    let allow = if status == 405 { "Allow: GET, HEAD, POST\r\n" } else { "" };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\n{allow}Connection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(body)?;
    }
    stream.flush()
}
