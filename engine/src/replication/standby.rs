//! The standby's follower (`replication.role = "standby"`): it connects to the primary, proves
//! the shared secret and checks the primary's proof, then takes every record the primary ships:
//! appended to its own journal (one group commit over the frames already here), applied to its
//! own engine (hot: the same state as the primary's at every sequence), acknowledged with its
//! durable mark, and, once durable, written as the primary's gateway writes it into every
//! account's stream ([`Mirror`]), so that clients resume their streams here after a promotion.
//!
//! Nothing of a frame that fails a check is applied: a damaged frame, a record out of sequence,
//! or a payload that is not a command ends the connection with a log line naming the primary
//! and the sequence, and the follower reconnects from its own next sequence.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use petrel_core::Engine;
use petrel_journal::JournalWriter;

use super::epoch::{Epoch, EpochHistory};
use super::rebuild::{self, Staging};
use super::wire::Proof;
use super::wire::{self, Frame, FrameReader, FrameWriter, WireError};
use super::ReplicationStats;
use crate::config::ReplicationConfig;
use crate::gateway::Mirror;

/// A primary silent for this long (it heartbeats every 100 ms) is gone: reconnect.
const PRIMARY_TIMEOUT: Duration = Duration::from_secs(3);
/// Between connection attempts.
const RETRY_EVERY: Duration = Duration::from_millis(500);

/// The standby's engine and journal, between the follower and a promotion or shutdown.
pub struct Follower {
    pub engine: Engine,
    pub writer: JournalWriter,
    pub epochs: EpochHistory,
    /// Every account's stream, written from the records once durable here.
    mirror: Mirror,
    config: ReplicationConfig,
    stats: Arc<ReplicationStats>,
    files: Files,
    /// The encoded state at a checkpoint: hashed, then written as the snapshot.
    state: Vec<u8>,
    /// A backup of the primary being received (this standby needs records it no longer keeps).
    staging: Option<Staging>,
}

/// How following ended.
pub enum Followed {
    /// Asked to stop (shutdown or promotion).
    Stopped,
    /// The primary sent a backup to rebuild from, whole in this directory: the daemon restores
    /// it in place of this standby's files and follows again (`rebuild::rebuild_from`).
    Rebuild(std::path::PathBuf),
}

/// Where the standby keeps its snapshots, and its journal's retention.
pub struct Files {
    pub snapshots: crate::config::SnapshotConfig,
    pub journal: petrel_journal::JournalConfig,
}

/// Why a connection ended.
enum Ended {
    Stopped,
    Lost(String),
    /// The standby's own journal failed: nothing more can be made durable here.
    Failed(String),
    /// A backup of the primary arrived whole, in this directory.
    Rebuild(std::path::PathBuf),
}

impl Follower {
    pub fn new(
        engine: Engine,
        writer: JournalWriter,
        epochs: EpochHistory,
        mirror: Mirror,
        config: ReplicationConfig,
        stats: Arc<ReplicationStats>,
        files: Files,
    ) -> Follower {
        stats.applied.store(engine.last_sequence(), Ordering::Relaxed);
        stats.standby_durable.store(writer.durable_sequence(), Ordering::Relaxed);
        stats.epoch.store(epochs.current().number, Ordering::Relaxed);
        Follower { engine, writer, epochs, mirror, config, stats, files, state: Vec::new(), staging: None }
    }

