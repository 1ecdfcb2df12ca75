//! The sequencing rule, written once: what makes a command part of the engine's history. Both
//! the pipeline's sequencer thread (`sequencer.rs`) and the single-threaded reference
//! (`reference.rs`) sequence every command through [`Stamper::sequence`].
//!
//! Invariants:
//! - Sequences are contiguous, continuing the engine (and so the journal) without a gap.
//! - Timestamps never decrease: a clock stepped back by NTP gives the previous timestamp again,
//!   so rate windows and time priority never see time run backwards.
//! - A command is handed to the journal, encoded as the journal stores it (with its echo,
//!   `crate::input_record`), before the engine applies it: the engine never holds a command the journal will not get. A command the
//!   journal refused is not applied and uses no sequence.

use petrel_core::{Command, Engine, Event, EventSink};

use crate::clock::Clock;
use crate::input_record::{self, CommandEcho, RECORD_PAYLOAD_BYTES_MAX};

/// A command as the journal stores it: sequence, timestamp and encoded bytes (the command and
/// its echo). Fixed size and `Copy`: it travels by value on the journal ring, never allocated.
#[derive(Clone, Copy, Debug)]
pub struct Stamped {
    pub sequence: u64,
    pub timestamp_ns: u64,
    len: u8,
    bytes: [u8; RECORD_PAYLOAD_BYTES_MAX],
}

impl Stamped {
    /// The encoded command and echo: the journal record's payload.
    #[inline]
    pub fn payload(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }
}

/// Gives commands their sequence and timestamp (the one clock read of the data plane).
#[derive(Debug)]
pub struct Stamper<C: Clock> {
    clock: C,
    last_timestamp_ns: u64,
    next_sequence: u64,
}

impl<C: Clock> Stamper<C> {
    /// Continues `engine`'s history: the sequence after its last, timestamps never below its
    /// last.
    pub fn continuing(engine: &Engine, clock: C) -> Stamper<C> {
        Stamper {
            clock,
            last_timestamp_ns: engine.last_timestamp_ns(),
            next_sequence: engine.last_sequence() + 1,
        }
    }

    /// The sequence the next command gets.
    pub fn next_sequence(&self) -> u64 {
        self.next_sequence
    }

    /// Stamps `command`, hands it with its `echo` to `journal`, and once the journal took it,
    /// applies it to
    /// `engine` with its events going to the sink that `sink` builds from the stamped command
    /// (so the sink can tag them). Returns the command's sequence and the sink; `journal`'s
    /// error, with nothing applied and no sequence used, when it refused.
    #[inline]
    pub fn sequence<E, S: EventSink>(
        &mut self,
        command: &Command,
        echo: &CommandEcho,
        engine: &mut Engine,
        journal: impl FnOnce(&Stamped) -> Result<(), E>,
        sink: impl FnOnce(&Stamped) -> S,
    ) -> Result<(u64, S), E> {
        debug_assert_eq!(self.next_sequence, engine.last_sequence() + 1, "the engine is this stamper's");
        let timestamp_ns = self.clock.now_ns().max(self.last_timestamp_ns);
        let mut stamped = Stamped {
            sequence: self.next_sequence,
            timestamp_ns,
            len: 0,
            bytes: [0; RECORD_PAYLOAD_BYTES_MAX],
        };
        stamped.len = input_record::encode(command, echo, &mut stamped.bytes) as u8;
        journal(&stamped)?;
        self.next_sequence += 1;
        self.last_timestamp_ns = timestamp_ns;
        let mut sink = sink(&stamped);
        engine.apply(command, stamped.sequence, timestamp_ns, &mut sink);
        Ok((stamped.sequence, sink))
    }
}

/// Lends a caller's sink to [`Stamper::sequence`], which needs one it can own.
#[derive(Debug)]
pub struct Lent<'a, S>(pub &'a mut S);

