//! `petrel-engine journal verify|stats|dump|replay` through the real binary, on a journal
//! written by the Sequencer, on a copy elsewhere, and on damaged copies.

mod support;

use std::process::Command;

use petrel_engine::config::Config;
use petrel_engine::recovery::recover;
use petrel_engine::runtime::reference::Sequencer;
use petrel_workload::exchange_core_mix;
use support::engine_setup::*;
use support::{copy_dir, BIN};

const RECORDS: usize = 3_000;

/// Writes RECORDS commands (commits of 50) with a snapshot after 2,000; returns the live hash.
fn write_journal(config: &Config) -> String {
    let recovered = recover(config, &mut |_, _| {}).unwrap();
    let mut sequencer = Sequencer::new(recovered.engine, recovered.writer, test_clock())
        .with_snapshots(config.snapshots.clone(), config.journal.clone());
    let (commands, _) = exchange_core_mix(RECORDS, 11);
    let mut sink = Vec::new();
    for chunk in commands[..RECORDS].chunks(50) {
        for c in chunk {
            sequencer.submit(c, &mut sink).unwrap();
        }
        sequencer.commit().unwrap();
    }
    sequencer.engine().state_hash().to_string()
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().expect("exited"),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

fn field<'a>(text: &'a str, label: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(label))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{text}"))
        .trim()
}

