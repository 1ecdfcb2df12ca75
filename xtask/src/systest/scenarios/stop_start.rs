//! `systemctl stop` and `start`: a clean exit, and the same journal recovered.

use super::checks::expect_eq;
use super::query::{journal_last_sequence, show};
use crate::systest::container::Container;
use crate::util::Result;

pub fn engine_stop_start(c: &Container) -> Result {
    c.sh("systemctl stop petrel-engine.service")?;
    expect_eq("clean stop", &show(c, "petrel-engine.service", "Result")?, "success")?;
    expect_eq("exit status", &show(c, "petrel-engine.service", "ExecMainStatus")?, "0")?;
    let after_stop = journal_last_sequence(c)?;
    c.sh("systemctl start petrel-engine.service")?;
    expect_eq("running again", &show(c, "petrel-engine.service", "SubState")?, "running")?;
    expect_eq("recovered journal", &journal_last_sequence(c)?, &after_stop)
}
