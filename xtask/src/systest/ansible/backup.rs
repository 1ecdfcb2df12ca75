//! backup.yml on one host, restore.yml onto another: the restored engine's state hash equals
//! the backup's manifest, and every order the source acknowledged is in the restored engine's
//! stream. Needs `petrel-engine journal backup` and `journal restore`; a build without them
//! reports this scenario as pending.

use super::fleet::{Fleet, HOSTS};
use super::host::{alice_acknowledged, expect_ready};
use crate::util::{output, Result};
use std::path::Path;

/// Why the scenario cannot run against this build, if it cannot.
pub fn pending_reason() -> Result<Option<String>> {
    let out = output("target/release/petrel-engine", &["journal", "backup", "--help"])?;
    if out.status.success() {
        return Ok(None);
    }
    Ok(Some("the built petrel-engine has no `journal backup` command (`target/release/petrel-engine journal backup --help` exits non-zero)".into()))
}

pub fn backup_then_restore_elsewhere(fleet: &Fleet, backups: &Path) -> Result {
    let (source, target) = (fleet.host(HOSTS[0])?, fleet.host(HOSTS[1])?);
    let acknowledged = alice_acknowledged(source)?;
    if acknowledged.is_empty() {
        return Err(format!("{}: ALICE has no acknowledged order to carry over", source.name));
    }
    let dir = format!("petrel_engine_backup_controller_dir={}", backups.display());
    let run = fleet.playbook("backup.yml", &["--limit", source.name, "-e", &dir])?;
    run.expect_success("backup.yml")?;
    let archive = newest_archive(backups, source.name)?;
    let manifest = archive.display().to_string().replace(".tar.gz", ".manifest.json");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(&manifest).map_err(|e| format!("cannot read {manifest}: {e}"))?,
    )
    .map_err(|e| format!("{manifest}: {e}"))?;
    let run = fleet.playbook(
        "restore.yml",
        &[
            "-e",
            &format!("petrel_restore_host={}", target.name),
            "-e",
            &format!("petrel_engine_restore_archive={}", archive.display()),
        ],
    )?;
    run.expect_success("restore.yml")?;
    expect_ready(target)?;
    let status = target.c.sh("python3 -c \"import urllib.request; print(urllib.request.urlopen('http://127.0.0.1:9180/status', timeout=10).read().decode())\"")?;
    let status: serde_json::Value =
        serde_json::from_str(status.trim()).map_err(|e| format!("/status: {e}: {status}"))?;
    if status["recovered_state_hash"] != manifest["state_hash"] || status["recovered_state_hash"].is_null() {
        return Err(format!(
            "{}: state hash {} after the restore, the manifest says {}",
            target.name, status["recovered_state_hash"], manifest["state_hash"]
        ));
    }
    let restored = alice_acknowledged(target)?;
    let missing: Vec<&u64> = acknowledged.iter().filter(|r| !restored.contains(r)).collect();
    if !missing.is_empty() {
        return Err(format!(
            "{}: orders {missing:?} acknowledged on {} are not in the restored stream",
            target.name, source.name
        ));
    }
    Ok(())
}

fn newest_archive(dir: &Path, host: &str) -> Result<std::path::PathBuf> {
    let mut archives: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{host}-")) && n.ends_with(".tar.gz"))
        })
        .collect();
    archives.sort();
    archives.pop().ok_or_else(|| format!("backup.yml left no {host}-*.tar.gz in {}", dir.display()))
}
