//! The matching core is deterministic: the same commands give the same events and state, and a
//! stream recorded in the journal's command encoding replays into a fresh engine exactly.

use petrel_engine::core::codec::{decode, encode, MAX_COMMAND_BYTES};
use petrel_engine::core::*;
use petrel_workload::{bench_config, exchange_core_mix};

fn run(commands: &[Command]) -> (Vec<Event>, StateHash) {
    let mut engine = Engine::new(&bench_config(1 << 16)).unwrap();
    let mut events = Vec::new();
    for (i, c) in commands.iter().enumerate() {
        engine.apply(c, i as u64 + 1, (i as u64 + 1) * 250, &mut events);
    }
    (events, engine.state_hash())
}

#[test]
fn two_runs_of_one_stream_agree() {
    let (commands, _) = exchange_core_mix(100_000, 42);
    let (events_a, hash_a) = run(&commands);
    let (events_b, hash_b) = run(&commands);
    assert_eq!(hash_a, hash_b);
    assert!(events_a == events_b, "event streams differ");
    assert!(events_a.iter().any(|e| matches!(e, Event::Executed(_))));
    // A different stream gives a different state.
    let (other, _) = exchange_core_mix(100_000, 43);
    assert_ne!(run(&other).1, hash_a);
}

#[test]
fn a_recorded_stream_replays_to_the_same_state_and_events() {
    let (commands, _) = exchange_core_mix(50_000, 9);
    // Record as the journal does: (sequence, timestamp, encoded command).
    let mut log: Vec<(u64, u64, Vec<u8>)> = Vec::new();
    let mut live = Engine::new(&bench_config(1 << 16)).unwrap();
    let mut live_events = Vec::new();
    for (i, c) in commands.iter().enumerate() {
        let (sequence, timestamp_ns) = (i as u64 + 1, 1_700_000_000_000_000_000 + i as u64 * 977);
        let mut buf = [0u8; MAX_COMMAND_BYTES];
        let len = encode(c, &mut buf);
        log.push((sequence, timestamp_ns, buf[..len].to_vec()));
        live.apply(c, sequence, timestamp_ns, &mut live_events);
    }
    let mut replayed = Engine::new(&bench_config(1 << 16)).unwrap();
    let mut replay_events = Vec::new();
    for (sequence, timestamp_ns, payload) in &log {
        replayed.apply(&decode(payload).unwrap(), *sequence, *timestamp_ns, &mut replay_events);
    }
    assert_eq!(replayed.state_hash(), live.state_hash());
    assert!(replay_events == live_events, "replayed events differ");
    // Replaying the tail onto a snapshot taken halfway reproduces it too.
    let half = log.len() / 2;
    let mut at_half = Engine::new(&bench_config(1 << 16)).unwrap();
    let mut sink = Vec::new();
    for (sequence, timestamp_ns, payload) in &log[..half] {
        at_half.apply(&decode(payload).unwrap(), *sequence, *timestamp_ns, &mut sink);
    }
    let mut snapshot = Vec::new();
    at_half.encode_state(&mut snapshot);
    let mut resumed = Engine::restore(&bench_config(1 << 16), &snapshot).unwrap();
    for (sequence, timestamp_ns, payload) in &log[half..] {
        resumed.apply(&decode(payload).unwrap(), *sequence, *timestamp_ns, &mut sink);
    }
    assert_eq!(resumed.state_hash(), live.state_hash());
}
