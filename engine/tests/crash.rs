//! An engine process killed with SIGKILL at random moments loses nothing it acknowledged.
//!
//! The child is this test binary re-executed to run the ignored `crash_child` test: it
//! recovers from the journal and snapshots, then sequences the exchange-core workload through
//! the Sequencer with fsync durability, in commits of random size. After each commit it
//! releases that commit's outputs, as the engine does: a `MATCH <match number>` line per
//! execution, then `ACK <durable sequence>`. The parent kills it after a random number of
//! acknowledgements (seeded, so a failure reproduces), recovers in-process and checks:
//! - every acknowledged sequence was recovered;
//! - the recovered state equals a fresh replay of the whole journal (and one from the snapshot);
//! - no match number released to a client is ever released again after a restart;
//! - the next child continues appending where the journal ends.

mod support;

use std::collections::HashSet;
use std::os::unix::process::ExitStatusExt;

use petrel_engine::clock::SystemClock;
use petrel_engine::config::Config;
use petrel_engine::core::Event;
use petrel_engine::journal::JournalLocation;
use petrel_engine::recovery::{recover, replay_read_only};
use petrel_engine::runtime::reference::Sequencer;
use petrel_testkit::crash_child::{ChildReport, CrashChild, ReportLine};
use petrel_workload::{exchange_core_mix, Rng};
use support::engine_setup::*;

const CONFIG_ENV: &str = "PETREL_CRASH_CHILD_CONFIG";
const SEED_ENV: &str = "PETREL_CRASH_SEED";
/// Commands of the workload after the book is built; more than the rounds can use: a round
/// journals at most ACKS_PAST_KILL + 60 acknowledged commits, and one more in flight, of at most
/// 40 commands each.
const STREAM_COMMANDS: usize = 62_000;
const STREAM_SEED: u64 = 5;
const ROUNDS: usize = 24;
/// Acknowledgements a child may make past the one after which it is killed.
const ACKS_PAST_KILL: u64 = 3;
const DEFAULT_SEED: u64 = 0x5eed_2024;

#[test]
#[ignore = "child process of acknowledged_commands_survive_sigkill_and_appending_continues"]
fn crash_child() {
    let Ok(path) = std::env::var(CONFIG_ENV) else {
        panic!(
            "run only by acknowledged_commands_survive_sigkill_and_appending_continues (needs {CONFIG_ENV})"
        );
    };
    let seed: u64 = std::env::var(SEED_ENV).unwrap().parse().unwrap();
    let config = Config::load(path.as_ref()).unwrap();
    let recovered = recover(&config, &mut |_, _| {}).unwrap();
    let start = recovered.engine.last_sequence();
    let mut sequencer = Sequencer::new(recovered.engine, recovered.writer, SystemClock)
        .with_snapshots(config.snapshots.clone(), config.journal.clone());
    let (commands, _) = exchange_core_mix(STREAM_COMMANDS, STREAM_SEED);
    let mut report = ChildReport::start(start);
    let mut rng = Rng::new(seed ^ start);
    let mut events = Vec::new();
    // Command k of the stream always gets sequence k + 1: a restarted child resubmits exactly
    // the unacknowledged commands, as clients would.
    let mut next = start as usize;
    while next < commands.len() {
        let batch = (1 + rng.below(40) as usize).min(commands.len() - next);
        for command in &commands[next..next + batch] {
            sequencer.submit(command, &mut events).unwrap();
        }
        next += batch;
        let committed = sequencer.commit().unwrap();
        // Released only now that the commit is durable.
        for event in events.drain(..) {
            if let Event::Executed(e) = event {
                report.matched(e.match_id.0);
            }
        }
        report.ack(committed.stats.durable_sequence);
        report.flush();
    }
    report.done();
}

#[test]
fn acknowledged_commands_survive_sigkill_and_appending_continues() {
    let seed = std::env::var(SEED_ENV).map_or(DEFAULT_SEED, |s| s.parse().expect("numeric seed"));
    eprintln!("crash test seed {seed} (set {SEED_ENV} to reproduce)");
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().unwrap();
    // Small segments and frequent snapshots, so kills land in roll-overs and snapshot writes.
    let text = bench_config_text("fsync", 700)
        .replace("segment_size_bytes = 1_048_576", "segment_size_bytes = 131_072");
    let (config_path, config) = write_config_text(dir.path(), &text);
    let location = JournalLocation::new(&config.journal.dir, &config.journal.file_prefix);

    let mut acked = 0u64;
    let mut released_matches: HashSet<u64> = HashSet::new();
    let mut kills = 0;
    for round in 0..ROUNDS {
        let acks_before_kill = 1 + rng.below(60);
        let child_seed = (seed + round as u64).to_string();
        let mut child = CrashChild::spawn(
            "crash_child",
            acks_before_kill + ACKS_PAST_KILL,
            &[(CONFIG_ENV, config_path.as_os_str()), (SEED_ENV, child_seed.as_ref())],
        );
        let mut acks = 0;
        let mut started_at = None;
        let mut done = false;
        while acks < acks_before_kill {
            let Some(line) = child.next_line() else { break };
            match line {
                ReportLine::Start(start) => {
                    assert!(
                        start >= acked,
                        "round {round}: restarted at {start}, but {acked} was acknowledged"
                    );
                    started_at = Some(start);
                }
                ReportLine::Match(id) => {
                    assert!(released_matches.insert(id), "round {round}: match number {id} released twice");
                }
                ReportLine::Ack(durable) => {
                    let start = started_at.expect("START comes first");
                    assert!(durable > acked.max(start), "round {round}: ack {durable} after {acked}");
                    acked = durable;
                    acks += 1;
                }
                ReportLine::Done => {
                    done = true;
                    break;
                }
                ReportLine::Other(_) => {}
            }
        }
        let status = child.kill();
        if !done {
            assert_eq!(status.signal(), Some(9), "round {round}: the child died on its own: {status}");
            kills += 1;
        }

        let recovered = recover(&config, &mut |_, _| {}).unwrap();
        assert!(
            recovered.report.last_sequence >= acked,
            "round {round}: recovered up to {}, but {acked} was acknowledged",
            recovered.report.last_sequence
        );
        let (fresh, report) = replay_read_only(&config.engine, &location, None, &mut |_, _| {}).unwrap();
        assert_eq!(report.last_sequence, recovered.report.last_sequence);
        assert_eq!(
            fresh.state_hash(),
            recovered.engine.state_hash(),
            "round {round}: snapshot + tail != full replay"
        );
        drop(recovered); // releases the journal lock for the next child
        if done {
            break;
        }
    }
    assert!(kills >= 20, "only {kills} kills");
    assert!(std::fs::read_dir(&config.journal.dir).unwrap().count() > 3, "the journal rolled over segments");
    assert!(
        std::fs::read_dir(&config.snapshots.dir).unwrap().any(|e| e
            .unwrap()
            .file_name()
            .to_string_lossy()
            .ends_with(".snap")),
        "snapshots were written"
    );
    assert!(!released_matches.is_empty(), "the workload traded");
    eprintln!("{kills} kills, {acked} commands acknowledged, {} executions released", released_matches.len());
}
