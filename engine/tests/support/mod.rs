//! This package's side of the test kit: petrel-testkit (the daemon harness, the OUCH test
//! client, the config writers) with this package's daemon binary, and the helpers that need the
//! engine's own types, which the kit cannot depend on.
#![allow(dead_code)] // each test binary uses a different part

pub mod engine_setup;
pub mod metrics_sample;
pub mod pair;
pub mod pipeline;

#[allow(unused_imports)] // a test binary that only needs the engine-side helpers
pub use petrel_testkit::*;

/// The daemon built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_petrel-engine");

/// Copies a directory tree (a journal, a backup) file by file.
pub fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Polls `done` every 10 ms; a minute without it is a failure naming `what`. A condition, not a
/// time, decides: a slow machine only waits longer.
pub fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    for _ in 0..6_000 {
        if done() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("{what} did not happen within a minute");
}

/// The value of `key=` in a log line.
pub fn log_field<'a>(line: &'a str, key: &str) -> &'a str {
    let at = line.find(&format!("{key}=")).unwrap_or_else(|| panic!("no {key}= in {line}"));
    line[at + key.len() + 1..].split_whitespace().next().unwrap()
}
