//! Regenerating the outputs a crash lost.
//!
//! A command can be durable in the input journal while the gateway never recorded its messages
//! (the process died in between). Each output-journal record's second header field holds the
//! input sequence of the command that produced the message (its *source*; the gateway's own
//! answers are sequenced as notes, so they have one too; 0 only in journals written before). Source sequences
//! never decrease within a stream, because events are released in sequence order. The
//! gateway also keeps a release mark W ([`super::release_mark`]): every message of every
//! command up to W is recorded in its stream.
//!
//! At start, before recovery, [`OutputTails::read`] reads W and each stream's tail: L, its
//! newest source sequence, and n, how many records carry L. For an account the stream then holds
//! every message of the commands up to max(W, L - 1) and, when L > W, the first n messages of
//! command L (a commit can be cut mid-command; later commands are absent). Recovery replays
//! from a state at or before T, the least of those bounds over the accounts, and collects the
//! events of the commands after T; `Gateway::new` feeds them through the same mapping as live
//! events, the stream set dropping per account what its stream already holds
//! ([`super::streams::StreamSet::emit`]), and commits the result before any client can log in.
//! What the answers repeat of the client's message (ClOrdID, Display, Capacity, Time in Force,
//! a mass cancel's UserRefNum, Firm and Symbol) is journaled with each command
//! ([`super::echo`]) and remembered before the command's events are routed, so a regenerated
//! message is the one the crashed gateway would have sent, byte for byte. Records journaled
//! before echoes were (the command alone) regenerate with the defaults used when no echo is
//! known: a blank ClOrdID, Visible, Agency, Day, and no Mass Cancel Response.

use super::echo::{self, JournaledEcho};
use super::release::{self, Outputs};
use super::release_mark::ReleaseMark;
use super::settings::GatewayError;
use super::streams::{stream_location, StreamSet, NOT_FROM_A_COMMAND};
use crate::recovery::{CollectedEcho, Collection};
use std::path::Path;
use std::sync::atomic::Ordering;

/// Source values at or above this are not input sequences (at ten million commands a second
/// the journal would need two centuries to reach it): output journals written before source
/// sequences existed hold wall-clock ns there (about 1.7e18), which tail reading ignores.
const SOURCE_SEQUENCE_LIMIT: u64 = 1 << 56;

/// The end of one account's output journal, in source sequences.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StreamTail {
    /// The newest source sequence in the stream (0: no message from a command).
    pub last_source: u64,
    /// Records carrying `last_source`.
    pub last_source_messages: u64,
    /// The stream sequence its next message gets.
    pub next_sequence: u64,
}

/// What a restart knows of the output journals, read before recovery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutputTails {
    pub mark: ReleaseMark,
    /// Per account (index).
    pub streams: Vec<StreamTail>,
}

/// What one stream already holds: every message of the commands up to `through`, and the first
/// `partial_messages` of command `through + 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Held {
    pub through: u64,
    pub partial_messages: u64,
}

/// What `Gateway::new` needs to regenerate the messages a crash kept it from recording.
#[derive(Debug)]
pub struct Regeneration {
    /// Read before recovery by [`OutputTails::read`].
    pub tails: OutputTails,
    /// The events recovery collected for the commands after `tails.regenerate_after()`.
    pub collection: Collection,
    /// The engine's last sequence after recovery.
    pub last_sequence: u64,
}

impl OutputTails {
    /// Reads the release mark and the tail of each of `accounts` output journals in
    /// `sessions_dir`, changing nothing (a torn tail is read as the next open will cut it).
    pub fn read(sessions_dir: &Path, accounts: usize) -> Result<OutputTails, GatewayError> {
        let mark = ReleaseMark::read(sessions_dir);
        let mut streams = Vec::with_capacity(accounts);
        for account in 0..accounts {
            let tail = if sessions_dir.is_dir() {
                read_stream_tail(&stream_location(sessions_dir, account)).map_err(|source| {
                    GatewayError::Journal { account: format!("#{account}"), source: Box::new(source) }
                })?
            } else {
                StreamTail { last_source: 0, last_source_messages: 0, next_sequence: 1 }
            };
            streams.push(tail);
        }
        Ok(OutputTails { mark, streams })
    }

