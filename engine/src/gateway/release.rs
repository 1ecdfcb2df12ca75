//! Durable release: events come back from the sequencer on the outbound ring and leave only
//! once the journal has made their command durable (journal before acknowledgement), through
//! the one rule the whole engine uses ([`DurableOutbound`]). Each released event becomes OUCH
//! messages in the streams of the accounts it concerns ([`route`]); the streams are committed
//! and the release mark follows the last command boundary released.
//!
//! Test-only failpoints, read once at start from the environment (a number: an input
//! sequence), cost one compare per released event when unset:
//! - `PETREL_FAILPOINT_ABORT_BEFORE_RELEASE=N`: `abort()` when about to record the first event
//!   of command N, as a crash there would;
//! - `PETREL_FAILPOINT_ABORT_BEFORE_RELEASE_MARK=N`: `abort()` after the streams holding the
//!   messages of command N were committed, before the release mark covering N is written.

use super::notes::{Answer, EngineNote, ENGINE};
use super::ouch_map::{self, midnight_ns, Echo, Symbols};
use super::release_mark::MarkFile;
use super::session::ConnTable;
use super::settings::GatewayError;
use super::stats::{bump, GatewayStats, LatencyRecorder};
use super::streams::StreamSet;
use crate::logging::{HotLevel, HotLog, HotRecord};
use crate::market_data::MarketData;
use crate::port::{DurableOutbound, GatewayPort, OutboundEvent, ADMIN_CONN};
use petrel_core::{AccountId, CancelReason, CommandKind, Event, RejectReason};
use std::sync::atomic::Ordering;
use std::time::Instant;

/// Most events released per loop, so that sessions keep being served under sustained load.
const RELEASE_BATCH_EVENTS: u32 = 4096;

/// Test-only crash points (see the module docs); `u64::MAX` when unset.
#[derive(Clone, Copy, Debug)]
pub(super) struct Failpoints {
    pub(super) abort_before_release: u64,
    pub(super) abort_before_release_mark: u64,
}

impl Failpoints {
    pub(super) fn from_env() -> Result<Failpoints, GatewayError> {
        let read = |name: &'static str| match std::env::var(name) {
            Err(_) => Ok(u64::MAX),
            Ok(value) => value.trim().parse::<u64>().map_err(|_| GatewayError::Failpoint { name, value }),
        };
        Ok(Failpoints {
            abort_before_release: read("PETREL_FAILPOINT_ABORT_BEFORE_RELEASE")?,
            abort_before_release_mark: read("PETREL_FAILPOINT_ABORT_BEFORE_RELEASE_MARK")?,
        })
    }
}

/// A failpoint was reached: die as a crash would, without unwinding or flushing anything.
#[cold]
pub(super) fn abort_at_failpoint(name: &str, sequence: u64) -> ! {
    eprintln!("failpoint {name} reached at input sequence {sequence}: aborting");
    std::process::abort();
}

/// Where released events go: the parts of the gateway that turn them into sent messages.
pub(super) struct Outputs<'a> {
    pub(super) streams: &'a mut StreamSet,
    pub(super) conns: &'a mut ConnTable,
    pub(super) stats: &'a GatewayStats,
    pub(super) log: &'a HotLog,
    pub(super) latency: &'a mut LatencyRecorder,
    pub(super) symbols: &'a Symbols,
    /// The gateway's clock origin (wire-to-wire latency is measured on it).
    pub(super) started: Instant,
    /// The market-data feed: every released book change, in sequence order.
    pub(super) feed: &'a mut MarketData,
}

impl Outputs<'_> {
    fn emit(
        &mut self,
        account: petrel_core::AccountId,
        source: u64,
        message: &petrel_proto::ouch::Outbound<'_>,
    ) {
        self.streams.emit(account, source, message, self.conns);
    }

    fn record_latency(&mut self, echo: Option<Echo>) {
        if let Some(echo) = echo.filter(|e| e.rx_ns != ouch_map::NOT_RECEIVED_HERE) {
            let now_ns = self.started.elapsed().as_nanos() as u64;
            self.latency.record(now_ns.saturating_sub(echo.rx_ns));
        }
    }
}

/// Releases durable events in sequence order and moves the release mark.
pub(super) struct Releaser {
    durable: DurableOutbound,
    abort_before_release: u64,
    pub(super) mark: MarkFile,
}

impl Releaser {
    pub(super) fn new(mark: MarkFile, failpoints: Failpoints) -> Releaser {
        Releaser {
            durable: DurableOutbound::new(),
            abort_before_release: failpoints.abort_before_release,
            mark,
        }
    }

    /// Whether an event can be released now (a parked gateway's last check before sleeping).
    pub(super) fn has_releasable(&self, port: &GatewayPort) -> bool {
        port.gate.lease_valid() && self.durable.has_releasable(port)
    }

