//! The run-to-completion data path (`runtime.mode = "run-to-completion"`): the gateway's thread
//! runs this core between its network polls. It takes what the gateway queued on the inbound
//! ring (and the control plane on the admin ring), stamps, journals and applies each command
//! (`apply.rs`, as the pipeline's sequencer does), then makes the batch durable with one group
//! commit and publishes the durable mark; the gateway releases the events on its next step. An
//! order therefore crosses no thread: on a host whose threads cannot each own a core, every
//! hop of the pipeline is a wake-up that costs more than the work.
//!
//! Group commit still happens: the commands one network poll brought share one write and one
//! `fdatasync`, and those that arrive during it share the next.
//!
//! At shutdown (the runtime's stop flag) it sequences what is queued, commits, and hands the
//! engine and journal back to the [`Runtime`](super::Runtime) ([`HandBack`]); dropped earlier
//! (a gateway that never started or panicked), it commits what it holds and hands back the same.

use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use crossbeam::channel::Sender;
use crossbeam::queue::ArrayQueue;
use petrel_core::Engine;
use petrel_journal::{JournalError, JournalWriter};

use super::apply::{Applier, PushEvent};
use super::journal_writer::Commits;
use super::progress::{JOURNAL, SEQUENCER};
use super::shared::Shared;
use super::stamp::Stamped;
use crate::port::{GatewayPort, InboundCommand, InlineCore, OutboundEvent, Ring};

/// What the core gives back to the runtime at shutdown.
pub(super) struct HandBack {
    pub engine: Engine,
    /// The journal writer, or the error that stopped it (nothing after its durable mark was
    /// acknowledged).
    pub writer: Result<JournalWriter, JournalError>,
}

pub(super) struct RunToCompletion {
    /// `None` once handed back.
    parts: Option<Parts>,
    port: GatewayPort,
    admin: Arc<ArrayQueue<InboundCommand>>,
    shared: Arc<Shared>,
    handback: Sender<HandBack>,
}

struct Parts {
    applier: Applier,
    journal: Journal,
}

impl RunToCompletion {
    pub(super) fn new(
        applier: Applier,
        writer: JournalWriter,
        port: GatewayPort,
        admin: Arc<ArrayQueue<InboundCommand>>,
        shared: Arc<Shared>,
        handback: Sender<HandBack>,
    ) -> RunToCompletion {
        let commits = Commits::new(port.clone(), Arc::clone(&shared));
        let journal = Journal { writer, commits, failure: None };
        RunToCompletion { parts: Some(Parts { applier, journal }), port, admin, shared, handback }
    }

    /// Sequences what is still queued, commits, and gives the engine and the journal back to
    /// the runtime.
    fn hand_back(&mut self, release: &mut dyn FnMut()) {
        self.drain(release);
        let Some(Parts { mut applier, mut journal }) = self.parts.take() else { return };
        journal.commit();
        journal.commits.finish();
        applier.publish_final();
        let writer = match journal.failure {
            Some(error) => Err(error),
            None => Ok(journal.writer),
        };
        // The runtime may be gone (a test that dropped it first): then nobody needs them.
        let _ = self.handback.send(HandBack { engine: applier.into_engine(), writer });
    }

    /// Stamps, journals and applies every queued command, admin first. How many.
    fn drain(&mut self, release: &mut dyn FnMut()) -> u32 {
        let Some(parts) = self.parts.as_mut() else { return 0 };
        let mut done = 0u32;
        // After a journal failure nothing can become durable: taking more commands would only
        // match orders that can never be acknowledged.
        while !self.shared.failed() {
            let Some(command) = self.admin.pop().or_else(|| self.port.inbound.pop()) else { break };
            parts.process(command, &self.port, &self.shared.stop, release);
            done += 1;
        }
        done
    }
}

impl InlineCore for RunToCompletion {
    fn run(&mut self, release: &mut dyn FnMut()) -> bool {
        if self.parts.is_none() {
            return false;
        }
        // Loaded before draining: everything queued before shutdown began is taken below.
        let stopping = self.shared.stop.load(Ordering::Acquire);
        let done = self.drain(release);
        let parts = self.parts.as_mut().expect("checked above");
        if done > 0 {
            parts.journal.commit();
        } else {
            parts.journal.commits.idle();
        }
        parts.applier.publish();
        parts.applier.maybe_snapshot();
        let beats = &self.shared.beats;
        beats[SEQUENCER].beat(done == 0);
        beats[JOURNAL].beat(done == 0);
        if stopping {
            self.hand_back(release);
        }
        done > 0
    }

