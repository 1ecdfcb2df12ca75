//! A hot standby's copy of every account's stream: the messages the primary's gateway writes,
//! byte for byte, written to the same output journals here, with no client connected.
//!
//! Every message of a stream follows from the input journal (the core's events, each command's
//! journaled echo, and the gateway's own answers sequenced as notes), so the standby's follower
//! feeds each record it applies through the same mapping the live gateway uses
//! ([`super::release::route`]). The events wait here until their commands are durable on this
//! host, as the primary's wait for durability before release: a stream never holds a message
//! of a command this host could lose. After a promotion the gateway opens these journals as its
//! own, so a client logs in with its next expected sequence number and gets exactly what it
//! missed. A crash of the standby between a commit and the streams' write is repaired at its
//! next start by the same regeneration a primary uses.

use super::ouch_map::Symbols;
use super::regeneration::{self, Regeneration};
use super::release::{self, Outputs};
use super::release_mark::MarkFile;
use super::session::{ConnLimits, ConnTable};
use super::settings::{GatewayError, GatewaySettings};
use super::stats::{GatewayStats, LatencyRecorder};
use super::streams::StreamSet;
use crate::config::Config;
use crate::input_record::CommandEcho;
use crate::logging::HotLog;
use crate::market_data::MarketData;
use crate::port::OutboundEvent;
use crate::recovery::{CollectedEcho, REPLAYED_CONN};
use petrel_core::{AccountId, Event, EventSink};
use petrel_proto::soupbin::FrameLimits;
use std::sync::Arc;
use std::time::Instant;

/// Events held until their commands are durable here, allocated at start. Past this many the
/// follower commits early ([`Mirror::is_full`]); one command with more events than this (a
/// mass cancel of a huge book) grows the buffer once rather than splitting a command.
const PENDING_EVENTS: usize = 64 * 1024;
/// Log records the mirror's ring holds; drained into tracing at each release.
const LOG_RECORDS: usize = 1024;

pub struct Mirror {
    streams: StreamSet,
    /// Always empty: nobody logs in to a standby.
    conns: ConnTable,
    mark: MarkFile,
    stats: Arc<GatewayStats>,
    log: Arc<HotLog>,
    latency: LatencyRecorder,
    symbols: Symbols,
    started: Instant,
    /// Events of applied commands not yet durable here, in sequence order, and the echoes of
    /// those commands.
    pending: Vec<OutboundEvent>,
    echoes: Vec<CollectedEcho>,
    /// The market-data feed's journal, when `[market_data]` is configured: the same messages
    /// and numbering as the primary's, published once this host is promoted.
    feed: MarketData,
    /// The command being applied: its sequence and timestamp stamp its events.
    sequence: u64,
    timestamp_ns: u64,
}

