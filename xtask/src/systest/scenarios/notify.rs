//! What the running engine tells systemd and the journal: READY=1 with a STATUS line, and
//! structured journald fields.

use super::checks::{expect_contains, expect_eq, wait_for};
use super::query::show;
use crate::systest::container::Container;
use crate::util::Result;

pub fn engine_ready_and_status(c: &Container) -> Result {
    expect_eq("Type", &show(c, "petrel-engine.service", "Type")?, "notify")?;
    wait_for("petrel-engine active (running)", || {
        Ok(show(c, "petrel-engine.service", "SubState")? == "running")
    })?;
    let status = show(c, "petrel-engine.service", "StatusText")?;
    if status.is_empty() {
        return Err("petrel-engine sent READY=1 without a STATUS line".into());
    }
    let shown = c.sh("systemctl status --no-pager petrel-engine.service")?;
    expect_contains("systemctl status", &shown, &format!("Status: \"{status}\""))
}

pub fn engine_journal_fields(c: &Container) -> Result {
    let json = c.sh("journalctl -u petrel-engine.service -o json --no-pager")?;
    for field in
        ["\"_SYSTEMD_UNIT\":\"petrel-engine.service\"", "\"PRIORITY\":", "\"TARGET\":\"petrel_engine"]
    {
        expect_contains("journal fields", &json, field)?;
    }
    Ok(())
}