    /// Releases what is durable (a bounded batch), commits the streams, moves the mark.
    pub(super) fn release(&mut self, port: &GatewayPort, out: &mut Outputs<'_>) -> bool {
        // Fenced (`[failover]`: the leader lease is not certainly valid): nothing leaves.
        if !port.gate.lease_valid() {
            return false;
        }
        let mut released = 0u32;
        while released < RELEASE_BATCH_EVENTS {
            let Some(event) = self.durable.next(port) else { break };
            if event.sequence == self.abort_before_release {
                abort_at_failpoint("PETREL_FAILPOINT_ABORT_BEFORE_RELEASE", event.sequence);
            }
            route(&event, out);
            if event.last_of_command {
                self.mark.released_through(event.sequence);
            }
            released += 1;
        }
        if released > 0 {
            out.feed.commit();
        }
        if released > 0 && out.streams.commit() {
            self.mark.after_commit(out.log);
        }
        released > 0
    }
}

/// Turns one event into the OUCH messages of the streams it concerns. Also how regeneration
/// feeds the events recovery collected, so both produce the same messages.
pub(super) fn route(e: &OutboundEvent, out: &mut Outputs<'_>) {
    let ts = midnight_ns(e.timestamp_ns);
    out.feed.publish(e);
    match e.event {
        Event::Accepted(a) => {
            let echo = out.streams.echo(a.account, a.client_ref.0);
            out.record_latency(echo);
            let message = ouch_map::order_accepted(&a, ts, echo, out.symbols);
            out.emit(a.account, e.sequence, &message);
        }
        Event::Rejected(r) => route_reject(e, &r, ts, out),
        Event::Executed(x) => {
            for (fill, maker) in [(x.maker, true), (x.taker, false)] {
                out.emit(fill.account, e.sequence, &ouch_map::order_executed(&x, &fill, maker, ts));
            }
        }
        Event::Cancelled(c) => out.emit(c.account, e.sequence, &ouch_map::order_canceled(&c, ts)),
        Event::Replaced(r) => {
            let echo = out.streams.echo(r.account, r.new_client_ref.0);
            out.record_latency(echo);
            let message = ouch_map::order_replaced(&r, ts, echo, out.symbols);
            out.emit(r.account, e.sequence, &message);
        }
        Event::MassCancelled { account, reason: CancelReason::MassCancel, .. } => {
            if let Some(echo) = out.streams.mass_cancel(account) {
                out.emit(account, e.sequence, &ouch_map::mass_cancel_response(echo, ts));
            }
        }
        Event::Noted { account, note } => route_note(e, account, &note, ts, out),
        Event::KillSwitch { account, engaged } => {
            if let Some(flag) = out.stats.kill_switch_engaged.get(account.0 as usize) {
                flag.store(engaged, Ordering::Relaxed);
            }
            let what = if engaged { "kill switch engaged" } else { "kill switch released" };
            out.log.try_log(HotRecord::new(HotLevel::Warn, what).account(account.0));
        }
        _ => {}
    }
}

/// One of the gateway's own answers (see [`super::notes`]), now in its place in the stream.
fn route_note(
    e: &OutboundEvent,
    account: AccountId,
    note: &petrel_core::Note,
    ts: u64,
    out: &mut Outputs<'_>,
) {
    if account == ENGINE {
        let record = match EngineNote::decode(note) {
            Ok(note) => HotRecord::new(HotLevel::Info, note.log_text()),
            Err(_) => HotRecord::new(HotLevel::Warn, "an engine note this build cannot read"),
        };
        out.log.try_log(record.sequence(e.sequence));
        return;
    }
    match Answer::decode(note) {
        Ok(answer) => out.emit(account, e.sequence, &answer.message(ts)),
        Err(_) => {
            let why = "a note this build cannot read (a newer build's journal?): no message written for it";
            out.log.try_log(HotRecord::new(HotLevel::Warn, why).account(account.0).sequence(e.sequence));
        }
    }
}

fn route_reject(e: &OutboundEvent, r: &petrel_core::Rejected, ts: u64, out: &mut Outputs<'_>) {
    let control =
        matches!(r.command, CommandKind::Disconnect | CommandKind::SetRiskLimits | CommandKind::KillSwitch);
    if e.conn == ADMIN_CONN || control {
        out.log.try_log(
            HotRecord::new(HotLevel::Warn, "control command rejected")
                .account(r.account.0)
                .sequence(e.sequence),
        );
        return;
    }
    if !out.streams.contains(r.account) {
        return;
    }
    out.log.try_log(
        HotRecord::new(HotLevel::Debug, r.reason.as_str())
            .account(r.account.0)
            .order_ref(r.client_ref.0 as u64)
            .sequence(e.sequence),
    );
    if r.reason == RejectReason::MaxPosition {
        bump(&out.stats.position_rejects_total[r.account.0 as usize]);
    }
    let cl_ord_id =
        out.streams.echo(r.account, r.client_ref.0).map_or(ouch_map::blank_cl_ord_id(), |x| x.cl_ord_id);
    let mass_cancel_user_ref = out.streams.mass_cancel(r.account).map_or(0, |m| m.0);
    out.emit(r.account, e.sequence, &ouch_map::rejected(r, ts, cl_ord_id, mass_cancel_user_ref));
}
