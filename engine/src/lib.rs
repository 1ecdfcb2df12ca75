//! petrel-engine: the daemon around the deterministic matching core.
//!
//! - [`config`]: the TOML configuration file, validated and converted to engine units.
//! - [`recovery`]: rebuilding the engine from the latest snapshot and the journal tail.
//! - [`input_record`]: the input journal's record payload: a command and its echo.
//! - [`port`]: what crosses between the gateway and the runtime (commands, events, rings,
//!   doorbells, the durable-release rule).
//! - [`runtime`]: the pinned pipeline (sequencer, journal writer, housekeeping threads, rings),
//!   and `runtime::reference`, the single-threaded sequencer tests use to write journals.
//! - [`clock`]: where timestamps come from. [`snapshot`]: writing snapshot files.
//! - [`journal_tools`]: the operator's `journal verify|stats|dump|replay|formats` commands and
//!   the format versions `--version` prints.
//! - [`backup`]: `journal backup|restore`, a consistent copy of a running engine and its restore.
//! - [`describe`]: human and JSON renderings of commands, for dumps and logs.
//! - [`admin`]: the admin HTTP endpoint (`/metrics`, `/health`, `/ready`, `/status`).
//! - [`metrics`]: Prometheus exposition and the catalogue of exported metrics.
//! - [`notify`]: systemd notifications and the watchdog policy.
//! - [`logging`]: the tracing subscriber (journald or stderr) and the hot threads' log ring.
//! - [`replication`]: the hot standby: the primary ships its input journal, the standby
//!   journals and applies it.
//!
//! The core is re-exported as `core`. See docs/ARCHITECTURE.md.

pub use petrel_core as core;
pub use petrel_journal as journal;
pub mod admin;
pub mod backup;
pub mod clock;
pub mod config;
pub mod daemon;
pub mod describe;
pub mod failover;
pub mod gateway;
pub mod input_record;
pub mod journal_tools;
pub mod latency_export;
pub mod logging;
pub mod market_data;
pub mod metrics;
pub mod notify;
pub mod port;
pub mod recovery;
pub mod replication;
pub mod runtime;
pub mod snapshot;
pub mod users;
