//! Epochs: which primary's history a journal follows.
//!
//! Each promotion starts a new epoch at the sequence after the last record the promoted
//! standby held. The history, one line `EPOCH FIRST_SEQUENCE` per epoch, lives next to the
//! input journal (`<journal dir>/<prefix>.epochs`), written atomically (temporary file, fsync,
//! rename, fsync of the directory). No file: epoch 1 from sequence 1. Every replication
//! handshake carries both ends' epochs: a standby never follows an older primary, and a
//! primary that meets a newer epoch stops serving (a standby was promoted: it is stale).

use std::io::Write;
use std::path::{Path, PathBuf};

/// One epoch: its number and the first sequence its primary wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Epoch {
    pub number: u64,
    pub first_sequence: u64,
}

/// The epochs a journal went through, oldest first (never empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EpochHistory {
    path: PathBuf,
    epochs: Vec<Epoch>,
}

impl EpochHistory {
    /// The history of the journal in `dir` with `prefix`; an absent file is epoch 1 from 1.
    pub fn load(dir: &Path, prefix: &str) -> Result<EpochHistory, String> {
        let path = dir.join(format!("{prefix}.epochs"));
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(EpochHistory { path, epochs: vec![Epoch { number: 1, first_sequence: 1 }] })
            }
            Err(e) => return Err(format!("cannot read the epoch history {}: {e}", path.display())),
        };
        let mut epochs: Vec<Epoch> = Vec::new();
        for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.starts_with('#') && !l.trim().is_empty())
        {
            let bad =
                || format!("{}:{}: expected `EPOCH FIRST_SEQUENCE`, found {line:?}", path.display(), i + 1);
            let mut fields = line.split_whitespace().map(str::parse::<u64>);
            let (Some(Ok(number)), Some(Ok(first_sequence)), None) =
                (fields.next(), fields.next(), fields.next())
            else {
                return Err(bad());
            };
            if epochs.last().is_some_and(|p| number <= p.number || first_sequence < p.first_sequence)
                || number == 0
            {
                return Err(format!(
                    "{}:{}: epochs must grow and start at growing sequences: {line:?}",
                    path.display(),
                    i + 1
                ));
            }
            epochs.push(Epoch { number, first_sequence });
        }
        if epochs.is_empty() {
            return Err(format!("{} holds no epoch", path.display()));
        }
        Ok(EpochHistory { path, epochs })
    }

    pub fn current(&self) -> Epoch {
        *self.epochs.last().expect("never empty")
    }

    /// Starts the next epoch at `first_sequence` (a promotion) and makes it durable.
    pub fn begin(&mut self, first_sequence: u64) -> Result<Epoch, String> {
        let epoch = Epoch { number: self.current().number + 1, first_sequence };
        self.epochs.push(epoch);
        self.write()?;
        Ok(epoch)
    }

    /// Adopts the epoch of the primary this standby follows (its handshake said which).
    pub fn adopt(&mut self, epoch: Epoch) -> Result<(), String> {
        if epoch.number <= self.current().number {
            return Ok(());
        }
        self.epochs.push(epoch);
        self.write()
    }

    /// Writes the history again (a standby rebuilt from its primary's backup keeps its own).
    pub fn save(&self) -> Result<(), String> {
        self.write()
    }

    fn write(&self) -> Result<(), String> {
        let temp = self.path.with_extension("epochs.tmp");
        let shown = self.path.display();
        let mut text =
            String::from("# Petrel replication epochs: EPOCH FIRST_SEQUENCE (see docs/OPERATIONS.md)\n");
        for e in &self.epochs {
            text.push_str(&format!("{} {}\n", e.number, e.first_sequence));
        }
        let write = || -> std::io::Result<()> {
            let mut file = std::fs::File::create(&temp)?;
            file.write_all(text.as_bytes())?;
            file.sync_all()?;
            std::fs::rename(&temp, &self.path)?;
            std::fs::File::open(self.path.parent().unwrap_or(Path::new(".")))?.sync_all()
        };
        write().map_err(|e| format!("cannot write the epoch history {shown}: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_starts_at_epoch_one_grows_by_promotion_and_survives_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let mut history = EpochHistory::load(dir.path(), "input").unwrap();
        assert_eq!(history.current(), Epoch { number: 1, first_sequence: 1 });
        assert_eq!(history.begin(42).unwrap(), Epoch { number: 2, first_sequence: 42 });
        history.adopt(Epoch { number: 2, first_sequence: 42 }).unwrap();
        history.adopt(Epoch { number: 3, first_sequence: 50 }).unwrap();
        let reloaded = EpochHistory::load(dir.path(), "input").unwrap();
        assert_eq!(reloaded, history);
        assert_eq!(reloaded.current(), Epoch { number: 3, first_sequence: 50 });
    }

    #[test]
    fn a_damaged_history_is_refused_with_the_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("input.epochs"), "1 1\n3 10\n2 20\n").unwrap();
        let err = EpochHistory::load(dir.path(), "input").unwrap_err();
        assert!(err.contains("input.epochs:3:"), "{err}");
        std::fs::write(dir.path().join("input.epochs"), "1 one\n").unwrap();
        let err = EpochHistory::load(dir.path(), "input").unwrap_err();
        assert!(err.contains("input.epochs:1:") && err.contains("EPOCH FIRST_SEQUENCE"), "{err}");
    }
}
