//! Durable throughput of the journal against the raw bound of the same disk, and replay speed.
//!
//! cargo run --release -p petrel-journal --example journal_bench -- [DIR] [REPLAY_RECORDS]
//!
//! DIR (default `target/journal-bench`) must be on the disk under test: not a tmpfs. For each
//! batch size the same bytes are written three ways, interleaved commit by commit:
//! - journal: `append` x batch + `commit` (pwrite + fdatasync) on a preallocated segment;
//! - raw append: pwrite of the batch's bytes at the end of a plain file + fdatasync;
//! - raw prealloc: the same into a file preallocated with fallocate (what the journal does).
//!
//! Then REPLAY_RECORDS (default 10,000,000) records of 40 bytes are written (durability none),
//! and `Journal::open` (full validation) and `replay_from(1)` are timed.

use std::fs::OpenOptions;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use petrel_journal::{record_total_bytes, Durability, Journal, JournalConfig};

const PAYLOAD_BYTES: usize = 48;
const BATCH_SIZES: [u64; 6] = [1, 16, 64, 256, 1024, 4096];

struct Run {
    records_per_s: f64,
    commit_p50: Duration,
    commit_p99: Duration,
}

fn summarize(records: u64, total: Duration, mut commits: Vec<Duration>) -> Run {
    commits.sort();
    let pick = |q: f64| commits[((commits.len() - 1) as f64 * q) as usize];
    Run { records_per_s: records as f64 / total.as_secs_f64(), commit_p50: pick(0.5), commit_p99: pick(0.99) }
}

fn commits_for(batch: u64) -> u64 {
    (2_000_000 / batch).clamp(300, 2_000)
}

/// Journal, raw append and raw preallocated writes of one batch size, interleaved commit by
/// commit so that all three see the same disk and the same noise from other processes.
fn bench_batch(dir: &Path, batch: u64) -> [Run; 3] {
    let mut config = JournalConfig::new(dir.join(format!("journal-b{batch}")));
    config.durability = Durability::Fsync;
    let (mut writer, _) = Journal::open(&config).expect("open journal");
    let payload = [0x5Au8; PAYLOAD_BYTES];
    let commits = commits_for(batch);
    let batch_bytes = batch as usize * record_total_bytes(PAYLOAD_BYTES);
    let raw_paths = [dir.join(format!("raw-append-b{batch}")), dir.join(format!("raw-prealloc-b{batch}"))];
    let raw_files = raw_paths.clone().map(|path| {
        OpenOptions::new().read(true).write(true).create(true).truncate(true).open(path).expect("create")
    });
    let len = (commits as usize * batch_bytes) as i64;
    nix::fcntl::fallocate(raw_files[1].as_raw_fd(), nix::fcntl::FallocateFlags::empty(), 0, len)
        .expect("fallocate");
    raw_files[1].sync_all().expect("fsync");
    let raw_buf = vec![0x5Au8; batch_bytes];

    let mut latencies: [Vec<Duration>; 3] = Default::default();
    for i in 0..commits {
        // Rotate who goes first: an fdatasync can be made to wait for the filesystem journal
        // commit of the write before it, which would otherwise always tax the same contender.
        for k in 0..3 {
            let which = (i as usize + k) % 3;
            let t = Instant::now();
            if which == 0 {
                for _ in 0..batch {
                    let seq = writer.next_sequence();
                    writer.append(seq, seq, &payload).expect("append");
                }
                writer.commit().expect("commit");
            } else {
                let file = &raw_files[which - 1];
                file.write_all_at(&raw_buf, i * batch_bytes as u64).expect("pwrite");
                file.sync_data().expect("fdatasync");
            }
            latencies[which].push(t.elapsed());
        }
    }
    drop(writer);
    std::fs::remove_dir_all(&config.dir).expect("clean up");
    for path in &raw_paths {
        std::fs::remove_file(path).expect("clean up");
    }
    latencies.map(|l| {
        let total = l.iter().sum();
        summarize(commits * batch, total, l)
    })
}

