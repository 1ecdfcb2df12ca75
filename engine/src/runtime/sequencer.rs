//! The sequencer/matcher thread of the pipeline: takes commands off the admin and inbound rings
//! (admin first), stamps each and pushes it to the journal ring before applying it, and pushes
//! the command's events to the outbound ring (`apply.rs`, shared with the run-to-completion
//! path). At command boundaries it encodes the snapshots housekeeping writes.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;
use petrel_core::Engine;

use super::apply::{Applier, PushEvent, SnapshotChannels};
use super::idle::{IdleStrategy, Idler};
use super::progress::SEQUENCER;
use super::shared::Shared;
use super::stamp::Stamped;
use crate::config::Config;
use crate::port::{Doorbell, GatewayPort, InboundCommand, OutboundEvent, Ring};

/// Most commands the sequencer takes per loop before it publishes its counters and looks at
/// snapshots: bounds how stale the stats get under sustained load.
const SEQUENCER_BATCH_COMMANDS: u32 = 256;
/// How long the sequencer waits for a gateway that stopped draining the outbound ring once
/// shutdown has begun, before dropping (and counting) events so that shutdown completes.
const SHUTDOWN_OUTBOUND_WAIT: Duration = Duration::from_secs(2);

/// The rings and channels the sequencer thread is wired to (see `pipeline.rs`).
pub(super) struct SequencerWiring {
    pub shared: Arc<Shared>,
    pub port: GatewayPort,
    pub admin: Arc<ArrayQueue<InboundCommand>>,
    pub journal_ring: Arc<ArrayQueue<Stamped>>,
    pub snapshots: SnapshotChannels,
}

pub(super) struct Sequencer {
    applier: Applier,
    shared: Arc<Shared>,
    port: GatewayPort,
    admin: Arc<ArrayQueue<InboundCommand>>,
    journal_ring: Arc<ArrayQueue<Stamped>>,
    idle: IdleStrategy,
}

impl Sequencer {
    pub(super) fn new(config: &Config, engine: Engine, wiring: SequencerWiring) -> Sequencer {
        let SequencerWiring { shared, port, admin, journal_ring, snapshots } = wiring;
        Sequencer {
            applier: Applier::new(config, engine, Arc::clone(&shared), snapshots),
            shared,
            port,
            admin,
            journal_ring,
            idle: config.runtime.sequencer.idle,
        }
    }

    /// The engine, for a thread that never ran (its OS settings failed).
    pub(super) fn into_engine(self) -> Engine {
        self.applier.into_engine()
    }

    pub(super) fn run(mut self) -> Engine {
        let mut idler = Idler::new(self.idle);
        let beat = &Arc::clone(&self.shared).beats[SEQUENCER];
        'run: loop {
            // After a journal failure nothing can become durable: taking more commands would
            // only match orders that can never be acknowledged.
            if self.shared.failed() {
                break;
            }
            // Loaded before polling: everything pushed before shutdown began is seen below.
            let stopping = self.shared.stop.load(Ordering::Acquire);
            let mut done = 0u32;
            while done < SEQUENCER_BATCH_COMMANDS {
                let Some(command) = self.admin.pop().or_else(|| self.port.inbound.pop()) else { break };
                if !self.process(command) {
                    break 'run;
                }
                done += 1;
            }
            self.applier.publish();
            self.applier.maybe_snapshot();
            if done == 0 && stopping {
                break;
            }
            beat.beat(done == 0);
            let (admin, inbound, shared) = (&self.admin, &self.port.inbound, &self.shared);
            idler.idle_or_sleep(done > 0, &self.port.sequencer_bell, || {
                !admin.is_empty() || !inbound.is_empty() || shared.stop.load(Ordering::Acquire)
            });
        }
        self.applier.publish_final();
        self.applier.into_engine()
    }

    /// Stamps, journals (journal ring) and applies one command. `false`: the journal failed
    /// meanwhile.
    #[inline]
    fn process(&mut self, inbound: InboundCommand) -> bool {
        let shared = &*self.shared;
        let (journal_ring, idle, port) = (&*self.journal_ring, self.idle, &self.port);
        let bell = &shared.journal_bell;
        let journal = |stamped: &Stamped| {
            push_waiting(journal_ring, *stamped, Ring::Journal, shared, idle, bell, || shared.failed())
                .map_err(drop)?;
            // Per command, not per batch: the journal starts its next commit as early as it
            // can. While it is awake this is one fence and one load.
            bell.ring();
            Ok::<(), ()>(())
        };
        let mut outbound = RingOutbound { ring: &port.outbound, consumer: &port.gateway_bell, shared, idle };
        let Ok(sequence) = self.applier.apply(inbound, journal, &mut outbound) else {
            return false;
        };
        // The journal may have committed this command before its events reached the ring, and
        // its doorbell then found nothing to release: ring for it. (The fence orders the pushes
        // above before the load, against the journal's store of the mark before its ring.)
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.port.durable_sequence.load(Ordering::Relaxed) >= sequence {
            self.port.gateway_bell.ring();
        }
        true
    }
}

/// Pushes into a bounded ring, waiting (per the thread's idle strategy) while it is full and
/// counting each wait once. Gives the value back if `abandon` says waiting is pointless.
#[inline]
fn push_waiting<T>(
    ring: &ArrayQueue<T>,
    value: T,
    which: Ring,
    shared: &Shared,
    idle: IdleStrategy,
    consumer: &Doorbell,
    mut abandon: impl FnMut() -> bool,
) -> Result<(), T> {
    let Err(mut value) = ring.push(value) else { return Ok(()) };
    shared.stats.count_ring_full(which);
    // A full ring with its consumer asleep would otherwise wait out the consumer's back-off.
    consumer.ring();
    let mut idler = Idler::new(idle);
    loop {
        if abandon() {
            return Err(value);
        }
        idler.idle(false);
        match ring.push(value) {
            Ok(()) => return Ok(()),
            Err(v) => value = v,
        }
    }
}

/// The pipeline's outbound ring, drained by the gateway thread: a full ring waits for it.
struct RingOutbound<'a> {
    ring: &'a ArrayQueue<OutboundEvent>,
    consumer: &'a Doorbell,
    shared: &'a Shared,
    idle: IdleStrategy,
}

impl PushEvent for RingOutbound<'_> {
    fn push(&mut self, event: OutboundEvent) {
        let shared = self.shared;
        let mut deadline: Option<Instant> = None;
        let abandon = || {
            if shared.failed() {
                return true;
            }
            if !shared.stop.load(Ordering::Relaxed) {
                return false;
            }
            let deadline = *deadline.get_or_insert_with(|| Instant::now() + SHUTDOWN_OUTBOUND_WAIT);
            Instant::now() >= deadline
        };
        if push_waiting(self.ring, event, Ring::Outbound, shared, self.idle, self.consumer, abandon).is_err()
        {
            shared.stats.outbound_dropped_at_shutdown.fetch_add(1, Ordering::Relaxed);
        }
    }
}
