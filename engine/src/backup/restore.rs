//! Restoring a backup onto a host with no journal: every checksum is checked before anything
//! is written, the files are copied into the configuration's directories, and the result is
//! replayed read-only to the manifest's state hash before the restore reports success.

use std::fs::{File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use petrel_journal::{JournalLocation, FORMAT_VERSION, SNAPSHOT_VERSION};

use super::manifest::{checksum, FileEntry, Manifest};
use super::{
    describe_entries, sync_dir, BackupError, JOURNAL_DIR, MARKET_DATA_DIR, SESSIONS_DIR, SNAPSHOTS_DIR,
};
use crate::config::Config;
use crate::gateway::GatewaySettings;
use crate::recovery::replay_read_only;

/// Bytes copied at a time.
const COPY_CHUNK_BYTES: usize = 1 << 20;

/// What a restore wrote.
#[derive(Debug)]
pub struct Restored {
    pub manifest: Manifest,
    pub files: usize,
    pub bytes: u64,
}

/// One backup file and where it goes.
struct Placement<'a> {
    entry: &'a FileEntry,
    source: PathBuf,
    target: PathBuf,
    /// A journal segment: its disk space is reserved, as the engine reserves a segment's.
    segment: bool,
}

/// Restores the backup in `from` into the directories of `config`, which must be empty or
/// absent. Refuses a damaged backup before writing anything; removes what it wrote if the
/// restored journal does not replay to the manifest's state.
pub fn restore(
    config: &Config,
    from: &Path,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Restored, BackupError> {
    let manifest = Manifest::read(from)?;
    check_formats(&manifest, from)?;
    let sessions_dir = GatewaySettings::from_config(config).sessions_dir;
    let placements = place(config, &sessions_dir, &manifest, from)?;
    let mut written = Written::check_empty(&[&config.journal.dir, &config.snapshots.dir, &sessions_dir])?;
    for placement in &placements {
        let (sha256, bytes) = checksum(&placement.source).map_err(|e| match e {
            BackupError::Io { source, .. } => BackupError::Damaged {
                path: placement.source.clone(),
                reason: format!("cannot read it: {source}"),
            },
            other => other,
        })?;
        if bytes != placement.entry.bytes || sha256 != placement.entry.sha256 {
            return Err(BackupError::Damaged {
                path: placement.source.clone(),
                reason: format!(
                    "SHA-256 {sha256} and {bytes} bytes, the manifest says {} and {} bytes",
                    placement.entry.sha256, placement.entry.bytes
                ),
            });
        }
    }
    for placement in &placements {
        written.copy(placement)?;
    }
    written.sync()?;
    let location = JournalLocation::new(&config.journal.dir, &config.journal.file_prefix);
    let (engine, report) =
        replay_read_only(&config.engine, &location, Some(&config.snapshots.dir), progress)?;
    let state_hash = engine.state_hash().to_string();
    if report.last_sequence != manifest.sequence || state_hash != manifest.state_hash {
        return Err(BackupError::Verify(format!(
            "the restored journal replays to sequence {} with state hash {state_hash}, the backup's \
             manifest says sequence {} and {}: do this configuration's [[instruments]] and \
             [[accounts]] match those of the engine backed up ({})? Nothing was kept",
            report.last_sequence,
            manifest.sequence,
            manifest.state_hash,
            manifest.source_config.display()
        )));
    }
    written.keep = true;
    let bytes = manifest.total_bytes();
    Ok(Restored { files: placements.len(), bytes, manifest })
}

/// Refuses a backup whose files this build cannot read.
fn check_formats(manifest: &Manifest, from: &Path) -> Result<(), BackupError> {
    let newer = |what: &str, found: u32, reads: u32| BackupError::Manifest {
        path: from.join(super::MANIFEST_FILE),
        reason: format!(
            "the backup holds {what} format {found}, which this build of petrel-engine does not read \
             (it reads {what} format {reads}): install a petrel-engine that reads {what} format \
             {found} (`petrel-engine --version` lists the formats a build reads); nothing was restored"
        ),
    };
    if manifest.formats.journal > FORMAT_VERSION {
        return Err(newer("journal", manifest.formats.journal, FORMAT_VERSION));
    }
    if manifest.formats.snapshot > SNAPSHOT_VERSION {
        return Err(newer("snapshot", manifest.formats.snapshot, SNAPSHOT_VERSION));
    }
    Ok(())
}

/// Where each file of the manifest goes; refuses a path outside the backup's three folders
/// (a manifest never writes outside the configured directories).
fn place<'a>(
    config: &Config,
    sessions_dir: &Path,
    manifest: &'a Manifest,
    from: &Path,
) -> Result<Vec<Placement<'a>>, BackupError> {
    let mut placements = Vec::with_capacity(manifest.files.len());
    for entry in &manifest.files {
        let unexpected = || BackupError::Manifest {
            path: from.join(super::MANIFEST_FILE),
            reason: format!("unexpected file path {:?}", entry.path),
        };
        let (folder, name) = entry.path.split_once('/').ok_or_else(unexpected)?;
        if name.is_empty() || name.contains(['/', '\0']) || name == "." || name == ".." {
            return Err(unexpected());
        }
        let (target, segment) = match folder {
            JOURNAL_DIR => {
                let stem = name
                    .strip_prefix(manifest.journal_file_prefix.as_str())
                    .and_then(|rest| rest.strip_prefix('-'))
                    .ok_or_else(unexpected)?;
                // The segments take the target's prefix; their contents do not name it.
                (config.journal.dir.join(format!("{}-{stem}", config.journal.file_prefix)), true)
            }
            SNAPSHOTS_DIR => (config.snapshots.dir.join(name), false),
            SESSIONS_DIR => (sessions_dir.join(name), name.ends_with(".seg")),
            MARKET_DATA_DIR => (crate::market_data::feed_dir(config).join(name), name.ends_with(".seg")),
            _ => return Err(unexpected()),
        };
        placements.push(Placement { entry, source: from.join(folder).join(name), target, segment });
    }
    Ok(placements)
}

