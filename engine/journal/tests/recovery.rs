//! Recovery behaviour on real files: what survives, what is cut and reported, what is refused.

mod common;

use common::*;
use petrel_journal::{
    record_total_bytes, verify, Durability, Journal, JournalError, JournalLocation, SEGMENT_HEADER_BYTES,
};

fn location(dir: &std::path::Path) -> JournalLocation {
    JournalLocation::new(dir, "journal")
}

#[test]
fn committed_records_round_trip_across_reopen_and_many_segments() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path(), Durability::Fsync);
    let (mut writer, recovery) = Journal::open(&config).unwrap();
    assert!(recovery.created);
    assert_eq!(recovery.last_sequence, None);
    assert_eq!(writer.next_sequence(), 1);
    let last = write_records(&mut writer, 5_000, 37);
    assert_eq!(last, 5_000);
    drop(writer);

    let (mut writer, recovery) = Journal::open(&config).unwrap();
    assert!(!recovery.created);
    assert!(recovery.truncation.is_none());
    assert!(recovery.segments.len() >= 5, "expected roll-over, got {} segments", recovery.segments.len());
    assert_eq!(
        (recovery.first_sequence, recovery.last_sequence, recovery.record_count),
        (Some(1), Some(5_000), 5_000)
    );
    assert_eq!(read_all(&recovery), expected_records(5_000));
    // Segments are contiguous and named by their first sequence.
    for pair in recovery.segments.windows(2) {
        assert_eq!(pair[0].first_sequence + pair[0].record_count, pair[1].first_sequence);
        let name = pair[1].path.file_name().unwrap().to_str().unwrap().to_owned();
        assert_eq!(name, format!("journal-{:020}.seg", pair[1].first_sequence));
    }

    // Appends continue where recovery ended, and replay from the middle starts exactly there.
    assert_eq!(write_records(&mut writer, 100, 7), 5_100);
    drop(writer);
    let (_writer, recovery) = Journal::open(&config).unwrap();
    let mut reader = recovery.replay_from(4_321).unwrap();
    let mut seen = Vec::new();
    while let Some(r) = reader.next_record().unwrap() {
        seen.push((r.sequence, r.timestamp_ns, r.payload.to_vec()));
    }
    assert_eq!(seen, expected_records(5_100)[4_320..].to_vec());
    assert!(recovery.replay_from(5_101).unwrap().next_record().unwrap().is_none());
    assert!(matches!(
        recovery.replay_from(5_102),
        Err(JournalError::SequenceBeyondEnd { requested: 5_102, last: 5_100 })
    ));
}

#[test]
fn a_second_writer_on_the_same_journal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path(), Durability::None);
    let (_writer, _) = Journal::open(&config).unwrap();
    let err = Journal::open(&config).unwrap_err();
    assert!(matches!(err, JournalError::Locked { .. }), "{err}");
    // A journal with another prefix in the same directory is independent.
    let mut output = config.clone();
    output.file_prefix = "output".into();
    let (mut out_writer, _) = Journal::open(&output).unwrap();
    assert_eq!(write_records(&mut out_writer, 10, 3), 10);
}

#[test]
fn uncommitted_records_are_not_in_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path(), Durability::None);
    let (mut writer, _) = Journal::open(&config).unwrap();
    write_records(&mut writer, 10, 10);
    writer.append(11, timestamp_for(11), &payload_for(11)).unwrap();
    assert_eq!(writer.buffered_records(), 1);
    drop(writer);
    let (writer, recovery) = Journal::open(&config).unwrap();
    assert_eq!(recovery.last_sequence, Some(10));
    assert!(recovery.truncation.is_none());
    assert_eq!(writer.next_sequence(), 11);
}

