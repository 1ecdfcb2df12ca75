//! The pipeline end to end, with real threads and real files (fsync), fed through the
//! `GatewayPort` as the gateway feeds it: events come back in order, tagged, identical to a
//! single-threaded engine's, and only once durable; tiny rings apply backpressure and lose
//! nothing; shutdown drains and what it leaves recovers to the live state.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam::queue::ArrayQueue;
use petrel_engine::core::{
    Accepted, AccountId, ClientRef, Command, Event, InstrumentId, NewOrder, OrderId, OrderType, RejectReason,
    Side, TimeInForce,
};
use petrel_engine::port::{
    Doorbell, DurableOutbound, GatewayPort, InboundCommand, OutboundEvent, Ring, RuntimeStats, ADMIN_CONN,
};
use petrel_engine::recovery::recover;
use petrel_engine::runtime::{RingCapacities, Runtime, RuntimeError};
use petrel_workload::exchange_core_mix;
use support::engine_setup::*;
use support::pipeline::*;

fn start(config: &petrel_engine::config::Config, rings: RingCapacities) -> (Runtime, GatewayPort) {
    let recovered = recover(config, &mut |_, _| {}).unwrap();
    Runtime::start_with(config, recovered, rings).unwrap()
}

/// The configuration on the given data path.
fn config_on(dir: &std::path::Path, mode: &str, snapshot_every: u64) -> petrel_engine::config::Config {
    let text = petrel_testkit::config::set_runtime_mode(&bench_config_text("fsync", snapshot_every), mode);
    write_config_text(dir, &text).1
}

#[test]
fn events_come_back_in_order_tagged_and_equal_to_a_single_threaded_engine() {
    events_equal_a_single_threaded_engine("pipeline");
}

/// The gateway thread's own core (run by `drive` as the gateway runs it) gives the same events.
#[test]
fn running_to_completion_gives_the_events_of_a_single_threaded_engine() {
    events_equal_a_single_threaded_engine("run-to-completion");
}

fn events_equal_a_single_threaded_engine(mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = config_on(dir.path(), mode, 1_000_000);
    let (commands, _) = exchange_core_mix(20_000, 11);
    let (runtime, port) = start(&config, RingCapacities::default());
    let drive = drive(&port, &commands);
    let groups = group_by_command(&drive.released, 1);
    assert_eq!(groups, reference_events(&config.engine, &commands, 1));

    let stats = runtime.stats();
    assert_eq!(stats.commands_total.load(Ordering::Relaxed), commands.len() as u64);
    let executions = groups.iter().flatten().filter(|e| matches!(e, Event::Executed(_))).count();
    assert!(executions > 100, "the workload traded");
    assert_eq!(stats.executions_total.load(Ordering::Relaxed), executions as u64);
    assert_eq!(stats.durable_sequence.load(Ordering::Relaxed), commands.len() as u64);
    let batches = stats.journal_batches_total.load(Ordering::Relaxed);
    assert!(batches >= 1 && batches <= commands.len() as u64);
    let report = runtime.shutdown(false).unwrap();
    // Threads hand their samples over every few milliseconds, and all of them when they stop.
    assert_eq!(stats.journal_commit_ns.lock().unwrap().len(), batches, "one latency sample per group commit");
    assert_eq!(report.last_sequence, commands.len() as u64);
    assert_eq!(report.commands, commands.len() as u64);
}

/// The release helper the gateway uses withholds every event until the durable mark reaches
/// its command, and keeps order.
#[test]
fn durable_outbound_releases_nothing_before_its_command_is_durable() {
    let port = GatewayPort {
        inbound: Arc::new(ArrayQueue::new(1)),
        outbound: Arc::new(ArrayQueue::new(8)),
        durable_sequence: Arc::new(0.into()),
        stats: Arc::new(RuntimeStats::new()),
        sequencer_bell: Arc::new(Doorbell::for_thread()),
        gateway_bell: Arc::new(Doorbell::eventfd().unwrap()),
        core: Default::default(),
        gate: Default::default(),
    };
    let event = |sequence| OutboundEvent {
        sequence,
        timestamp_ns: 0,
        conn: 0,
        event: Event::RiskLimitsSet { account: AccountId(0) },
        last_of_command: true,
    };
    for sequence in [5, 6, 7] {
        port.outbound.push(event(sequence)).unwrap();
    }
    let mut releaser = DurableOutbound::new();
    port.durable_sequence.store(4, Ordering::Release);
    assert_eq!(releaser.next(&port), None);
    assert!(releaser.is_holding());
    assert_eq!(releaser.next(&port), None, "asking again does not skip the held event");
    port.durable_sequence.store(6, Ordering::Release);
    assert_eq!(releaser.next(&port).map(|e| e.sequence), Some(5));
    assert_eq!(releaser.next(&port).map(|e| e.sequence), Some(6));
    assert_eq!(releaser.next(&port), None);
    port.durable_sequence.store(7, Ordering::Release);
    assert_eq!(releaser.next(&port).map(|e| e.sequence), Some(7));
    assert_eq!(releaser.next(&port), None);
    assert!(!releaser.is_holding());
}