    fn mark_sequence(&self) -> u64 {
        match self.mark {
            ReleaseMark::At(sequence) => sequence,
            ReleaseMark::Missing | ReleaseMark::Corrupt(_) => 0,
        }
    }

    /// What the stream of `account` already holds.
    pub fn held(&self, account: usize) -> Held {
        let mark = self.mark_sequence();
        match self.streams.get(account) {
            Some(tail) if tail.last_source > mark => {
                Held { through: tail.last_source - 1, partial_messages: tail.last_source_messages }
            }
            _ => Held { through: mark, partial_messages: 0 },
        }
    }

    /// T: the commands after it may have messages missing from some stream. `None` when the
    /// mark is missing (nothing to regenerate from: a fresh install, or journals from before it).
    pub fn regenerate_after(&self) -> Option<u64> {
        if self.mark == ReleaseMark::Missing {
            return None;
        }
        Some((0..self.streams.len()).map(|a| self.held(a).through).min().unwrap_or(self.mark_sequence()))
    }
}

/// The newest source sequence of one output journal and how many records carry it. Source
/// sequences do not decrease within a stream, so the scan walks back from the newest segment
/// only until a segment shows an older source. (The market-data feed journal is read the same
/// way.)
pub fn read_stream_tail(
    location: &petrel_journal::JournalLocation,
) -> Result<StreamTail, petrel_journal::JournalError> {
    let recovery = super::streams::read_only_view(location)?;
    let mut tail =
        StreamTail { last_source: 0, last_source_messages: 0, next_sequence: recovery.next_sequence() };
    for segment in recovery.segments.iter().rev().filter(|s| s.record_count > 0) {
        let mut reader = recovery.replay_from(segment.first_sequence)?;
        let mut segment_tail = SegmentTail::default();
        for _ in 0..segment.record_count {
            let record = reader.next_record()?.expect("the segment holds record_count records");
            segment_tail.add(record.timestamp_ns);
        }
        let (last, count) = (segment_tail.last, segment_tail.count);
        if tail.last_source == 0 {
            (tail.last_source, tail.last_source_messages) = (last, count);
        } else if last == tail.last_source {
            tail.last_source_messages += count;
        } else if last != 0 {
            // An older segment whose newest source differs: nothing of the newest is here.
            break;
        }
        // A segment of messages from no command says nothing: look further back.
        if tail.last_source != 0 && segment_tail.older_seen {
            break;
        }
    }
    Ok(tail)
}

/// The newest source of one segment, how many records carry it, and whether an older source
/// precedes it there.
#[derive(Default)]
struct SegmentTail {
    last: u64,
    count: u64,
    older_seen: bool,
}

impl SegmentTail {
    fn add(&mut self, source: u64) {
        if source == NOT_FROM_A_COMMAND || source >= SOURCE_SEQUENCE_LIMIT {
            return;
        }
        match source.cmp(&self.last) {
            std::cmp::Ordering::Greater => {
                self.older_seen |= self.last != 0;
                (self.last, self.count) = (source, 1);
            }
            std::cmp::Ordering::Equal => self.count += 1,
            std::cmp::Ordering::Less => self.older_seen = true,
        }
    }
}

/// What [`cut_streams_after`] removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CutStreams {
    pub streams: usize,
    pub messages: u64,
}

/// `petrel-engine rejoin`: cuts every account's stream back to the messages of commands up to
/// `last_kept` (the input journal is cut there too), and the release mark with them, so that
/// the streams stay a function of the journal this host keeps; its follower then writes the new
/// primary's messages after them. Messages from before source sequences existed stay.
pub fn cut_streams_after(
    settings: &super::GatewaySettings,
    accounts: usize,
    last_kept: u64,
) -> Result<CutStreams, GatewayError> {
    let mut cut = CutStreams::default();
    if !settings.sessions_dir.is_dir() {
        return Ok(cut);
    }
    for account in 0..accounts {
        let fail =
            |source| GatewayError::Journal { account: format!("#{account}"), source: Box::new(source) };
        let location = stream_location(&settings.sessions_dir, account);
        let Some(first_cut) = first_message_after(&location, last_kept).map_err(fail)? else { continue };
        let config = super::streams::stream_journal_config(
            &settings.sessions_dir,
            account,
            settings.output_segment_bytes,
        );
        let truncated = petrel_journal::truncate_after(&config, first_cut - 1).map_err(fail)?;
        cut.streams += 1;
        cut.messages += truncated.removed_records;
    }
    if let ReleaseMark::At(mark) = ReleaseMark::read(&settings.sessions_dir) {
        if mark > last_kept {
            super::release_mark::rewrite(&settings.sessions_dir, last_kept)?;
        }
    }
    Ok(cut)
}

