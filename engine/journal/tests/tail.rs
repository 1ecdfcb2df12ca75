//! Following a journal while its writer appends: the primary's side of replication.

mod common;

use common::{payload_for, small_config, timestamp_for};
use petrel_journal::{Durability, Journal, JournalError, JournalLocation, JournalTail, TailRecord};

fn read_all(tail: &mut JournalTail, limit: u64, got: &mut Vec<(u64, u64, Vec<u8>)>) {
    let (mut records, mut payloads): (Vec<TailRecord>, Vec<u8>) = (Vec::new(), Vec::new());
    loop {
        records.clear();
        payloads.clear();
        tail.read(limit, 4096, &mut records, &mut payloads).expect("tail read");
        if records.is_empty() {
            return;
        }
        for r in &records {
            got.push((
                r.sequence,
                r.timestamp_ns,
                payloads[r.payload_at..r.payload_at + r.payload_len].to_vec(),
            ));
        }
    }
}

#[test]
fn a_tail_reads_every_durable_record_across_segments_while_the_writer_appends() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path(), Durability::Fsync);
    let location = JournalLocation::new(dir.path(), &config.file_prefix);
    let (mut writer, _) = Journal::open(&config).unwrap();
    let mut tail = JournalTail::open(&location, 1).unwrap();
    let mut got = Vec::new();
    for round in 0..1200u64 {
        for _ in 0..(1 + round % 7) {
            let s = writer.next_sequence();
            writer.append(s, timestamp_for(s), &payload_for(s)).unwrap();
        }
        // Appended but not committed: beyond the durable mark, never read.
        read_all(&mut tail, writer.durable_sequence(), &mut got);
        assert_eq!(tail.next_sequence(), writer.durable_sequence() + 1);
        writer.commit().unwrap();
        read_all(&mut tail, writer.durable_sequence(), &mut got);
    }
    let last = writer.durable_sequence();
    assert!(
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| { e.as_ref().unwrap().path().extension().is_some_and(|x| x == "seg") })
            .count()
            > 3,
        "the test crossed several segments"
    );
    let expected: Vec<_> = (1..=last).map(|s| (s, timestamp_for(s), payload_for(s))).collect();
    assert_eq!(got, expected);

    // A tail opened in the middle starts exactly there.
    let mut middle = JournalTail::open(&location, last / 2).unwrap();
    let mut rest = Vec::new();
    read_all(&mut middle, last, &mut rest);
    assert_eq!(rest, expected[(last / 2 - 1) as usize..].to_vec());
}

#[test]
fn a_tail_from_a_sequence_the_journal_no_longer_holds_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path(), Durability::Fsync);
    let (mut writer, _) = Journal::open(&config).unwrap();
    writer.append(1, 1, b"x").unwrap();
    writer.commit().unwrap();
    drop(writer);
    // What retention leaves: the oldest segment now starts at 7.
    let name = |first: u64| dir.path().join(format!("{}-{first:020}.seg", config.file_prefix));
    std::fs::rename(name(1), name(7)).unwrap();
    let location = JournalLocation::new(dir.path(), &config.file_prefix);
    let err = JournalTail::open(&location, 3).unwrap_err();
    assert!(matches!(err, JournalError::SequenceNotRetained { requested: 3, first_available: 7 }), "{err}");
}

#[test]
fn truncating_after_a_sequence_keeps_exactly_the_records_up_to_it_and_appending_continues() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path(), Durability::Fsync);
    let (mut writer, _) = Journal::open(&config).unwrap();
    for _ in 0..1_500 {
        let s = writer.next_sequence();
        writer.append(s, timestamp_for(s), &payload_for(s)).unwrap();
        if s % 7 == 0 {
            writer.commit().unwrap();
        }
    }
    writer.commit().unwrap();
    drop(writer);
    let segments = || {
        std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "seg"))
            .count()
    };
    let before = segments();
    assert!(before > 2, "the journal spans several segments");

    let cut = petrel_journal::truncate_after(&config, 437).unwrap();
    assert_eq!((cut.last_before, cut.removed_records), (1_500, 1_500 - 437));
    assert!(cut.removed_segments > 0 && segments() == before - cut.removed_segments as usize);
    let (mut writer, recovery) = Journal::open(&config).unwrap();
    assert_eq!(recovery.truncation, None, "a clean cut, not a torn tail");
    assert_eq!(recovery.last_sequence, Some(437));
    let location = JournalLocation::new(dir.path(), &config.file_prefix);
    let mut got = Vec::new();
    read_all(&mut JournalTail::open(&location, 1).unwrap(), 437, &mut got);
    assert_eq!(got, (1..=437).map(|s| (s, timestamp_for(s), payload_for(s))).collect::<Vec<_>>());
    writer.append(438, 1, b"the new epoch's record").unwrap();
    writer.commit().unwrap();
    drop(writer);

    // Again at a sequence already past the end: nothing to do. Back to nothing at all: one
    // empty segment remains.
    assert_eq!(petrel_journal::truncate_after(&config, 1_000).unwrap().removed_records, 0);
    assert_eq!(petrel_journal::truncate_after(&config, 0).unwrap().removed_records, 438);
    let (_, recovery) = Journal::open(&config).unwrap();
    assert_eq!((recovery.last_sequence, segments()), (None, 1));
}
