//! The operator tools: dump in both formats, stats numbers, forensic look at an offset.

mod common;

use common::*;
use petrel_journal::{
    dump, hex_payload, inspect_at, verify, DumpFormat, Durability, Journal, JournalLocation,
};

#[test]
fn dump_writes_records_from_a_sequence_as_text_and_json_lines() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path(), Durability::None);
    let (mut writer, _) = Journal::open(&config).unwrap();
    write_records(&mut writer, 2_000, 64);
    drop(writer);
    let location = JournalLocation::new(dir.path(), "journal");

    let mut text = Vec::new();
    let n = dump(&location, 1_990, &mut text, DumpFormat::Text, &hex_payload).unwrap();
    assert_eq!(n, 11);
    let text = String::from_utf8(text).unwrap();
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with(&format!(
            "seq=1990 ts_ns={} len={} file=journal-",
            timestamp_for(1990),
            payload_for(1990).len()
        )),
        "{first}"
    );
    assert!(first.ends_with(&format!("payload={}", hex_payload(&payload_for(1990)))), "{first}");

    let mut json = Vec::new();
    let decode = |p: &[u8]| format!("{} bytes \"quoted\"", p.len());
    dump(&location, 1, &mut json, DumpFormat::JsonLines, &decode).unwrap();
    let lines: Vec<serde_json::Value> = String::from_utf8(json)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("valid JSON line"))
        .collect();
    assert_eq!(lines.len(), 2_000);
    assert_eq!(lines[41]["sequence"], 42);
    assert_eq!(lines[41]["timestamp_ns"], timestamp_for(42));
    assert_eq!(lines[41]["payload"], format!("{} bytes \"quoted\"", payload_for(42).len()));

    let report = verify(&location).unwrap();
    assert_eq!(
        (report.record_count, report.first_sequence, report.last_sequence),
        (2_000, Some(1), Some(2_000))
    );
    assert_eq!(
        (report.first_timestamp_ns, report.last_timestamp_ns),
        (Some(timestamp_for(1)), Some(timestamp_for(2_000)))
    );
    let record_bytes: u64 =
        (1..=2_000).map(|s| petrel_journal::record_total_bytes(payload_for(s).len()) as u64).sum();
    assert_eq!(report.record_bytes, record_bytes);
    assert_eq!(report.file_bytes, report.segments.len() as u64 * SMALL_SEGMENT_BYTES);
    assert!(report.to_string().contains("records:     2000"), "{report}");
}

#[test]
fn inspect_at_decodes_a_damaged_record_and_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path(), Durability::None);
    let (mut writer, _) = Journal::open(&config).unwrap();
    write_records(&mut writer, 5, 5);
    let segment = writer.current_segment().to_owned();
    drop(writer);
    patch(&segment, 4096 + 12, &[0xAB]);

    let mut out = Vec::new();
    inspect_at(&segment, 4096, 64, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("verdict: INVALID: record checksum mismatch"), "{out}");
    assert!(out.contains(&format!("payload_len {}, sequence", payload_for(1).len())), "{out}");
    assert!(out.contains("000000001000  "), "{out}");

    let mut out = Vec::new();
    inspect_at(&segment, 0, 16, &mut out).unwrap();
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("segment header: valid, first sequence 1"), "{out}");
    assert!(out.contains("PTRLJRNL"), "{out}");
}