    /// Follows the primary until `stop` or a rebuild; reconnects whenever the connection ends.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<Followed, String> {
        let primary = self.config.peer;
        let mut last_complaint = String::new();
        while !stop.load(Ordering::Acquire) {
            let ended = match TcpStream::connect_timeout(&primary, Duration::from_secs(1)) {
                Ok(stream) => self.session(stream, primary, stop),
                Err(e) => Ended::Lost(format!("cannot connect to the primary at {primary}: {e}")),
            };
            self.stats.connected.store(false, Ordering::Relaxed);
            // Cut off, this standby cannot know what its primary acknowledged since, unless
            // the primary never acknowledges without it.
            if !super::halts_without_standby(&self.config) {
                self.stats.standby_promotable.store(false, Ordering::Relaxed);
            }
            match ended {
                Ended::Stopped => {
                    self.mirror.finish();
                    break;
                }
                Ended::Rebuild(dir) => {
                    self.stats.rebuilds_total.fetch_add(1, Ordering::Relaxed);
                    return Ok(Followed::Rebuild(dir));
                }
                Ended::Failed(why) => return Err(why),
                Ended::Lost(why) => {
                    if why != last_complaint {
                        tracing::warn!(primary = %primary, "replication: {why}; retrying every {RETRY_EVERY:?}");
                        last_complaint = why;
                    }
                }
            }
            std::thread::sleep(RETRY_EVERY);
        }
        Ok(Followed::Stopped)
    }

    fn session(&mut self, mut stream: TcpStream, primary: SocketAddr, stop: &AtomicBool) -> Ended {
        if let Err(why) = self.handshake(&mut stream, primary) {
            return Ended::Lost(why);
        }
        // A backup interrupted with the last connection is sent again from its start.
        self.staging = None;
        tracing::info!(primary = %primary, from_sequence = self.writer.next_sequence(), "replication: following the primary");
        self.stats.connected.store(true, Ordering::Relaxed);
        let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
        let mut reader = FrameReader::new();
        let mut out = FrameWriter::new();
        let mut silent = std::time::Instant::now();
        loop {
            if stop.load(Ordering::Acquire) {
                return Ended::Stopped;
            }
            match reader.read(&mut stream) {
                Ok(frame) => {
                    if let Err(ended) = self.take(frame, primary) {
                        return self.commit_then(ended);
                    }
                }
                Err(WireError::Io(e)) if would_block(&e) => {
                    if silent.elapsed() > PRIMARY_TIMEOUT {
                        return Ended::Lost(format!(
                            "the primary at {primary} sent nothing for {PRIMARY_TIMEOUT:?}"
                        ));
                    }
                    continue;
                }
                Err(e) => return Ended::Lost(format!("from the primary at {primary}: {e}")),
            }
            silent = std::time::Instant::now();
            // Group commit: every frame already here joins this commit.
            if let Err(ended) = self.take_waiting(&mut stream, &mut reader, primary) {
                return self.commit_then(ended);
            }
            if self.writer.buffered_records() > 0 {
                if let Err(e) = self.writer.commit() {
                    return Ended::Failed(format!("the standby's journal failed: {e}"));
                }
            }
            let durable = self.writer.durable_sequence();
            self.stats.standby_durable.store(durable, Ordering::Relaxed);
            if let Err(e) = stream.write_all(out.ack(durable)) {
                return Ended::Lost(format!("acknowledging to the primary at {primary}: {e}"));
            }
            // After the acknowledgement: the streams are not on the primary's critical path.
            self.mirror.release();
        }
    }

    /// Frames that already arrived, read without waiting.
    fn take_waiting(
        &mut self,
        stream: &mut TcpStream,
        reader: &mut FrameReader,
        primary: SocketAddr,
    ) -> Result<(), Ended> {
        let lost = |e: std::io::Error| Ended::Lost(format!("from the primary at {primary}: {e}"));
        stream.set_nonblocking(true).map_err(lost)?;
        let taken = loop {
            match reader.read(stream) {
                Ok(frame) => {
                    if let Err(ended) = self.take(frame, primary) {
                        break Err(ended);
                    }
                }
                Err(WireError::Io(e)) if would_block(&e) => break Ok(()),
                Err(e) => break Err(Ended::Lost(format!("from the primary at {primary}: {e}"))),
            }
        };
        stream.set_nonblocking(false).map_err(lost)?;
        taken
    }

    /// One frame of the record stream: records journaled (not yet committed) and applied, and
    /// what the primary says of itself.
    fn take(&mut self, frame: Frame<'_>, primary: SocketAddr) -> Result<(), Ended> {
        let (primary_durable, promotable) = match frame {
            Frame::Records { primary_durable, promotable, records } => {
                let applied =
                    apply_records(&mut self.engine, &mut self.writer, &mut self.mirror, &self.stats, records);
                match applied {
                    Ok(()) => {}
                    Err(Bad::Journal(why)) => return Err(Ended::Failed(why)),
                    Err(Bad::Peer(why)) => {
                        self.stats.refuse(super::Refusal::Sequence);
                        return Err(Ended::Lost(format!(
                            "from the primary at {primary}: {why}; nothing after sequence {} applied",
                            self.writer.next_sequence() - 1
                        )));
                    }
                }
                (primary_durable, promotable)
            }
            Frame::Heartbeat { primary_durable, promotable } => (primary_durable, promotable),
            Frame::StateHash { sequence, hash } => {
                self.compare_state(sequence, hash, primary);
                return Ok(());
            }
            Frame::FileChunk { path, file_bytes, offset, data } => {
                return self.take_backup_chunk(path, file_bytes, offset, data, primary)
            }
            Frame::Rebuilt { files, bytes } => {
                let staging = self.staging.take().ok_or_else(|| {
                    Ended::Lost(format!("the primary at {primary} ended a backup it never began"))
                })?;
                return match staging.finish(files, bytes) {
                    Ok(dir) => Err(Ended::Rebuild(dir)),
                    Err(why) => {
                        self.stats.refuse(super::Refusal::Protocol);
                        Err(Ended::Lost(format!("from the primary at {primary}: {why}")))
                    }
                };
            }
            other => {
                return Err(Ended::Lost(format!(
                    "the primary at {primary} sent {} in the record stream",
                    other.name()
                )))
            }
        };
        self.stats.primary_durable.store(primary_durable, Ordering::Relaxed);
        self.stats.standby_promotable.store(promotable, Ordering::Relaxed);
        self.stats.primary_said_promotable.store(promotable, Ordering::Relaxed);
        Ok(())
    }

    /// A chunk of the backup the primary sends because this standby needs records its journal
    /// no longer keeps.
    fn take_backup_chunk(
        &mut self,
        path: &str,
        file_bytes: u64,
        offset: u64,
        data: &[u8],
        primary: SocketAddr,
    ) -> Result<(), Ended> {
        if self.staging.is_none() {
            let dir = rebuild::staging_dir(&self.files.journal.dir);
            tracing::warn!(primary = %primary, staging = %dir.display(), "replication: this standby needs records the primary no longer keeps (retention): receiving a backup of the primary to rebuild from");
            self.staging = Some(Staging::new(dir).map_err(Ended::Failed)?);
        }
        let staging = self.staging.as_mut().expect("set above");
        staging.take(path, file_bytes, offset, data).map_err(|why| {
            self.stats.refuse(super::Refusal::Protocol);
            Ended::Lost(format!("from the primary at {primary}: {why}"))
        })
    }

    /// The primary's state hash after `sequence` against this engine's: the frame comes right
    /// after that record, so this engine is exactly there. A difference means the two engines
    /// are not the same state (a different configuration, a bug): this standby is then never
    /// promoted, and says so until it is rebuilt.
    fn compare_state(&mut self, sequence: u64, hash: u128, primary: SocketAddr) {
        if self.engine.last_sequence() != sequence {
            tracing::warn!(primary = %primary, sequence, applied = self.engine.last_sequence(), "replication: a state hash for a sequence this standby is not at; not compared");
            return;
        }
        self.state.clear();
        self.engine.encode_state(&mut self.state);
        let ours = petrel_core::StateHash::of_encoded(&self.state);
        self.stats.hash_checks_total.fetch_add(1, Ordering::Relaxed);
        if ours.0 == hash {
            self.snapshot(sequence);
            return;
        }
        self.stats.divergences_total.fetch_add(1, Ordering::Relaxed);
        if !self.stats.diverged.swap(true, Ordering::Relaxed) {
            tracing::error!(
                primary = %primary,
                sequence,
                primary_hash = %petrel_core::StateHash(hash),
                standby_hash = %ours,
                "replication: DIVERGENCE: after sequence {sequence} this standby's state differs from the primary's; it will not be promoted. Check that both use the same configuration (instruments, accounts, risk), then rebuild this standby from the primary (docs/OPERATIONS.md)"
            );
        }
    }

    /// A snapshot of the state just checked (the same bytes), once its commands are durable
    /// here: a standby restarts from it, and its journal's retention applies, as the
    /// primary's do. A failure loses nothing (the journal alone recovers) and is logged.
    fn snapshot(&mut self, sequence: u64) {
        if self.writer.buffered_records() > 0 && self.writer.commit().is_err() {
            return; // the session's next commit reports the journal's failure
        }
        self.stats.standby_durable.store(self.writer.durable_sequence(), Ordering::Relaxed);
        match crate::snapshot::write_encoded(
            &self.files.snapshots,
            &self.files.journal,
            sequence,
            &self.state,
        ) {
            Ok(path) => tracing::info!(path = %path.display(), sequence, "standby: wrote snapshot"),
            Err(e) => {
                tracing::error!(sequence, "standby: snapshot failed, will try again at the next one: {e}")
            }
        }
    }

    /// What was journaled before a connection ended is still made durable: it was valid.
    fn commit_then(&mut self, ended: Ended) -> Ended {
        if matches!(ended, Ended::Failed(_)) || self.writer.buffered_records() == 0 {
            return ended;
        }
        match self.writer.commit() {
            Ok(committed) => {
                self.stats.standby_durable.store(committed.durable_sequence, Ordering::Relaxed);
                self.mirror.release();
                ended
            }
            Err(e) => Ended::Failed(format!("the standby's journal failed: {e}")),
        }
    }

    /// Challenge, Hello, Welcome (or Refused): both sides prove the secret; a primary of an
    /// older epoch than this standby's is never followed, and a newer one's epoch is adopted.
    fn handshake(&mut self, stream: &mut TcpStream, primary: SocketAddr) -> Result<(), String> {
        let _ = stream.set_nodelay(true);
        stream.set_read_timeout(Some(Duration::from_secs(2))).map_err(|e| e.to_string())?;
        let mut reader = FrameReader::new();
        let ours = self.epochs.current();
        let (theirs, nonce_p) =
            match reader.read(stream).map_err(|e| format!("reading the primary's Challenge: {e}"))? {
                Frame::Challenge { magic, version, epoch, epoch_first_sequence, nonce }
                    if magic == wire::MAGIC && version == wire::VERSION =>
                {
                    (Epoch { number: epoch, first_sequence: epoch_first_sequence }, nonce)
                }
                Frame::Challenge { version, .. } => {
                    return Err(format!(
                    "the primary at {primary} speaks replication protocol version {version}, this standby {}",
                    wire::VERSION
                ))
                }
                other => return Err(format!("{primary} is not a Petrel primary (sent {})", other.name())),
            };
        if theirs.number < ours.number {
            self.stats.refuse(super::Refusal::Epoch);
            return Err(format!(
                "the primary at {primary} is of epoch {}, older than this engine's {}: it is a stale primary (a standby was promoted since); not following it",
                theirs.number, ours.number
            ));
        }
        let nonce_s = wire::nonce().map_err(|e| format!("no random nonce: {e}"))?;
        let cluster = self.config.cluster_id.as_bytes();
        let secret = &self.config.secret.0;
        let next = self.writer.next_sequence();
        let policy = super::policy_byte(&self.config);
        let numbers = [next, ours.number, theirs.number, u64::from(policy)];
        let tag =
            Proof { label: b"standby", cluster, first: &nonce_p, second: &nonce_s, numbers }.tag(secret);
        stream
            .write_all(FrameWriter::new().hello(cluster, ours.number, policy, next, &nonce_s, &tag))
            .map_err(|e| e.to_string())?;
        let proof = Proof { label: b"primary", cluster, first: &nonce_s, second: &nonce_p, numbers };
        match reader.read(stream).map_err(|e| format!("reading the primary's answer: {e}"))? {
            Frame::Welcome { mac } if proof.holds(secret, &mac) => {}
            Frame::Welcome { .. } => return Err(format!("the primary at {primary} failed to prove the shared secret (replication.secret_file differs, or it is not our primary)")),
            Frame::Refused { reason } => return Err(format!("the primary at {primary} refused this standby: {reason}")),
            other => return Err(format!("the primary at {primary} answered Hello with {}", other.name())),
        }
        if theirs.number > ours.number {
            self.epochs.adopt(theirs)?;
            self.stats.epoch.store(theirs.number, Ordering::Relaxed);
            tracing::info!(
                epoch = theirs.number,
                first_sequence = theirs.first_sequence,
                "replication: following a primary of a newer epoch"
            );
        }
        Ok(())
    }
}