/// Every cut position inside the newest record, both as a partial write (the rest still zero,
/// as in preallocated space) and as a shortened file: the record is dropped and reported (or,
/// when nothing of it was written, simply absent), older records stay, and appends continue.
#[test]
fn torn_tail_at_every_byte_of_the_last_record_is_cut_reported_and_appends_continue() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path(), Durability::None);
    let (mut writer, _) = Journal::open(&config).unwrap();
    let last = write_records(&mut writer, 40, 8);
    let segment = writer.current_segment().to_owned();
    drop(writer);
    let pristine = std::fs::read(&segment).unwrap();
    let last_bytes = record_total_bytes(payload_for(last).len()) as u64;
    let (_, recovery) = Journal::open(&config).unwrap();
    let data_end = recovery.segments.last().unwrap().data_end_offset;
    let last_offset = data_end - last_bytes;

    for cut in last_offset..data_end {
        for shorten_file in [false, true] {
            std::fs::write(&segment, &pristine).unwrap();
            if shorten_file {
                std::fs::OpenOptions::new().write(true).open(&segment).unwrap().set_len(cut).unwrap();
            } else {
                patch(&segment, cut, &vec![0u8; (data_end - cut) as usize]);
            }
            let (mut writer, recovery) = Journal::open(&config).unwrap();
            // Zeroing only the (already zero) padding leaves the record intact.
            let intact = !shorten_file && pristine[cut as usize..data_end as usize].iter().all(|&b| b == 0);
            let expected_last = if intact { last } else { last - 1 };
            assert_eq!(recovery.last_sequence, Some(expected_last), "cut at {cut}");
            match &recovery.truncation {
                Some(torn) => {
                    assert_eq!(
                        (torn.file.as_path(), torn.offset),
                        (segment.as_path(), last_offset),
                        "cut at {cut}"
                    );
                    assert_eq!(torn.discarded_records, 0);
                }
                // Only when nothing of the record reached the file is there nothing to report.
                None => assert!(
                    intact
                        || (!shorten_file
                            && pristine[last_offset as usize..cut as usize].iter().all(|&b| b == 0)),
                    "damage at {cut} went unreported"
                ),
            }
            // The file is repaired to its preallocated size, and writing goes on from the cut.
            assert_eq!(std::fs::metadata(&segment).unwrap().len(), pristine.len() as u64);
            assert_eq!(writer.next_sequence(), expected_last + 1);
            write_records(&mut writer, 3, 2);
            drop(writer);
            let (_, recovery) = Journal::open(&config).unwrap();
            assert!(recovery.truncation.is_none());
            assert_eq!(read_all(&recovery), expected_records(expected_last + 3), "cut at {cut}");
        }
    }
}

#[test]
fn flipped_byte_in_an_acknowledged_record_is_refused_with_file_offset_and_command() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path(), Durability::None);
    let (mut writer, _) = Journal::open(&config).unwrap();
    write_records(&mut writer, 60, 10);
    let segment = writer.current_segment().to_owned();
    drop(writer);
    // Record 25 sits in the third commit; later commits follow it.
    let offset: u64 =
        SEGMENT_HEADER_BYTES + (1..25).map(|s| record_total_bytes(payload_for(s).len()) as u64).sum::<u64>();
    let byte = read_at(&segment, offset + 20, 1)[0];
    patch(&segment, offset + 20, &[byte ^ 0x01]);

    for err in [Journal::open(&config).unwrap_err(), verify(&location(dir.path())).unwrap_err()] {
        match &err {
            JournalError::Corrupt { file, offset: at, .. } => assert_eq!((file, *at), (&segment, offset)),
            other => panic!("expected Corrupt, got {other}"),
        }
        let message = err.to_string();
        let file_name = segment.file_name().unwrap().to_str().unwrap();
        assert!(message.contains(&format!("{}", segment.display())), "{message}");
        assert!(message.contains(&format!("offset {offset}")), "{message}");
        assert!(
            message.contains(&format!("petrel-engine journal dump --dir {} --prefix journal --file {file_name} --from-offset {offset}", dir.path().display())),
            "{message}"
        );
    }
    // Refusal changed nothing: the damaged byte and every later record are still there.
    assert_eq!(read_at(&segment, offset + 20, 1)[0], byte ^ 0x01);
}

