//! The running engine's durable input sequence, from its admin endpoint's `/status`: the
//! recovery point of a backup taken while it trades.

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::time::Duration;

use super::BackupError;

/// Time allowed to connect, and to read the answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest `/status` answer read: it is a few hundred bytes.
const RESPONSE_BYTES_MAX: u64 = 64 * 1024;

/// Where to reach a listener bound to `listen`: a wildcard address is reached on loopback.
pub(super) fn reachable(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), listen.port()),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), listen.port()),
        _ => listen,
    }
}

/// `durable_sequence` from the `/status` of the engine at `addr`, checked to be the engine of
/// `journal_dir`; `None` when nothing listens there (the engine is stopped).
pub(super) fn durable_sequence(addr: SocketAddr, journal_dir: &Path) -> Result<Option<u64>, BackupError> {
    let admin_error = |reason: String| BackupError::Admin { addr, reason };
    let mut stream = match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
        Ok(stream) => stream,
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => return Ok(None),
        Err(e) => return Err(admin_error(format!("cannot connect: {e}"))),
    };
    stream.set_read_timeout(Some(READ_TIMEOUT)).map_err(|e| admin_error(e.to_string()))?;
    write!(stream, "GET /status HTTP/1.1\r\nHost: petrel\r\nConnection: close\r\n\r\n")
        .map_err(|e| admin_error(format!("cannot send the request: {e}")))?;
    let mut response = String::new();
    stream
        .take(RESPONSE_BYTES_MAX)
        .read_to_string(&mut response)
        .map_err(|e| admin_error(format!("cannot read the answer: {e}")))?;
    let (head, body) =
        response.split_once("\r\n\r\n").ok_or_else(|| admin_error("the answer is not HTTP".into()))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(admin_error(format!("GET /status answered {}", head.lines().next().unwrap_or(""))));
    }
    let status: serde_json::Value =
        serde_json::from_str(body).map_err(|e| admin_error(format!("/status is not JSON: {e}")))?;
    let serving = status["journal_dir"].as_str().unwrap_or_default();
    // The same directory may be named differently (a configuration loaded by another path).
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_owned());
    if canonical(Path::new(serving)) != canonical(journal_dir) {
        return Err(admin_error(format!(
            "this is the engine of journal {serving}, not of {}: pass the admin address of the \
             engine this configuration runs (--admin)",
            journal_dir.display()
        )));
    }
    let durable = status["durable_sequence"]
        .as_u64()
        .ok_or_else(|| admin_error("/status has no durable_sequence".into()))?;
    Ok(Some(durable))
}
