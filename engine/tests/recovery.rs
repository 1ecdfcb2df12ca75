//! Recovery rebuilds exactly the state the live engine had: from the journal alone, from a
//! snapshot plus the journal tail, and never past a record that does not decode.

mod support;

use petrel_engine::core::codec::{encode, MAX_COMMAND_BYTES};
use petrel_engine::core::{Engine, Event, StateHash};
use petrel_engine::journal::Journal;
use petrel_engine::recovery::{recover, RecoveryError};
use petrel_engine::runtime::reference::{Sequencer, SnapshotOutcome};
use petrel_workload::{bench_config, exchange_core_mix};
use support::engine_setup::*;

/// Runs `count` commands through a Sequencer on a freshly recovered engine, committing every
/// `batch`; returns the live engine's hash and the number of executions.
fn run_live(
    config: &petrel_engine::config::Config,
    count: usize,
    batch: usize,
    snapshots: bool,
) -> (StateHash, usize, Vec<SnapshotOutcome>) {
    let recovered = recover(config, &mut |_, _| {}).unwrap();
    let mut sequencer = Sequencer::new(recovered.engine, recovered.writer, test_clock());
    if snapshots {
        sequencer = sequencer.with_snapshots(config.snapshots.clone(), config.journal.clone());
    }
    let (commands, _) = exchange_core_mix(count, 7);
    let mut events = Vec::new();
    let mut outcomes = Vec::new();
    for chunk in commands[..count].chunks(batch) {
        for command in chunk {
            sequencer.submit(command, &mut events).unwrap();
        }
        let committed = sequencer.commit().unwrap();
        assert_eq!(committed.stats.durable_sequence, sequencer.engine().last_sequence());
        outcomes.push(committed.snapshot);
    }
    let executions = events.iter().filter(|e| matches!(e, Event::Executed(_))).count();
    let (engine, _writer) = sequencer.finish().unwrap();
    (engine.state_hash(), executions, outcomes)
}

#[test]
fn recovery_from_the_journal_alone_reproduces_the_live_state() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = write_config(dir.path(), "none", 1 << 40);
    let (live_hash, executions, _) = run_live(&config, 20_000, 97, false);
    assert!(executions > 0, "the workload trades");

    let mut progress = Vec::new();
    let recovered = recover(&config, &mut |done, total| progress.push((done, total))).unwrap();
    assert_eq!(recovered.engine.state_hash(), live_hash);
    assert_eq!(recovered.report.replayed_records, 20_000);
    assert_eq!(recovered.report.last_sequence, 20_000);
    assert_eq!(recovered.report.next_sequence, 20_001);
    assert_eq!(recovered.report.snapshot, None);
    assert_eq!(recovered.report.torn_tail, None);
    assert_eq!(progress.last(), Some(&(20_000, 20_000)), "progress ends at the total");
    assert!(progress.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 == 20_000), "{progress:?}");

    // The same commands applied directly, with the journal's timestamps, agree as well.
    let (commands, _) = exchange_core_mix(20_000, 7);
    let mut direct = Engine::new(&bench_config(1 << 16)).unwrap();
    let mut clock = test_clock();
    let mut sink = Vec::new();
    for (i, c) in commands[..20_000].iter().enumerate() {
        use petrel_engine::clock::Clock;
        direct.apply(c, i as u64 + 1, clock.now_ns(), &mut sink);
    }
    assert_eq!(direct.state_hash(), live_hash);
}

#[test]
fn recovery_from_a_snapshot_replays_only_the_tail() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = write_config(dir.path(), "none", 10_000);
    let (live_hash, _, outcomes) = run_live(&config, 15_000, 1_000, true);
    let written: Vec<_> = outcomes
        .iter()
        .filter_map(|o| match o {
            SnapshotOutcome::Written(path) => Some(path.clone()),
            SnapshotOutcome::NotDue => None,
            SnapshotOutcome::Failed(e) => panic!("snapshot failed: {e}"),
        })
        .collect();
    assert_eq!(written.len(), 1, "one snapshot, after the commit that reached 10,000 commands");
    assert!(written[0].ends_with("snapshot-00000000000000010000.snap"), "{written:?}");

    let recovered = recover(&config, &mut |_, _| {}).unwrap();
    assert_eq!(recovered.engine.state_hash(), live_hash);
    assert_eq!(recovered.report.snapshot.as_ref().map(|s| s.0), Some(10_000));
    assert_eq!(recovered.report.replayed_records, 5_000, "only the records after the snapshot");
    assert_eq!(recovered.report.journal_records, 15_000);
    drop(recovered);

    // Writing on after recovery continues the sequence and still agrees with a full replay.
    let (hash_after_more, _, _) = run_live(&config, 100, 10, true);
    let (full, report) = petrel_engine::recovery::replay_read_only(
        &config.engine,
        &petrel_engine::journal::JournalLocation::new(&config.journal.dir, &config.journal.file_prefix),
        None,
        &mut |_, _| {},
    )
    .unwrap();
    assert_eq!(report.last_sequence, 15_100);
    assert_eq!(report.replayed_records, 15_100);
    assert_eq!(full.state_hash(), hash_after_more);
}

#[test]
fn a_record_that_does_not_decode_stops_recovery_naming_its_sequence() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = write_config(dir.path(), "none", 1 << 40);
    let (commands, _) = exchange_core_mix(10, 3);
    {
        let (mut writer, _) = Journal::open(&config.journal).unwrap();
        for (i, command) in commands[..10].iter().enumerate() {
            let mut buf = [0u8; MAX_COMMAND_BYTES];
            let len = encode(command, &mut buf);
            writer.append(i as u64 + 1, 1_000 + i as u64, &buf[..len]).unwrap();
        }
        // Checksum-valid, but not a command: what a bug in an older writer could leave.
        writer.append(11, 2_000, &[0xee, 0, 0]).unwrap();
        writer.commit().unwrap();
    }
    let err = recover(&config, &mut |_, _| {}).unwrap_err();
    match &err {
        RecoveryError::Decode { sequence, file, .. } => {
            assert_eq!(*sequence, 11);
            assert!(file.ends_with("input-00000000000000000001.seg"), "{}", file.display());
        }
        other => panic!("expected a decode error, got {other}"),
    }
    let message = err.to_string();
    assert!(message.contains("record 11"), "{message}");
    assert!(message.contains("input-00000000000000000001.seg"), "{message}");
    assert!(message.contains("journal dump"), "{message}");
}

#[test]
fn a_snapshot_that_does_not_fit_the_configuration_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (path, config) = write_config(dir.path(), "none", 1_000);
    run_live(&config, 2_000, 500, true);
    // One account fewer: the snapshot's account table no longer matches.
    let text = std::fs::read_to_string(&path).unwrap();
    let cut = text.rfind("\n[[accounts]]").unwrap();
    std::fs::write(&path, &text[..cut]).unwrap();
    let smaller = petrel_engine::config::Config::load(&path).unwrap();
    let err = recover(&smaller, &mut |_, _| {}).unwrap_err();
    assert!(matches!(err, RecoveryError::Restore { .. }), "{err}");
    assert!(err.to_string().contains("only be appended"), "{err}");
}
