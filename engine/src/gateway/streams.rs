//! Per-account sequenced output streams: each OUCH message an account is sent gets the next
//! number of its stream and is recorded in the account's output journal
//! (`<sessions>/account_N-*.seg`) before its bytes can reach a socket, so a sequence number a
//! client has seen is never reused, and a client that reconnects gets what it missed.
//!
//! The stream also keeps what only the gateway knows of an order in flight (its echo fields)
//! and, while regenerating at start, what its journal already holds.

use super::ouch_map::{Echo, MassCancelEcho};
use super::regeneration::OutputTails;
use super::session::ConnTable;
use super::settings::{GatewayError, GatewaySettings};
use super::stats::{bump, GatewayStats};
use crate::logging::{HotLevel, HotLog, HotRecord};
use petrel_core::AccountId;
use petrel_journal::{Durability, Journal, JournalConfig, JournalLocation, JournalWriter};
use petrel_proto::ouch::Outbound;
use petrel_proto::soupbin::{self, packet_type};
use std::path::Path;
use std::sync::Arc;

use super::transport::ConnId;

/// The source sequence of a message that no command produced: input sequences start at 1. Start
/// of Day carries it (see [`StreamSet::start_of_day`]), and so do the gateway's answers in
/// output journals written before those were sequenced as notes (`notes.rs`).
pub const NOT_FROM_A_COMMAND: u64 = 0;

/// Orders whose Accepted or Replaced has not come back yet, per account: a ring indexed by the
/// client reference (references increase, so in-flight ones do not collide below its size).
const ECHO_SLOTS: usize = 4096;

/// Bytes of one account's output-journal write buffer: many loops' worth of messages (each is
/// at most one SoupBinTCP packet of a few hundred bytes); a fuller buffer is committed early.
pub const OUTPUT_WRITE_BUFFER_BYTES: u32 = 64 * 1024;

/// The largest encoded OUCH message in a SoupBinTCP packet.
const PACKET_BYTES_MAX: usize = 512;

pub(super) fn stream_journal_config(
    sessions_dir: &Path,
    account: usize,
    segment_bytes: u64,
) -> JournalConfig {
    let mut journal = JournalConfig::new(sessions_dir.to_path_buf());
    journal.file_prefix = format!("account_{account}");
    journal.durability = Durability::None;
    journal.segment_size_bytes = segment_bytes;
    journal.write_buffer_bytes = OUTPUT_WRITE_BUFFER_BYTES;
    journal
}

pub(super) fn stream_location(sessions_dir: &Path, account: usize) -> JournalLocation {
    JournalLocation::new(sessions_dir.to_path_buf(), format!("account_{account}"))
}

/// A read-only view of an output journal, every record checked (start-up only: reading the
/// streams' tails before any client can log in).
pub(super) fn read_only_view(
    location: &JournalLocation,
) -> Result<petrel_journal::Recovery, petrel_journal::JournalError> {
    petrel_journal::open_read_only(location)
}

/// A reader of an output journal from `sequence`, without taking the writer's lock and
/// without scanning the stream first: segments are found by name and only the records read
/// are checked (a login's replay on the gateway thread must not cost the whole stream).
pub(super) fn open_reader(
    location: &JournalLocation,
    sequence: u64,
) -> Result<petrel_journal::JournalReader, petrel_journal::JournalError> {
    petrel_journal::open_read_only_from(location, sequence)
}

/// One account's sequenced message stream.
struct Stream {
    next_sequence: u64,
    writer: JournalWriter,
    location: JournalLocation,
    conn: Option<ConnId>,
    echo: Box<[Option<Echo>]>,
    mass_cancel: Option<MassCancelEcho>,
    dirty: bool,
    /// While regenerating: the stream already holds every message of the commands up to this
    /// sequence...
    held_through: u64,
    /// ... and this many messages of command `held_through + 1`.
    held_partial_messages: u64,
}

