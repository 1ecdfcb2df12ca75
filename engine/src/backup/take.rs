//! Taking a backup of a running (or stopped) engine: the copy, in the order that keeps it
//! consistent (see the module docs of [`super`]), then its verification by a read-only replay,
//! then the manifest.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use petrel_journal::{CopiedJournal, JournalError, JournalLocation};

use super::manifest::{self, Manifest, MANIFEST_VERSION};
use super::{
    describe_entries, durable, sync_dir, BackupError, JOURNAL_DIR, MARKET_DATA_DIR, SESSIONS_DIR,
    SNAPSHOTS_DIR,
};
use crate::config::Config;
use crate::gateway::{GatewaySettings, RELEASE_MARK_FILE};
use crate::journal_tools::FormatVersions;
use crate::recovery::replay_read_only;

/// Attempts at a copy that retention or snapshot pruning overtook (a newer snapshot replaced
/// the one copied, and the segments it needed were deleted) before the backup gives up.
const ATTEMPTS_MAX: u32 = 3;

/// Reads of the release mark that may disagree before the backup gives up (each disagreement
/// is a write racing a read, microseconds apart).
const MARK_READS_MAX: u32 = 100;

/// Where the recovery point comes from.
#[derive(Clone)]
pub enum AdminSource {
    /// The configuration's `[admin] listen`; with port 0 (no fixed address) the journal is read.
    Config,
    /// The running engine's admin endpoint at this address.
    At(SocketAddr),
    /// The engine itself (a primary backing itself up for its standby): its durable
    /// sequence, read when the recovery point is taken (after the output journals are copied).
    Engine(Arc<dyn Fn() -> u64 + Send + Sync>),
}

impl std::fmt::Debug for AdminSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdminSource::Config => write!(f, "Config"),
            AdminSource::At(addr) => write!(f, "At({addr})"),
            AdminSource::Engine(_) => write!(f, "Engine"),
        }
    }
}

/// Why one attempt stopped: for good, or overtaken by retention (try again).
enum Attempt {
    Failed(BackupError),
    Overtaken(String),
}

impl<E: Into<BackupError>> From<E> for Attempt {
    fn from(e: E) -> Attempt {
        Attempt::Failed(e.into())
    }
}