    fn has_work(&self) -> bool {
        !self.admin.is_empty()
            || !self.port.inbound.is_empty()
            || (self.parts.is_some() && self.shared.stop.load(Ordering::Acquire))
    }
}

impl Drop for RunToCompletion {
    /// No gateway runs this core any more (it never started, or it is gone): nobody takes
    /// events off the outbound ring, so a full ring drops them (counted), as the pipeline's
    /// sequencer does at shutdown.
    fn drop(&mut self) {
        self.hand_back(&mut || {});
    }
}

impl Parts {
    /// Stamps, journals (into the write buffer) and applies one command.
    #[inline]
    fn process(
        &mut self,
        command: InboundCommand,
        port: &GatewayPort,
        stopping: &std::sync::atomic::AtomicBool,
        release: &mut dyn FnMut(),
    ) {
        let journal = RefCell::new(&mut self.journal);
        let append = |stamped: &Stamped| journal.borrow_mut().append(stamped);
        let mut outbound =
            InlineOutbound { ring: &port.outbound, stopping, journal: &journal, release, port };
        // A refused append recorded the failure; the command is not applied.
        let _ = self.applier.apply(command, append, &mut outbound);
    }
}

/// The input journal on this thread: group commits and their failure.
struct Journal {
    writer: JournalWriter,
    commits: Commits,
    /// Set by the first failed write or sync: nothing becomes durable after it.
    failure: Option<JournalError>,
}

impl Journal {
    fn append(&mut self, stamped: &Stamped) -> Result<(), ()> {
        if self.failure.is_some() {
            return Err(());
        }
        match self.writer.append_or_commit(stamped.sequence, stamped.timestamp_ns, stamped.payload()) {
            Ok(None) => Ok(()),
            // The write buffer filled: that commit made the records before this one durable.
            Ok(Some(committed)) => {
                self.commits.publish(committed);
                Ok(())
            }
            Err(e) => {
                self.failure = Some(self.commits.fail(e));
                Err(())
            }
        }
    }

    /// One group commit of what is buffered, and the durable mark published.
    fn commit(&mut self) {
        if self.failure.is_some() || self.writer.buffered_records() == 0 {
            return;
        }
        match self.commits.commit(&mut self.writer) {
            Ok(committed) => self.commits.publish(committed),
            Err(e) => self.failure = Some(self.commits.fail(e)),
        }
    }
}

/// The outbound ring, drained by this same thread: a full ring cannot wait for its consumer.
/// Every event on it belongs to a command already in the journal's buffer (journal before
/// apply), so a commit makes all of them durable, and `release` then takes them off.
struct InlineOutbound<'a, 'j> {
    ring: &'a ArrayQueue<OutboundEvent>,
    stopping: &'a std::sync::atomic::AtomicBool,
    journal: &'a RefCell<&'j mut Journal>,
    release: &'a mut dyn FnMut(),
    port: &'a GatewayPort,
}

impl PushEvent for InlineOutbound<'_, '_> {
    fn push(&mut self, event: OutboundEvent) {
        let Err(event) = self.ring.push(event) else { return };
        self.port.stats.count_ring_full(Ring::Outbound);
        let mut journal = self.journal.borrow_mut();
        journal.commit();
        if journal.failure.is_some() {
            // Never durable, so never released: the journal's failure stops the engine.
            return;
        }
        drop(journal);
        // Everything on the ring is durable now: the gateway takes it off (a bounded batch
        // per call, so several may be needed), unless no gateway runs this core any more.
        let mut event = event;
        loop {
            let before = self.ring.len();
            (self.release)();
            match self.ring.push(event) {
                Ok(()) => return,
                Err(back) if self.ring.len() < before => event = back,
                // Durable here but not yet on the standby (replication.ack = "standby"): its
                // acknowledgement, read on the replication thread, lets the gateway release.
                Err(back)
                    if self.port.gate.gating.load(Ordering::Acquire)
                        && !self.stopping.load(Ordering::Acquire) =>
                {
                    event = back;
                    std::thread::sleep(std::time::Duration::from_micros(50));
                }
                Err(_) => {
                    self.port.stats.outbound_dropped_at_shutdown.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
    }
}