impl Mirror {
    /// Opens every account's output journal and writes what they lack of the commands this
    /// standby already holds (`regeneration`, read as a primary's restart reads it).
    pub fn open(config: &Config, regeneration: Regeneration) -> Result<Mirror, GatewayError> {
        let settings = GatewaySettings::from_config(config);
        let stats = Arc::new(GatewayStats::new(config.accounts.len()));
        let log = Arc::new(HotLog::new(LOG_RECORDS));
        let names: Vec<String> = config.accounts.iter().map(|a| a.name.clone()).collect();
        let streams = StreamSet::open(&names, &settings, &regeneration.tails, stats.clone(), log.clone())?;
        let limits = ConnLimits {
            rx_buffer_bytes: 0,
            tx_backlog_bytes_max: 0,
            frame: FrameLimits::new(settings.packet_bytes_max),
            timers: settings.timers,
        };
        let feed = MarketData::open_unpublished(config, regeneration.last_sequence)?;
        let mut mirror = Mirror {
            streams,
            feed,
            conns: ConnTable::new(0, limits),
            mark: MarkFile::open(&settings.sessions_dir, u64::MAX)?,
            stats,
            log,
            latency: LatencyRecorder::new(),
            symbols: Symbols::new(config.engine.instruments.iter().map(|i| i.symbol.0).collect()),
            started: Instant::now(),
            pending: Vec::with_capacity(PENDING_EVENTS),
            echoes: Vec::with_capacity(PENDING_EVENTS),
            sequence: regeneration.last_sequence,
            timestamp_ns: 0,
        };
        mirror.streams.start_of_day(&mut mirror.conns);
        let mark_path = mirror.mark.path.clone();
        regeneration::feed(&regeneration, &names, &mark_path, &mut mirror.outputs());
        mirror.feed.commit();
        let last = regeneration.last_sequence;
        mirror.mark.released_through(last);
        if mirror.streams.commit() {
            mirror.mark.write_at_start(last, &mirror.log);
        }
        if regeneration.tails.mark == super::ReleaseMark::Missing && last > 0 {
            tracing::warn!(
                sessions = %settings.sessions_dir.display(),
                "this standby's output journals do not hold the messages of input sequences 1..={last} (its journal was copied or predates them): after a promotion, clients cannot resume the streams of those commands here; rebuild the standby from an empty directory to give it whole streams"
            );
        }
        mirror.log.drain(LOG_RECORDS);
        Ok(mirror)
    }

    fn outputs(&mut self) -> Outputs<'_> {
        Outputs {
            streams: &mut self.streams,
            conns: &mut self.conns,
            stats: &self.stats,
            log: &self.log,
            latency: &mut self.latency,
            symbols: &self.symbols,
            started: self.started,
            feed: &mut self.feed,
        }
    }

    /// The next record's command is about to be applied (its events follow through
    /// [`EventSink`]); `echo` is what the gateway journaled with it.
    pub fn begin(&mut self, sequence: u64, timestamp_ns: u64, account: AccountId, echo: CommandEcho) {
        self.sequence = sequence;
        self.timestamp_ns = timestamp_ns;
        if !echo.is_empty() {
            self.echoes.push(CollectedEcho { sequence, account, echo });
        }
    }

    /// Whether the follower should make what it applied durable and [`Mirror::release`] now.
    pub fn is_full(&self) -> bool {
        self.pending.len() >= PENDING_EVENTS || self.echoes.len() >= PENDING_EVENTS
    }

    /// Every command applied so far is durable here: writes their messages to the streams.
    pub fn release(&mut self) {
        if self.pending.is_empty() && self.echoes.is_empty() {
            return;
        }
        let mut pending = std::mem::take(&mut self.pending);
        let mut echoes = std::mem::take(&mut self.echoes);
        let mut next_echo = echoes.iter().peekable();
        for event in &pending {
            while let Some(collected) = next_echo.next_if(|e| e.sequence <= event.sequence) {
                regeneration::remember_echo(&mut self.streams, collected);
            }
            release::route(event, &mut self.outputs());
        }
        for collected in next_echo {
            regeneration::remember_echo(&mut self.streams, collected);
        }
        pending.clear();
        echoes.clear();
        (self.pending, self.echoes) = (pending, echoes);
        self.mark.released_through(self.sequence);
        if self.streams.commit() {
            self.mark.after_commit(&self.log);
        }
        self.feed.commit();
        self.log.drain(LOG_RECORDS);
    }

    /// Stopping or promoting: what is durable is written, and the mark with it.
    pub fn finish(&mut self) {
        self.release();
        self.mark.write_if_moved(&self.log);
        self.log.drain(LOG_RECORDS);
    }
}

impl EventSink for Mirror {
    fn emit(&mut self, event: Event) {
        if matches!(event, Event::Book(_)) && !self.feed.is_on() {
            return; // for the feed only
        }
        self.pending.push(OutboundEvent {
            sequence: self.sequence,
            timestamp_ns: self.timestamp_ns,
            conn: REPLAYED_CONN,
            event,
            last_of_command: false,
        });
    }
}
