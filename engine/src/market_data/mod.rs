//! The market-data feed: the book as Nasdaq TotalView-ITCH 5.0 over MoldUDP64
//! (docs/MARKET-DATA.md), along the path of one message:
//!
//! 1. `itch_map.rs` (pure): a released `Event::Book` becomes one ITCH message.
//! 2. `feed.rs`: the gateway's thread records it in the feed journal, after the command is
//!    durable (the gateway's release path, `gateway/release.rs`), and commits it with the
//!    account streams; regeneration at start records what a crash kept from it, exactly once.
//! 3. `publisher.rs` (`petrel-feed` thread): reads the journal up to what was committed, packs
//!    MoldUDP64 packets, sends them to the multicast group and unicast destinations;
//!    heartbeats when idle; End of Session at shutdown. A slow publisher never stalls the
//!    gateway: it catches up from the journal (`recorded_sequence - sent_sequence` shows by
//!    how much).
//! 4. `rerequest.rs` (`petrel-feed-requests` thread): the MoldUDP64 retransmission server,
//!    answering from the feed journal.
//! 5. `snapshot.rs` (`petrel-feed-snapshot` thread): the book for late joiners over SoupBinTCP,
//!    from a replica the thread keeps by reading the feed journal (`replica.rs`).

pub mod feed;
pub mod itch_map;
mod publisher;
mod replica;
mod rerequest;
mod snapshot;
pub mod stats;

pub use crate::clock::{midnight_ns, wall_ns};
pub use feed::{FeedHeld, FeedWriter};
pub use stats::FeedStats;

use crate::config::{Config, MarketDataConfig};
use crate::port::OutboundEvent;
use petrel_journal::{Durability, JournalConfig, JournalLocation};
use std::sync::Arc;

/// Prefix of the feed journal's segment files in `<journal dir>/market_data`.
pub const FEED_FILE_PREFIX: &str = "feed";

/// The feed journal's write buffer: many loops' worth of messages (at most 44 bytes each); a
/// fuller buffer is committed early.
const FEED_WRITE_BUFFER_BYTES: u32 = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum MarketDataError {
    #[error("market-data feed journal: {0}")]
    Journal(Box<petrel_journal::JournalError>),
    #[error("market data: cannot {action} {addr}: {source}")]
    Socket { action: &'static str, addr: String, source: std::io::Error },
    #[error("market data: cannot start thread {name}: {source}")]
    Thread { name: &'static str, source: std::io::Error },
}

impl MarketDataError {
    fn journal(source: petrel_journal::JournalError) -> MarketDataError {
        MarketDataError::Journal(Box::new(source))
    }
}

pub fn feed_dir(config: &Config) -> std::path::PathBuf {
    config.journal.dir.join("market_data")
}

pub fn feed_location(config: &Config) -> JournalLocation {
    JournalLocation::new(feed_dir(config), FEED_FILE_PREFIX)
}

fn feed_journal_config(config: &Config, md: &MarketDataConfig) -> JournalConfig {
    let mut journal = JournalConfig::new(feed_dir(config));
    journal.file_prefix = FEED_FILE_PREFIX.to_owned();
    journal.durability = Durability::None;
    journal.segment_size_bytes = md.journal_segment_bytes;
    journal.write_buffer_bytes = FEED_WRITE_BUFFER_BYTES;
    journal
}

/// The feed journal's tail, `None` when there is no feed or no journal yet.
fn read_tail(config: &Config) -> Result<Option<crate::gateway::StreamTail>, MarketDataError> {
    if config.market_data.is_none() || !feed_dir(config).is_dir() {
        return Ok(None);
    }
    let tail = crate::gateway::regeneration::read_stream_tail(&feed_location(config))
        .map_err(MarketDataError::journal)?;
    Ok((tail.next_sequence > 1).then_some(tail))
}

/// Before recovery: the newest input sequence whose feed messages are all recorded, when a
/// feed journal exists. Recovery must collect the events of the commands after it (the daemon
/// takes the least of this and the account streams' bound).
pub fn regenerate_after(config: &Config) -> Result<Option<u64>, MarketDataError> {
    Ok(read_tail(config)?.map(|tail| FeedHeld::from_tail(&tail, false, 0).through))
}

/// `petrel-engine rejoin`: cuts the feed journal back to the messages of commands up to
/// `last_kept`, as the input journal and the account streams are cut; the messages removed.
pub fn cut_after(config: &Config, last_kept: u64) -> Result<u64, MarketDataError> {
    let Some(md) = &config.market_data else { return Ok(0) };
    if !feed_dir(config).is_dir() {
        return Ok(0);
    }
    let first_cut = crate::gateway::regeneration::first_message_after(&feed_location(config), last_kept)
        .map_err(MarketDataError::journal)?;
    let Some(first_cut) = first_cut else { return Ok(0) };
    let truncated = petrel_journal::truncate_after(&feed_journal_config(config, md), first_cut - 1)
        .map_err(MarketDataError::journal)?;
    Ok(truncated.removed_records)
}

/// The gateway's handle on the feed: nothing when `[market_data]` is absent.
#[derive(Default)]
pub struct MarketData(Option<Box<FeedWriter>>);

impl MarketData {
    /// Opens the feed configured, if any (see [`FeedWriter::open`]), and publishes it.
    pub fn open(config: &Config, last_sequence: u64) -> Result<MarketData, MarketDataError> {
        MarketData::open_to(config, last_sequence, true)
    }

    /// A hot standby's copy of the feed: the same journal, written from the records it
    /// follows, published by nobody until it is promoted (`gateway::Mirror`).
    pub fn open_unpublished(config: &Config, last_sequence: u64) -> Result<MarketData, MarketDataError> {
        MarketData::open_to(config, last_sequence, false)
    }

    fn open_to(config: &Config, last_sequence: u64, publish: bool) -> Result<MarketData, MarketDataError> {
        match &config.market_data {
            None => Ok(MarketData(None)),
            Some(md) => Ok(MarketData(Some(Box::new(FeedWriter::open(config, md, last_sequence, publish)?)))),
        }
    }

    /// Whether a feed is configured.
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    #[inline]
    pub fn publish(&mut self, event: &OutboundEvent) {
        if let Some(feed) = &mut self.0 {
            feed.publish(event);
        }
    }

    #[inline]
    pub fn commit(&mut self) {
        if let Some(feed) = &mut self.0 {
            feed.commit();
        }
    }

    pub fn stats(&self) -> Option<Arc<FeedStats>> {
        self.0.as_ref().map(|f| f.stats())
    }

    pub fn request_addr(&self) -> Option<std::net::SocketAddr> {
        self.0.as_ref().and_then(|f| f.request_addr())
    }

    pub fn next_sequence(&self) -> Option<u64> {
        self.0.as_ref().map(|f| f.next_sequence())
    }

    pub fn count_regenerated(&self, messages: u64) {
        if let Some(feed) = &self.0 {
            feed.count_regenerated(messages);
        }
    }
}