/// The stream sequence of the first message from a command after `last_kept`, if any.
pub fn first_message_after(
    location: &petrel_journal::JournalLocation,
    last_kept: u64,
) -> Result<Option<u64>, petrel_journal::JournalError> {
    let recovery = super::streams::read_only_view(location)?;
    let Some(first) = recovery.segments.first().map(|s| s.first_sequence) else { return Ok(None) };
    let mut reader = recovery.replay_from(first)?;
    while let Some(record) = reader.next_record()? {
        let source = record.timestamp_ns;
        if source != NOT_FROM_A_COMMAND && source < SOURCE_SEQUENCE_LIMIT && source > last_kept {
            return Ok(Some(record.sequence));
        }
    }
    Ok(None)
}

/// Remembers a regenerated command's journaled echo in its account's stream, where the live
/// gateway put it before submitting the command. An unreadable echo (a kind this build does not
/// know) is reported; that command's answers then carry the defaults.
pub(super) fn remember_echo(streams: &mut StreamSet, collected: &CollectedEcho) {
    if !streams.contains(collected.account) {
        return;
    }
    match echo::decode(&collected.echo) {
        Ok(Some(JournaledEcho::Order(order))) => streams.remember(collected.account, order),
        Ok(Some(JournaledEcho::MassCancel(mass_cancel))) => {
            streams.set_mass_cancel(collected.account, mass_cancel)
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(
            sequence = collected.sequence,
            "the echo journaled with input sequence {} cannot be read ({e}): its answers are \
             regenerated with default ClOrdID, Display, Capacity and Time in Force",
            collected.sequence
        ),
    }
}

/// Feeds the events recovery collected through the live mapping, each stream keeping only
/// what it does not hold yet, and says what was done (or why nothing could be). Each
/// command's journaled echo is remembered before its events are routed, as the live gateway
/// remembered it before submitting the command.
pub(super) fn feed(regeneration: &Regeneration, names: &[String], mark_path: &Path, out: &mut Outputs<'_>) {
    report_unavailable(regeneration, names, mark_path);
    let Collection::Events { after, events, echoes } = &regeneration.collection else {
        return;
    };
    let before: Vec<u64> = out.streams.next_sequences().collect();
    out.streams.set_regenerating(true);
    let mut echoes = echoes.iter().peekable();
    for event in events {
        debug_assert!(event.sequence > *after && event.sequence <= regeneration.last_sequence);
        while let Some(collected) = echoes.next_if(|e| e.sequence <= event.sequence) {
            remember_echo(out.streams, collected);
        }
        release::route(event, out);
    }
    out.streams.set_regenerating(false);
    let added: Vec<u64> = out.streams.next_sequences().zip(before).map(|(now, was)| now - was).collect();
    let messages: u64 = added.iter().sum();
    let accounts = added.iter().filter(|&&n| n > 0).count();
    out.stats.regenerated_messages_total.store(messages, Ordering::Relaxed);
    if *after < regeneration.last_sequence {
        tracing::info!(
            events = events.len(),
            "regenerated {messages} messages for {accounts} accounts from input sequences ({after}, {}]",
            regeneration.last_sequence
        );
    }
}

/// Says what regeneration will do, or why it cannot: a damaged mark, no mark, or collected
/// events that do not reach back far enough (retention). `account_names` by index.
pub(super) fn report_unavailable(regeneration: &Regeneration, account_names: &[String], mark_path: &Path) {
    let tails = &regeneration.tails;
    let last = regeneration.last_sequence;
    if let ReleaseMark::Corrupt(reason) = &tails.mark {
        tracing::warn!(
            file = %mark_path.display(),
            "release mark unusable ({reason}); the output journals' tails alone decide what to regenerate"
        );
    }
    match &regeneration.collection {
        Collection::NotAsked if tails.mark == ReleaseMark::Missing => {
            tracing::info!(
                file = %mark_path.display(),
                "no release mark (a fresh install or output journals from before it): nothing to regenerate"
            );
        }
        Collection::Unavailable { after, reason } => {
            let accounts: Vec<String> = (0..account_names.len())
                .filter_map(|a| {
                    let through = tails.held(a).through;
                    (through < last).then(|| format!("{} ({}, {last}]", account_names[a], through))
                })
                .collect();
            tracing::error!(
                accounts = ?accounts,
                "cannot regenerate the messages of input sequences ({after}, {last}]: {reason}. Those \
                 accounts' clients may never hear of those commands' outcomes; check their orders \
                 with the journal (petrel-engine journal dump)"
            );
        }
        Collection::NotAsked | Collection::Events { .. } => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::release_mark::{encode, RELEASE_MARK_FILE};
    use super::super::streams::stream_journal_config;
    use super::*;
    use petrel_journal::Journal;

    fn tails(mark: ReleaseMark, streams: &[(u64, u64)]) -> OutputTails {
        OutputTails {
            mark,
            streams: streams
                .iter()
                .map(|&(last_source, last_source_messages)| StreamTail {
                    last_source,
                    last_source_messages,
                    next_sequence: 1,
                })
                .collect(),
        }
    }

    #[test]
    fn what_a_stream_holds_follows_the_mark_and_its_tail() {
        // Account 0 is behind the mark, account 1 holds two messages of command 12 > mark.
        let t = tails(ReleaseMark::At(10), &[(7, 1), (12, 2)]);
        assert_eq!(t.held(0), Held { through: 10, partial_messages: 0 });
        assert_eq!(t.held(1), Held { through: 11, partial_messages: 2 });
        assert_eq!(t.regenerate_after(), Some(10));
        // Every stream ahead of the mark: T is the least of their bounds.
        let t = tails(ReleaseMark::At(10), &[(14, 1), (12, 3)]);
        assert_eq!(t.regenerate_after(), Some(11));
        // A damaged mark: the tails alone (an account with nothing from a command: everything).
        let t = tails(ReleaseMark::Corrupt("bad magic".into()), &[(14, 1), (0, 0)]);
        assert_eq!(t.held(1), Held { through: 0, partial_messages: 0 });
        assert_eq!(t.regenerate_after(), Some(0));
        // No mark: nothing to regenerate from.
        assert_eq!(tails(ReleaseMark::Missing, &[(14, 1)]).regenerate_after(), None);
    }

    #[test]
    fn a_stream_tail_is_its_newest_source_and_how_many_records_carry_it() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            OutputTails::read(&dir.path().join("sessions"), 2).unwrap(),
            tails(ReleaseMark::Missing, &[(0, 0), (0, 0)]),
            "no sessions directory: a fresh install"
        );
        let sessions = dir.path().join("sessions");
        let (mut writer, _) = Journal::open(&stream_journal_config(&sessions, 0, 1 << 20)).unwrap();
        // A record from before source sequences (wall-clock ns), Start of Day, three commands
        // with a gateway answer inside the last one.
        let sources = [1_700_000_000_000_000_000u64, 0, 3, 3, 5, 0, 5];
        for (i, source) in sources.iter().enumerate() {
            writer.append(i as u64 + 1, *source, b"packet").unwrap();
        }
        writer.commit().unwrap();
        drop(writer);
        std::fs::write(sessions.join(RELEASE_MARK_FILE), encode(4)).unwrap();
        let read = OutputTails::read(&sessions, 2).unwrap();
        assert_eq!(read.mark, ReleaseMark::At(4));
        assert_eq!(read.streams[0], StreamTail { last_source: 5, last_source_messages: 2, next_sequence: 8 });
        assert_eq!(read.streams[1], StreamTail { last_source: 0, last_source_messages: 0, next_sequence: 1 });
        assert_eq!(read.held(0), Held { through: 4, partial_messages: 2 });
        assert_eq!(read.regenerate_after(), Some(4));
    }
}
