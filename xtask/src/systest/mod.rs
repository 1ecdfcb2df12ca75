//! `cargo xtask systest`: the packages in a real booted systemd (Debian 12 under
//! systemd-nspawn), and the .rpm checks. Needs root; installs its Debian packages and cargo tools
//! first and fails with a clear message where it cannot.
//!
//! Every scenario runs against `petrel-engine run`. A built binary without that command is
//! reported as PENDING and nothing is tested; `--require-engine` (as CI runs it) makes that a
//! failure.

pub mod ansible;
mod container;
mod ouch;
mod scenarios;

use crate::dist::{self, build_deb, Artifacts, PACKAGES};
use crate::util::{is_root, output, Result};
use container::{rootfs_tarball, Container};
use std::path::{Path, PathBuf};
use std::time::Instant;

const UPGRADE_DIR: &str = "target/systest/upgrade";

/// What the scenarios work with.
pub struct Packages {
    pub engine_deb: PathBuf,
    pub tuner_deb: PathBuf,
    /// The same version with Debian revision 2: "a newer build" for the upgrade scenario.
    pub engine_deb_upgrade: PathBuf,
    pub engine_rpm: PathBuf,
    pub tuner_rpm: PathBuf,
}

/// Outcome of the run, printed at the end.
#[derive(Default)]
pub struct Tally {
    passed: Vec<String>,
    failed: Vec<(String, String)>,
    /// Scenarios this build cannot run yet, and why.
    pending: Vec<(String, String)>,
}

impl Tally {
    /// Runs one scenario; a failure is recorded and returned so that the scenarios after it in
    /// the same container (which depend on its state) are not run.
    fn run(&mut self, name: &str, scenario: impl FnOnce() -> Result) -> Result {
        let started = Instant::now();
        println!("\n--> scenario {name}");
        match scenario() {
            Ok(()) => {
                println!("PASS {name} ({:.1}s)", started.elapsed().as_secs_f64());
                self.passed.push(name.to_string());
                Ok(())
            }
            Err(e) => {
                println!("FAIL {name}: {e}");
                self.failed.push((name.to_string(), e.clone()));
                Err(e)
            }
        }
    }

    /// Records a scenario this build cannot run yet; it is listed, not failed.
    fn pending(&mut self, name: &str, why: &str) {
        println!("\nPENDING {name}: {why}");
        self.pending.push((name.to_string(), why.to_string()));
    }

    /// Prints every scenario's outcome; fails when any scenario failed.
    fn summary(&self, started: Instant) -> Result {
        println!("\n==================== system tests ====================");
        for name in &self.passed {
            println!("PASS     {name}");
        }
        for (name, why) in &self.failed {
            println!("FAIL     {name}: {}", why.lines().next().unwrap_or_default());
        }
        for (name, why) in &self.pending {
            println!("PENDING  {name}: {why}");
        }
        println!(
            "{} passed, {} failed, {} pending in {:.0}s",
            self.passed.len(),
            self.failed.len(),
            self.pending.len(),
            started.elapsed().as_secs_f64()
        );
        if !self.failed.is_empty() {
            return Err(format!("{} system test scenario(s) failed", self.failed.len()));
        }
        Ok(())
    }
}

pub fn systest(require_engine: bool) -> Result {
    let started = Instant::now();
    if !is_root() {
        return Err(
            "`cargo xtask systest` boots containers with systemd-nspawn and needs root; run it as root"
                .into(),
        );
    }
    crate::ci::deps()?;
    let artifacts = dist::dist()?;
    if !output("target/release/petrel-engine", &["run", "--help"])?.status.success() {
        let why = "the built petrel-engine has no `run` command (`target/release/petrel-engine run --help` exits non-zero)";
        if require_engine {
            return Err(format!("--require-engine: {why}"));
        }
        println!("PENDING  every system test scenario: {why}");
        return Ok(());
    }
    let packages = packages(&artifacts)?;
    let tarball = rootfs_tarball()?;
    let mut tally = Tally::default();

    // Session 1: the .deb packages with apt-get, as an operator installs them.
    {
        let c = Container::boot("petrel-deb", &tarball)?;
        let _ = deb_session(&c, &packages, &mut tally);
    }
    // The .rpm files themselves, read on the host.
    let _ = tally.run("rpm metadata, file lists and scriptlets", || scenarios::rpm_metadata(&packages));
    // Session 2: a fresh container, the .rpm packages installed with rpm.
    {
        let c = Container::boot("petrel-rpm", &tarball)?;
        let _ = tally.run("rpm install: scriptlets create the user and directories, units start", || {
            scenarios::rpm_install(&c, &packages)
        });
    }
    // Session 3: three fresh containers, the Ansible playbooks run against them.
    if let Err(e) = ansible::session(&packages, &tarball, &mut tally, true) {
        record_setup_failure(&mut tally, "ansible: set up the fleet", e);
    }
    tally.summary(started)
}

