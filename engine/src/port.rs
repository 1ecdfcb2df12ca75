//! What crosses between the gateway and the runtime: the commands going in, the events coming
//! back, the bounded rings and doorbells that carry them, the durable watermark, and the one
//! rule by which an event may leave: only once its command is durable ([`DurableOutbound`]).
//!
//! Both sides depend on this module; it depends on neither.
//!
//! - `doorbell.rs`: wake-ups of a thread that sleeps when idle (the gateway's is an eventfd).
//! - `stats.rs`: the pipeline's counters, carried by the port (the gateway counts its refused
//!   pushes there).

mod doorbell;
mod stats;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam::queue::ArrayQueue;
use petrel_core::{Command, Event};

use crate::input_record::CommandEcho;

pub use doorbell::Doorbell;
pub use stats::HISTOGRAM_MERGE_INTERVAL;
pub(crate) use stats::{new_histogram, ThreadHistogram};
pub use stats::{Ring, RuntimeStats};

/// The `conn` of commands that came from the control plane (`Runtime::submit_admin`).
pub const ADMIN_CONN: u32 = u32::MAX;

/// A command from the gateway. `conn` is the gateway's connection id (opaque to the runtime),
/// echoed on every output of this command so the gateway can route rejects. `echo` is what the
/// gateway needs to answer it (opaque to the runtime too), journaled with the command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InboundCommand {
    pub conn: u32,
    pub command: Command,
    pub echo: CommandEcho,
}

impl InboundCommand {
    /// A command without echo (control commands, cancel-on-disconnect, tests).
    pub fn new(conn: u32, command: Command) -> InboundCommand {
        InboundCommand { conn, command, echo: CommandEcho::NONE }
    }
}

/// One event, tagged with the sequence of the command that produced it and its origin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OutboundEvent {
    pub sequence: u64,
    pub timestamp_ns: u64,
    pub conn: u32,
    pub event: Event,
    /// The command produced no more events after this one.
    pub last_of_command: bool,
}

/// What the gateway holds: the bounded rings into and out of the sequencer and the durable
/// watermark. Outbound events may be released to clients only when
/// `durable_sequence >= event.sequence` (journal-before-ack): use [`DurableOutbound`].
#[derive(Clone, Debug)]
pub struct GatewayPort {
    pub inbound: Arc<ArrayQueue<InboundCommand>>,
    pub outbound: Arc<ArrayQueue<OutboundEvent>>,
    /// Every command up to this sequence is durable (Release-stored by the journal thread).
    pub durable_sequence: Arc<AtomicU64>,
    pub stats: Arc<RuntimeStats>,
    /// Rung by the gateway after it submits commands (wakes a parked sequencer).
    pub sequencer_bell: Arc<Doorbell>,
    /// Rung by the journal writer after each commit moves `durable_sequence` (an eventfd the
    /// gateway's transport watches while the gateway sleeps in its poll).
    pub gateway_bell: Arc<Doorbell>,
    /// Run to completion: the core the gateway's thread runs itself (taken once, by the
    /// gateway). Empty in the pipeline, whose sequencer and journal threads do that work.
    pub core: CoreSlot,
    /// What `durable_sequence` follows: the local journal's mark, and with a standby that must
    /// have a command before it is acknowledged, the least of both.
    pub gate: Arc<ReleaseGate>,
}

/// The acknowledgement rule with a standby (`replication.ack = "standby"`): while `gating`,
/// a command's outputs are released only once it is durable on both hosts. Both marks only
/// grow, and [`publish`](Self::publish) only moves `durable_sequence` forward, so the journal
/// and the replication thread may publish concurrently: each computes a bound no greater than
/// the true least of the two, and the larger of those wins.
#[derive(Debug)]
pub struct ReleaseGate {
    pub gating: AtomicBool,
    /// Durable in the local journal.
    pub local: AtomicU64,
    /// Written to the local journal (complete in the page cache, perhaps not yet durable):
    /// what the replication thread may ship, so that the standby's commit overlaps this one's.
    pub written: AtomicU64,
    /// Durable in the standby's journal (its last acknowledgement).
    pub standby: AtomicU64,
    /// Rung when `local` moves: wakes the replication thread that ships the new records.
    pub shipper: Doorbell,
    /// With `[failover] mode = "etcd"`: the leader lease is certainly valid until this instant
    /// (`failover::monotonic_ns`); the gateway releases nothing after it (fenced). `u64::MAX`
    /// without etcd failover.
    pub lease_until_ns: AtomicU64,
}