#[test]
fn full_rings_make_producers_wait_and_are_counted_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = write_config(dir.path(), "fsync", 1_000_000);
    let (commands, _) = exchange_core_mix(3_000, 12);
    let rings = RingCapacities { inbound: 4, admin: 2, journal: 4, outbound: 4 };
    let (runtime, port) = start(&config, rings);
    let stats = runtime.stats();

    // Nobody drains the outbound ring: the sequencer ends up waiting on it for good, then the
    // inbound ring fills and refuses the gateway.
    let mut pushed = 0;
    loop {
        match port.try_submit(InboundCommand::new(pushed as u32, commands[pushed])) {
            Ok(()) => pushed += 1,
            Err(_)
                if port.outbound.is_full()
                    && stats.ring_full(Ring::Outbound) >= 1
                    && port.inbound.is_full() =>
            {
                break
            }
            Err(_) => std::thread::sleep(Duration::from_micros(100)),
        }
        // Each command makes at least one event: at most 4 rest in the outbound ring, one is held
        // in the sequencer's sink, one waits to be pushed; 4 more sit in the inbound ring.
        assert!(pushed <= 4 + 2 + 4, "the rings are bounded: {pushed} commands went in");
    }
    assert!(stats.ring_full(Ring::Inbound) >= 1);
    // The stuck sequencer takes no admin command either: the admin ring fills after 2.
    let kill = Command::KillSwitch { account: AccountId(99), engage: false };
    runtime.submit_admin(kill).unwrap();
    runtime.submit_admin(kill).unwrap();
    let full = runtime.submit_admin(kill).unwrap_err();
    assert_eq!(full.capacity, 2);
    assert_eq!(stats.ring_full(Ring::Admin), 1);
    let admin_accepted = 2;

    // Drain: the admin commands come first (they jump the queue), then every gateway command.
    let mut releaser = DurableOutbound::new();
    let mut admin_events = Vec::new();
    let mut released = Vec::new();
    let mut next = pushed;
    let mut completed = 0;
    while completed < commands.len() {
        let mut progressed = false;
        if next < commands.len() && port.try_submit(InboundCommand::new(next as u32, commands[next])).is_ok()
        {
            next += 1;
            progressed = true;
        }
        while let Some(event) = releaser.next(&port) {
            progressed = true;
            if event.conn == ADMIN_CONN {
                admin_events.push(event);
            } else {
                completed += usize::from(event.last_of_command);
                released.push(event);
            }
        }
        if !progressed {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    assert_eq!(admin_events.len(), admin_accepted, "one event per admin command");
    assert!(admin_events
        .iter()
        .all(|e| e.last_of_command && matches!(e.event, Event::KillSwitch { engaged: false, .. })));
    // Sequences are shared: renumber the gateway commands' events past the admin ones.
    let first_gateway_sequence = released[0].sequence;
    let mut expected_sequence = first_gateway_sequence;
    let mut groups: Vec<Vec<Event>> = Vec::new();
    for event in &released {
        if groups.len() == (event.conn as usize) {
            groups.push(Vec::new());
        }
        assert!(event.sequence >= expected_sequence, "events in sequence order");
        expected_sequence = event.sequence;
        groups[event.conn as usize].push(event.event);
    }
    let gateway_expected = reference_events(&config.engine, &commands, 1);
    assert_eq!(groups.len(), commands.len(), "nothing lost");
    assert_eq!(groups, gateway_expected, "nothing reordered or changed by the waits");
    assert!(stats.ring_full(Ring::Inbound) >= 1);
    let report = runtime.shutdown(false).unwrap();
    assert_eq!(report.last_sequence, (commands.len() + admin_accepted) as u64);
}

#[test]
fn shutdown_drains_queued_commands_and_the_recovered_state_equals_the_live_one() {
    shutdown_drains_queued_commands("pipeline");
}

#[test]
fn running_to_completion_shutdown_drains_queued_commands_and_recovers_the_live_state() {
    shutdown_drains_queued_commands("run-to-completion");
}

fn shutdown_drains_queued_commands(mode: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = config_on(dir.path(), mode, 2_000);
    let (commands, _) = exchange_core_mix(6_000, 13);
    let (first, second) = commands.split_at(5_000);
    let (runtime, port) =
        start(&config, RingCapacities { outbound: 1 << 16, inbound: 8_192, ..Default::default() });
    // Queue everything, then shut down at once: the queued commands are still sequenced.
    for (i, command) in first.iter().enumerate() {
        port.try_submit(InboundCommand::new(i as u32, *command)).unwrap();
    }
    let report = runtime.shutdown(true).unwrap();
    assert_eq!(report.last_sequence, first.len() as u64, "every queued command was sequenced");
    assert_eq!(report.durable_sequence, report.last_sequence, "and made durable");
    assert_eq!(report.unprocessed_inbound, 0);
    assert_eq!(report.outbound_dropped, 0);
    let snapshot = report.snapshot.clone().expect("a shutdown snapshot");
    // What the gateway drains after shutdown is the complete, durable output.
    let mut released = Vec::new();
    let mut releaser = DurableOutbound::new();
    while let Some(event) = releaser.next(&port) {
        released.push(event);
    }
    assert!(!releaser.is_holding(), "everything left is durable");
    assert_eq!(group_by_command(&released, 1), reference_events(&config.engine, first, 1));

    let recovered = recover(&config, &mut |_, _| {}).unwrap();
    assert_eq!(recovered.report.snapshot, Some((first.len() as u64, snapshot)));
    assert_eq!(recovered.report.replayed_records, 0);
    assert_eq!(recovered.engine.state_hash(), report.state_hash);
    let (fresh, _) = petrel_engine::recovery::replay_read_only(
        &config.engine,
        &petrel_engine::journal::JournalLocation::new(&config.journal.dir, &config.journal.file_prefix),
        None,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(fresh.state_hash(), report.state_hash, "the journal alone gives the same state");

    // A restart continues the sequence where it stopped.
    let (runtime, port) = Runtime::start(&config, recovered).unwrap();
    let drive = drive(&port, second);
    assert_eq!(drive.released[0].sequence, first.len() as u64 + 1);
    let report = runtime.shutdown(false).unwrap();
    assert_eq!(report.last_sequence, commands.len() as u64);
    let all = reference_events(&config.engine, &commands, 1);
    assert_eq!(group_by_command(&drive.released, first.len() as u64 + 1), all[first.len()..]);
}

#[test]
fn snapshots_are_written_by_housekeeping_and_never_ahead_of_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = write_config(dir.path(), "fsync", 1_000);
    let (commands, _) = exchange_core_mix(5_500, 14);
    let (runtime, port) = start(&config, RingCapacities::default());
    drive(&port, &commands);
    let stats = runtime.stats();
    let report = runtime.shutdown(false).unwrap();
    assert!(stats.snapshots_written_total.load(Ordering::Relaxed) >= 1, "periodic snapshots were written");
    assert_eq!(report.snapshot, None, "no shutdown snapshot unless asked");
    let mut sequences: Vec<u64> = std::fs::read_dir(&config.snapshots.dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            name.strip_prefix("snapshot-")?.strip_suffix(".snap")?.parse().ok()
        })
        .collect();
    sequences.sort();
    assert!(!sequences.is_empty() && sequences.len() <= config.snapshots.keep as usize, "{sequences:?}");
    assert!(sequences.iter().all(|&s| s <= report.durable_sequence));
    let recovered = recover(&config, &mut |_, _| {}).unwrap();
    assert_eq!(recovered.report.snapshot.as_ref().map(|s| s.0), sequences.last().copied());
    assert_eq!(recovered.engine.state_hash(), report.state_hash);
}