/// Why a frame's records stopped.
enum Bad {
    /// The peer sent something wrong: drop the connection, keep what was valid.
    Peer(String),
    /// This standby's journal failed.
    Journal(String),
}

/// Journals (into the write buffer; the caller commits) and applies one frame's records, their
/// events held by the mirror until durable (committed early when it is full). A record out of
/// sequence or a payload that is not a command stops before it: nothing of it is journaled or
/// applied.
fn apply_records(
    engine: &mut Engine,
    writer: &mut JournalWriter,
    mirror: &mut Mirror,
    stats: &ReplicationStats,
    records: wire::RecordIter<'_>,
) -> Result<(), Bad> {
    let mut outcome = Ok(());
    for record in records {
        let expected = writer.next_sequence();
        if record.sequence != expected {
            outcome = Err(Bad::Peer(format!(
                "record with sequence {} where {expected} was expected",
                record.sequence
            )));
            break;
        }
        // The same decoding as recovery's: the command and the gateway's echo after it.
        let (command, echo) = match crate::input_record::decode(record.payload) {
            Ok(decoded) => decoded,
            Err(e) => {
                outcome = Err(Bad::Peer(format!("record {} is not a command ({e})", record.sequence)));
                break;
            }
        };
        if let Err(e) = writer.append_or_commit(record.sequence, record.timestamp_ns, record.payload) {
            return Err(Bad::Journal(format!(
                "the standby's journal refused record {}: {e}",
                record.sequence
            )));
        }
        mirror.begin(record.sequence, record.timestamp_ns, command.account(), echo);
        engine.apply(&command, record.sequence, record.timestamp_ns, mirror);
        stats.applied.store(record.sequence, Ordering::Relaxed);
        stats.applied_timestamp_ns.store(record.timestamp_ns, Ordering::Relaxed);
        stats.records_total.fetch_add(1, Ordering::Relaxed);
        if mirror.is_full() {
            writer.commit().map_err(|e| Bad::Journal(format!("the standby's journal failed: {e}")))?;
            stats.standby_durable.store(writer.durable_sequence(), Ordering::Relaxed);
            mirror.release();
        }
    }
    outcome
}

fn would_block(e: &std::io::Error) -> bool {
    matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
}