impl Stream {
    /// While regenerating: whether the stream already holds this message (then it is not
    /// written twice).
    fn already_holds(&mut self, source_sequence: u64) -> bool {
        if source_sequence <= self.held_through {
            return true;
        }
        if source_sequence == self.held_through + 1 && self.held_partial_messages > 0 {
            self.held_partial_messages -= 1;
            return true;
        }
        false
    }
}

/// Every account's stream, indexed by account.
pub(super) struct StreamSet {
    streams: Vec<Stream>,
    /// Accounts whose stream has records not yet committed, each once (`Stream::dirty`).
    dirty: Vec<u32>,
    /// Set only while `Gateway::new` feeds regenerated events: `emit` then drops what each
    /// stream already holds.
    regenerating: bool,
    stats: Arc<GatewayStats>,
    log: Arc<HotLog>,
}

impl StreamSet {
    /// Opens every account's output journal (cutting a torn tail, logged).
    pub(super) fn open(
        account_names: &[String],
        settings: &GatewaySettings,
        tails: &OutputTails,
        stats: Arc<GatewayStats>,
        log: Arc<HotLog>,
    ) -> Result<StreamSet, GatewayError> {
        let mut streams = Vec::with_capacity(account_names.len());
        for (index, name) in account_names.iter().enumerate() {
            let journal = stream_journal_config(&settings.sessions_dir, index, settings.output_segment_bytes);
            let (writer, recovery) = Journal::open(&journal).map_err(|source| GatewayError::Journal {
                account: name.clone(),
                source: Box::new(source),
            })?;
            if let Some(torn) = &recovery.truncation {
                tracing::warn!(account = %name, "session output journal had a torn tail, cut: {torn:?}");
            }
            if let Some(tail) = tails.streams.get(index) {
                assert_eq!(
                    tail.next_sequence,
                    writer.next_sequence(),
                    "nothing writes an output journal between reading its tail and opening it"
                );
            }
            let held = tails.held(index);
            streams.push(Stream {
                next_sequence: writer.next_sequence(),
                writer,
                location: stream_location(&settings.sessions_dir, index),
                conn: None,
                echo: vec![None; ECHO_SLOTS].into_boxed_slice(),
                mass_cancel: None,
                dirty: false,
                held_through: held.through,
                held_partial_messages: held.partial_messages,
            });
        }
        let dirty = Vec::with_capacity(streams.len());
        Ok(StreamSet { streams, dirty, regenerating: false, stats, log })
    }

    pub(super) fn contains(&self, account: AccountId) -> bool {
        (account.0 as usize) < self.streams.len()
    }

    pub(super) fn set_regenerating(&mut self, regenerating: bool) {
        self.regenerating = regenerating;
    }

