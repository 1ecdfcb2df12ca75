//! rollout.yml and rollback.yml: a newer version reaches every host in batch order, each host
//! behind the health gate; a broken version stops on the canary, which goes back to the version
//! it had, and touches no other host; a version that cannot read the journal on disk is
//! refused before any host is touched.

use super::converge::no_secret_in;
use super::fleet::{Fleet, HOSTS};
use super::host::{engine_version, expect_ready, fingerprint, trade, Fingerprint};
use super::repo::OLD_RELEASE;
use crate::util::Result;

pub fn rollout_upgrades_in_order(fleet: &Fleet, newer: &str) -> Result {
    let before: Vec<Fingerprint> = fleet.hosts.iter().map(fingerprint).collect::<Result<_>>()?;
    let version = format!("petrel_rollout_version={newer}");
    let run = fleet.playbook("rollout.yml", &["-e", &version])?;
    run.expect_success(&format!("rollout.yml to {newer}"))?;
    no_secret_in(&run)?;
    // The gate's last word, per host, in the order the hosts passed it: the canary first.
    let passed: Vec<usize> = HOSTS
        .iter()
        .map(|h| {
            run.output.find(&format!("{h}: petrel-engine {newer} passed the health gate")).ok_or_else(|| {
                format!("{h} did not pass the health gate on {newer} (log {})", run.log.display())
            })
        })
        .collect::<Result<_>>()?;
    if !(passed[0] < passed[1] && passed[0] < passed[2]) {
        return Err(format!("the canary {} was not upgraded first (log {})", HOSTS[0], run.log.display()));
    }
    for (h, before) in fleet.hosts.iter().zip(&before) {
        let after = fingerprint(h)?;
        if after.engine_version != newer || after.main_pid == before.main_pid {
            return Err(format!(
                "{}: after the rollout {after:?}, before {before:?}: want {newer}, restarted",
                h.name
            ));
        }
        expect_ready(h)?;
    }
    // As an operator does after a rollout: the inventory now says the new version.
    fleet.write_inventory(newer, &super::host::tuner_version(&fleet.hosts[0])?)
}

/// The canary fails the gate on the broken build, goes back to `previous`, ready and trading;
/// the others keep their version, process, restart count, configuration and journal.
pub fn broken_rollout_stops_on_canary(fleet: &Fleet, broken: &str, previous: &str, round: u32) -> Result {
    let before: Vec<Fingerprint> = fleet.hosts.iter().map(fingerprint).collect::<Result<_>>()?;
    let version = format!("petrel_rollout_version={broken}");
    let run = fleet.playbook("rollout.yml", &["-e", &version])?;
    run.expect_failure_saying(
        &format!("rollout.yml to the broken {broken}"),
        &format!(
            "{}: petrel-engine {broken} failed its health gate; the host is back on {previous}",
            HOSTS[0]
        ),
    )?;
    no_secret_in(&run)?;
    let canary = run.recap_of(HOSTS[0])?;
    if canary.failed == 0 || canary.rescued == 0 {
        return Err(format!("the canary's recap {canary:?}: want it rescued and counted as failed"));
    }
    let canary = &fleet.hosts[0];
    if engine_version(canary)? != previous {
        return Err(format!(
            "{} is on {}, want {previous} after the rollback",
            canary.name,
            engine_version(canary)?
        ));
    }
    canary.c.sh("! test -e /lib/systemd/system/petrel-engine.service.d/broken.conf")?;
    expect_ready(canary)?;
    trade(canary, round)?;
    for (h, before) in fleet.hosts.iter().zip(&before).skip(1) {
        let after = fingerprint(h)?;
        if &after != before {
            return Err(format!(
                "{} was touched by the failed rollout: before {before:?}, after {after:?}",
                h.name
            ));
        }
        if run.recap_of(h.name)?.changed != 0 {
            return Err(format!(
                "{} reports changes in the failed rollout (log {})",
                h.name,
                run.log.display()
            ));
        }
    }
    Ok(())
}

/// rollback.yml to a version whose binary reads an older journal format than the disk holds:
/// refused before any host is touched, with the formats named.
pub fn rollback_refuses_unreadable_formats(fleet: &Fleet) -> Result {
    let before: Vec<Fingerprint> = fleet.hosts.iter().map(fingerprint).collect::<Result<_>>()?;
    let version = format!("petrel_rollback_version={OLD_RELEASE}");
    let run = fleet.playbook("rollback.yml", &["-e", &version])?;
    run.expect_failure_saying(
        &format!("rollback.yml to {OLD_RELEASE}"),
        &format!("Refusing petrel-engine {OLD_RELEASE} on"),
    )?;
    run.expect_failure_saying("the refusal", "reads journal formats up to 0")?;
    for (h, before) in fleet.hosts.iter().zip(&before) {
        let after = fingerprint(h)?;
        if &after != before {
            return Err(format!(
                "{} was touched by a refused rollback: before {before:?}, after {after:?}",
                h.name
            ));
        }
    }
    Ok(())
}
