//! Shared by the gateway tests: the real daemon binary on a private configuration, and a small
//! OUCH 5.0 / SoupBinTCP client built on petrel-proto's encoders (the independent client is
//! exercised separately).
#![allow(dead_code)]

use petrel_proto::ouch::{self, Outbound};
use petrel_proto::soupbin::{self, next_server_packet, FrameLimits, ServerPacket};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

pub const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

/// The development configuration's order-rate limit (1,000 orders a second of sequenced time).
/// A limit counted in time makes a test's verdict depend on the machine's speed: a fast machine
/// sends more than 1,000 orders in a second where a slow one does not. Tests lift it unless
/// they test the limit itself, with a window no run outlasts ([`write_config_with_rate_limit`]).
const DEV_RATE_LIMIT: &str = "max_orders_per_window = 1_000       # new orders and replaces accepted per rate window ...\nrate_window_ms = 1_000              # ... of this length, in sequenced (journal) time\n";

/// A test configuration: the development one with its own journal, an ephemeral port and the
/// chosen network backend, and no order-rate limit (see [`DEV_RATE_LIMIT`]).
pub fn write_config(dir: &Path, backend: &str) -> PathBuf {
    write_config_rate(dir, backend, "max_orders_per_window = \"unlimited\"\n")
}

/// [`write_config`] with the standard profile limited to `orders` new orders and replaces per
/// hour: a window no test outlasts, so the order that passes the limit is the same on any
/// machine.
pub fn write_config_with_rate_limit(dir: &Path, backend: &str, orders: u32) -> PathBuf {
    write_config_rate(
        dir,
        backend,
        &format!("max_orders_per_window = {orders}\nrate_window_ms = 3_600_000\n"),
    )
}

fn write_config_rate(dir: &Path, backend: &str, rate_limit: &str) -> PathBuf {
    let dev = std::fs::read_to_string(format!("{REPO}/config/dev.toml")).unwrap();
    assert_eq!(dev.matches(DEV_RATE_LIMIT).count(), 1, "config/dev.toml's standard rate limit moved");
    let users = std::fs::canonicalize(format!("{REPO}/config/dev-users.toml")).unwrap();
    let text = dev
        .replace(DEV_RATE_LIMIT, rate_limit)
        .replace("dir = \"../var/journal\"", &format!("dir = \"{}\"", dir.join("journal").display()))
        .replace("dir = \"../var/snapshots\"", &format!("dir = \"{}\"", dir.join("snapshots").display()))
        .replace("listen = \"127.0.0.1:15000\"", "listen = \"127.0.0.1:0\"")
        .replace("listen = \"127.0.0.1:9180\"", "listen = \"127.0.0.1:0\"")
        .replace("users_file = \"dev-users.toml\"", &format!("users_file = \"{}\"", users.display()))
        .replace("backend = \"auto\"", &format!("backend = \"{backend}\""));
    let path = dir.join("engine.toml");
    std::fs::write(&path, text).unwrap();
    path
}

pub struct Daemon {
    pub child: Child,
    pub addr: SocketAddr,
    pub admin: Option<SocketAddr>,
    pub log: mpsc::Receiver<String>,
    /// What it logged up to "ready".
    pub startup: Vec<String>,
}

impl Daemon {
    pub fn start(config: &Path) -> Daemon {
        Daemon::start_with_env(config, &[])
    }

    pub fn start_with_env(config: &Path, env: &[(&str, &str)]) -> Daemon {
        let mut child = Command::new(env!("CARGO_BIN_EXE_petrel-engine"))
            .args(["run", "--config"])
            .arg(config)
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start petrel-engine run");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let clean = strip_ansi(&line);
                if tx.send(clean).is_err() {
                    return;
                }
            }
        });
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut startup = Vec::new();
        loop {
            let line =
                rx.recv_timeout(deadline.saturating_duration_since(Instant::now())).unwrap_or_else(|_| {
                    panic!("petrel-engine did not become ready; status {:?}", child.try_wait())
                });
            if let Some(at) = line.find("ready: gateway listening addr=") {
                let rest = &line[at + "ready: gateway listening addr=".len()..];
                let addr = rest.split_whitespace().next().unwrap().parse().unwrap();
                let admin = line
                    .split_whitespace()
                    .find_map(|w| w.strip_prefix("admin="))
                    .and_then(|a| a.trim_matches('"').parse().ok());
                startup.push(line);
                return Daemon { child, addr, admin, log: rx, startup };
            }
            startup.push(line);
        }
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn stop(mut self) -> std::process::ExitStatus {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        self.child.wait().unwrap()
    }

    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Log lines that contain `needle`, waiting up to `timeout` for the first: a line is
    /// written a moment after what it reports (by the daemon's log thread, then this process's
    /// reader). Like [`Daemon::log_lines`], consumes what it reads.
    pub fn wait_log_lines(&self, needle: &str, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut found = self.log_lines(needle);
        while found.is_empty() {
            match self.log.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(line) if line.contains(needle) => found.push(line),
                Ok(_) => {}
                Err(_) => break,
            }
        }
        found.extend(self.log.try_iter().filter(|l| l.contains(needle)));
        found
    }

    /// Log lines so far that contain `needle`.
    pub fn log_lines(&self, needle: &str) -> Vec<String> {
        self.startup.iter().cloned().chain(self.log.try_iter()).filter(|l| l.contains(needle)).collect()
    }
}

