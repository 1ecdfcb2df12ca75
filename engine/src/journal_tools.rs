//! The operator's journal commands: `petrel-engine journal verify|stats|dump|replay|formats`, and
//! the format versions `petrel-engine --version` prints. All are read-only: they take no lock
//! and never cut a torn tail, so they are safe on a running engine's journal and on backups
//! (only `Journal::open`, at engine start, repairs). `journal backup|restore`: [`crate::backup`].

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use petrel_core::EngineConfig;
use petrel_journal::{DumpFormat, JournalError, JournalLocation};

use crate::describe::{describe_payload, payload_json};
use crate::recovery::{replay_read_only, RecoveryError, RecoveryReport};

/// Writes every record with `sequence >= from_sequence`, the payload decoded into a command.
/// Text: one `seq=… ts_ns=… len=… file=… offset=… payload=<command>` line per record. JSON
/// lines: one object per record, `payload` being the command object of
/// [`crate::describe::CommandJson`] (or `{"undecodable", "hex"}`). Returns the number of
/// records written.
pub fn dump(
    location: &JournalLocation,
    from_sequence: u64,
    format: DumpFormat,
    out: &mut dyn Write,
) -> Result<u64, JournalError> {
    match format {
        DumpFormat::Text => petrel_journal::dump(location, from_sequence, out, format, &describe_payload),
        DumpFormat::JsonLines => {
            // The journal's dump renders a payload as a string; re-embed ours as an object so
            // that each line is plain JSON a consumer reads without parsing twice.
            let mut lines = JsonPayloadLines { out, line: Vec::with_capacity(1024) };
            let formatter = |payload: &[u8]| payload_json(payload).to_string();
            let written = petrel_journal::dump(location, from_sequence, &mut lines, format, &formatter)?;
            lines.flush().map_err(|source| JournalError::Io {
                action: "write dump output",
                path: "-".into(),
                source,
            })?;
            Ok(written)
        }
    }
}

/// Rewrites each JSON line's `payload` string, which holds JSON text, into that JSON value.
struct JsonPayloadLines<'a> {
    out: &'a mut dyn Write,
    line: Vec<u8>,
}

impl JsonPayloadLines<'_> {
    fn emit_line(&mut self) -> std::io::Result<()> {
        let mut value: serde_json::Value = serde_json::from_slice(&self.line)?;
        if let Some(payload) = value.get_mut("payload") {
            if let Some(text) = payload.as_str() {
                *payload = serde_json::from_str(text)?;
            }
        }
        serde_json::to_writer(&mut *self.out, &value)?;
        self.out.write_all(b"\n")?;
        self.line.clear();
        Ok(())
    }
}

impl Write for JsonPayloadLines<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for &b in buf {
            if b == b'\n' {
                self.emit_line()?;
            } else {
                self.line.push(b);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.line.is_empty() {
            self.emit_line()?;
        }
        self.out.flush()
    }
}

/// What `journal replay` prints.
#[derive(Debug)]
pub struct ReplaySummary {
    pub report: RecoveryReport,
    pub state_hash: petrel_core::StateHash,
    pub open_orders: usize,
}

/// Replays the journal into a fresh engine (from its newest snapshot in `snapshot_dir`, or from
/// sequence 1) and returns the state hash, for comparing replicas or checking a backup.
pub fn replay(
    engine_config: &EngineConfig,
    location: &JournalLocation,
    snapshot_dir: Option<&Path>,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<ReplaySummary, RecoveryError> {
    let (engine, report) = replay_read_only(engine_config, location, snapshot_dir, progress)?;
    Ok(ReplaySummary { report, state_hash: engine.state_hash(), open_orders: engine.open_order_count() })
}

impl std::fmt::Display for ReplaySummary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.report;
        let t = &r.timing;
        match &r.snapshot {
            Some((sequence, path)) => {
                writeln!(f, "snapshot        {} (sequence {sequence})", path.display())?
            }
            None => writeln!(f, "snapshot        none (replayed from sequence 1)")?,
        }
        writeln!(f, "journal records {}", r.journal_records)?;
        writeln!(f, "replayed        {}", r.replayed_records)?;
        writeln!(f, "last sequence   {}", r.last_sequence)?;
        writeln!(f, "events          {} ({} executions)", r.events, r.executions)?;
        writeln!(f, "open orders     {}", self.open_orders)?;
        if let Some(tail) = &r.torn_tail {
            writeln!(
                f,
                "torn tail       {} at offset {}: {} (not replayed; cut at the next engine start)",
                tail.file.display(),
                tail.offset,
                tail.reason
            )?;
        }
        let per_second = r.replayed_records as f64 / t.replay.as_secs_f64().max(1e-9);
        writeln!(
            f,
            "elapsed         {:.3} s (scan {:.3} s, snapshot {:.3} s, replay {:.3} s, {:.2} M records/s)",
            (t.journal_scan + t.snapshot_load + t.replay).as_secs_f64(),
            t.journal_scan.as_secs_f64(),
            t.snapshot_load.as_secs_f64(),
            t.replay.as_secs_f64(),
            per_second / 1e6
        )?;
        write!(f, "state hash      {}", self.state_hash)
    }
}

