//! Petrel's test kit, shared by every test package: the real daemon on a private
//! configuration ([`daemon`], [`config`]), a small OUCH 5.0 / SoupBinTCP client built on
//! petrel-proto's codecs ([`ouch_client`]; the independent client runs through [`venv`]), and
//! what the crash and no-allocation tests share ([`crash_child`], [`alloc_counter`]).
//!
//! - [`config`]: configuration files for tests (development, benchmark, runtime).
//! - [`daemon`]: the `petrel-engine run` process, its readiness and its log.
//! - [`engine_binary`]: builds the daemon for a package other than the engine.
//! - [`ouch_client`]: the OUCH test client and the messages it decodes.
//! - [`http`]: a GET to the admin endpoint.
//! - [`promtool`]: Prometheus's checker of metrics expositions and rules.
//! - [`crash_child`]: a test binary re-executed as a child to be SIGKILLed, and its report.
//! - [`alloc_counter`]: the counting global allocator of the no-allocation tests.
//! - [`venv`]: a Python venv with pinned packages, for interoperability tests.
//!
//! Dev-only, and it does not depend on petrel-engine: the engine dev-depends on this crate, so
//! a test passes the daemon's path (`env!("CARGO_BIN_EXE_petrel-engine")`) and keeps what needs
//! the engine's own types in its own package.

use std::path::Path;

pub mod alloc_counter;
pub mod config;
pub mod crash_child;
pub mod daemon;
pub mod engine_binary;
pub mod http;
pub mod ouch_client;
pub mod promtool;
pub mod venv;

pub use config::{write_config, write_config_with_rate_limit};
pub use daemon::Daemon;
pub use http::http_get;
pub use ouch_client::{Client, Got, LoginRejectReason, OuchReject, OwnedOutbound};
pub use promtool::{promtool, promtool_check_metrics};

/// The repository root.
pub const REPO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// The repository root, as a path.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().and_then(Path::parent).expect("engine/testkit")
}
