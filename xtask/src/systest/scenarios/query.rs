//! Reading the installed engine's state: systemd's view of its unit, and its journal through the
//! operator's tool, run as the unit's user.

use crate::systest::container::Container;
use crate::util::Result;

pub(super) fn show(c: &Container, unit: &str, property: &str) -> Result<String> {
    Ok(c.sh(&format!("systemctl show -P {property} {unit}"))?.trim().to_string())
}

pub(super) fn main_pid(c: &Container) -> Result<u32> {
    show(c, "petrel-engine.service", "MainPID")?.parse().map_err(|e| format!("MainPID: {e}"))
}

/// The journal's statistics (JSON), compared whole across a restart: nothing lost, nothing added.
pub(super) fn journal_last_sequence(c: &Container) -> Result<String> {
    let stats = c.sh(
        "runuser -u petrel -- petrel-engine journal stats --config /etc/petrel/engine.toml --format json",
    )?;
    Ok(stats.trim().to_string())
}

/// Every record of the engine's journal, read as the unit's user with the operator's tool (safe
/// on a running engine's journal).
pub(super) fn journal_records(c: &Container) -> Result<Vec<serde_json::Value>> {
    let dump = c.sh(
        "runuser -u petrel -- petrel-engine journal dump --config /etc/petrel/engine.toml --format json",
    )?;
    dump.lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).map_err(|e| format!("journal dump line {l:?}: {e}")))
        .collect()
}
