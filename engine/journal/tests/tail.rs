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
