//! Rebuilding a standby that needs records its primary no longer keeps (journal retention
//! deleted them): the primary takes a backup of itself, the consistent copy `petrel-engine
//! journal backup` takes (journal, newest snapshot, every account's output journal, a manifest
//! with a SHA-256 per file), on the replication thread, so matching never waits for it, and
//! sends its files over the replication connection in chunks. The standby writes them into a
//! staging directory beside its journal and, once whole, restores them in place of its own
//! journal, snapshots and output journals (each file checked against the manifest and the
//! journal replayed to the manifest's state hash, as `journal restore` does), keeps its epoch
//! history, and follows from the backup's last sequence. Memory stays bounded: one chunk at a
//! time on either side; the disk holds the backup once more while it travels.

use std::fs::File;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::epoch::EpochHistory;
use super::wire::{FrameWriter, FILE_CHUNK_BYTES};
use crate::backup::{self, AdminSource};
use crate::config::Config;

/// While the backup is taken, the standby hears a heartbeat this often (it gives up on a
/// primary silent for 3 s).
const HEARTBEAT_EVERY: Duration = Duration::from_millis(100);

/// The primary's copy of itself for a standby, beside its journal directory.
fn outgoing_dir(config: &Config) -> PathBuf {
    config.journal.dir.with_extension("backup-for-standby")
}

/// Where a standby receives the primary's backup, beside its journal directory.
pub fn staging_dir(journal_dir: &Path) -> PathBuf {
    journal_dir.with_extension("rebuild")
}

/// What the primary sent.
pub struct Sent {
    pub sequence: u64,
    pub files: u32,
    pub bytes: u64,
}

/// Primary: backs itself up (`durable` reads this engine's durable sequence: the backup's
/// recovery point, read once the output journals are copied, as `journal backup` reads it) and
/// sends the backup's files, then `Rebuilt`. Heartbeats keep the standby waiting meanwhile.
pub fn send_backup(
    config: &Config,
    durable: Arc<dyn Fn() -> u64 + Send + Sync>,
    stream: &mut TcpStream,
) -> Result<Sent, String> {
    let dir = outgoing_dir(config);
    if dir.exists() {
        // What an interrupted send left.
        std::fs::remove_dir_all(&dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
    }
    let taker = {
        let (config, dir, source) = (config.clone(), dir.clone(), AdminSource::Engine(Arc::clone(&durable)));
        std::thread::Builder::new()
            .name("petrel-repl-backup".into())
            .spawn(move || backup::backup(&config, &dir, source, &mut |_, _| {}))
            .map_err(|e| format!("cannot start the backup thread: {e}"))?
    };
    let mut frame = FrameWriter::new();
    let mut beating = Ok(());
    while !taker.is_finished() {
        if beating.is_ok() {
            beating = stream.write_all(frame.heartbeat(durable(), false));
        }
        std::thread::sleep(HEARTBEAT_EVERY);
    }
    let taken = taker.join().map_err(|_| "the backup thread panicked".to_owned())?;
    let sent = match (taken, beating) {
        (Err(e), _) => Err(format!("backing up this primary for the standby: {e}")),
        (Ok(_), Err(e)) => Err(format!("the standby went while the backup was taken: {e}")),
        (Ok(manifest), Ok(())) => send_files(&dir, stream, &mut frame).map(|(files, bytes)| Sent {
            sequence: manifest.sequence,
            files,
            bytes,
        }),
    };
    let _ = std::fs::remove_dir_all(&dir);
    sent
}

/// Every file of the backup in `dir`, the manifest last, in chunks; then `Rebuilt`.
fn send_files(dir: &Path, stream: &mut TcpStream, frame: &mut FrameWriter) -> Result<(u32, u64), String> {
    let mut paths = Vec::new();
    list_files(dir, dir, &mut paths).map_err(|e| format!("listing the backup {}: {e}", dir.display()))?;
    paths.sort_by_key(|p| (p == backup::MANIFEST_FILE, p.clone()));
    let mut chunk = vec![0u8; FILE_CHUNK_BYTES];
    let mut bytes = 0u64;
    for path in &paths {
        let full = dir.join(path);
        let fail = |e: std::io::Error| format!("sending {}: {e}", full.display());
        let mut file = File::open(&full).map_err(fail)?;
        let file_bytes = file.metadata().map_err(fail)?.len();
        let mut offset = 0u64;
        loop {
            let n = file.read(&mut chunk).map_err(fail)?;
            if n == 0 && offset > 0 {
                break;
            }
            stream.write_all(frame.file_chunk(path, file_bytes, offset, &chunk[..n])).map_err(fail)?;
            offset += n as u64;
            if n == 0 || offset >= file_bytes {
                break;
            }
        }
        bytes += offset;
    }
    stream
        .write_all(frame.rebuilt(paths.len() as u32, bytes))
        .map_err(|e| format!("sending the end of the backup: {e}"))?;
    Ok((paths.len() as u32, bytes))
}

fn list_files(root: &Path, dir: &Path, out: &mut Vec<String>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            list_files(root, &path, out)?;
        } else {
            let relative = path.strip_prefix(root).expect("under the root");
            out.push(relative.to_string_lossy().into_owned());
        }
    }
    Ok(())
}