/// Prints progress to stderr at most about once a second.
pub fn stderr_progress() -> impl FnMut(u64, u64) {
    let mut last = Instant::now();
    move |done, total| {
        if last.elapsed().as_secs() >= 1 || (done == total && total > 0) {
            eprintln!("replaying journal: {} of {}", millions(done), millions(total));
            last = Instant::now();
        }
    }
}

/// "3.2M", "950k", "17".
pub fn millions(n: u64) -> String {
    match n {
        0..=9_999 => n.to_string(),
        10_000..=999_999 => format!("{}k", n / 1_000),
        _ => format!("{:.1}M", n as f64 / 1e6),
    }
}

// A snapshot file carries the core's state encoding: a new encoding needs a new file version,
// so that an older build refuses the file by name instead of failing to restore it.
const _: () = assert!(petrel_core::STATE_ENCODING_VERSION == petrel_journal::SNAPSHOT_VERSION);

/// The format versions a build reads and writes, as `petrel-engine --version` prints them after
/// its first line (clap prints the binary's name before this text).
pub fn version_text() -> String {
    let (journal, snapshot) = (petrel_journal::FORMAT_VERSION, petrel_journal::SNAPSHOT_VERSION);
    format!(
        "{}\njournal format: reads {journal}, writes {journal}\nsnapshot format: reads {snapshot}, writes {snapshot}",
        env!("CARGO_PKG_VERSION")
    )
}

/// The newest format versions among files on disk (0: no such file): what `journal formats`
/// prints, and a backup's manifest records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FormatVersions {
    /// Input and output journal segments.
    pub journal: u32,
    pub snapshot: u32,
}

/// Why the format versions on disk could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FormatsError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Snapshot(#[from] petrel_journal::SnapshotError),
}

impl FormatVersions {
    /// Reads the header of every segment of the input journal at `input` and of the output
    /// journals in `sessions_dir`, and of every snapshot in `snapshots_dir`. Takes no lock,
    /// changes nothing.
    pub fn on_disk(
        input: &JournalLocation,
        sessions_dir: &Path,
        snapshots_dir: &Path,
    ) -> Result<FormatVersions, FormatsError> {
        let mut journal = petrel_journal::newest_segment_format_version(input)?;
        for prefix in petrel_journal::journal_prefixes(sessions_dir)? {
            let output = JournalLocation::new(sessions_dir, prefix);
            journal = journal.max(petrel_journal::newest_segment_format_version(&output)?);
        }
        let snapshot = petrel_journal::newest_snapshot_format_version(snapshots_dir)?;
        Ok(FormatVersions { journal: journal.unwrap_or(0), snapshot: snapshot.unwrap_or(0) })
    }

    /// Those of the engine that `config` describes.
    pub fn of_config(config: &crate::config::Config) -> Result<FormatVersions, FormatsError> {
        FormatVersions::on_disk(
            &JournalLocation::new(&config.journal.dir, &config.journal.file_prefix),
            &crate::gateway::GatewaySettings::from_config(config).sessions_dir,
            &config.snapshots.dir,
        )
    }
}

impl std::fmt::Display for FormatVersions {
    /// One JSON line: `{"journal": N, "snapshot": M}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{{\"journal\": {}, \"snapshot\": {}}}", self.journal, self.snapshot)
    }
}
