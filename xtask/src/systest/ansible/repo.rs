//! The fleet's local flat apt repository (target/ansible-systest/repo, bind-mounted read-only
//! into every container): the built petrel-tuner and petrel-engine, and three repacks of the
//! engine made with dpkg-deb from the same build:
//! - a newer version (Debian revision 2): what a rollout upgrades to;
//! - a broken version (revision 3) whose unit runs the engine on a configuration of its own:
//!   systemd reports it active, but its admin endpoint never answers /ready where the
//!   inventory says and no client can log in where the inventory says: a build that starts but
//!   never becomes ready;
//! - an "old release" (0.0.1-1) whose binary is a stand-in script saying it reads journal and
//!   snapshot format 0 only: no real release predates format 1, so the format check's refusal
//!   needs this double.

use crate::systest::Packages;
use crate::util::{run, stdout_of, Result};
use std::fs;
use std::path::{Path, PathBuf};

const DIR: &str = "target/ansible-systest/repo";
const WORK: &str = "target/ansible-systest/repack";
/// The stand-in old release: below any real version.
pub const OLD_RELEASE: &str = "0.0.1-1";
/// The broken build's own configuration and the drop-in that points the unit at it.
const BROKEN_CONFIG: &str = "usr/share/petrel-engine-broken/engine.toml";
const BROKEN_USERS: &str = "usr/share/petrel-engine-broken/users.toml";
const BROKEN_DROPIN: &str = "lib/systemd/system/petrel-engine.service.d/broken.conf";

/// The versions in the repository, and its path (absolute: it is bind-mounted).
pub struct Repo {
    pub dir: PathBuf,
    pub tuner: String,
    pub engine: String,
    pub newer: String,
    pub broken: String,
}

pub fn build(packages: &Packages) -> Result<Repo> {
    for dir in [DIR, WORK] {
        if Path::new(dir).exists() {
            fs::remove_dir_all(dir).map_err(|e| format!("cannot empty {dir}: {e}"))?;
        }
        fs::create_dir_all(dir).map_err(|e| format!("cannot create {dir}: {e}"))?;
    }
    let dir = Path::new(DIR);
    for deb in [&packages.engine_deb, &packages.tuner_deb] {
        let name = deb.file_name().ok_or("package without a file name")?;
        fs::copy(deb, dir.join(name)).map_err(|e| format!("cannot copy {}: {e}", deb.display()))?;
    }
    let engine = field(&packages.engine_deb, "Version")?;
    let upstream = engine.rsplit_once('-').map_or(engine.as_str(), |(u, _)| u).to_string();
    let newer = format!("{upstream}-2");
    let broken = format!("{upstream}-3");
    if engine == newer || engine == broken || !version_lower(OLD_RELEASE, &engine)? {
        return Err(format!(
            "the built petrel-engine is {engine}: the repacks need it at revision 1 and above {OLD_RELEASE}"
        ));
    }
    repack(&packages.engine_deb, &newer, |_| Ok(()))?;
    repack(&packages.engine_deb, &broken, break_unit)?;
    repack(&packages.engine_deb, OLD_RELEASE, old_release_binary)?;
    scan(dir)?;
    Ok(Repo {
        dir: fs::canonicalize(dir).map_err(|e| format!("{DIR}: {e}"))?,
        tuner: field(&packages.tuner_deb, "Version")?,
        engine,
        newer,
        broken,
    })
}

/// A control field of a .deb.
fn field(deb: &Path, name: &str) -> Result<String> {
    let deb = deb.to_str().ok_or("package path is not UTF-8")?;
    Ok(stdout_of("dpkg-deb", &["--field", deb, name])?.trim().to_string())
}

fn version_lower(a: &str, b: &str) -> Result<bool> {
    Ok(std::process::Command::new("dpkg")
        .args(["--compare-versions", a, "lt", b])
        .status()
        .map_err(|e| format!("cannot run dpkg --compare-versions: {e}"))?
        .success())
}