/// Standby: the backup being received.
pub struct Staging {
    dir: PathBuf,
    open: Option<Receiving>,
    files: u32,
    bytes: u64,
}

struct Receiving {
    path: String,
    file: File,
    file_bytes: u64,
    written: u64,
}

impl Staging {
    /// Starts receiving into `dir` (what an earlier, interrupted rebuild left there is removed).
    pub fn new(dir: PathBuf) -> Result<Staging, String> {
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        Ok(Staging { dir, open: None, files: 0, bytes: 0 })
    }

    /// One chunk: the next of the file being received, or the first of the next file once
    /// that one is whole. Anything else is the primary's error, refused with what and where.
    pub fn take(&mut self, path: &str, file_bytes: u64, offset: u64, data: &[u8]) -> Result<(), String> {
        let same = self.open.as_ref().is_some_and(|r| r.path == path);
        if !same {
            self.close()?;
            if offset != 0 {
                return Err(format!("the backup's {path} begins at offset {offset}, not 0"));
            }
            let target = self.dir.join(checked_path(path)?);
            if let Some(parent) = target.parent() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
            }
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&target)
                .map_err(|e| format!("cannot create {} (sent twice?): {e}", target.display()))?;
            self.open = Some(Receiving { path: path.to_owned(), file, file_bytes, written: 0 });
        }
        let receiving = self.open.as_mut().expect("opened above");
        if offset != receiving.written || file_bytes != receiving.file_bytes {
            return Err(format!(
                "the backup's {path}: a chunk at offset {offset} of {file_bytes} bytes where offset {} of {} was next",
                receiving.written, receiving.file_bytes
            ));
        }
        receiving.file.write_all(data).map_err(|e| format!("writing the backup's {path}: {e}"))?;
        receiving.written += data.len() as u64;
        Ok(())
    }

    fn close(&mut self) -> Result<(), String> {
        let Some(receiving) = self.open.take() else { return Ok(()) };
        if receiving.written != receiving.file_bytes {
            return Err(format!(
                "the backup's {} ended after {} of its {} bytes",
                receiving.path, receiving.written, receiving.file_bytes
            ));
        }
        receiving.file.sync_all().map_err(|e| format!("syncing the backup's {}: {e}", receiving.path))?;
        self.files += 1;
        self.bytes += receiving.written;
        Ok(())
    }

    /// `Rebuilt`: the backup is whole when it holds what the primary says it sent.
    pub fn finish(mut self, files: u32, bytes: u64) -> Result<PathBuf, String> {
        self.close()?;
        if (files, bytes) != (self.files, self.bytes) {
            return Err(format!(
                "the primary sent a backup of {files} files and {bytes} bytes, {} files and {} bytes arrived",
                self.files, self.bytes
            ));
        }
        Ok(self.dir)
    }
}