    /// The sequence the next message of each stream gets.
    pub(super) fn next_sequences(&self) -> impl Iterator<Item = u64> + '_ {
        self.streams.iter().map(|s| s.next_sequence)
    }

    pub(super) fn next_sequence(&self, account: AccountId) -> u64 {
        self.streams[account.0 as usize].next_sequence
    }

    pub(super) fn location(&self, account: AccountId) -> &JournalLocation {
        &self.streams[account.0 as usize].location
    }

    /// The connection logged in to the account, if any.
    pub(super) fn conn(&self, account: AccountId) -> Option<ConnId> {
        self.streams[account.0 as usize].conn
    }

    pub(super) fn attach(&mut self, account: AccountId, conn: ConnId) {
        self.streams[account.0 as usize].conn = Some(conn);
    }

    pub(super) fn detach(&mut self, account: AccountId) {
        self.streams[account.0 as usize].conn = None;
    }

    pub(super) fn remember(&mut self, account: AccountId, echo: Echo) {
        self.streams[account.0 as usize].echo[echo.user_ref as usize % ECHO_SLOTS] = Some(echo);
    }

    pub(super) fn echo(&self, account: AccountId, user_ref: u32) -> Option<Echo> {
        self.streams
            .get(account.0 as usize)
            .and_then(|s| s.echo[user_ref as usize % ECHO_SLOTS])
            .filter(|e| e.user_ref == user_ref)
    }

    /// The next UserRefNum the account may use (Account Query): above every one in flight.
    pub(super) fn next_user_ref(&self, account: AccountId) -> u32 {
        let stream = &self.streams[account.0 as usize];
        stream.echo.iter().flatten().map(|e| e.user_ref).max().unwrap_or(0) + 1
    }

    pub(super) fn set_mass_cancel(&mut self, account: AccountId, echo: MassCancelEcho) {
        self.streams[account.0 as usize].mass_cancel = Some(echo);
    }

    pub(super) fn mass_cancel(&self, account: AccountId) -> Option<MassCancelEcho> {
        self.streams.get(account.0 as usize).and_then(|s| s.mass_cancel)
    }

    /// Appends one OUCH message to an account's sequenced stream: recorded in its output
    /// journal (with the input sequence of the command that produced it, `source_sequence`, or
    /// [`NOT_FROM_A_COMMAND`]), and queued to its connection when that is live.
    pub(super) fn emit(
        &mut self,
        account: AccountId,
        source_sequence: u64,
        message: &Outbound<'_>,
        conns: &mut ConnTable,
    ) {
        let Some(stream) = self.streams.get_mut(account.0 as usize) else { return };
        if self.regenerating && stream.already_holds(source_sequence) {
            return;
        }
        let mut packet = [0u8; PACKET_BYTES_MAX];
        let Ok(len) =
            soupbin::encode_packet_with(&mut packet, packet_type::SEQUENCED_DATA, |b| message.encode(b))
        else {
            self.log.try_log(
                HotRecord::new(HotLevel::Error, "cannot encode an outbound message").account(account.0),
            );
            return;
        };
        let sequence = stream.next_sequence;
        if stream.writer.append_or_commit(sequence, source_sequence, &packet[..len]).is_err() {
            self.log.try_log(
                HotRecord::new(
                    HotLevel::Error,
                    "session output journal append failed (disk full or I/O error): message not sent",
                )
                .account(account.0),
            );
            return;
        }
        stream.next_sequence += 1;
        if !stream.dirty {
            stream.dirty = true;
            self.dirty.push(account.0);
        }
        bump(&self.stats.messages_out_total);
        if let Some(conn) = stream.conn {
            conns.queue_live(conn, &packet[..len]);
        }
    }

    /// A stream begins with Start of Day, as an OUCH session does: written into every stream
    /// still empty when it is opened (before anything regenerated into it). Its timestamp is 0,
    /// midnight, not the time of opening: every host that writes a stream (a primary, its hot
    /// standby) must write the same first message, and no journaled time precedes a stream's
    /// first command.
    pub(super) fn start_of_day(&mut self, conns: &mut ConnTable) {
        let message = Outbound::SystemEvent(petrel_proto::ouch::SystemEvent {
            timestamp_ns: 0,
            event_code: petrel_proto::ouch::EventCode::StartOfDay,
        });
        for account in 0..self.streams.len() {
            let account = AccountId(account as u32);
            if self.next_sequence(account) == 1 {
                self.emit(account, NOT_FROM_A_COMMAND, &message, conns);
            }
        }
    }

    /// Writes the output journals before any of their bytes reach a socket, so a sequence
    /// number a client has seen is never reused for another message. False when a commit failed.
    pub(super) fn commit(&mut self) -> bool {
        let mut all_written = true;
        for account in self.dirty.drain(..) {
            let stream = &mut self.streams[account as usize];
            stream.dirty = false;
            if stream.writer.commit().is_err() {
                all_written = false;
                self.log.try_log(
                    HotRecord::new(
                        HotLevel::Error,
                        "session output journal commit failed (disk full or I/O error)",
                    )
                    .account(account),
                );
            }
        }
        all_written
    }
}