#[test]
fn damage_inside_an_older_segment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path(), Durability::None);
    let (mut writer, _) = Journal::open(&config).unwrap();
    write_records(&mut writer, 3_000, 50);
    drop(writer);
    let files = segment_files(dir.path());
    assert!(files.len() >= 3);
    // The last record of the first segment: corrupting it must not pass as a torn tail.
    let (_, recovery) = Journal::open(&config).unwrap();
    let first = &recovery.segments[0];
    let last_offset =
        first.data_end_offset - record_total_bytes(payload_for(first.last_sequence().unwrap()).len()) as u64;
    patch(&files[0], last_offset + 9, &[0xFF]);
    drop(recovery);
    let err = Journal::open(&config).unwrap_err();
    assert!(
        matches!(&err, JournalError::Corrupt { file, offset, .. } if *file == files[0] && *offset == last_offset),
        "{err}"
    );
}

#[test]
fn garbage_after_the_last_record_is_a_reported_torn_tail_but_refused_in_an_older_segment() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path(), Durability::None);
    let (mut writer, _) = Journal::open(&config).unwrap();
    write_records(&mut writer, 1_500, 25);
    drop(writer);
    let files = segment_files(dir.path());
    let newest = files.last().unwrap().clone();
    let (_, recovery) = Journal::open(&config).unwrap();
    let data_end = recovery.segments.last().unwrap().data_end_offset;
    drop(recovery);

    // Inside the preallocated space, right after the last record.
    let garbage: Vec<u8> = (0..300u32).map(|i| (i * 37 + 11) as u8 | 1).collect();
    patch(&newest, data_end, &garbage);
    let (_, recovery) = Journal::open(&config).unwrap();
    let torn = recovery.truncation.as_ref().expect("garbage is reported");
    assert_eq!((torn.offset, torn.damaged_bytes, torn.discarded_records), (data_end, 300, 0));
    assert_eq!(recovery.last_sequence, Some(1_500));
    drop(recovery);

    // Appended past the preallocated end of the file.
    let mut file = std::fs::OpenOptions::new().append(true).open(&newest).unwrap();
    std::io::Write::write_all(&mut file, &garbage).unwrap();
    drop(file);
    let (_, recovery) = Journal::open(&config).unwrap();
    assert!(
        recovery.truncation.as_ref().unwrap().reason.contains("non-zero bytes"),
        "{:?}",
        recovery.truncation
    );
    assert_eq!(std::fs::metadata(&newest).unwrap().len(), SMALL_SEGMENT_BYTES);
    assert_eq!(read_all(&recovery), expected_records(1_500));
    drop(recovery);

    // The same garbage in an older segment cannot be a crash artefact.
    let mut file = std::fs::OpenOptions::new().append(true).open(&files[0]).unwrap();
    std::io::Write::write_all(&mut file, &garbage).unwrap();
    drop(file);
    assert!(matches!(Journal::open(&config), Err(JournalError::Corrupt { file, .. }) if file == files[0]));
}

#[test]
fn a_truncated_segment_header_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path(), Durability::None);
    let (mut writer, _) = Journal::open(&config).unwrap();
    write_records(&mut writer, 10, 5);
    let segment = writer.current_segment().to_owned();
    drop(writer);
    std::fs::OpenOptions::new().write(true).open(&segment).unwrap().set_len(100).unwrap();
    let err = Journal::open(&config).unwrap_err();
    assert!(
        matches!(&err, JournalError::Corrupt { offset: 0, reason, .. } if reason.contains("shorter than the 4096-byte segment header")),
        "{err}"
    );
}

#[test]
fn sequence_gaps_are_refused_within_and_between_segments() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path(), Durability::None);
    let (mut writer, _) = Journal::open(&config).unwrap();
    write_records(&mut writer, 2_000, 40);
    drop(writer);
    let files = segment_files(dir.path());

    // Within a segment: swap two records of equal size; both stay checksum-valid.
    let newest = files.last().unwrap();
    let first_seq: u64 = newest.file_stem().unwrap().to_str().unwrap()["journal-".len()..].parse().unwrap();
    let size = |s: u64| record_total_bytes(payload_for(s).len());
    let a = first_seq + 1;
    let b = (a + 1..a + 500).find(|&b| size(b) == size(a)).expect("a record of equal size");
    let offset_of = |seq: u64| SEGMENT_HEADER_BYTES + (first_seq..seq).map(|s| size(s) as u64).sum::<u64>();
    let (offset_a, offset_b) = (offset_of(a), offset_of(b));
    let rec_a = read_at(newest, offset_a, size(a));
    let rec_b = read_at(newest, offset_b, size(b));
    patch(newest, offset_a, &rec_b);
    patch(newest, offset_b, &rec_a);
    let err = Journal::open(&config).unwrap_err();
    assert!(
        matches!(&err, JournalError::Corrupt { offset, reason, .. } if *offset == offset_a && reason.contains(&format!("expected sequence {a}, found {b}"))),
        "{err}"
    );
    patch(newest, offset_a, &rec_a);
    patch(newest, offset_b, &rec_b);
    Journal::open(&config).expect("restored journal opens");

    // Between segments: a missing middle segment.
    std::fs::remove_file(&files[1]).unwrap();
    let err = Journal::open(&config).unwrap_err();
    assert!(
        matches!(&err, JournalError::Corrupt { file, reason, .. } if *file == files[2] && reason.contains("records are missing")),
        "{err}"
    );
}