impl<S: EventSink> EventSink for Lent<'_, S> {
    #[inline]
    fn emit(&mut self, event: Event) {
        self.0.emit(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::FnClock;
    use std::cell::RefCell;

    /// Events and journal hand-overs in the order they happened.
    struct Log<'a>(&'a RefCell<Vec<String>>, u64);

    impl EventSink for Log<'_> {
        fn emit(&mut self, _event: Event) {
            self.0.borrow_mut().push(format!("event of {}", self.1));
        }
    }

    #[test]
    fn sequences_are_contiguous_timestamps_never_decrease_and_the_journal_comes_first() {
        let config = petrel_workload::bench_config(1 << 10);
        let (commands, _) = petrel_workload::exchange_core_mix(40, 3);
        let mut engine = Engine::new(&config).unwrap();
        // A clock that steps back by 5 µs every fourth read.
        let mut reads = 0u64;
        let clock = FnClock(|| {
            reads += 1;
            1_000_000 + reads * 1_000 - if reads % 4 == 0 { 5_000 } else { 0 }
        });
        let mut stamper = Stamper::continuing(&engine, clock);
        let log = RefCell::new(Vec::new());
        let mut last_timestamp = 0;
        for (i, command) in commands.iter().enumerate() {
            let echo = CommandEcho::new(&(i as u32).to_le_bytes()).unwrap();
            let journaled = |s: &Stamped| {
                let got = input_record::decode(s.payload()).unwrap();
                assert_eq!(got, (*command, echo), "the journal gets the command and its echo");
                assert!(s.timestamp_ns >= last_timestamp, "timestamps never decrease");
                last_timestamp = s.timestamp_ns;
                log.borrow_mut().push(format!("journal {}", s.sequence));
                Ok::<(), ()>(())
            };
            let (sequence, _) =
                stamper.sequence(command, &echo, &mut engine, journaled, |s| Log(&log, s.sequence)).unwrap();
            assert_eq!(sequence, i as u64 + 1);
            assert_eq!(engine.last_sequence(), sequence);
            assert_eq!(engine.last_timestamp_ns(), last_timestamp, "the engine got the journaled stamp");
        }
        assert_eq!(stamper.next_sequence(), commands.len() as u64 + 1);
        let log = log.into_inner();
        for (i, line) in log.iter().enumerate().filter(|(_, l)| l.starts_with("event of ")) {
            let sequence = &line["event of ".len()..];
            let journaled = log.iter().position(|l| *l == format!("journal {sequence}")).unwrap();
            assert!(journaled < i, "command {sequence}'s events came after its journal hand-over");
        }
    }

    #[test]
    fn a_refused_command_is_not_applied_and_uses_no_sequence() {
        let config = petrel_workload::bench_config(1 << 10);
        let (commands, _) = petrel_workload::exchange_core_mix(3, 5);
        let mut engine = Engine::new(&config).unwrap();
        let mut stamper = Stamper::continuing(&engine, FnClock(|| 7));
        let mut events = Vec::new();
        stamper
            .sequence(
                &commands[0],
                &CommandEcho::NONE,
                &mut engine,
                |_| Ok::<(), ()>(()),
                |_| Lent(&mut events),
            )
            .unwrap();
        let hash = engine.state_hash();
        let refused = stamper.sequence(
            &commands[1],
            &CommandEcho::NONE,
            &mut engine,
            |_| Err("journal failed"),
            |_| Lent(&mut events),
        );
        assert_eq!(refused.map(|(s, _)| s), Err("journal failed"));
        assert_eq!((engine.last_sequence(), engine.state_hash()), (1, hash), "nothing applied");
        let (sequence, _) = stamper
            .sequence(
                &commands[1],
                &CommandEcho::NONE,
                &mut engine,
                |_| Ok::<(), ()>(()),
                |_| Lent(&mut events),
            )
            .unwrap();
        assert_eq!(sequence, 2, "the refused command's sequence is given to the next one");
    }
}