/// The directories a restore writes into and the files it wrote: removed again unless the
/// restore completes.
struct Written {
    /// Each target directory, and whether it existed (empty) before the restore.
    dirs: Vec<(PathBuf, bool)>,
    files: Vec<PathBuf>,
    keep: bool,
}

impl Written {
    /// Refuses unless every directory is empty or absent, naming what one holds.
    fn check_empty(dirs: &[&Path]) -> Result<Written, BackupError> {
        for dir in dirs {
            if let Some(found) = describe_entries(dir)? {
                return Err(BackupError::NotEmpty {
                    dir: dir.to_path_buf(),
                    found,
                    what: "a restore writes only into empty or absent journal, snapshot and session \
                           directories; move what is there away first",
                });
            }
        }
        let dirs = dirs.iter().map(|d| (d.to_path_buf(), d.exists())).collect();
        Ok(Written { dirs, files: Vec::new(), keep: false })
    }

    /// Copies one file, leaving zero runs as holes (in a segment, inside its reserved space).
    fn copy(&mut self, placement: &Placement<'_>) -> Result<(), BackupError> {
        let (source, target) = (&placement.source, &placement.target);
        let parent = target.parent().expect("a target file has a directory");
        std::fs::create_dir_all(parent).map_err(BackupError::io("create directory", parent))?;
        let mut input = File::open(source).map_err(BackupError::io("open", source))?;
        let output = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(target)
            .map_err(BackupError::io("create", target))?;
        self.files.push(target.clone());
        if placement.segment {
            petrel_journal::preallocate(&output, target, placement.entry.bytes)?;
        } else {
            output.set_len(placement.entry.bytes).map_err(BackupError::io("extend", target))?;
        }
        let mut buf = vec![0u8; COPY_CHUNK_BYTES];
        let mut offset = 0u64;
        loop {
            let n = match input.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(BackupError::io("read", source)(e)),
            };
            if buf[..n].iter().any(|&b| b != 0) {
                output.write_all_at(&buf[..n], offset).map_err(BackupError::io("write", target))?;
            }
            offset += n as u64;
        }
        if offset != placement.entry.bytes {
            return Err(BackupError::Damaged {
                path: source.clone(),
                reason: format!("it changed during the restore ({offset} bytes now)"),
            });
        }
        output.sync_all().map_err(BackupError::io("fsync", target))
    }

    /// Makes the new names durable.
    fn sync(&self) -> Result<(), BackupError> {
        for (dir, _) in &self.dirs {
            if dir.exists() {
                sync_dir(dir)?;
            }
        }
        Ok(())
    }
}

impl Drop for Written {
    fn drop(&mut self) {
        if self.keep || self.files.is_empty() {
            return;
        }
        for file in &self.files {
            let _ = std::fs::remove_file(file);
        }
        // Deepest first: the sessions directory lies inside the journal's.
        for (dir, existed) in self.dirs.iter().rev() {
            if !existed {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
}
