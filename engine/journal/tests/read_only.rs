//! Reading without the writer's lock: `open_read_only` (everything checked first, nothing
//! changed), `open_read_only_from` (nothing scanned up front, each record checked as read) and
//! the writer's `append_or_commit`.

mod common;

use common::*;
use petrel_journal::{
    open_read_only, open_read_only_from, record_total_bytes, verify, Durability, Journal, JournalError,
    JournalLocation, JournalReader,
};

fn location(dir: &std::path::Path) -> JournalLocation {
    JournalLocation::new(dir, "journal")
}

fn drain(reader: &mut JournalReader) -> Result<Vec<(u64, u64, Vec<u8>)>, JournalError> {
    let mut out = Vec::new();
    while let Some(r) = reader.next_record()? {
        out.push((r.sequence, r.timestamp_ns, r.payload.to_vec()));
    }
    Ok(out)
}

/// The byte offset of record `sequence` in the segment holding it (found by walking the
/// deterministic record sizes of `write_records`).
fn offset_of(first_in_segment: u64, sequence: u64) -> u64 {
    4096 + (first_in_segment..sequence).map(|s| record_total_bytes(payload_for(s).len()) as u64).sum::<u64>()
}

#[test]
fn append_or_commit_commits_only_when_the_buffer_is_full_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path(), Durability::None);
    let (mut writer, _) = Journal::open(&config).unwrap();
    let mut commits = 0;
    for sequence in 1..=2_000u64 {
        let buffered_before = writer.buffered_records();
        let payload = payload_for(sequence);
        let fits =
            writer.buffered_bytes() + record_total_bytes(payload.len()) <= config.write_buffer_bytes as usize;
        match writer.append_or_commit(sequence, timestamp_for(sequence), &payload).unwrap() {
            None => assert!(fits, "sequence {sequence}: a full buffer must commit"),
            Some(committed) => {
                assert!(!fits, "sequence {sequence}: committed although the record fitted");
                assert_eq!(committed.records, buffered_before);
                assert_eq!(committed.durable_sequence, sequence - 1, "everything before it is durable");
                assert_eq!(writer.buffered_records(), 1, "the record went into the emptied buffer");
                commits += 1;
            }
        }
    }
    assert!(commits >= 10, "a 16 KiB buffer fills many times over 2,000 records ({commits})");
    assert_eq!(writer.commit().unwrap().durable_sequence, 2_000);

    let too_large = vec![0u8; config.max_record_payload_bytes as usize + 1];
    let err = writer.append_or_commit(2_001, 0, &too_large).unwrap_err();
    assert!(matches!(err, JournalError::PayloadTooLarge { payload_bytes: 1_025, max_bytes: 1_024 }), "{err}");
    assert_eq!((writer.buffered_records(), writer.next_sequence()), (0, 2_001), "nothing was buffered");
    drop(writer);

    let (_, recovery) = Journal::open(&config).unwrap();
    assert_eq!(read_all(&recovery), expected_records(2_000));
}

#[test]
fn open_read_only_sees_what_open_would_but_changes_nothing_and_takes_no_lock() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path(), Durability::None);
    let (mut writer, _) = Journal::open(&config).unwrap();
    write_records(&mut writer, 3_000, 41);
    // A torn tail: half of a record of an unfinished commit after the last one.
    let segment = writer.current_segment().to_owned();
    let end = writer_data_end(&segment);
    patch(&segment, end, &[0xAB; 20]);
    let before = std::fs::read(&segment).unwrap();

    // The writer still holds the lock: read-only opens do not need it.
    let recovery = open_read_only(&location(dir.path())).unwrap();
    let verified = verify(&location(dir.path())).unwrap();
    assert_eq!(recovery.segments, verified.segments);
    assert_eq!(
        (recovery.first_sequence, recovery.last_sequence, recovery.record_count),
        (Some(1), Some(3_000), 3_000)
    );
    let torn = recovery.truncation.as_ref().expect("the torn tail is reported");
    assert_eq!((torn.file.as_path(), torn.offset), (segment.as_path(), end));
    assert_eq!(read_all(&recovery), expected_records(3_000));
    assert_eq!(std::fs::read(&segment).unwrap(), before, "the torn tail is left for the writer's next open");
    drop(writer);
}

/// Offset just past the last record of a segment, found the way recovery finds it.
fn writer_data_end(segment: &std::path::Path) -> u64 {
    let dir = segment.parent().unwrap();
    let verified = verify(&location(dir)).unwrap();
    verified.segments.iter().find(|s| s.path == segment).unwrap().data_end_offset
}