#[test]
fn leftover_segment_being_created_is_removed_and_reported() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path(), Durability::None);
    let (mut writer, _) = Journal::open(&config).unwrap();
    write_records(&mut writer, 10, 5);
    drop(writer);
    let temp = dir.path().join("journal-00000000000000000011.seg.tmp");
    std::fs::write(&temp, b"half a header").unwrap();
    let (mut writer, recovery) = Journal::open(&config).unwrap();
    assert_eq!(recovery.removed_temp_files, vec![temp.clone()]);
    assert!(!temp.exists());
    assert_eq!(write_records(&mut writer, 5, 5), 15);
}

#[test]
fn verify_reports_a_torn_tail_without_repairing_it() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path(), Durability::None);
    let (mut writer, _) = Journal::open(&config).unwrap();
    write_records(&mut writer, 20, 4);
    let segment = writer.current_segment().to_owned();
    drop(writer);
    let (_, recovery) = Journal::open(&config).unwrap();
    let data_end = recovery.segments[0].data_end_offset;
    drop(recovery);
    let last_offset = data_end - record_total_bytes(payload_for(20).len()) as u64;
    patch(&segment, last_offset + 8, &vec![0u8; (data_end - last_offset - 8) as usize]);
    let before = std::fs::read(&segment).unwrap();
    let report = verify(&location(dir.path())).unwrap();
    let torn = report.torn_tail.as_ref().expect("torn tail reported");
    assert_eq!(report.last_sequence, Some(19));
    assert_eq!(torn.offset, last_offset);
    assert!(report.to_string().contains("torn tail"), "{report}");
    assert_eq!(std::fs::read(&segment).unwrap(), before, "verify must not modify files");
}

#[test]
fn damage_inside_the_last_commit_is_a_torn_tail_but_inside_an_earlier_commit_is_refused() {
    // A power loss may persist a commit's pages out of order, so checksum-valid records of the
    // unfinished last commit can follow the damage; a record of a later commit proves the
    // damaged one was acknowledged.
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path(), Durability::None);
    let (mut writer, _) = Journal::open(&config).unwrap();
    write_records(&mut writer, 20, 10); // commits 1..=10 and 11..=20
    let segment = writer.current_segment().to_owned();
    drop(writer);
    let offset_of = |seq: u64| {
        SEGMENT_HEADER_BYTES + (1..seq).map(|s| record_total_bytes(payload_for(s).len()) as u64).sum::<u64>()
    };
    let pristine = std::fs::read(&segment).unwrap();

    patch(&segment, offset_of(14) + 3, &[0xEE]);
    let (_, recovery) = Journal::open(&config).unwrap();
    let torn = recovery.truncation.as_ref().expect("reported");
    assert_eq!((torn.offset, torn.discarded_records), (offset_of(14), 6));
    assert_eq!(read_all(&recovery), expected_records(13));
    drop(recovery);

    std::fs::write(&segment, &pristine).unwrap();
    patch(&segment, offset_of(4) + 3, &[0xEE]);
    let err = Journal::open(&config).unwrap_err();
    assert!(
        matches!(&err, JournalError::Corrupt { offset, reason, .. } if *offset == offset_of(4) && reason.contains("later commit")),
        "{err}"
    );
}
