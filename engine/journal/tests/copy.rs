//! `copy_records`: a consistent prefix of a journal, copied without its lock, that the writer's
//! own open takes as it is: through a sequence, to the end of the records, before a torn tail
//! or a commit half written, never past damage in a segment a later one follows; and segment
//! headers in a newer format refused by name.

mod common;

use common::*;
use petrel_journal::{
    copy_records, open_read_only, record_total_bytes, Durability, Journal, JournalError, JournalLocation,
};

fn location(dir: &std::path::Path) -> JournalLocation {
    JournalLocation::new(dir, "journal")
}

/// Byte offset of record `sequence` in the segment starting at `first` (record sizes of
/// `write_records` are deterministic).
fn offset_of(first: u64, sequence: u64) -> u64 {
    4096 + (first..sequence).map(|s| record_total_bytes(payload_for(s).len()) as u64).sum::<u64>()
}

/// Opens the copy as the engine would at start: nothing cut, the expected records.
fn assert_copy_holds(dir: &std::path::Path, last: u64) {
    let (writer, recovery) = Journal::open(&small_config(dir, Durability::None)).unwrap();
    assert!(recovery.truncation.is_none(), "{:?}", recovery.truncation);
    assert_eq!(read_all(&recovery), expected_records(last));
    assert_eq!(writer.next_sequence(), last + 1);
}

#[test]
fn copies_every_record_or_those_through_a_sequence() {
    let source = tempfile::tempdir().unwrap();
    let (mut writer, _) = Journal::open(&small_config(source.path(), Durability::None)).unwrap();
    let last = write_records(&mut writer, 3_000, 40);
    assert!(segment_files(source.path()).len() > 3, "the journal spans several segments");

    let all = tempfile::tempdir().unwrap();
    let copied = copy_records(&location(source.path()), &location(all.path()), None).unwrap();
    assert_eq!((copied.first_sequence, copied.last_sequence, copied.records), (Some(1), Some(last), last));
    assert_copy_holds(all.path(), last);

    // Through a sequence inside a segment, while the writer keeps appending: a prefix.
    write_records(&mut writer, 500, 40);
    let some = tempfile::tempdir().unwrap();
    let copied = copy_records(&location(source.path()), &location(some.path()), Some(1_234)).unwrap();
    assert_eq!(copied.last_sequence, Some(1_234));
    assert_copy_holds(some.path(), 1_234);
    let segments_through = segment_files(some.path());
    assert_eq!(copied.files, segments_through, "segments after the sequence are not copied");
}

#[test]
fn stops_before_a_torn_tail_and_refuses_damage_in_an_older_segment() {
    let source = tempfile::tempdir().unwrap();
    let (mut writer, _) = Journal::open(&small_config(source.path(), Durability::None)).unwrap();
    let last = write_records(&mut writer, 2_000, 40);
    drop(writer);
    let segments = segment_files(source.path());
    let newest = segments.last().unwrap();
    let newest_first =
        open_read_only(&location(source.path())).unwrap().segments.last().unwrap().first_sequence;

    // A commit half written at the end of the newest segment: the copy ends before it.
    let end = offset_of(newest_first, last + 1);
    patch(newest, end, &[0xAB; 20]);
    let copy = tempfile::tempdir().unwrap();
    let copied = copy_records(&location(source.path()), &location(copy.path()), None).unwrap();
    assert_eq!(copied.last_sequence, Some(last));
    assert_copy_holds(copy.path(), last);

    // A damaged record in a segment that a later one follows: refused, as recovery refuses it.
    let oldest = &segments[0];
    let at = offset_of(1, 10) + 40;
    let byte = read_at(oldest, at, 1)[0];
    patch(oldest, at, &[byte ^ 0x01]);
    let copy = tempfile::tempdir().unwrap();
    let err = copy_records(&location(source.path()), &location(copy.path()), None).unwrap_err();
    assert!(
        matches!(&err, JournalError::Corrupt { file, offset, .. } if file == oldest && *offset == offset_of(1, 10)),
        "{err}"
    );
}

#[test]
fn a_segment_in_a_newer_format_is_refused_by_name() {
    let source = tempfile::tempdir().unwrap();
    let (mut writer, _) = Journal::open(&small_config(source.path(), Durability::None)).unwrap();
    write_records(&mut writer, 100, 10);
    drop(writer);
    let segment = segment_files(source.path()).remove(0);
    let mut header = read_at(&segment, 0, 64);
    header[8..12].copy_from_slice(&(petrel_journal::FORMAT_VERSION + 1).to_le_bytes());
    let crc = crc32c::crc32c(&header[..60]);
    header[60..64].copy_from_slice(&crc.to_le_bytes());
    patch(&segment, 0, &header);
    let copy = tempfile::tempdir().unwrap();
    let err = copy_records(&location(source.path()), &location(copy.path()), None).unwrap_err();
    assert!(
        matches!(&err, JournalError::NewerFormat { file, found } if *file == segment && *found == petrel_journal::FORMAT_VERSION + 1),
        "{err}"
    );
    assert_eq!(
        petrel_journal::newest_segment_format_version(&location(source.path())).unwrap(),
        Some(petrel_journal::FORMAT_VERSION + 1)
    );
}