impl Drop for Daemon {
    /// A failing test must not leave a daemon running: kill it (a no-op after `stop`).
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c2 in chars.by_ref() {
                if c2.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

pub struct Client {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

/// What the client got back: a SoupBinTCP packet, with OUCH decoded for sequenced data.
#[derive(Debug, Clone, PartialEq)]
pub enum Got {
    LoginAccepted { session: String, sequence: u64 },
    LoginRejected(u8),
    Heartbeat,
    EndOfSession,
    Ouch(OwnedOutbound),
}

/// The fields tests look at, owned.
#[derive(Debug, Clone, PartialEq)]
pub enum OwnedOutbound {
    Accepted { user_ref: u32, qty: u32, price: u64, order_ref: u64, cl_ord_id: String },
    Rejected { user_ref: u32, reason: u16 },
    Executed { user_ref: u32, qty: u32, price: u64, liquidity: u8, match_number: u64 },
    Canceled { user_ref: u32, qty: u32, reason: u8 },
    Replaced { orig_user_ref: u32, user_ref: u32, qty: u32, price: u64 },
    CancelReject { user_ref: u32 },
    MassCancelResponse { user_ref: u32 },
    SystemEvent { code: u8 },
    Other(u8),
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).unwrap();
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        Client { stream, buf: Vec::new() }
    }

    pub fn send_packet(&mut self, packet_type: u8, payload: &[u8]) {
        self.try_send_packet(packet_type, payload).unwrap();
    }

    pub fn login(&mut self, user: &str, password: &str, sequence: u64) -> Got {
        let mut payload = format!("{user:<6}{password:<10}{:<10}", "").into_bytes();
        payload.extend_from_slice(format!("{sequence:>20}").as_bytes());
        self.send_packet(b'L', &payload);
        self.recv().expect("login answer")
    }

    pub fn enter(&mut self, user_ref: u32, side: u8, qty: u32, symbol: &str, price: u64, tif: u8) {
        self.try_enter(user_ref, side, qty, symbol, price, tif).unwrap();
    }

    /// As [`Client::enter`], giving back the write error (the server may have closed).
    pub fn try_enter(
        &mut self,
        user_ref: u32,
        side: u8,
        qty: u32,
        symbol: &str,
        price: u64,
        tif: u8,
    ) -> std::io::Result<()> {
        let mut m = vec![b'O'];
        m.extend_from_slice(&user_ref.to_be_bytes());
        m.push(side);
        m.extend_from_slice(&qty.to_be_bytes());
        m.extend_from_slice(format!("{symbol:<8}").as_bytes());
        m.extend_from_slice(&price.to_be_bytes());
        m.extend_from_slice(&[tif, b'Y', b'A', b'N', b'N']);
        m.extend_from_slice(format!("{:<14}", format!("CL{user_ref}")).as_bytes());
        m.extend_from_slice(&0u16.to_be_bytes());
        self.try_send_packet(b'U', &m)
    }

    /// As [`Client::cancel`], giving back the write error.
    pub fn try_cancel(&mut self, user_ref: u32, qty: u32) -> std::io::Result<()> {
        let mut m = vec![b'X'];
        m.extend_from_slice(&user_ref.to_be_bytes());
        m.extend_from_slice(&qty.to_be_bytes());
        self.try_send_packet(b'U', &m)
    }

    pub fn try_send_packet(&mut self, packet_type: u8, payload: &[u8]) -> std::io::Result<()> {
        let mut bytes = ((payload.len() + 1) as u16).to_be_bytes().to_vec();
        bytes.push(packet_type);
        bytes.extend_from_slice(payload);
        self.stream.write_all(&bytes)
    }

    pub fn cancel(&mut self, user_ref: u32, qty: u32) {
        self.try_cancel(user_ref, qty).unwrap();
    }

    pub fn replace(&mut self, orig: u32, user_ref: u32, qty: u32, price: u64) {
        let mut m = vec![b'U'];
        m.extend_from_slice(&orig.to_be_bytes());
        m.extend_from_slice(&user_ref.to_be_bytes());
        m.extend_from_slice(&qty.to_be_bytes());
        m.extend_from_slice(&price.to_be_bytes());
        m.extend_from_slice(b"0YN");
        m.extend_from_slice(format!("{:<14}", format!("CL{user_ref}")).as_bytes());
        m.extend_from_slice(&0u16.to_be_bytes());
        self.send_packet(b'U', &m);
    }

    /// The next packet other than a server heartbeat, or None when the server closed.
    pub fn recv(&mut self) -> Option<Got> {
        loop {
            match self.recv_any()? {
                Got::Heartbeat => continue,
                other => return Some(other),
            }
        }
    }

    pub fn recv_any(&mut self) -> Option<Got> {
        loop {
            match next_server_packet(&self.buf, FrameLimits::new(65_535)) {
                Ok(Some((packet, used))) => {
                    let got = convert(packet);
                    self.buf.drain(..used);
                    return Some(got);
                }
                Ok(None) => {}
                Err(e) => panic!("server sent a malformed packet: {e}"),
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                // A signal (a child's exit, a tracer) interrupted the wait: read again.
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => panic!("read from the gateway: {e}"),
            }
        }
    }

    /// The next OUCH message.
    pub fn ouch(&mut self) -> OwnedOutbound {
        match self.recv() {
            Some(Got::Ouch(m)) => m,
            other => panic!("expected an OUCH message, got {other:?}"),
        }
    }

    /// True when the server closes the connection within the read timeout.
    pub fn closed_by_server(&mut self) -> bool {
        loop {
            match self.recv_any() {
                None => return true,
                Some(Got::Heartbeat) => continue,
                Some(_) => continue,
            }
        }
    }
}

fn convert(packet: ServerPacket<'_>) -> Got {
    match packet {
        ServerPacket::LoginAccepted(a) => {
            Got::LoginAccepted { session: a.session.trimmed().to_string(), sequence: a.sequence_number }
        }
        ServerPacket::LoginRejected(r) => Got::LoginRejected(r.code()),
        ServerPacket::ServerHeartbeat => Got::Heartbeat,
        ServerPacket::EndOfSession => Got::EndOfSession,
        ServerPacket::Debug(_) => Got::Ouch(OwnedOutbound::Other(b'+')),
        ServerPacket::SequencedData(data) => {
            Got::Ouch(match Outbound::decode(data).expect("valid OUCH from the gateway") {
                Outbound::OrderAccepted(a) => OwnedOutbound::Accepted {
                    user_ref: a.user_ref_num,
                    qty: a.quantity,
                    price: a.price.0,
                    order_ref: a.order_reference_number,
                    cl_ord_id: a.cl_ord_id.trimmed().to_string(),
                },
                Outbound::OrderRejected(r) => {
                    OwnedOutbound::Rejected { user_ref: r.user_ref_num, reason: r.reason.0 }
                }
                Outbound::OrderExecuted(x) => OwnedOutbound::Executed {
                    user_ref: x.user_ref_num,
                    qty: x.quantity,
                    price: x.price.0,
                    liquidity: x.liquidity_flag.0,
                    match_number: x.match_number,
                },
                Outbound::OrderCanceled(c) => OwnedOutbound::Canceled {
                    user_ref: c.user_ref_num,
                    qty: c.quantity,
                    reason: c.reason.code(),
                },
                Outbound::OrderReplaced(r) => OwnedOutbound::Replaced {
                    orig_user_ref: r.orig_user_ref_num,
                    user_ref: r.user_ref_num,
                    qty: r.quantity,
                    price: r.price.0,
                },
                Outbound::CancelReject { user_ref_num, .. } => {
                    OwnedOutbound::CancelReject { user_ref: user_ref_num }
                }
                Outbound::MassCancelResponse(m) => {
                    OwnedOutbound::MassCancelResponse { user_ref: m.user_ref_num }
                }
                Outbound::SystemEvent(e) => OwnedOutbound::SystemEvent { code: e.event_code.code() },
                other => OwnedOutbound::Other(format!("{other:?}").as_bytes()[0]),
            })
        }
    }
}

#[allow(unused_imports)]
pub use ouch::RejectReason as OuchReject;
#[allow(unused_imports)]
pub use soupbin::LoginRejectReason;

/// The body of an HTTP GET to the admin endpoint (one request per connection).
pub fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: petrel\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").expect("an HTTP response");
    assert!(head.starts_with("HTTP/1.1 200"), "GET {path}: {head}");
    body.to_string()
}

impl Daemon {
    /// The engine's last input sequence, from the admin endpoint's `/status`.
    pub fn last_sequence(&self) -> u64 {
        let admin = self.admin.expect("the daemon logged its admin address");
        let status: serde_json::Value = serde_json::from_str(&http_get(admin, "/status")).unwrap();
        status["last_sequence"].as_u64().expect("last_sequence in /status")
    }

    /// Waits for the process to end by itself (a crash or a failpoint) and returns how.
    pub fn wait_exit(mut self) -> std::process::ExitStatus {
        self.child.wait().unwrap()
    }
}