impl Default for ReleaseGate {
    fn default() -> ReleaseGate {
        ReleaseGate {
            gating: AtomicBool::new(false),
            local: AtomicU64::new(0),
            written: AtomicU64::new(0),
            standby: AtomicU64::new(0),
            shipper: Doorbell::for_thread(),
            lease_until_ns: AtomicU64::new(u64::MAX),
        }
    }
}

impl ReleaseGate {
    /// Whether this engine may release now: always without etcd failover; with it, only while
    /// its leader lease is certainly valid (one clock read, per release batch).
    #[inline]
    pub fn lease_valid(&self) -> bool {
        let until = self.lease_until_ns.load(Ordering::Acquire);
        until == u64::MAX || crate::failover::monotonic_ns() < until
    }

    /// Moves `durable` to what may be released now; returns the new mark.
    pub fn publish(&self, durable: &AtomicU64) -> u64 {
        let local = self.local.load(Ordering::Acquire);
        let limit = if self.gating.load(Ordering::Acquire) {
            local.min(self.standby.load(Ordering::Acquire))
        } else {
            local
        };
        durable.fetch_max(limit, Ordering::AcqRel).max(limit)
    }
}

/// The run-to-completion core: sequencing, matching and the journal, run by the gateway's own
/// thread between its network polls (`runtime/run_to_completion.rs`), so that no order waits
/// for another thread to wake up. It consumes the same inbound and admin rings and fills the
/// same outbound ring and durable mark as the pipeline, so everything the gateway does with
/// them (durable release, output journals, regeneration) is the same on both data paths.
pub trait InlineCore: Send {
    /// Sequences and applies every queued command (admin first), writes them to the journal
    /// and makes them durable (one group commit), and publishes the durable mark. When the
    /// outbound ring fills in the middle of a command it commits what it has and calls
    /// `release`, which must take the (now durable) events off the ring. Whether it did work.
    fn run(&mut self, release: &mut dyn FnMut()) -> bool;
    /// A command is waiting (a parked gateway's last check before it sleeps).
    fn has_work(&self) -> bool;
}

/// Where the run-to-completion core waits for the gateway to take it.
#[derive(Clone, Default)]
pub struct CoreSlot(Arc<std::sync::Mutex<Option<Box<dyn InlineCore>>>>);

impl CoreSlot {
    pub fn put(&self, core: Box<dyn InlineCore>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(core);
    }

    /// The core, once: whoever takes it runs it.
    pub fn take(&self) -> Option<Box<dyn InlineCore>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).take()
    }
}

impl std::fmt::Debug for CoreSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let held = self.0.lock().map(|c| c.is_some()).unwrap_or(false);
        f.debug_struct("CoreSlot").field("holds_core", &held).finish()
    }
}

impl GatewayPort {
    /// Pushes a command to the sequencer. `Err` gives it back when the ring is full (counted in
    /// `ring_full_total{ring="inbound"}`): the gateway must stop reading sockets and retry.
    #[inline]
    pub fn try_submit(&self, command: InboundCommand) -> Result<(), InboundCommand> {
        self.inbound.push(command).inspect_err(|_| self.stats.count_ring_full(Ring::Inbound))
    }
}

/// Releases outbound events in order, each only once its command is durable: the one
/// durable-release rule. Holds at most one event back (the ring is in sequence order, so when
/// one is not durable, none after it is). No allocation.
#[derive(Debug, Default)]
pub struct DurableOutbound {
    held: Option<OutboundEvent>,
}

