//! The Ansible playbooks (ansible/) tested for real: `lint` checks them statically (ansible-lint
//! with the production profile, a syntax check of every playbook); `session` boots three Debian 12
//! hosts and runs the playbooks against them, as an operator does, checking each outcome on the
//! hosts themselves (package versions, processes, files, /ready, trades over OUCH).
//!
//! The scenarios share one fleet and run in order; each builds on the state the previous one
//! left (converged, then upgraded, then a failed rollout rolled back, ...), so the first failure
//! ends the session.

mod backup;
mod converge;
mod fleet;
mod host;
mod inventory;
mod lint;
mod pair;

mod reboot;
mod repo;
mod rollout;
mod venv;
mod verify;

pub use lint::lint;

use super::{Packages, Tally};
use crate::util::Result;
use fleet::Fleet;
use std::path::Path;

const BACKUPS: &str = "target/ansible-systest/backups";

/// The three-host fleet, then (once it is powered off) the hot-standby pair.
pub(super) fn session(packages: &Packages, tarball: &Path, tally: &mut Tally, fleet: bool) -> Result {
    let bin = venv::ensure()?;
    let repo = repo::build(packages)?;
    let fleet = if fleet { fleet_session(&repo, tarball, bin.clone(), tally) } else { Ok(()) };
    if let Err(e) = pair::session(&repo, tarball, bin, tally) {
        super::record_setup_failure(tally, "ansible pair: set up the pair", e);
    }
    fleet
}

fn fleet_session(repo: &repo::Repo, tarball: &Path, bin: std::path::PathBuf, tally: &mut Tally) -> Result {
    let fleet = Fleet::boot(tarball, repo, bin)?;
    tally.run(
        "ansible: site.yml brings three hosts to READY, held at the inventory's versions, tuned per host",
        || converge::site_converges(&fleet, &repo.engine, &repo.tuner),
    )?;
    tally.run("ansible: an OUCH client trades on every host", || converge::every_host_trades(&fleet, 1))?;
    tally.run("ansible: a second site.yml run reports changed=0 and restarts nothing", || {
        converge::second_run_changes_nothing(&fleet)
    })?;
    tally.run("ansible: site.yml --check --diff on the converged fleet reports no change", || {
        converge::check_diff_reports_nothing(&fleet)
    })?;
    tally.run(
        "ansible: bad inventory values (profile, CPU sets, float price, vault secret) stop site.yml before any host changes",
        || inventory::bad_values_stop_before_any_change(&fleet),
    )?;
    tally
        .run("ansible: verify.yml passes on the fleet, then fails the one host whose knob drifted", || {
            verify::verify_passes_then_names_drift(&fleet)
        })?;
    tally.run("ansible: a kernel command line change is reported and the host not rebooted", || {
        reboot::cmdline_change_is_reported_not_rebooted(&fleet)
    })?;
    tally.run(
        "ansible: rollout.yml to a newer version upgrades the canary, then the rest, each behind the gate",
        || rollout::rollout_upgrades_in_order(&fleet, &repo.newer),
    )?;
    tally.run(
        "ansible: rollout.yml to a broken version fails on the canary, back on its version, ready and trading; no other host touched",
        || rollout::broken_rollout_stops_on_canary(&fleet, &repo.broken, &repo.newer, 2),
    )?;
    tally.run("ansible: rollback.yml to a version that cannot read the journal on disk is refused before any change", || {
        rollout::rollback_refuses_unreadable_formats(&fleet)
    })?;
    let name = "ansible: backup.yml on one host, restore.yml on another: same state hash, every acknowledged order there";
    match backup::pending_reason()? {
        Some(why) => {
            tally.pending(name, &why);
            Ok(())
        }
        None => {
            std::fs::create_dir_all(BACKUPS).map_err(|e| format!("cannot create {BACKUPS}: {e}"))?;
            let backups = venv::absolute(Path::new(BACKUPS))?;
            tally.run(name, || backup::backup_then_restore_elsewhere(&fleet, &backups))
        }
    }
}
