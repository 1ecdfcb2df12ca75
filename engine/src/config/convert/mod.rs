//! From the file as written to the validated [`Config`]: one function per section, each
//! checking what serde cannot and converting human units to the engine's. The first error
//! found is returned, located in the file.

mod accounts;
mod control;
mod engine;
mod gateway;
mod journal;
mod market_data;
mod replication;
mod risk;
mod runtime;

use std::path::{Path, PathBuf};

pub use gateway::{MAX_SEND_BACKLOG_BYTES, MAX_SESSIONS, MIN_SEND_BACKLOG_BYTES};
pub use journal::MAX_SNAPSHOTS_KEPT;
pub use runtime::{MAX_CPU_ID, MAX_PARK_US, MAX_SPINS};

use super::locate::Locator;
use super::raw::RawConfig;
use super::{Config, ConfigFileError};

/// Converts section by section, in the order the checks have always run (so a file with several
/// mistakes reports the same one first): accounts name firms and risk profiles, so those come
/// before them, and the core's own validation sees the finished instruments and accounts.
pub(super) fn convert(
    raw: RawConfig,
    loc: &Locator,
    path: &Path,
    base: &Path,
) -> Result<Config, ConfigFileError> {
    let firms = accounts::firms(&raw.firms, loc)?;
    let profiles = risk::risk_profiles(&raw.risk_profiles, loc)?;
    let instruments = engine::instruments(&raw.instruments, loc)?;
    let (accounts, account_infos) = accounts::accounts(&raw.accounts, &firms, &profiles, loc)?;
    let engine = engine::engine(raw.engine, instruments, accounts, loc)?;
    let journal = journal::journal(raw.journal, base, loc)?;
    let snapshots = journal::snapshots(raw.snapshots, base, loc)?;
    let runtime = runtime::runtime(raw.runtime, loc)?;
    let gateway = gateway::gateway(raw.gateway, base, loc)?;
    let admin = control::admin(raw.admin, loc)?;
    let log = control::log(raw.log, loc)?;
    let replication = replication::replication(raw.replication, base, loc)?;
    let market_data = market_data::market_data(raw.market_data, &account_infos, loc)?;
    let failover = replication::failover(raw.failover, replication.as_ref(), loc)?;
    Ok(Config {
        path: path.to_owned(),
        engine,
        firms,
        accounts: account_infos,
        journal,
        snapshots,
        runtime,
        gateway,
        admin,
        log,
        replication,
        market_data,
        failover,
    })
}

/// The names defined, for an error that names an undefined one.
fn list(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}

/// Joins a relative path to the configuration file's directory and removes `.` and `..`
/// lexically (no symlinks are followed: the directories may not exist yet).
fn resolve(base: &Path, p: PathBuf) -> PathBuf {
    use std::path::Component;
    let joined = if p.is_absolute() { p } else { base.join(p) };
    let mut out = PathBuf::new();
    for part in joined.components() {
        match part {
            Component::CurDir => {}
            Component::ParentDir if matches!(out.components().next_back(), Some(Component::Normal(_))) => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        out
    }
}