#[test]
fn verify_stats_dump_and_replay_describe_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let (config_path, config) = write_config(dir.path(), "none", 2_000);
    let live_hash = write_journal(&config);
    let cfg = config_path.to_str().unwrap();

    let (code, out, err) = run(&["journal", "verify", "--config", cfg]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(field(&out, "  records:"), RECORDS.to_string());
    assert_eq!(field(&out, "  status:"), "OK");

    let (code, out, err) = run(&["journal", "stats", "--config", cfg, "--format", "json"]);
    assert_eq!(code, 0, "{err}");
    let stats: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(stats["record_count"], RECORDS as u64);
    assert_eq!(stats["last_sequence"], RECORDS as u64);
    assert_eq!(stats["snapshot"]["sequence"], 2_000);
    let (code, out, _) = run(&["journal", "stats", "--config", cfg]);
    assert_eq!(code, 0);
    assert!(field(&out, "  snapshot:").contains("(sequence 2000,"), "{out}");

    let (code, out, err) = run(&["journal", "dump", "--config", cfg]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), RECORDS);
    assert!(lines[0].starts_with("seq=1 ts_ns=1700000000000001000 len=31 file=input-00000000000000000001.seg offset=4096 payload=new-order account="), "{}", lines[0]);
    assert!(lines.iter().any(|l| l.contains("payload=replace account=")), "the mix has replaces");

    let (code, out, err) =
        run(&["journal", "dump", "--config", cfg, "--format", "json", "--from-seq", "2990"]);
    assert_eq!(code, 0, "{err}");
    let records: Vec<serde_json::Value> =
        out.lines().map(|l| serde_json::from_str(l).expect("each line is JSON")).collect();
    assert_eq!(records.len(), 11);
    assert_eq!(records[0]["sequence"], 2990);
    assert_eq!(records[10]["sequence"], 3000);
    for r in &records {
        let command = r["payload"]["command"].as_str().expect("payload decoded to a command object");
        assert!(["new_order", "cancel", "replace"].contains(&command), "{r}");
        if command != "cancel" {
            assert!(r["payload"]["price"].as_str().unwrap().contains('.'), "{r}");
        }
    }

    // Full replay and replay from the snapshot both reach the live state.
    let (code, out, err) = run(&["journal", "replay", "--config", cfg]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(field(&out, "state hash"), live_hash);
    assert_eq!(field(&out, "last sequence"), RECORDS.to_string());
    assert_eq!(field(&out, "replayed"), RECORDS.to_string());
    assert!(field(&out, "elapsed").ends_with("M records/s)"), "{out}");
    let (code, out, err) = run(&["journal", "replay", "--config", cfg, "--from-snapshot"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(field(&out, "state hash"), live_hash);
    assert_eq!(field(&out, "replayed"), "1000");

    // A backup copied elsewhere, named by --dir and --prefix.
    let backup = tempfile::tempdir().unwrap();
    copy_dir(&config.journal.dir, backup.path());
    let b = backup.path().to_str().unwrap();
    let (code, out, err) = run(&["journal", "verify", "--dir", b, "--prefix", "input"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(field(&out, "  records:"), RECORDS.to_string());
    let (code, out, err) = run(&["journal", "replay", "--config", cfg, "--dir", b, "--prefix", "input"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(field(&out, "state hash"), live_hash);
}

#[test]
fn damage_is_refused_with_a_command_that_shows_it() {
    let dir = tempfile::tempdir().unwrap();
    let (config_path, config) = write_config(dir.path(), "none", 1 << 40);
    write_journal(&config);
    let cfg = config_path.to_str().unwrap();
    let segment = config.journal.dir.join("input-00000000000000000001.seg");
    // A flipped payload byte in the first commit: later commits depend on it, so this is
    // damage, not a torn tail.
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[4096 + 40] ^= 0x55;
    std::fs::write(&segment, &bytes).unwrap();

    let (code, out, err) = run(&["journal", "verify", "--config", cfg]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains("journal is corrupt"), "{err}");
    assert!(err.contains("at byte offset 4096"), "{err}");
    // The message tells the operator what to run; run exactly that.
    let suggested = err.split("Inspect it with: petrel-engine ").nth(1).unwrap().trim();
    let args: Vec<&str> = suggested.split(' ').collect();
    assert_eq!(args[..2], ["journal", "dump"]);
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("record header: crc32c"), "{out}");
    assert!(out.contains("sequence 1,"), "{out}");
    assert!(out.contains("verdict: INVALID"), "{out}");

    // Replay refuses as well, and the engine would not start.
    let (code, _, err) = run(&["journal", "replay", "--config", cfg]);
    assert_eq!(code, 1);
    assert!(err.contains("journal is corrupt"), "{err}");
    assert!(recover(&config, &mut |_, _| {}).is_err());
}

#[test]
fn a_torn_tail_is_reported_but_not_cut_by_the_tools() {
    let dir = tempfile::tempdir().unwrap();
    let (config_path, config) = write_config(dir.path(), "none", 1 << 40);
    let live_hash = write_journal(&config);
    let cfg = config_path.to_str().unwrap();
    let segment = config.journal.dir.join("input-00000000000000000001.seg");
    let verified = petrel_engine::journal::verify(&petrel_engine::journal::JournalLocation::new(
        &config.journal.dir,
        "input",
    ))
    .unwrap();
    let end = verified.segments[0].data_end_offset as usize;
    // Half a record after the last one: what a crash in the middle of a commit leaves.
    let mut bytes = std::fs::read(&segment).unwrap();
    bytes[end..end + 20].copy_from_slice(&[0xab; 20]);
    std::fs::write(&segment, &bytes).unwrap();

    let (code, out, err) = run(&["journal", "verify", "--config", cfg]);
    assert_eq!(code, 0, "{err}");
    assert!(field(&out, "  status:").contains("torn tail"), "{out}");
    let (code, out, _) = run(&["journal", "replay", "--config", cfg]);
    assert_eq!(code, 0);
    assert_eq!(field(&out, "state hash"), live_hash);
    assert!(field(&out, "torn tail").contains(&format!("at offset {end}")), "{out}");
    assert_eq!(std::fs::read(&segment).unwrap(), bytes, "the tools change nothing");

    // The engine's recovery cuts it and says so.
    let recovered = recover(&config, &mut |_, _| {}).unwrap();
    let tail = recovered.report.torn_tail.expect("reported");
    assert_eq!(tail.offset, end as u64);
    assert_eq!(recovered.engine.state_hash().to_string(), live_hash);
}
