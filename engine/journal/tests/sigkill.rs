//! A writer process killed with SIGKILL at random moments loses no acknowledged record.
//!
//! The child is this test binary re-executed to run the ignored `crash_child` test, which
//! appends and commits forever, printing `ACK <durable sequence>` after each commit.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use petrel_journal::{Durability, Journal};

const CHILD_DIR_ENV: &str = "PETREL_JOURNAL_CRASH_CHILD_DIR";

#[test]
#[ignore = "child process of acknowledged_records_survive_sigkill_at_random_moments"]
fn crash_child() {
    let Ok(dir) = std::env::var(CHILD_DIR_ENV) else {
        panic!("run only by acknowledged_records_survive_sigkill_at_random_moments (needs {CHILD_DIR_ENV})");
    };
    let (mut writer, _) = Journal::open(&small_config(dir.as_ref(), Durability::Fsync)).unwrap();
    let mut stdout = std::io::stdout().lock();
    loop {
        // Varying batch sizes so that kills land in commits of all shapes, roll-overs included.
        let batch = 1 + writer.next_sequence() % 23;
        for _ in 0..batch {
            let seq = writer.next_sequence();
            writer.append(seq, timestamp_for(seq), &payload_for(seq)).unwrap();
        }
        let durable = writer.commit().unwrap().durable_sequence;
        writeln!(stdout, "ACK {durable}").unwrap();
        stdout.flush().unwrap();
    }
}

struct XorShift(u64);
impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn acknowledged_records_survive_sigkill_at_random_moments() {
    let seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1;
    eprintln!("sigkill test seed {seed}");
    let mut rng = XorShift(seed);
    let dir = tempfile::tempdir().unwrap();
    let config = small_config(dir.path(), Durability::Fsync);
    let mut last_acked = 0u64;
    let mut segments_seen = 0;
    for round in 0..12 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", "crash_child", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let acks_before_kill = 1 + rng.below(80);
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut acks = 0;
        while acks < acks_before_kill {
            let line = lines.next().expect("child exited early").unwrap();
            if let Some(seq) = line.strip_prefix("ACK ") {
                let seq: u64 = seq.parse().unwrap();
                assert!(seq > last_acked || acks == 0 && seq >= last_acked);
                last_acked = seq;
                acks += 1;
            }
        }
        // Let the child run on into its next append/commit/roll-over before the kill.
        std::thread::sleep(Duration::from_micros(rng.below(3_000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // ACKs printed after our last read are acknowledged too.
        for line in lines {
            if let Some(seq) = line.unwrap().strip_prefix("ACK ") {
                last_acked = seq.parse().unwrap();
            }
        }

        let (_, recovery) = Journal::open(&config).unwrap();
        let last = recovery.last_sequence.unwrap_or(0);
        assert!(last >= last_acked, "round {round}: acknowledged {last_acked} but recovered only {last}");
        assert_eq!(read_all(&recovery), expected_records(last), "round {round}");
        // Unacknowledged records that made it to disk are kept; acknowledging resumes from them.
        last_acked = last;
        segments_seen = recovery.segments.len();
    }
    assert!(segments_seen > 1, "the test should cross segment roll-overs");
}