/// Copies the engine of `config` into the new or empty directory `to`, verifies the copy and
/// writes its manifest. Takes no lock and stops nothing. On failure nothing is left in `to`.
pub fn backup(
    config: &Config,
    to: &Path,
    admin: AdminSource,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Manifest, BackupError> {
    let mut target = Target::prepare(to)?;
    let mut attempt = 1;
    loop {
        match take_once(config, to, &admin, progress) {
            Ok(manifest) => {
                target.keep = true;
                return Ok(manifest);
            }
            Err(Attempt::Failed(e)) => return Err(e),
            Err(Attempt::Overtaken(why)) if attempt < ATTEMPTS_MAX => {
                tracing::warn!("backup attempt {attempt} overtaken ({why}); starting again");
                target.clear()?;
                attempt += 1;
            }
            Err(Attempt::Overtaken(why)) => {
                return Err(BackupError::Verify(format!(
                    "{ATTEMPTS_MAX} backup attempts were overtaken by snapshot pruning or journal \
                     retention ({why}); try again, or raise snapshots.keep"
                )))
            }
        }
    }
}

fn take_once(
    config: &Config,
    to: &Path,
    admin: &AdminSource,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<Manifest, Attempt> {
    let created_unix_ns = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    // 1. The release mark, then the output journals: they hold every message it claims.
    let mark = copy_sessions(&GatewaySettings::from_config(config).sessions_dir, &to.join(SESSIONS_DIR))?;
    // The feed journal is recorded on the same release path as the output journals.
    copy_feed(&crate::market_data::feed_dir(config), &to.join(MARKET_DATA_DIR))?;
    // 2. A snapshot (of durable state, so at or before the sequence read next) from which the
    // messages the copied output journals lack can be regenerated.
    let journal_first = journal_first_sequence(&config.journal.dir, &config.journal.file_prefix);
    let snapshot_sequence =
        copy_snapshot(&config.snapshots.dir, &to.join(SNAPSHOTS_DIR), mark, journal_first)?;
    // 3. The recovery point, then the input journal through it.
    let (through, sequence_source) = recovery_point(config, admin)?;
    let copied = copy_journal(config, to, through, snapshot_sequence)?;
    let sequence = copied.last_sequence.unwrap_or(0);
    // 4. The copy must stand on its own: replay it read-only.
    let state_hash = verify_copy(config, to, sequence, progress)?;
    let manifest = Manifest {
        manifest_version: MANIFEST_VERSION,
        engine_version: env!("CARGO_PKG_VERSION").to_owned(),
        formats: FormatVersions::on_disk(
            &JournalLocation::new(to.join(JOURNAL_DIR), &config.journal.file_prefix),
            &to.join(SESSIONS_DIR),
            &to.join(SNAPSHOTS_DIR),
        )?,
        created_unix_ns,
        sequence,
        sequence_source: sequence_source.to_owned(),
        state_hash,
        snapshot_sequence,
        journal_file_prefix: config.journal.file_prefix.clone(),
        journal_first_sequence: copied.first_sequence,
        source_config: std::fs::canonicalize(&config.path).unwrap_or_else(|_| config.path.clone()),
        source_journal_dir: config.journal.dir.clone(),
        source_snapshots_dir: config.snapshots.dir.clone(),
        files: manifest::list_files(to)?,
    };
    manifest.write(to)?;
    Ok(manifest)
}

/// Copies the input journal through `through` (every complete record without it) and checks
/// that the copy holds it, and every record after the copied snapshot.
fn copy_journal(
    config: &Config,
    to: &Path,
    through: Option<u64>,
    snapshot_sequence: Option<u64>,
) -> Result<CopiedJournal, Attempt> {
    let prefix = &config.journal.file_prefix;
    let from = JournalLocation::new(&config.journal.dir, prefix);
    let copied = match petrel_journal::copy_records(
        &from,
        &JournalLocation::new(to.join(JOURNAL_DIR), prefix),
        through,
    ) {
        // Retention deleted a segment after it was listed (it keeps the newest snapshot's).
        Err(JournalError::Io { source, path, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return Err(Attempt::Overtaken(format!("segment {} was deleted", path.display())))
        }
        copied => copied?,
    };
    let sequence = copied.last_sequence.unwrap_or(0);
    if let Some(durable) = through.filter(|durable| sequence < *durable) {
        return Err(Attempt::Failed(BackupError::Verify(format!(
            "the engine reports sequence {durable} durable, but its journal {} holds records only \
             through {sequence}",
            config.journal.dir.display()
        ))));
    }
    let needed_from = snapshot_sequence.unwrap_or(0) + 1;
    if let Some(first) = copied.first_sequence.filter(|first| *first > needed_from) {
        return Err(Attempt::Overtaken(format!(
            "the journal now starts at sequence {first}, after the copied snapshot's"
        )));
    }
    Ok(copied)
}

/// The last input sequence to copy, and where it came from: the running engine's durable
/// sequence when its admin endpoint answers, else every complete record of the journal (a
/// stopped engine recovers exactly those).
fn recovery_point(config: &Config, admin: &AdminSource) -> Result<(Option<u64>, &'static str), BackupError> {
    let addr = match admin {
        AdminSource::Engine(durable) => return Ok((Some(durable()), "engine")),
        AdminSource::At(addr) => Some(*addr),
        AdminSource::Config if config.admin.listen.port() == 0 => None,
        AdminSource::Config => Some(durable::reachable(config.admin.listen)),
    };
    let durable = match addr {
        Some(addr) => durable::durable_sequence(addr, &config.journal.dir)?,
        None => None,
    };
    Ok(match durable {
        Some(sequence) => (Some(sequence), "admin"),
        None => (None, "journal"),
    })
}

/// Copies the release mark, then every output journal of `from` into `to`; the mark's
/// sequence, when there is a readable one.
fn copy_sessions(from: &Path, to: &Path) -> Result<Option<u64>, BackupError> {
    if !from.is_dir() {
        return Ok(None);
    }
    std::fs::create_dir_all(to).map_err(BackupError::io("create directory", to))?;
    let mark = from.join(RELEASE_MARK_FILE);
    let mut mark_sequence = None;
    if let Some(bytes) = read_settled(&mark)? {
        let copy = to.join(RELEASE_MARK_FILE);
        std::fs::write(&copy, &bytes).map_err(BackupError::io("write", &copy))?;
        mark_sequence = crate::gateway::release_mark::decode(&bytes).ok();
    }
    for prefix in petrel_journal::journal_prefixes(from)? {
        petrel_journal::copy_records(
            &JournalLocation::new(from, &prefix),
            &JournalLocation::new(to, &prefix),
            None,
        )?;
    }
    sync_dir(to)?;
    Ok(mark_sequence)
}

/// Copies the market-data feed journal of `from` (absent without a feed) into `to`.
fn copy_feed(from: &Path, to: &Path) -> Result<(), BackupError> {
    if !from.is_dir() {
        return Ok(());
    }
    petrel_journal::copy_records(
        &JournalLocation::new(from, crate::market_data::FEED_FILE_PREFIX),
        &JournalLocation::new(to, crate::market_data::FEED_FILE_PREFIX),
        None,
    )?;
    sync_dir(to)
}

/// The first sequence of the journal's oldest segment, from the segment files' names
/// (`PREFIX-FIRST.seg`); `None` when there is none. Only a choice rests on it: the copy checks
/// the records themselves.
fn journal_first_sequence(dir: &Path, prefix: &str) -> Option<u64> {
    let start = format!("{prefix}-");
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().into_string().ok()?;
            name.strip_prefix(&start)?.strip_suffix(".seg")?.parse::<u64>().ok()
        })
        .min()
}

/// The release mark's bytes, read until two reads agree: the gateway rewrites it in place
/// while the engine runs, and a read racing that write could mix two marks. `None`: no mark.
fn read_settled(path: &Path) -> Result<Option<Vec<u8>>, BackupError> {
    let read = || match std::fs::read(path) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(BackupError::io("read", path)(e)),
    };
    let mut last = read()?;
    for _ in 0..MARK_READS_MAX {
        let again = read()?;
        if again == last {
            return Ok(again);
        }
        last = again;
    }
    Err(BackupError::Verify(format!(
        "the release mark {} kept changing over {MARK_READS_MAX} reads",
        path.display()
    )))
}

