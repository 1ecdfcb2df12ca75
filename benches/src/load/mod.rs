//! `petrel-load`: an open-loop OUCH 5.0 / SoupBinTCP 3.0 load generator and wire-to-wire
//! latency benchmark.
//!
//! One sender thread sends each order at its intended time `t0 + i / rate` and never waits for
//! answers; one receiver thread (epoll over all sessions) matches every first answer (Order Accepted,
//! Replaced, Canceled, Rejected, Cancel Reject) to the order's *intended* send time by its
//! UserRefNum and records the difference into an HdrHistogram. Measuring from the intended
//! time, not the actual one, corrects for coordinated omission: a stall in the target (or in
//! the sender) shows up as latency for every order that should have been sent during it.
//!
//! The same client measures a bare TCP reflector ([`echo`]) that answers each packet with the
//! message the engine would send, of the same size, so that the engine's figures can be given
//! as a ratio to what this host's loopback TCP and thread wake-ups cost.

pub mod admin;
pub mod client;
pub mod decomposition;
pub mod echo;
pub mod flow;
pub mod report;

use std::net::SocketAddr;
use std::path::PathBuf;

pub use client::{parse_rate, run_load, run_load_marked, LoadOptions, LoadResult, Login, ResponseCounts};
pub use echo::EchoServer;
pub use flow::Mix;

/// Why a load run could not be carried out or its results not be written.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot connect to {addr}: {source} (is the engine running and listening there?)")]
    Connect { addr: SocketAddr, source: std::io::Error },
    #[error("session {user}: login rejected by {addr} with reason '{reason}' (A: user name or password not accepted, S: session not available)")]
    LoginRejected { user: String, addr: SocketAddr, reason: char },
    #[error("session {user}: {message}")]
    Protocol { user: String, message: String },
    #[error("session {user}: network error: {source}")]
    Io { user: String, source: std::io::Error },
    #[error(
        "session {user}: {in_flight} orders are awaiting acknowledgement, the limit for this rate and a {timeout_ms} ms response timeout: the target cannot keep up with the offered rate"
    )]
    Overloaded { user: String, in_flight: usize, timeout_ms: u64 },
    #[error("session {user}: the server closed the connection during the run")]
    Closed { user: String },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{path}: {message}")]
    BadFile { path: PathBuf, message: String },
    #[error("{0}")]
    Usage(String),
}