#[test]
fn open_read_only_from_starts_anywhere_and_follows_later_commits() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path(), Durability::None);
    let (mut writer, _) = Journal::open(&config).unwrap();
    write_records(&mut writer, 5_000, 37);
    let loc = location(dir.path());
    assert!(segment_files(dir.path()).len() >= 5, "several segments");
    for from in [1, 2, 999, 2_500, 4_999, 5_000] {
        let mut reader = open_read_only_from(&loc, from).unwrap();
        assert_eq!(
            drain(&mut reader).unwrap(),
            expected_records(5_000)[from as usize - 1..].to_vec(),
            "from {from}"
        );
    }
    // From the next sequence: nothing yet, and what is committed later is read by a new reader.
    let mut reader = open_read_only_from(&loc, 5_001).unwrap();
    assert!(reader.next_record().unwrap().is_none());
    write_records(&mut writer, 10, 10);
    let mut reader = open_read_only_from(&loc, 5_001).unwrap();
    assert_eq!(drain(&mut reader).unwrap(), expected_records(5_010)[5_000..].to_vec());
    // Buffered (uncommitted) records are not on disk, so not read.
    writer.append(5_011, timestamp_for(5_011), &payload_for(5_011)).unwrap();
    let mut reader = open_read_only_from(&loc, 5_000).unwrap();
    assert_eq!(drain(&mut reader).unwrap().len(), 11);

    // Past the end: reported once the reader gets there. Before the first segment: refused.
    let mut reader = open_read_only_from(&loc, 5_012).unwrap();
    assert!(matches!(
        reader.next_record(),
        Err(JournalError::SequenceBeyondEnd { requested: 5_012, last: 5_010 })
    ));
    assert!(matches!(open_read_only_from(&loc, 0), Err(JournalError::SequenceNotRetained { .. })));
    // An empty directory holds nothing: sequence 1 is its end.
    let empty = tempfile::tempdir().unwrap();
    assert!(open_read_only_from(&location(empty.path()), 1).unwrap().next_record().unwrap().is_none());
    assert!(matches!(
        open_read_only_from(&location(empty.path()), 2),
        Err(JournalError::SequenceBeyondEnd { requested: 2, last: 0 })
    ));
    drop(writer);
}

#[test]
fn open_read_only_from_checks_only_what_it_reads_and_reports_damage_when_reached() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path(), Durability::None);
    let (mut writer, _) = Journal::open(&config).unwrap();
    write_records(&mut writer, 5_000, 37);
    drop(writer);
    let loc = location(dir.path());
    let (_, recovery) = Journal::open(&config).unwrap();
    let segments = recovery.segments.clone();
    drop(recovery);
    let (first, second, later) = (&segments[0], &segments[1], &segments[3]);

    // A flipped payload byte in the first segment: a full check refuses the journal, a reader
    // starting in a later segment never reads it (it did not scan the journal).
    let damaged = first.first_sequence + 5;
    let at = offset_of(first.first_sequence, damaged) + 40;
    let original = read_at(&first.path, at, 1);
    patch(&first.path, at, &[original[0] ^ 0x01]);
    assert!(matches!(verify(&loc), Err(JournalError::Corrupt { .. })));
    let mut reader = open_read_only_from(&loc, second.first_sequence).unwrap();
    assert_eq!(
        drain(&mut reader).unwrap(),
        expected_records(5_000)[second.first_sequence as usize - 1..].to_vec()
    );

    // A reader starting in that segment after the damage still reads the damaged record while
    // finding its start, and reports it.
    let mut reader = open_read_only_from(&loc, damaged + 2).unwrap();
    match reader.next_record() {
        Err(JournalError::Corrupt { file, offset, reason, .. }) => {
            assert_eq!((file, offset), (first.path.clone(), offset_of(first.first_sequence, damaged)));
            assert!(reason.contains("checksum"), "{reason}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    patch(&first.path, at, &original);

    // Damage later in the stream: every record before it is returned, then the damage is an
    // error naming its place, not an early end of the records.
    let damaged = later.first_sequence + 3;
    let at = offset_of(later.first_sequence, damaged) + 9; // inside the sequence field
    let original = read_at(&later.path, at, 1);
    patch(&later.path, at, &[original[0] ^ 0x40]);
    let mut reader = open_read_only_from(&loc, second.first_sequence + 1).unwrap();
    let mut returned = Vec::new();
    let err = loop {
        match reader.next_record() {
            Ok(Some(r)) => returned.push(r.sequence),
            Ok(None) => panic!("the damaged record at {damaged} was skipped"),
            Err(e) => break e,
        }
    };
    assert_eq!(returned, (second.first_sequence + 1..damaged).collect::<Vec<_>>());
    let damaged_at = offset_of(later.first_sequence, damaged);
    let at_damage = matches!(&err, JournalError::Corrupt { file, offset, .. }
        if *file == later.path && *offset == damaged_at);
    assert!(at_damage, "{err}");
    patch(&later.path, at, &original);

    // A missing segment in the middle is a gap, reported when the reader reaches it.
    std::fs::remove_file(&segments[2].path).unwrap();
    let mut reader = open_read_only_from(&loc, second.first_sequence).unwrap();
    let err = drain(&mut reader).unwrap_err();
    let gap = matches!(&err, JournalError::Corrupt { file, reason, .. }
        if *file == later.path && reason.contains("records are missing"));
    assert!(gap, "{err}");
}
