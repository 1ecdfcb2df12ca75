//! Logging: the hot-thread ring's drop counting, and `logging::init` in a real child process
//! (the global subscriber can be installed once per process, and stderr is what an operator
//! sees outside systemd).

use std::process::Command;
use std::sync::{Arc, Barrier};

use petrel_engine::config::LogConfig;
use petrel_engine::logging::{self, FilterSource, HotLevel, HotLog, HotRecord, LogTarget};

/// Set in the child: which scenario to run instead of being a test harness.
const CHILD_ENV: &str = "PETREL_OBSERVE_LOGGING_CHILD";

fn run_child(scenario: &str, rust_log: Option<&str>) -> (bool, String) {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child_entry", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, scenario)
        .env_remove("JOURNAL_STREAM")
        .env_remove("RUST_LOG");
    if let Some(f) = rust_log {
        cmd.env("RUST_LOG", f);
    }
    let out = cmd.output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// Not a test of its own: the body of the child processes (does nothing in the parent run).
#[test]
fn child_entry() {
    let Ok(scenario) = std::env::var(CHILD_ENV) else { return };
    match scenario.as_str() {
        "drain" => {
            let setup = logging::init(&LogConfig { filter: "info".into() }).unwrap();
            assert_eq!(setup.target, LogTarget::Stderr);
            eprintln!("SETUP {:?} {}", setup.filter_source, setup.filter);
            let log = HotLog::new(2);
            assert!(log.try_log(
                HotRecord::new(HotLevel::Warn, "order rejected: max position")
                    .session(3)
                    .account(7)
                    .order_ref(42)
                    .sequence(1001)
            ));
            assert!(log.try_log(HotRecord::new(HotLevel::Debug, "debug detail").sequence(1002)));
            assert!(!log.try_log(HotRecord::new(HotLevel::Error, "lost")));
            assert_eq!(log.drain(16), 2);
            // A second global logger is refused with a clear error, not a panic.
            let again = logging::init(&LogConfig { filter: "info".into() }).unwrap_err();
            eprintln!("AGAIN {again}");
        }
        "bad_filter" => {
            let e = logging::init(&LogConfig { filter: "info".into() }).unwrap_err();
            eprintln!("ERROR {e}");
        }
        other => panic!("unknown scenario {other}"),
    }
}

#[test]
fn stderr_logs_carry_the_structured_fields_and_the_filter_applies() {
    let (ok, stderr) = run_child("drain", None);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("SETUP Config info"), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("order rejected: max position"))
        .unwrap_or_else(|| panic!("record missing: {stderr}"));
    for field in ["WARN", "session=3", "account=7", "order_ref=42", "sequence=1001"] {
        assert!(line.contains(field), "{field} missing from {line:?}");
    }
    assert!(!stderr.contains("debug detail"), "info filter lets debug through: {stderr}");
    assert!(!stderr.contains("lost"), "a dropped record was logged: {stderr}");
    let drops = stderr
        .lines()
        .find(|l| l.contains("records were dropped"))
        .unwrap_or_else(|| panic!("drop warning missing: {stderr}"));
    assert!(drops.contains("dropped_records=1"), "{drops}");
    assert!(stderr.contains("AGAIN a global logger is already installed"), "{stderr}");

    // RUST_LOG overrides the configuration.
    let (ok, stderr) = run_child("drain", Some("debug"));
    assert!(ok, "{stderr}");
    assert!(stderr.contains("SETUP RustLog debug"), "{stderr}");
    assert!(stderr.contains("debug detail"), "{stderr}");
}

#[test]
fn a_bad_rust_log_is_a_clear_error() {
    let (ok, stderr) = run_child("bad_filter", Some("info,petrel=verbose"));
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains(
            "ERROR invalid log filter \"info,petrel=verbose\" in the RUST_LOG environment variable"
        ),
        "{stderr}"
    );
    assert_eq!(FilterSource::RustLog.to_string(), "the RUST_LOG environment variable");
}

#[test]
fn full_ring_drops_are_counted_and_never_block() {
    const CAPACITY: usize = 64;
    const PRODUCERS: u64 = 4;
    const PER_PRODUCER: u64 = 1000;
    let log = Arc::new(HotLog::new(CAPACITY));
    let start = Arc::new(Barrier::new(PRODUCERS as usize));
    let accepted: u64 = (0..PRODUCERS)
        .map(|p| {
            let (log, start) = (log.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                (0..PER_PRODUCER)
                    .filter(|i| {
                        log.try_log(HotRecord::new(HotLevel::Info, "x").sequence(p * PER_PRODUCER + i))
                    })
                    .count() as u64
            })
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|t| t.join().unwrap())
        .sum();
    // Nobody drained: exactly the capacity got in, everything else was counted as dropped.
    assert_eq!(accepted, CAPACITY as u64);
    assert_eq!(log.dropped_total(), PRODUCERS * PER_PRODUCER - CAPACITY as u64);
    assert_eq!(log.len(), CAPACITY);

    // Drains are bounded per call, and room comes back.
    assert_eq!(log.drain(10), 10);
    assert_eq!(log.len(), CAPACITY - 10);
    assert!(log.try_log(HotRecord::new(HotLevel::Info, "after drain")));
    assert_eq!(log.drain(usize::MAX), CAPACITY - 9);
    assert!(log.is_empty());
    assert_eq!(log.dropped_total(), PRODUCERS * PER_PRODUCER - CAPACITY as u64, "drops are cumulative");
}
