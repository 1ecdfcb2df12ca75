//! The feed as the gateway's thread writes it: each released book change becomes one ITCH
//! message, numbered by its place in the feed journal (`<journal dir>/market_data/feed-*.seg`,
//! one record per message: record sequence = MoldUDP64 sequence number, the record's second
//! header field = the input sequence of the command that produced it, 0 for the start-of-day
//! messages). Recording is a buffered append; `commit` writes the batch (no fsync: the feed is
//! regenerated from the input journal, which is durable) and hands it to the publisher thread.
//!
//! Numbering is a function of the input journal: messages are appended in input-sequence order,
//! and at start [`FeedWriter::open`] learns what the journal holds (the newest source L and how
//! many of its messages, n: the journal is a prefix of what was appended), so the events that
//! recovery collects are recorded again only where they are missing: every command after L,
//! and the messages of L after the first n. Exactly once, with the numbers a crash-free run
//! would have given.

use super::itch_map::{self, FeedInstruments};
use super::publisher::Publisher;
use super::rerequest::RequestServer;
use super::snapshot::SnapshotServer;
use super::stats::{add, bump, FeedStats};
use super::{feed_journal_config, feed_location, midnight_ns, MarketDataError};
use crate::config::{Config, MarketDataConfig};
use crate::port::OutboundEvent;
use petrel_journal::{Journal, JournalWriter};
use petrel_proto::itch::{Message, MESSAGE_BYTES_MAX};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// What the feed journal already holds, for regeneration: every message of the commands up to
/// `through`, and the first `partial_messages` of command `through + 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FeedHeld {
    pub through: u64,
    pub partial_messages: u64,
}

impl FeedHeld {
    /// From the journal's tail (`StreamTail`), or, for a new feed, the recovered last sequence:
    /// a feed switched on in a running market starts with what comes next.
    pub fn from_tail(tail: &crate::gateway::StreamTail, new_feed: bool, last_sequence: u64) -> FeedHeld {
        if new_feed {
            FeedHeld { through: last_sequence, partial_messages: 0 }
        } else if tail.last_source == 0 {
            FeedHeld { through: 0, partial_messages: 0 }
        } else {
            FeedHeld { through: tail.last_source - 1, partial_messages: tail.last_source_messages }
        }
    }
}

/// The gateway's side of the feed; the publisher and request server threads stop when it drops.
pub struct FeedWriter {
    writer: JournalWriter,
    instruments: FeedInstruments,
    held: FeedHeld,
    /// The order of the newest Accepted released, and its account: the Book(Add) of the same
    /// command names the order but not its owner (attribution needs the owner).
    last_accepted: (u64, u32),
    dirty: bool,
    stats: Arc<FeedStats>,
    stop: Arc<AtomicBool>,
    publisher: Option<Publisher>,
    requests: Option<RequestServer>,
    snapshots: Option<SnapshotServer>,
}

