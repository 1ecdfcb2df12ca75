//! The undo journal: every value `apply` is about to change, recorded durably before the first
//! change, so that `rollback` restores the host even after a crash in the middle of `apply`.
//! Also the lock that keeps two runs from changing the host at once.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::plan::Compare;

pub const DEFAULT_STATE_DIR: &str = "/var/lib/petrel/tuner";
const STATE_FILE: &str = "state.json";
const LOCK_FILE: &str = "lock";
const STATE_VERSION: u32 = 1;

/// Bound on the state file; it holds one entry per changed knob, a few KiB on a big host.
const STATE_LIMIT_BYTES: u64 = 16 * 1024 * 1024;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    /// Profile of the first `apply` since the last rollback.
    pub profile: String,
    /// In the order they were changed; rollback walks them backwards.
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Entry {
    /// A kernel knob and the value that restores it.
    Knob { key: String, path: String, compare: Compare, original: String },
    /// A configuration file and its content, `None` when it did not exist.
    File { key: String, path: String, original: Option<String> },
}

impl Entry {
    pub fn key(&self) -> &str {
        match self {
            Entry::Knob { key, .. } | Entry::File { key, .. } => key,
        }
    }
}

impl State {
    pub fn new(profile: &str) -> Self {
        Self { version: STATE_VERSION, profile: profile.to_string(), entries: Vec::new() }
    }

    pub fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|e| e.key() == key)
    }
}

#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
}

/// Held for the whole of a run that changes the host; released when dropped.
#[derive(Debug)]
pub struct RunLock {
    _lock: Flock<fs::File>,
}

impl StateStore {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        Self { dir: dir.into() }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn state_path(&self) -> PathBuf {
        self.dir.join(STATE_FILE)
    }

    pub fn lock_path(&self) -> PathBuf {
        self.dir.join(LOCK_FILE)
    }

    /// Takes the run lock without waiting: a second run fails at once with the holder's pid
    /// rather than queueing behind a run that may be stuck.
    pub fn lock(&self) -> Result<RunLock> {
        fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let path = self.lock_path();
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        let mut lock = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(lock) => lock,
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                let holder = fs::read_to_string(&path)
                    .ok()
                    .map(|pid| pid.trim().to_string())
                    .filter(|pid| !pid.is_empty())
                    .map(|pid| format!(" (pid {pid})"))
                    .unwrap_or_default();
                return Err(Error::Locked { path, holder });
            }
            Err((_, errno)) => return Err(Error::io(&path, errno.into())),
        };
        // The pid is only for the message a second run prints; the flock is what excludes.
        lock.set_len(0).map_err(|e| Error::io(&path, e))?;
        writeln!(&mut *lock, "{}", std::process::id()).map_err(|e| Error::io(&path, e))?;
        Ok(RunLock { _lock: lock })
    }

    pub fn load(&self) -> Result<Option<State>> {
        let path = self.state_path();
        let file = match fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let mut bytes = Vec::new();
        std::io::Read::read_to_end(&mut std::io::Read::take(file, STATE_LIMIT_BYTES + 1), &mut bytes)
            .map_err(|e| Error::io(&path, e))?;
        if bytes.len() as u64 > STATE_LIMIT_BYTES {
            return Err(Error::StateCorrupt { path, why: format!("larger than {STATE_LIMIT_BYTES} bytes") });
        }
        let state: State = serde_json::from_slice(&bytes)
            .map_err(|e| Error::StateCorrupt { path: path.clone(), why: e.to_string() })?;
        if state.version != STATE_VERSION {
            return Err(Error::StateCorrupt {
                path,
                why: format!("version {} (this petrel-tuner writes version {STATE_VERSION})", state.version),
            });
        }
        Ok(Some(state))
    }

    pub fn save(&self, state: &State) -> Result<()> {
        fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let mut json = serde_json::to_vec_pretty(state)
            .map_err(|e| Error::io(self.state_path(), std::io::Error::other(e.to_string())))?;
        json.push(b'\n');
        write_atomically(&self.state_path(), &json)
    }

    pub fn remove(&self) -> Result<()> {
        let path = self.state_path();
        match fs::remove_file(&path) {
            Ok(()) => sync_parent(&path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(Error::io(path, e)),
        }
    }
}

/// Write to a temporary file, fsync it, rename it over `path`, fsync the directory: after a
/// crash at any point the file holds either its old or its new content.
pub fn write_atomically(path: &Path, content: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.petrel-tuner.tmp"));
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o644)
        .open(&tmp)
        .map_err(|e| Error::io(&tmp, e))?;
    file.write_all(content).map_err(|e| Error::io(&tmp, e))?;
    file.sync_all().map_err(|e| Error::io(&tmp, e))?;
    drop(file);
    fs::rename(&tmp, path).map_err(|e| Error::io(path, e))?;
    sync_parent(path)
}

pub fn sync_parent(path: &Path) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| Error::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path().join("state"));
        assert!(store.load().unwrap().is_none());
        let mut state = State::new("p");
        state.entries.push(Entry::File {
            key: "grub:dropin".into(),
            path: "/etc/default/grub.d/x.cfg".into(),
            original: None,
        });
        store.save(&state).unwrap();
        let loaded = store.load().unwrap().unwrap();
        assert_eq!(loaded.entries, state.entries);
        let names: Vec<_> = fs::read_dir(store.dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, ["state.json"]);
        store.remove().unwrap();
        assert!(store.load().unwrap().is_none());
    }

    #[test]
    fn damaged_state_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        fs::write(store.state_path(), b"{\"version\": 1, \"prof").unwrap();
        let err = store.load().unwrap_err().to_string();
        assert!(err.contains("state.json is damaged"), "{err}");
    }

    #[test]
    fn second_lock_fails_and_names_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let store = StateStore::new(dir.path());
        let held = store.lock().unwrap();
        let err = store.lock().unwrap_err();
        assert!(matches!(err, Error::Locked { .. }));
        assert!(err.to_string().contains(&format!("(pid {})", std::process::id())), "{err}");
        drop(held);
        store.lock().unwrap();
    }
}