impl DurableOutbound {
    pub fn new() -> DurableOutbound {
        DurableOutbound::default()
    }

    /// The next event whose command is durable, or `None` when there is none yet.
    #[inline]
    pub fn next(&mut self, port: &GatewayPort) -> Option<OutboundEvent> {
        let event = match self.held.take() {
            Some(event) => event,
            None => port.outbound.pop()?,
        };
        // Loaded after the pop: the durable mark only grows, so a pass here stays true.
        if event.sequence <= port.durable_sequence.load(Ordering::Acquire) {
            Some(event)
        } else {
            self.held = Some(event);
            None
        }
    }

    /// Whether [`next`](Self::next) would make progress now: the held event has become
    /// durable, or nothing is held and the ring has an event (which `next` then releases or
    /// holds). A sleeper's last check after announcing its sleep: `false` means only a doorbell
    /// (a new event, or a commit moving the mark) can change the answer.
    #[inline]
    pub fn has_releasable(&self, port: &GatewayPort) -> bool {
        match &self.held {
            Some(event) => event.sequence <= port.durable_sequence.load(Ordering::Acquire),
            None => !port.outbound.is_empty(),
        }
    }

    /// An event popped but not yet durable is being held.
    pub fn is_holding(&self) -> bool {
        self.held.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use petrel_core::AccountId;

    fn port() -> GatewayPort {
        GatewayPort {
            inbound: Arc::new(ArrayQueue::new(1)),
            outbound: Arc::new(ArrayQueue::new(8)),
            durable_sequence: Arc::new(AtomicU64::new(0)),
            stats: Arc::new(RuntimeStats::new()),
            sequencer_bell: Arc::new(Doorbell::for_thread()),
            gateway_bell: Arc::new(Doorbell::for_thread()),
            core: CoreSlot::default(),
            gate: Arc::default(),
        }
    }

    fn event(sequence: u64) -> OutboundEvent {
        OutboundEvent {
            sequence,
            timestamp_ns: 0,
            conn: 0,
            event: Event::RiskLimitsSet { account: AccountId(0) },
            last_of_command: true,
        }
    }

    /// `has_releasable` answers exactly whether `next` would return an event or take one off
    /// the ring, through every state: empty, holding a non-durable event, held event durable.
    #[test]
    fn has_releasable_says_whether_next_would_make_progress() {
        let port = port();
        let mut releaser = DurableOutbound::new();
        assert!(!releaser.has_releasable(&port), "nothing held, nothing queued");
        port.outbound.push(event(3)).unwrap();
        port.outbound.push(event(4)).unwrap();
        assert!(releaser.has_releasable(&port), "an event waits on the ring");
        assert_eq!(releaser.next(&port), None, "not durable: held");
        assert!(releaser.is_holding());
        assert!(!releaser.has_releasable(&port), "held and not durable, whatever the ring holds");
        port.durable_sequence.store(3, Ordering::Release);
        assert!(releaser.has_releasable(&port), "the held event became durable");
        assert_eq!(releaser.next(&port).map(|e| e.sequence), Some(3));
        assert!(releaser.has_releasable(&port), "4 is on the ring");
        assert_eq!(releaser.next(&port), None);
        assert!(!releaser.has_releasable(&port));
        port.durable_sequence.store(4, Ordering::Release);
        assert!(releaser.has_releasable(&port));
        assert_eq!(releaser.next(&port).map(|e| e.sequence), Some(4));
        assert!(!releaser.has_releasable(&port) && !releaser.is_holding());
    }

    #[test]
    fn a_refused_inbound_push_is_counted_and_the_command_given_back() {
        let port = port();
        let command = InboundCommand::new(7, Command::Disconnect { account: AccountId(0) });
        assert_eq!(port.try_submit(command), Ok(()));
        assert_eq!(port.try_submit(command), Err(command), "the ring holds one");
        assert_eq!(port.stats.ring_full(Ring::Inbound), 1);
    }
}