impl FeedWriter {
    /// Opens (or creates) the feed journal, records the start-of-day messages of a new feed,
    /// and starts the publisher (and request server) threads. `last_sequence`: the input
    /// sequence recovery reached.
    pub fn open(
        config: &Config,
        md: &MarketDataConfig,
        last_sequence: u64,
        publish: bool,
    ) -> Result<FeedWriter, MarketDataError> {
        let journal = feed_journal_config(config, md);
        let tail = super::read_tail(config)?.unwrap_or_default();
        let (writer, recovery) = Journal::open(&journal).map_err(MarketDataError::journal)?;
        if let Some(torn) = &recovery.truncation {
            tracing::warn!("market-data feed journal had a torn tail, cut: {torn:?}");
        }
        let new_feed = writer.next_sequence() == 1;
        let held = FeedHeld::from_tail(&tail, new_feed, last_sequence);
        tracing::info!(
            next_sequence = writer.next_sequence(),
            held_through = held.through,
            held_partial_messages = held.partial_messages,
            "market-data feed journal opened"
        );
        let stats = Arc::new(FeedStats::default());
        let first_unsent = writer.next_sequence();
        stats.recorded_sequence.store(first_unsent - 1, Ordering::Release);
        stats.sent_sequence.store(first_unsent - 1, Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let instruments = FeedInstruments::from_config(config);
        let mut feed = FeedWriter {
            writer,
            instruments,
            held,
            last_accepted: (u64::MAX, 0),
            dirty: false,
            stats: stats.clone(),
            stop: stop.clone(),
            publisher: None,
            requests: None,
            snapshots: None,
        };
        if new_feed {
            // Timestamp 0 (midnight), not the time of opening: a primary and its hot standby
            // each begin the feed, and must write the same bytes.
            for message in itch_map::start_of_day(0, &feed.instruments) {
                feed.record(crate::gateway::NOT_FROM_A_COMMAND, &message);
            }
        }
        if !publish {
            return Ok(feed); // a hot standby: the journal only, nothing on the network
        }
        let location = feed_location(config);
        feed.publisher =
            Some(Publisher::start(md, location.clone(), first_unsent, stats.clone(), stop.clone())?);
        if let Some(listen) = md.snapshot_listen {
            let session = super::publisher::session_field(&md.session);
            feed.snapshots =
                Some(SnapshotServer::start(session, listen, location.clone(), stats.clone(), stop.clone())?);
        }
        if let Some(listen) = md.retransmission_listen {
            feed.requests = Some(RequestServer::start(md, listen, location, stats, stop)?);
        }
        Ok(feed)
    }

    pub fn stats(&self) -> Arc<FeedStats> {
        self.stats.clone()
    }

    /// Where the request server listens (its port when configured as 0).
    pub fn request_addr(&self) -> Option<std::net::SocketAddr> {
        self.requests.as_ref().map(|r| r.local_addr)
    }

    /// Records the ITCH message of one released event, unless the journal already holds it
    /// (regeneration at start).
    pub fn publish(&mut self, event: &OutboundEvent) {
        let attribution = match event.event {
            petrel_core::Event::Accepted(a) => {
                self.last_accepted = (a.order_id.0, a.account.0);
                return;
            }
            petrel_core::Event::Book(petrel_core::BookChange::Add { order_id, .. })
                if order_id.0 == self.last_accepted.0 =>
            {
                self.instruments.mpid(petrel_core::AccountId(self.last_accepted.1))
            }
            _ => None,
        };
        let timestamp_ns = midnight_ns(event.timestamp_ns);
        let Some(message) =
            itch_map::book_message(&event.event, timestamp_ns, &self.instruments, attribution)
        else {
            return;
        };
        if self.already_holds(event.sequence) {
            return;
        }
        self.record(event.sequence, &message);
    }

    fn already_holds(&mut self, source: u64) -> bool {
        if source <= self.held.through {
            return true;
        }
        if source == self.held.through + 1 && self.held.partial_messages > 0 {
            self.held.partial_messages -= 1;
            return true;
        }
        false
    }

    fn record(&mut self, source: u64, message: &Message) {
        let mut bytes = [0u8; MESSAGE_BYTES_MAX];
        let len = message.encode(&mut bytes).expect("every ITCH message fits MESSAGE_BYTES_MAX");
        let sequence = self.writer.next_sequence();
        match self.writer.append_or_commit(sequence, source, &bytes[..len]) {
            Ok(committed) => {
                if committed.is_some() {
                    self.announce(sequence - 1);
                }
                self.dirty = true;
                bump(&self.stats.messages_total);
            }
            Err(_) => bump(&self.stats.journal_errors_total),
        }
    }

    /// Writes what was recorded and hands it to the publisher.
    pub fn commit(&mut self) {
        if !self.dirty {
            return;
        }
        self.dirty = false;
        match self.writer.commit() {
            Ok(_) => self.announce(self.writer.next_sequence() - 1),
            Err(_) => bump(&self.stats.journal_errors_total),
        }
    }

    fn announce(&self, written_through: u64) {
        self.stats.recorded_sequence.store(written_through, Ordering::Release);
        if let Some(publisher) = &self.publisher {
            publisher.wake();
        }
    }

    /// Counts what regeneration added (called once, after it).
    pub fn count_regenerated(&self, messages: u64) {
        add(&self.stats.regenerated_messages_total, messages);
    }

    pub fn next_sequence(&self) -> u64 {
        self.writer.next_sequence()
    }
}

impl Drop for FeedWriter {
    /// Shutdown: what was recorded is written, the publisher sends it and then End of Session.
    fn drop(&mut self) {
        self.commit();
        self.stop.store(true, Ordering::Release);
        if let Some(publisher) = self.publisher.take() {
            publisher.join();
        }
        if let Some(requests) = self.requests.take() {
            requests.join();
        }
        if let Some(snapshots) = self.snapshots.take() {
            snapshots.join();
        }
    }
}