#[test]
fn admin_commands_are_sequenced_and_take_effect() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = write_config(dir.path(), "fsync", 1_000_000);
    let (runtime, port) = start(&config, RingCapacities::default());
    runtime.submit_admin(Command::KillSwitch { account: AccountId(3), engage: true }).unwrap();
    let order = Command::NewOrder(NewOrder {
        account: AccountId(3),
        client_ref: ClientRef(1),
        instrument: InstrumentId(0),
        side: Side::Buy,
        order_type: OrderType::Limit,
        tif: TimeInForce::Day,
        price: 1_000_000,
        qty: 10,
        min_qty: 0,
        post_only: false,
    });
    // Wait for the kill switch to be sequenced before the order goes in.
    let mut releaser = DurableOutbound::new();
    let mut admin_events = Vec::new();
    while admin_events.last().is_none_or(|e: &OutboundEvent| !e.last_of_command) {
        match releaser.next(&port) {
            Some(event) => admin_events.push(event),
            None => std::thread::sleep(Duration::from_micros(100)),
        }
    }
    assert!(admin_events.iter().all(|e| (e.sequence, e.conn) == (1, ADMIN_CONN)), "{admin_events:?}");
    assert_eq!(
        admin_events.last().unwrap().event,
        Event::KillSwitch { account: AccountId(3), engaged: true }
    );
    let drive = drive(&port, &[order]);
    assert!(
        matches!(drive.released[0].event, Event::Rejected(r) if r.reason == RejectReason::AccountBlocked)
    );
    assert_eq!(runtime.stats().rejects(RejectReason::AccountBlocked), 1);
    runtime.submit_admin(Command::KillSwitch { account: AccountId(3), engage: false }).unwrap();
    let order2 = match order {
        Command::NewOrder(o) => Command::NewOrder(NewOrder { client_ref: ClientRef(2), ..o }),
        _ => unreachable!(),
    };
    let mut released = Vec::new();
    let mut next = Some(order2);
    while released.last().is_none_or(|e| matches!(e, Event::KillSwitch { .. })) {
        // The admin release is sequenced first only if the sequencer saw it first; it always
        // does here because the order is submitted after the admin event came back.
        if let Some(event) = releaser.next(&port) {
            if event.conn == ADMIN_CONN {
                if let Some(command) = next.take() {
                    port.try_submit(InboundCommand::new(0, command)).unwrap();
                }
            }
            released.push(event.event);
        } else {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    assert!(
        matches!(released.last().unwrap(), Event::Accepted(Accepted { order_id: OrderId(_), .. })),
        "{released:?}"
    );
    let report = runtime.shutdown(false).unwrap();
    assert_eq!(report.last_sequence, 4);
}

#[test]
fn progress_shows_every_thread_beating_and_idle_when_nothing_is_queued() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = write_config(dir.path(), "fsync", 1_000_000);
    let (commands, _) = exchange_core_mix(2_000, 15);
    let (runtime, port) = start(&config, RingCapacities::default());
    let before = runtime.progress();
    drive(&port, &commands);
    // The threads park between loops, so idleness shows within a few sleeps; waited for with a
    // generous deadline, not a count of polls.
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut after = runtime.progress();
    while Instant::now() < deadline {
        if after.threads.iter().all(|t| t.idle) {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
        after = runtime.progress();
    }
    assert!(after.threads.iter().all(|t| t.idle), "{after:?}");
    assert!(
        after.threads.iter().zip(&before.threads).all(|(a, b)| a.heartbeat > b.heartbeat),
        "{before:?} {after:?}"
    );
    assert_eq!(after.failure, None);
    assert_eq!(after.stalled_since(&before), None);
    runtime.shutdown(false).unwrap();
}

#[test]
fn a_core_that_does_not_exist_is_refused_naming_the_key_and_the_core() {
    let dir = tempfile::tempdir().unwrap();
    let text = bench_config_text("fsync", 1_000_000) + "\n[runtime.journal]\ncores = [1000]\n";
    let (_, config) = write_config_text(dir.path(), &text);
    let recovered = recover(&config, &mut |_, _| {}).unwrap();
    let error = Runtime::start(&config, recovered).unwrap_err();
    assert!(
        matches!(error, RuntimeError::CoreUnavailable { thread: "journal", core: 1000, .. }),
        "{error:?}"
    );
    let message = error.to_string();
    assert!(message.starts_with("runtime.journal.cores: core 1000 does not exist"), "{message}");
    // The journal lock was released with the refused start: recovery works again.
    recover(&config, &mut |_, _| {}).unwrap();
}

#[test]
fn threads_pinned_to_a_usable_core_run() {
    let dir = tempfile::tempdir().unwrap();
    let core = petrel_engine::runtime::os::usable_cores().unwrap()[0];
    let text = bench_config_text("fsync", 1_000_000) + &format!("\n[runtime.sequencer]\ncores = [{core}]\n");
    let (_, config) = write_config_text(dir.path(), &text);
    let (commands, _) = exchange_core_mix(500, 16);
    let (runtime, port) = start(&config, RingCapacities::default());
    drive(&port, &commands);
    assert_eq!(runtime.shutdown(false).unwrap().last_sequence, commands.len() as u64);
}
