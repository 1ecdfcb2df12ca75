//! verify.yml, the read-only fleet check: passes on a converged fleet and changes nothing;
//! a knob changed by hand on one host fails that host alone, naming the knob.

use super::converge::expect_no_change;
use super::fleet::{Fleet, HOSTS};
use super::host::{fingerprint, Fingerprint};
use crate::util::Result;

pub fn verify_passes_then_names_drift(fleet: &Fleet) -> Result {
    let before: Vec<Fingerprint> = fleet.hosts.iter().map(fingerprint).collect::<Result<_>>()?;
    let run = fleet.playbook("verify.yml", &[])?;
    expect_no_change(&run, fleet, "verify.yml on a converged fleet")?;
    let drifted = fleet.host(HOSTS[1])?;
    let tuned = drifted.c.sh("sysctl -n net.core.somaxconn")?;
    drifted.c.sh("sysctl -w net.core.somaxconn=128 >/dev/null")?;
    let run = fleet.playbook("verify.yml", &[])?;
    // Put the knob back before judging, so that a failure here leaves the fleet as it was.
    drifted.c.sh(&format!("sysctl -w net.core.somaxconn={} >/dev/null", tuned.trim()))?;
    run.expect_failure_saying(
        "verify.yml with net.core.somaxconn changed on one host",
        "net.core.somaxconn",
    )?;
    for h in &fleet.hosts {
        let r = run.recap_of(h.name)?;
        let want_failed = u32::from(h.name == drifted.name);
        if r.failed != want_failed || r.changed != 0 {
            return Err(format!(
                "verify.yml with drift on {}: {} has failed={} changed={}, want failed={want_failed} changed=0 (log {})",
                drifted.name,
                h.name,
                r.failed,
                r.changed,
                run.log.display()
            ));
        }
    }
    // The journal is left out: the health gate's login is the engine's to record.
    for (h, before) in fleet.hosts.iter().zip(&before) {
        let after = fingerprint(h)?;
        let unchanged = Fingerprint { journal: before.journal.clone(), ..after.clone() };
        if unchanged != *before {
            return Err(format!("{} changed under verify.yml: before {before:?}, after {after:?}", h.name));
        }
    }
    Ok(())
}