fn bench_replay(dir: &Path, records: u64) {
    let mut config = JournalConfig::new(dir.join("journal-replay"));
    config.durability = Durability::None;
    let payload = [0xA5u8; 40];
    let (mut writer, _) = Journal::open(&config).expect("open");
    let write_start = Instant::now();
    for _ in 0..records {
        let seq = writer.next_sequence();
        if writer.append(seq, seq, &payload).is_err() {
            writer.commit().expect("commit");
            writer.append(seq, seq, &payload).expect("append after commit");
        }
    }
    writer.commit().expect("commit");
    let write_elapsed = write_start.elapsed();
    drop(writer);

    let open_start = Instant::now();
    let (_writer, recovery) = Journal::open(&config).expect("reopen");
    let open_elapsed = open_start.elapsed();
    assert_eq!(recovery.record_count, records);
    let replay_start = Instant::now();
    let mut reader = recovery.replay_from(1).expect("replay");
    let mut checksum = 0u64;
    let mut n = 0u64;
    while let Some(record) = reader.next_record().expect("record") {
        checksum = checksum.wrapping_add(record.sequence ^ u64::from(record.payload[0]));
        n += 1;
    }
    let replay_elapsed = replay_start.elapsed();
    assert_eq!(n, records);
    let per_s = |d: Duration| records as f64 / d.as_secs_f64() / 1e6;
    println!();
    println!(
        "replay of {records} records of 40-byte payload ({} segments, page cache warm):",
        recovery.segments.len()
    );
    println!(
        "  write (durability none):        {:>8.3} s  {:>6.2} M records/s",
        write_elapsed.as_secs_f64(),
        per_s(write_elapsed)
    );
    println!(
        "  Journal::open (validate all):   {:>8.3} s  {:>6.2} M records/s",
        open_elapsed.as_secs_f64(),
        per_s(open_elapsed)
    );
    println!(
        "  replay_from(1):                 {:>8.3} s  {:>6.2} M records/s",
        replay_elapsed.as_secs_f64(),
        per_s(replay_elapsed)
    );
    println!(
        "  restart total (open + replay):  {:>8.3} s  (checksum {checksum:x})",
        (open_elapsed + replay_elapsed).as_secs_f64()
    );
    std::fs::remove_dir_all(&config.dir).expect("clean up");
}

/// Cost of `append` alone (encode + CRC32C into the buffer), which the journal adds to each
/// commit on top of what the raw write does.
fn bench_append() {
    let dir = std::env::temp_dir().join(format!("petrel-journal-append-{}", std::process::id()));
    let mut config = JournalConfig::new(&dir);
    config.durability = Durability::None;
    let (mut writer, _) = Journal::open(&config).expect("open");
    let payload = [0x5Au8; PAYLOAD_BYTES];
    let per_buffer = config.write_buffer_bytes as u64 / record_total_bytes(PAYLOAD_BYTES) as u64;
    let mut appended = 0u64;
    let mut spent = Duration::ZERO;
    for _ in 0..50 {
        let t = Instant::now();
        for _ in 0..per_buffer {
            let seq = writer.next_sequence();
            writer.append(seq, seq, &payload).expect("append");
        }
        spent += t.elapsed();
        appended += per_buffer;
        writer.commit().expect("commit");
    }
    drop(writer);
    std::fs::remove_dir_all(&dir).expect("clean up");
    println!(
        "append alone: {:.1} ns per {PAYLOAD_BYTES}-byte record",
        spent.as_nanos() as f64 / appended as f64
    );
}

fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "target/journal-bench".into()));
    let replay_records: u64 =
        args.next().map_or(10_000_000, |s| s.parse().expect("REPLAY_RECORDS is a number"));
    std::fs::create_dir_all(&dir).expect("create bench directory");
    println!(
        "durable throughput, {PAYLOAD_BYTES}-byte payloads ({} bytes per record on disk), fsync mode, dir {}",
        record_total_bytes(PAYLOAD_BYTES),
        dir.display()
    );
    println!(
        "{:>6} {:>9} | {:>12} {:>9} {:>9} | {:>12} {:>9} | {:>12} {:>9} | {:>6}",
        "batch",
        "records",
        "journal/s",
        "p50 us",
        "p99 us",
        "raw app/s",
        "p50 us",
        "raw pre/s",
        "p50 us",
        "ratio"
    );
    bench_append();
    for batch in BATCH_SIZES {
        let [journal, raw, pre] = bench_batch(&dir, batch);
        println!(
            "{batch:>6} {:>9} | {:>12.0} {:>9.0} {:>9.0} | {:>12.0} {:>9.0} | {:>12.0} {:>9.0} | {:>5.0}%",
            commits_for(batch) * batch,
            journal.records_per_s,
            journal.commit_p50.as_secs_f64() * 1e6,
            journal.commit_p99.as_secs_f64() * 1e6,
            raw.records_per_s,
            raw.commit_p50.as_secs_f64() * 1e6,
            pre.records_per_s,
            pre.commit_p50.as_secs_f64() * 1e6,
            100.0 * journal.records_per_s / raw.records_per_s,
        );
    }
    bench_replay(&dir, replay_records);
}
