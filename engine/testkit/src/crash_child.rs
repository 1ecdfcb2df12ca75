//! The SIGKILL rounds of the crash tests. The test binary runs itself again as a child, to run
//! one ignored test that does the work and reports each step on stdout ([`ChildReport`]); the
//! parent reads the report ([`CrashChild`]), kills the child with SIGKILL after a number of
//! steps of its choosing, restarts it, and checks that what was acknowledged survived.
//!
//! The report is counted, never timed: the parent kills after the n-th acknowledgement it
//! reads, and the child stops after a few more (it waits to be killed), so a round does about
//! the same work on any machine, and a child faster than its parent's reading cannot run through
//! its whole workload in one round.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Lines, StdoutLock, Write};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};

/// Set in the child: the acknowledgements after which it waits to be killed.
const ACKS_MAX_ENV: &str = "PETREL_CRASH_CHILD_ACKS_MAX";

/// A child run of this test binary, read line by line.
pub struct CrashChild {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

/// One line of a child's report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReportLine {
    /// The child recovered up to this sequence and starts.
    Start(u64),
    /// It released an execution with this match number.
    Match(u64),
    /// It acknowledged up to this sequence.
    Ack(u64),
    /// It ran out of work.
    Done,
    /// Anything else: the test harness's own lines ("running 1 test", ...).
    Other(String),
}

impl CrashChild {
    /// Runs the ignored test `test` of this test binary, alone, with `env`. Its stdout is the
    /// report; its stderr passes through. It stops after `acks_max` acknowledgements: the parent
    /// kills it after fewer.
    pub fn spawn(test: &str, acks_max: u64, env: &[(&str, &OsStr)]) -> CrashChild {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--ignored", "--exact", test, "--nocapture", "--test-threads=1"])
            .envs(env.iter().copied())
            .env(ACKS_MAX_ENV, acks_max.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        CrashChild { child, lines }
    }

    /// The next line of the report, or None once the child closed its stdout (it exited).
    pub fn next_line(&mut self) -> Option<ReportLine> {
        let line = self.lines.next()?.unwrap();
        let (word, value) = line.split_once(' ').unwrap_or((line.as_str(), ""));
        let number = || value.parse::<u64>().unwrap_or_else(|_| panic!("a number in {line:?}"));
        Some(match word {
            "START" => ReportLine::Start(number()),
            "MATCH" => ReportLine::Match(number()),
            "ACK" => ReportLine::Ack(number()),
            "DONE" => ReportLine::Done,
            _ => ReportLine::Other(line),
        })
    }

    /// SIGKILL (nothing if the child already exited), then its exit status.
    pub fn kill(mut self) -> ExitStatus {
        self.child.kill().unwrap();
        self.child.wait().unwrap()
    }
}

impl Drop for CrashChild {
    /// A failing test must not leave a child running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The child's side: the report [`CrashChild::next_line`] reads.
pub struct ChildReport {
    out: StdoutLock<'static>,
    acks: u64,
    acks_max: u64,
}

impl ChildReport {
    /// Reports that the child recovered up to `sequence` and starts.
    pub fn start(sequence: u64) -> ChildReport {
        let acks_max = std::env::var(ACKS_MAX_ENV)
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("run only by CrashChild::spawn (needs {ACKS_MAX_ENV})"));
        let mut out = std::io::stdout().lock();
        // The harness has printed "test <name> ... " without a newline: end that line first.
        writeln!(out, "\nSTART {sequence}").unwrap();
        out.flush().unwrap();
        ChildReport { out, acks: 0, acks_max }
    }

    /// An execution released to a client.
    pub fn matched(&mut self, match_number: u64) {
        writeln!(self.out, "MATCH {match_number}").unwrap();
    }

    /// Everything up to `sequence` acknowledged. The last acknowledgement the parent allowed
    /// is handed over, and then the child waits for its kill here.
    pub fn ack(&mut self, sequence: u64) {
        writeln!(self.out, "ACK {sequence}").unwrap();
        self.acks += 1;
        if self.acks == self.acks_max {
            self.flush();
            loop {
                std::thread::park();
            }
        }
    }

    /// Hands what was reported to the parent.
    pub fn flush(&mut self) {
        self.out.flush().unwrap();
    }

    /// The work is done.
    pub fn done(mut self) {
        writeln!(self.out, "DONE").unwrap();
        self.flush();
    }
}