/// A path of a backup file, inside the staging directory whatever the primary sent: relative,
/// plain names only, under `journal/`, `snapshots/` or `sessions/`, or the manifest.
fn checked_path(path: &str) -> Result<PathBuf, String> {
    let bad = || format!("the primary sent a backup file named {path:?}, which is not a backup's");
    let parts: Vec<&str> = path.split('/').collect();
    let plain = parts.iter().all(|part| {
        !part.is_empty()
            && *part != "."
            && *part != ".."
            && part.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    });
    let folders = [backup::JOURNAL_DIR, backup::SNAPSHOTS_DIR, backup::SESSIONS_DIR, backup::MARKET_DATA_DIR];
    let in_folder = folders.contains(&parts[0]) && parts.len() >= 2;
    if !plain || !(in_folder || path == backup::MANIFEST_FILE) {
        return Err(bad());
    }
    Ok(PathBuf::from(path))
}

/// Standby, its follower stopped: replaces its journal, snapshots and output journals with the
/// backup in `staging` (the old ones are moved beside them, `*.before-rebuild`, replacing any
/// older such copy), keeps its epoch history, and removes the staging directory.
/// `progress` is called as the restore goes (records replayed, of how many): the daemon feeds
/// systemd's watchdog from it, the unit being active while a standby rebuilds.
pub fn rebuild_from(
    config: &Config,
    staging: &Path,
    epochs: &EpochHistory,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<String, String> {
    let mut moved = Vec::new();
    for dir in [&config.journal.dir, &config.snapshots.dir] {
        if !dir.exists() {
            continue; // absent, or inside the journal directory moved already
        }
        let aside = dir.with_extension("before-rebuild");
        if aside.exists() {
            std::fs::remove_dir_all(&aside).map_err(|e| format!("cannot remove {}: {e}", aside.display()))?;
        }
        std::fs::rename(dir, &aside)
            .map_err(|e| format!("cannot move {} aside to {}: {e}", dir.display(), aside.display()))?;
        moved.push((dir.clone(), aside));
    }
    let restored = match backup::restore(config, staging, progress) {
        Ok(restored) => restored,
        Err(e) => {
            for (dir, aside) in moved.iter().rev() {
                let _ = std::fs::remove_dir_all(dir);
                let _ = std::fs::rename(aside, dir);
            }
            return Err(format!("restoring the primary's backup from {}: {e}", staging.display()));
        }
    };
    epochs.save()?;
    let _ = std::fs::remove_dir_all(staging);
    Ok(format!(
        "rebuilt from the primary's backup: {} files, {} bytes, through sequence {} (state hash {}); the previous journal and snapshots are in {}",
        restored.files,
        restored.bytes,
        restored.manifest.sequence,
        restored.manifest.state_hash,
        moved.iter().map(|(_, a)| a.display().to_string()).collect::<Vec<_>>().join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_backups_own_paths_are_accepted() {
        for good in ["manifest.json", "journal/input-1.seg", "sessions/released", "snapshots/a_1.snap"] {
            assert!(checked_path(good).is_ok(), "{good}");
        }
        for bad in [
            "../x",
            "/etc/passwd",
            "journal/../../x",
            "journal",
            "other/x",
            "journal/a b",
            "",
            "journal//x/.",
        ] {
            assert!(checked_path(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_backup_arrives_whole_or_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut staging = Staging::new(dir.path().join("rebuild")).unwrap();
        staging.take("journal/input-1.seg", 6, 0, b"abc").unwrap();
        let err = staging.take("journal/input-1.seg", 6, 4, b"x").unwrap_err();
        assert!(err.contains("offset 4") && err.contains("offset 3"), "{err}");
        staging.take("journal/input-1.seg", 6, 3, b"def").unwrap();
        staging.take("manifest.json", 2, 0, b"{}").unwrap();
        let err = staging.take("manifest.json", 2, 0, b"{}");
        assert!(err.is_err(), "a chunk past the end");
        let dir_path = Staging::new(dir.path().join("rebuild2")).unwrap();
        let mut cut = dir_path;
        cut.take("manifest.json", 4, 0, b"{}").unwrap();
        let err = cut.finish(1, 4).unwrap_err();
        assert!(err.contains("after 2 of its 4 bytes"), "{err}");
        let whole = staging.finish(2, 8).unwrap();
        assert_eq!(std::fs::read(whole.join("journal/input-1.seg")).unwrap(), b"abcdef");
    }
}
