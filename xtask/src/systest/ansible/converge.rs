//! site.yml: a fresh fleet converges to READY and trades; a second run changes nothing; a
//! --check --diff run on the converged fleet reports no change.

use super::fleet::{Fleet, Run};
use super::host::{engine_version, expect_ready, fingerprint, trade, tuner_version};
use crate::util::Result;

/// What a playbook's output must never show: the users' password hashes (no_log) and the
/// passwords of the health gate and of the pair's probe.
const SECRETS: &[&str] =
    &["$argon2", "password: probe", "\"password\": \"probe\"", "password: watch", "\"password\": \"watch\""];

pub fn no_secret_in(run: &Run) -> Result {
    for secret in SECRETS {
        if run.output.contains(secret) {
            return Err(format!(
                "the output of ansible-playbook shows {secret:?} (log {})",
                run.log.display()
            ));
        }
    }
    Ok(())
}

pub fn site_converges(fleet: &Fleet, engine: &str, tuner: &str) -> Result {
    let run = fleet.playbook("site.yml", &[])?;
    run.expect_success("site.yml on a fresh fleet")?;
    no_secret_in(&run)?;
    for (i, h) in fleet.hosts.iter().enumerate() {
        if engine_version(h)? != engine || tuner_version(h)? != tuner {
            return Err(format!("{}: not at petrel-engine {engine} and petrel-tuner {tuner}", h.name));
        }
        h.c.sh("dpkg --get-selections petrel-engine petrel-tuner | grep -c 'hold$' | grep -qx 2")
            .map_err(|_| format!("{}: the packages are not held", h.name))?;
        expect_ready(h)?;
        let modes = h.c.sh("stat -c '%U:%G %a %n' /etc/petrel/engine.toml /etc/petrel/users.toml")?;
        if modes.trim() != "root:root 644 /etc/petrel/engine.toml\nroot:petrel 640 /etc/petrel/users.toml" {
            return Err(format!("{}: owners and modes of the engine's files:\n{modes}", h.name));
        }
        // The host's own tuning from its host_vars (4096 x host number), applied by the role.
        let want = (4096 * (i + 1)).to_string();
        let got = h.c.sh("sysctl -n net.core.somaxconn")?;
        if got.trim() != want {
            return Err(format!(
                "{}: net.core.somaxconn is {}, want {want} from its host_vars",
                h.name,
                got.trim()
            ));
        }
    }
    Ok(())
}

pub fn every_host_trades(fleet: &Fleet, round: u32) -> Result {
    for h in &fleet.hosts {
        trade(h, round)?;
    }
    Ok(())
}

/// Every host in the recap, none failed, none changed.
pub fn expect_no_change(run: &Run, fleet: &Fleet, what: &str) -> Result {
    run.expect_success(what)?;
    for h in &fleet.hosts {
        let r = run.recap_of(h.name)?;
        if r.changed != 0 || r.failed != 0 {
            return Err(format!(
                "{what}: {} reports changed={} failed={}, want 0 (log {})",
                h.name,
                r.changed,
                r.failed,
                run.log.display()
            ));
        }
    }
    Ok(())
}

pub fn second_run_changes_nothing(fleet: &Fleet) -> Result {
    let before: Vec<_> = fleet.hosts.iter().map(fingerprint).collect::<Result<_>>()?;
    let run = fleet.playbook("site.yml", &[])?;
    expect_no_change(&run, fleet, "site.yml on a converged fleet")?;
    for (h, before) in fleet.hosts.iter().zip(&before) {
        let after = fingerprint(h)?;
        if after.main_pid != before.main_pid {
            return Err(format!("{}: the engine restarted ({before:?} -> {after:?})", h.name));
        }
    }
    Ok(())
}

pub fn check_diff_reports_nothing(fleet: &Fleet) -> Result {
    let run = fleet.playbook("site.yml", &["--check", "--diff"])?;
    expect_no_change(&run, fleet, "site.yml --check --diff on a converged fleet")?;
    no_secret_in(&run)?;
    if run.output.contains("--- before") {
        return Err(format!("--check --diff shows a diff on a converged fleet (log {})", run.log.display()));
    }
    Ok(())
}
