//! Snapshot files and segment retention on real directories.

mod common;

use common::*;
use petrel_journal::{
    apply_retention, latest_snapshot, prune_snapshots, write_snapshot, Durability, Journal, JournalError,
    Retention, SnapshotError,
};

#[test]
fn latest_snapshot_round_trips_and_ignores_an_interrupted_write() {
    let dir = tempfile::tempdir().unwrap();
    assert!(latest_snapshot(dir.path()).unwrap().is_none());
    write_snapshot(dir.path(), 100, b"state at 100").unwrap();
    let path = write_snapshot(dir.path(), 250, b"state at 250").unwrap();
    assert_eq!(path, dir.path().join("snapshot-00000000000000000250.snap"));
    // A crash between write and rename leaves only a temporary file: it is not a snapshot.
    std::fs::write(dir.path().join("snapshot-00000000000000000300.snap.tmp"), b"PTRLSNAP partial").unwrap();
    let snapshot = latest_snapshot(dir.path()).unwrap().expect("a snapshot");
    assert_eq!((snapshot.sequence, snapshot.bytes.as_slice()), (250, &b"state at 250"[..]));
}

#[test]
fn a_corrupt_newest_snapshot_is_refused_not_skipped() {
    let dir = tempfile::tempdir().unwrap();
    write_snapshot(dir.path(), 100, b"older state").unwrap();
    let newest = write_snapshot(dir.path(), 200, b"newer state").unwrap();
    let mut bytes = std::fs::read(&newest).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&newest, &bytes).unwrap();
    let err = latest_snapshot(dir.path()).unwrap_err();
    assert!(
        matches!(&err, SnapshotError::Corrupt { path, reason } if *path == newest && reason.contains("payload checksum")),
        "{err}"
    );
    assert!(err.to_string().contains("move this file out of"), "{err}");
    // A truncated one too.
    std::fs::write(&newest, &bytes[..40]).unwrap();
    assert!(matches!(latest_snapshot(dir.path()), Err(SnapshotError::Corrupt { .. })));
}

#[test]
fn prune_keeps_the_newest_snapshots_and_removes_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    for seq in [10, 20, 30, 40] {
        write_snapshot(dir.path(), seq, format!("state {seq}").as_bytes()).unwrap();
    }
    let leftover = dir.path().join("snapshot-00000000000000000050.snap.tmp");
    std::fs::write(&leftover, b"partial").unwrap();
    let deleted = prune_snapshots(dir.path(), 2).unwrap();
    assert_eq!(deleted.len(), 3);
    assert!(!leftover.exists());
    assert_eq!(latest_snapshot(dir.path()).unwrap().unwrap().sequence, 40);
    assert!(dir.path().join("snapshot-00000000000000000030.snap").exists());
    assert!(!dir.path().join("snapshot-00000000000000000020.snap").exists());
}

#[test]
fn retention_deletes_only_old_segments_covered_by_the_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = small_config(dir.path(), Durability::None);
    config.retention = Retention::KeepSegments(2);
    let (mut writer, _) = Journal::open(&config).unwrap();
    write_records(&mut writer, 6_000, 100);
    drop(writer);
    let segments = Journal::open(&config).unwrap().1.segments;
    assert!(segments.len() >= 6, "{} segments", segments.len());

    // Without a covering snapshot nothing may go, whatever the policy says.
    assert!(apply_retention(&config, 0).unwrap().is_empty());
    // A snapshot inside segment 3 frees segments 0..=2 (every record of theirs is <= it).
    let snapshot_sequence = segments[3].first_sequence + 1;
    let deleted = apply_retention(&config, snapshot_sequence).unwrap();
    assert_eq!(deleted, segments[..3].iter().map(|s| s.path.clone()).collect::<Vec<_>>());

    let (_, recovery) = Journal::open(&config).unwrap();
    assert_eq!(recovery.first_sequence, Some(segments[3].first_sequence));
    assert_eq!(recovery.last_sequence, Some(6_000));
    let mut reader = recovery.replay_from(snapshot_sequence + 1).unwrap();
    assert_eq!(reader.next_record().unwrap().unwrap().sequence, snapshot_sequence + 1);
    assert!(
        matches!(recovery.replay_from(1), Err(JournalError::SequenceNotRetained { first_available, .. }) if first_available == segments[3].first_sequence)
    );

    // Even a snapshot of everything keeps the newest `keep_segments`.
    apply_retention(&config, 6_000).unwrap();
    assert_eq!(segment_files(dir.path()).len(), 2);

    // keep_all never deletes.
    config.retention = Retention::KeepAll;
    assert!(apply_retention(&config, 6_000).unwrap().is_empty());
}
