//! Helpers shared by the integration tests: small segments so roll-over happens often, and a
//! deterministic payload per sequence so any recovered record can be checked exactly.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};

use petrel_journal::{Durability, JournalConfig, JournalWriter, Recovery};

/// Smallest segment the format allows (header + one maximal record, page-rounded).
pub const SMALL_SEGMENT_BYTES: u64 = 72 << 10;

pub fn small_config(dir: &Path, durability: Durability) -> JournalConfig {
    let mut config = JournalConfig::new(dir);
    config.segment_size_bytes = SMALL_SEGMENT_BYTES;
    config.write_buffer_bytes = 16 << 10;
    config.max_record_payload_bytes = 1024;
    config.durability = durability;
    config
}

/// 0 to 120 bytes derived from the sequence, so records differ in size and content.
pub fn payload_for(sequence: u64) -> Vec<u8> {
    let len = (sequence.wrapping_mul(2_654_435_761) % 121) as usize;
    (0..len).map(|i| (sequence as usize).wrapping_mul(31).wrapping_add(i * 7) as u8).collect()
}

pub fn timestamp_for(sequence: u64) -> u64 {
    1_700_000_000_000_000_000 + sequence * 1_000
}

/// Appends `count` records from the writer's next sequence, committing every `batch` records.
pub fn write_records(writer: &mut JournalWriter, count: u64, batch: u64) -> u64 {
    let mut committed = writer.durable_sequence();
    for i in 0..count {
        let seq = writer.next_sequence();
        writer.append(seq, timestamp_for(seq), &payload_for(seq)).expect("append");
        if (i + 1) % batch == 0 {
            committed = writer.commit().expect("commit").durable_sequence;
        }
    }
    writer.commit().expect("commit").durable_sequence.max(committed)
}

/// Every record recovery holds, as (sequence, timestamp, payload).
pub fn read_all(recovery: &Recovery) -> Vec<(u64, u64, Vec<u8>)> {
    let first = recovery.segments.first().map_or(1, |s| s.first_sequence);
    let mut reader = recovery.replay_from(first).expect("replay");
    let mut out = Vec::new();
    while let Some(record) = reader.next_record().expect("record") {
        out.push((record.sequence, record.timestamp_ns, record.payload.to_vec()));
    }
    out
}

/// The records `write_records` produces for sequences `1..=last`.
pub fn expected_records(last: u64) -> Vec<(u64, u64, Vec<u8>)> {
    (1..=last).map(|s| (s, timestamp_for(s), payload_for(s))).collect()
}

pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("list")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

pub fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new().write(true).open(path).expect("open for patch");
    file.write_all_at(bytes, offset).expect("patch");
}

pub fn read_at(path: &Path, offset: u64, len: usize) -> Vec<u8> {
    use std::os::unix::fs::FileExt;
    let file = std::fs::File::open(path).expect("open");
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, offset).expect("read");
    buf
}