/// The Ansible session alone (`cargo xtask ansible`): the static checks, then the playbooks on
/// three booted hosts (unless `fleet` is false) and on a hot-standby pair.
pub fn ansible_only(fleet: bool) -> Result {
    let started = Instant::now();
    if !is_root() {
        return Err(
            "`cargo xtask ansible` boots containers with systemd-nspawn and needs root; run it as root"
                .into(),
        );
    }
    crate::ci::deps()?;
    ansible::lint()?;
    let artifacts = dist::dist()?;
    let packages = packages(&artifacts)?;
    let tarball = rootfs_tarball()?;
    let mut tally = Tally::default();
    if let Err(e) = ansible::session(&packages, &tarball, &mut tally, fleet) {
        record_setup_failure(&mut tally, "ansible: set up the fleet", e);
    }
    tally.summary(started)
}

/// A failure outside any scenario (a session that could not be set up) is a failure too,
/// unless a scenario already recorded it.
fn record_setup_failure(tally: &mut Tally, what: &str, error: String) {
    if !tally.failed.iter().any(|(_, e)| *e == error) {
        println!("FAIL {what}: {error}");
        tally.failed.push((what.to_string(), error));
    }
}

/// Builds the upgrade .deb (the same version, Debian revision 2) and finds every package the
/// scenarios install.
fn packages(artifacts: &Artifacts) -> Result<Packages> {
    let upgrade_dir = Path::new(UPGRADE_DIR);
    if upgrade_dir.exists() {
        std::fs::remove_dir_all(upgrade_dir).map_err(|e| format!("cannot empty {UPGRADE_DIR}: {e}"))?;
    }
    std::fs::create_dir_all(upgrade_dir).map_err(|e| format!("cannot create {UPGRADE_DIR}: {e}"))?;
    build_deb(&PACKAGES[0], Some("2"), upgrade_dir)?;
    let find = |list: &[PathBuf], prefix: &str| -> Result<PathBuf> {
        list.iter()
            .find(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(prefix)))
            .cloned()
            .ok_or_else(|| format!("no {prefix}* package among {list:?}"))
    };
    let upgrade: Vec<PathBuf> = std::fs::read_dir(upgrade_dir)
        .map_err(|e| format!("cannot list {UPGRADE_DIR}: {e}"))?
        .flatten()
        .map(|e| e.path())
        .collect();
    Ok(Packages {
        engine_deb: find(&artifacts.debs, "petrel-engine_")?,
        tuner_deb: find(&artifacts.debs, "petrel-tuner_")?,
        engine_deb_upgrade: find(&upgrade, "petrel-engine_")?,
        engine_rpm: find(&artifacts.rpms, "petrel-engine-")?,
        tuner_rpm: find(&artifacts.rpms, "petrel-tuner-")?,
    })
}

fn deb_session(c: &Container, p: &Packages, tally: &mut Tally) -> Result {
    tally.run("apt-get install petrel-tuner .deb: units enabled, timer active, host unchanged", || {
        scenarios::tuner_deb_install(c, p)
    })?;
    tally.run("petrel-tuner.service applies a net profile before the engine; rollback restores", || {
        scenarios::tuner_service_applies(c)
    })?;
    tally.run(
        "petrel-tuner-verify: passes on a tuned host, fails and exports drift when a knob changes",
        || scenarios::tuner_verify_detects_drift(c),
    )?;
    tally.run("apt-get install petrel-engine .deb: user, directories, conffile, unit enabled", || {
        scenarios::engine_deb_install(c, p)
    })?;
    tally.run("systemd-analyze verify of every installed unit; engine exposure at most 2.0", || {
        scenarios::units_verify_and_security(c)
    })?;
    let client = ouch::install(c).inspect_err(|e| {
        tally.failed.push(("copy the OUCH client into the container".into(), e.clone()));
    })?;
    tally.run("engine reaches active (running) through READY=1 with its STATUS line", || {
        scenarios::engine_ready_and_status(c)
    })?;
    tally
        .run("journalctl -u petrel-engine shows structured fields", || scenarios::engine_journal_fields(c))?;
    tally.run("a client logs in and trades through the gateway", || scenarios::client_trades(c, &client))?;
    tally.run("systemctl reload applies a changed risk limit in the same process", || {
        scenarios::engine_reload(c)
    })?;
    tally.run("systemctl reload keeps the client's session and applies the new limit to it", || {
        scenarios::reload_keeps_session(c, &client)
    })?;
    let mut acked = Vec::new();
    tally.run(
        "kill -STOP: the watchdog fires, systemd restarts the engine, the journal is recovered",
        || {
            acked = scenarios::engine_watchdog_restart(c, &client)?;
            Ok(())
        },
    )?;
    tally.run(
        "after the watchdog restart every order acknowledged before kill -STOP is still there",
        || scenarios::orders_survive_watchdog(c, &client, &acked),
    )?;
    tally.run("systemctl stop exits cleanly; start recovers the same journal", || {
        scenarios::engine_stop_start(c)
    })?;
    tally.run("upgrade to a newer build keeps edited conffiles and the journal, no restart", || {
        scenarios::engine_upgrade(c, p)
    })?;
    tally.run("apt-get purge keeps the journal and says where", || scenarios::engine_purge_keeps_journal(c))
}
