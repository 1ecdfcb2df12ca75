//! The gateway's side of the runtime: bounded lock-free queues in both directions and the
//! durable watermark. See docs/ARCHITECTURE.md for who produces and consumes each.
//!
//! `SingleThreadRuntime` runs the whole sequenced core (sequencer, journal, matcher) on one
//! thread behind this port: the reference the pinned pipeline must match, and what a host
//! without spare cores runs.

use crate::sequencer::{Clock, Sequencer};
use crossbeam::queue::ArrayQueue;
use petrel_core::{Command, Event, EventSink};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// A command from the gateway. `conn` is the gateway's connection id (opaque to the runtime),
/// echoed on every output of this command so the gateway can route rejects.
#[derive(Clone, Copy, Debug)]
pub struct InboundCommand {
    pub conn: u32,
    pub command: Command,
}

/// One event, tagged with the sequence and timestamp of the command that produced it and its
/// origin.
#[derive(Clone, Copy, Debug)]
pub struct OutboundEvent {
    pub sequence: u64,
    pub timestamp_ns: u64,
    pub conn: u32,
    pub event: Event,
    pub last_of_command: bool,
}

/// What the gateway holds. Outbound events may be released to clients only once
/// `durable_sequence >= event.sequence` (journal before acknowledgement).
#[derive(Clone, Debug)]
pub struct GatewayPort {
    pub inbound: Arc<ArrayQueue<InboundCommand>>,
    pub outbound: Arc<ArrayQueue<OutboundEvent>>,
    pub durable_sequence: Arc<AtomicU64>,
}

impl GatewayPort {
    pub fn new(inbound_capacity: usize, outbound_capacity: usize, durable_sequence: u64) -> GatewayPort {
        GatewayPort {
            inbound: Arc::new(ArrayQueue::new(inbound_capacity)),
            outbound: Arc::new(ArrayQueue::new(outbound_capacity)),
            durable_sequence: Arc::new(AtomicU64::new(durable_sequence)),
        }
    }
}

/// The sequenced core on one thread: pop a batch of commands, sequence and apply each, commit
/// the batch (group commit), publish the durable watermark, hand the events to the gateway.
pub struct SingleThreadRuntime {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

/// Most commands sequenced per commit.
const BATCH_COMMANDS_MAX: usize = 1024;

struct Collect<'a> {
    events: &'a mut Vec<(u32, Event)>,
    conn: u32,
}

impl EventSink for Collect<'_> {
    fn emit(&mut self, event: Event) {
        self.events.push((self.conn, event));
    }
}

impl SingleThreadRuntime {
    pub fn start<C: Clock + Send + 'static>(
        mut sequencer: Sequencer<C>,
        port: GatewayPort,
    ) -> SingleThreadRuntime {
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("petrel-core".into())
            .spawn(move || {
                // (conn, event) for the batch, with the command boundaries recorded separately.
                let mut events: Vec<(u32, Event)> = Vec::with_capacity(BATCH_COMMANDS_MAX * 8);
                let mut commands: Vec<(u64, u64, usize)> = Vec::with_capacity(BATCH_COMMANDS_MAX);
                let mut idle_us = 1u64;
                loop {
                    events.clear();
                    commands.clear();
                    while commands.len() < BATCH_COMMANDS_MAX {
                        let Some(inbound) = port.inbound.pop() else { break };
                        let mut sink = Collect { events: &mut events, conn: inbound.conn };
                        let sequence =
                            sequencer.submit(&inbound.command, &mut sink).map_err(|e| e.to_string())?;
                        commands.push((sequence, sequencer.engine().last_timestamp_ns(), events.len()));
                    }
                    if commands.is_empty() {
                        if stop_flag.load(Ordering::Acquire) {
                            sequencer.finish().map_err(|e| e.to_string())?;
                            return Ok(());
                        }
                        std::thread::sleep(Duration::from_micros(idle_us));
                        idle_us = (idle_us * 2).min(500);
                        continue;
                    }
                    idle_us = 1;
                    sequencer.commit().map_err(|e| e.to_string())?;
                    port.durable_sequence.store(sequencer.durable_sequence(), Ordering::Release);
                    let mut start = 0;
                    for &(sequence, timestamp_ns, end) in &commands {
                        for (i, &(conn, event)) in events[start..end].iter().enumerate() {
                            let mut out = OutboundEvent {
                                sequence,
                                timestamp_ns,
                                conn,
                                event,
                                last_of_command: start + i + 1 == end,
                            };
                            // Backpressure: wait for the gateway rather than drop an event.
                            while let Err(back) = port.outbound.push(out) {
                                out = back;
                                std::thread::yield_now();
                            }
                        }
                        start = end;
                    }
                }
            })
            .expect("spawn the core thread");
        SingleThreadRuntime { stop, thread: Some(thread) }
    }

    /// Stops after the commands already queued, makes them durable and joins.
    pub fn shutdown(mut self) -> Result<(), String> {
        self.stop.store(true, Ordering::Release);
        self.thread.take().map_or(Ok(()), |t| t.join().map_err(|_| "core thread panicked".to_string())?)
    }
}

impl Drop for SingleThreadRuntime {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