/// Copies a snapshot of `from` into `to` and checks the copy; its sequence, or `None` when
/// there is no snapshot. The newest at or before the release `mark` whose commands after it
/// the journal still holds, if any: a restore regenerates the messages the copied output
/// journals lack from a state at or before the mark (`gateway::regeneration`), which a newer
/// snapshot cannot give; the newest otherwise.
fn copy_snapshot(
    from: &Path,
    to: &Path,
    mark: Option<u64>,
    journal_first: Option<u64>,
) -> Result<Option<u64>, Attempt> {
    let mut snapshots = petrel_journal::list_snapshots(from)?;
    let covering = mark.and_then(|mark| {
        snapshots.iter().rposition(|(sequence, _)| {
            *sequence <= mark && journal_first.is_some_and(|first| first <= sequence + 1)
        })
    });
    if covering.is_none() && mark.is_some_and(|mark| snapshots.iter().any(|(s, _)| *s <= mark)) {
        // Retention moved past it since the mark was read (the mark moved on too): again.
        return Err(Attempt::Overtaken(
            "the journal no longer holds the commands after the snapshot at or before the release mark"
                .into(),
        ));
    }
    let Some((sequence, path)) = (match covering {
        Some(at) => Some(snapshots.swap_remove(at)),
        None => snapshots.pop(),
    }) else {
        return Ok(None);
    };
    std::fs::create_dir_all(to).map_err(BackupError::io("create directory", to))?;
    let copy = to.join(path.file_name().expect("a snapshot file has a name"));
    match std::fs::copy(&path, &copy) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Attempt::Overtaken(format!("snapshot {} was pruned", path.display())))
        }
        Err(e) => return Err(BackupError::io("copy", &path)(e).into()),
    }
    petrel_journal::read_snapshot(&copy, sequence)?;
    std::fs::File::open(&copy).and_then(|f| f.sync_all()).map_err(BackupError::io("fsync", &copy))?;
    sync_dir(to)?;
    Ok(Some(sequence))
}

/// Replays the copy read-only (snapshot, then journal) and checks its output journals; the
/// state hash at `sequence`.
fn verify_copy(
    config: &Config,
    to: &Path,
    sequence: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<String, BackupError> {
    let location = JournalLocation::new(to.join(JOURNAL_DIR), &config.journal.file_prefix);
    let (engine, report) =
        replay_read_only(&config.engine, &location, Some(&to.join(SNAPSHOTS_DIR)), progress)?;
    if report.last_sequence != sequence || report.torn_tail.is_some() {
        return Err(BackupError::Verify(format!(
            "the copy does not verify: it replays to sequence {} (expected {sequence}){}",
            report.last_sequence,
            report
                .torn_tail
                .as_ref()
                .map_or(String::new(), |t| format!(", torn tail in {}", t.file.display()))
        )));
    }
    let sessions = to.join(SESSIONS_DIR);
    for prefix in petrel_journal::journal_prefixes(&sessions)? {
        let copied = petrel_journal::open_read_only(&JournalLocation::new(&sessions, &prefix))?;
        if let Some(tail) = copied.truncation {
            return Err(BackupError::Verify(format!(
                "the copy of output journal {prefix} does not verify: torn tail in {}",
                tail.file.display()
            )));
        }
    }
    Ok(engine.state_hash().to_string())
}

/// The backup directory: new or empty when the backup starts, emptied (and removed if it was
/// created) unless the backup completes.
struct Target {
    dir: PathBuf,
    created: bool,
    keep: bool,
}

impl Target {
    fn prepare(dir: &Path) -> Result<Target, BackupError> {
        if let Some(found) = describe_entries(dir)? {
            return Err(BackupError::NotEmpty {
                dir: dir.to_owned(),
                found,
                what: "a backup is written into a new or empty directory",
            });
        }
        let created = !dir.exists();
        std::fs::create_dir_all(dir).map_err(BackupError::io("create directory", dir))?;
        Ok(Target { dir: dir.to_owned(), created, keep: false })
    }

    /// Removes everything the backup wrote.
    fn clear(&self) -> Result<(), BackupError> {
        let entries = std::fs::read_dir(&self.dir).map_err(BackupError::io("list", &self.dir))?;
        for entry in entries {
            let entry = entry.map_err(BackupError::io("list", &self.dir))?;
            if entry.file_name() == "lost+found" {
                continue;
            }
            let path = entry.path();
            let removed =
                if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            removed.map_err(BackupError::io("remove", &path))?;
        }
        Ok(())
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if let Err(e) = self.clear() {
            tracing::error!("cannot remove the incomplete backup in {}: {e}", self.dir.display());
        } else if self.created {
            let _ = std::fs::remove_dir(&self.dir);
        }
    }
}