/// Unpacks `deb`, sets its version, lets `change` edit the tree, and builds it into the repo.
fn repack(deb: &Path, version: &str, change: impl FnOnce(&Path) -> Result) -> Result {
    let tree = Path::new(WORK).join(version);
    let tree_str = tree.to_str().ok_or("work path is not UTF-8")?;
    let deb_str = deb.to_str().ok_or("package path is not UTF-8")?;
    run(
        &format!("unpack the engine package for {version}"),
        "dpkg-deb",
        &["--raw-extract", deb_str, tree_str],
        &[],
        None,
    )?;
    let control = tree.join("DEBIAN/control");
    let text = fs::read_to_string(&control).map_err(|e| format!("{}: {e}", control.display()))?;
    let text: String = text
        .lines()
        .map(|l| if l.starts_with("Version:") { format!("Version: {version}\n") } else { format!("{l}\n") })
        .collect();
    fs::write(&control, text).map_err(|e| format!("{}: {e}", control.display()))?;
    change(&tree)?;
    let out = Path::new(DIR).join(format!("petrel-engine_{version}_amd64.deb"));
    let out = out.to_str().ok_or("repo path is not UTF-8")?;
    // gzip: a test package need not be small, and xz takes seconds on this machine.
    run(
        &format!("build petrel-engine {version}"),
        "dpkg-deb",
        &["-Zgzip", "--build", tree_str, out],
        &[],
        None,
    )
}

/// The broken build: a drop-in runs the engine on a configuration of its own (its admin
/// endpoint, gateway and journal elsewhere, nobody in its users file).
fn break_unit(tree: &Path) -> Result {
    let packaged = fs::read_to_string("packaging/etc/engine.toml")
        .map_err(|e| format!("cannot read packaging/etc/engine.toml: {e}"))?;
    let mut config = packaged.clone();
    for (from, to) in [
        ("listen = \"127.0.0.1:15000\"", "listen = \"127.0.0.1:15009\""),
        ("listen = \"127.0.0.1:9180\"", "listen = \"127.0.0.1:9189\""),
        ("dir = \"/var/lib/petrel/journal\"", "dir = \"/var/lib/petrel/broken/journal\""),
        ("dir = \"/var/lib/petrel/snapshots\"", "dir = \"/var/lib/petrel/broken/snapshots\""),
        (
            "users_file = \"/etc/petrel/users.toml\"",
            "users_file = \"/usr/share/petrel-engine-broken/users.toml\"\nallow_readable_users_file = true",
        ),
    ] {
        if !config.contains(from) {
            return Err(format!("packaging/etc/engine.toml no longer has {from:?}: update the broken build"));
        }
        config = config.replacen(from, to, 1);
    }
    write(tree, BROKEN_CONFIG, &config, 0o644)?;
    write(tree, BROKEN_USERS, "# The broken test build: nobody can log in.\n", 0o644)?;
    let dropin = "# A deliberately broken build for the rollout test: the engine starts (systemd reports it\n\
                  # active) on a configuration of its own, so it never answers where the inventory says.\n\
                  [Service]\nExecStart=\nExecStart=/usr/bin/petrel-engine run --config /usr/share/petrel-engine-broken/engine.toml\n";
    write(tree, BROKEN_DROPIN, dropin, 0o644)?;
    let check = tree.join(BROKEN_CONFIG);
    let check = check.to_str().ok_or("work path is not UTF-8")?;
    // The broken build must still start: its own configuration is valid.
    run(
        "check the broken build's configuration",
        "target/release/petrel-engine",
        &["check-config", "--config", check],
        &[],
        None,
    )
}

/// The stand-in old release: its binary only answers --version, with formats it cannot read.
fn old_release_binary(tree: &Path) -> Result {
    let script = "#!/bin/sh\n# Stand-in for an engine release older than journal format 1 (system tests only).\n\
                  echo 'petrel-engine 0.0.1'\necho 'journal format: reads 0, writes 0'\necho 'snapshot format: reads 0, writes 0'\n";
    write(tree, "usr/bin/petrel-engine", script, 0o755)
}

fn write(tree: &Path, path: &str, text: &str, mode: u32) -> Result {
    use std::os::unix::fs::PermissionsExt;
    let file = tree.join(path);
    if let Some(parent) = file.parent() {
        fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    fs::write(&file, text).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
    fs::set_permissions(&file, fs::Permissions::from_mode(mode))
        .map_err(|e| format!("chmod {}: {e}", file.display()))
}

/// Writes the repository's Packages index (dpkg-scanpackages reads the current directory).
fn scan(dir: &Path) -> Result {
    let out = std::process::Command::new("dpkg-scanpackages")
        .args(["--multiversion", "."])
        .current_dir(dir)
        .output()
        .map_err(|e| format!("cannot run dpkg-scanpackages (Debian package dpkg-dev): {e}"))?;
    if !out.status.success() {
        return Err(format!("dpkg-scanpackages failed: {}", String::from_utf8_lossy(&out.stderr)));
    }
    fs::write(dir.join("Packages"), &out.stdout).map_err(|e| format!("cannot write the Packages index: {e}"))
}
