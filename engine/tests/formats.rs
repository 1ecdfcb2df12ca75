//! Format versions through the real binary: what `--version` says a build reads and writes,
//! what `journal formats` finds on disk, and the refusal of a journal segment, an output
//! journal segment or a snapshot in a newer format, at start and in the journal tools, naming
//! the file, the version found, the version this build reads and what to do. The files are
//! written by the real daemon, and a newer build is stood in for by patching their headers'
//! version field (with the header checksum a newer build would write).

mod support;

use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use petrel_engine::journal::{FORMAT_VERSION, SNAPSHOT_VERSION};
use support::{write_config, Client, Daemon, Got, OwnedOutbound, BIN};

const AAPL_585: u64 = 5_853_300;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().expect("exited"),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// `petrel-engine journal formats --config FILE`, checked to succeed: its one line.
fn formats(config: &Path) -> String {
    let (code, out, err) = run(&["journal", "formats", "--config", config.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.lines().count(), 1, "{out}");
    out.trim_end().to_owned()
}

/// The files in `dir` whose names start with `prefix`, sorted.
fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with(prefix))
        .collect();
    found.sort();
    found
}

/// Sets the version field (bytes 8..12) of the header at the start of `path`, and the header
/// checksum (CRC32C of bytes 0..60, at 60..64) unless `damage_only`. Returns the old header.
fn set_version(path: &Path, version: u32, damage_only: bool) -> [u8; 64] {
    let file = std::fs::OpenOptions::new().read(true).write(true).open(path).unwrap();
    let mut header = [0u8; 64];
    file.read_exact_at(&mut header, 0).unwrap();
    let original = header;
    header[8..12].copy_from_slice(&version.to_le_bytes());
    if !damage_only {
        let crc = crc32c::crc32c(&header[..60]);
        header[60..64].copy_from_slice(&crc.to_le_bytes());
    }
    file.write_all_at(&header, 0).unwrap();
    original
}

fn put_back(path: &Path, header: [u8; 64]) {
    let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    file.write_all_at(&header, 0).unwrap();
}

/// `petrel-engine run` on `config`, expected to refuse to start: its exit status and stderr.
fn run_refused(config: &Path) -> (i32, String) {
    let out = Command::new(BIN)
        .args(["run", "--config", config.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    (out.status.code().expect("exited"), String::from_utf8(out.stderr).unwrap())
}

/// The refusal names the file, the format, the version found, the one this build reads, and
/// says to install a build that reads it.
fn assert_names_newer(message: &str, file: &Path, what: &str, found: u32, reads: u32) {
    for expected in [
        file.display().to_string(),
        format!("is in {what} format {found}"),
        format!("it reads {what} format {reads}"),
        format!("Install a petrel-engine that reads {what} format {found}"),
    ] {
        assert!(message.contains(&expected), "{expected:?} missing from:\n{message}");
    }
}

#[test]
fn version_prints_the_formats_this_build_reads_and_writes() {
    let expected = format!(
        "petrel-engine {}\njournal format: reads {FORMAT_VERSION}, writes {FORMAT_VERSION}\nsnapshot format: \
         reads {SNAPSHOT_VERSION}, writes {SNAPSHOT_VERSION}\n",
        env!("CARGO_PKG_VERSION")
    );
    for flag in ["--version", "-V"] {
        let (code, out, err) = run(&[flag]);
        assert_eq!(code, 0, "{err}");
        assert_eq!(out, expected, "{flag}");
    }
}

#[test]
fn formats_on_disk_and_newer_formats_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "epoll");
    let cfg = config.to_str().unwrap();
    assert_eq!(formats(&config), r#"{"journal": 0, "snapshot": 0}"#, "nothing on disk yet");

    // A real journal, output journal and snapshot (the daemon writes one when it stops).
    let daemon = Daemon::start(BIN, &config);
    let mut alice = Client::connect(daemon.addr);
    assert!(matches!(alice.login("ALICE", "alice", 0), Got::LoginAccepted { .. }));
    alice.enter(1, b'B', 10, "AAPL", AAPL_585, b'0');
    assert!(matches!(alice.ouch(), OwnedOutbound::Accepted { user_ref: 1, .. }));
    assert!(daemon.stop().success());
    let journal_dir = dir.path().join("journal");
    let segment = files(&journal_dir, "input-").pop().expect("an input segment");
    let output = files(&journal_dir.join("sessions"), "account_0-").pop().expect("Alice's output journal");
    let snapshot = files(&dir.path().join("snapshots"), "snapshot-").pop().expect("a snapshot at stop");
    assert_eq!(
        formats(&config),
        format!(r#"{{"journal": {FORMAT_VERSION}, "snapshot": {SNAPSHOT_VERSION}}}"#)
    );

    // A flipped version field whose checksum no longer holds is damage, not a newer format.
    let original = set_version(&segment, FORMAT_VERSION + 1, true);
    let (code, _, err) = run(&["journal", "verify", "--config", cfg]);
    assert_eq!(code, 1);
    assert!(err.contains("journal is corrupt") && err.contains("checksum mismatch"), "{err}");
    put_back(&segment, original);

    // A newer input segment: `journal formats` reports it; verify and run refuse it by name.
    let newer = FORMAT_VERSION + 1;
    let original = set_version(&segment, newer, false);
    assert_eq!(formats(&config), format!(r#"{{"journal": {newer}, "snapshot": {SNAPSHOT_VERSION}}}"#));
    let (code, _, err) = run(&["journal", "verify", "--config", cfg]);
    assert_eq!(code, 1);
    assert_names_newer(&err, &segment, "journal", newer, FORMAT_VERSION);
    let (code, err) = run_refused(&config);
    assert_eq!(code, 1, "{err}");
    assert_names_newer(&err, &segment, "journal", newer, FORMAT_VERSION);
    put_back(&segment, original);

    // A newer output journal segment: refused at start, before the input journal is opened.
    let original = set_version(&output, newer, false);
    assert_eq!(formats(&config), format!(r#"{{"journal": {newer}, "snapshot": {SNAPSHOT_VERSION}}}"#));
    let (code, err) = run_refused(&config);
    assert_eq!(code, 1, "{err}");
    assert_names_newer(&err, &output, "journal", newer, FORMAT_VERSION);
    put_back(&output, original);

    // A newer snapshot: refused at start and by a replay from it.
    let newer = SNAPSHOT_VERSION + 1;
    let original = set_version(&snapshot, newer, false);
    assert_eq!(formats(&config), format!(r#"{{"journal": {FORMAT_VERSION}, "snapshot": {newer}}}"#));
    let (code, err) = run_refused(&config);
    assert_eq!(code, 1, "{err}");
    assert_names_newer(&err, &snapshot, "snapshot", newer, SNAPSHOT_VERSION);
    let (code, _, err) = run(&["journal", "replay", "--config", cfg, "--from-snapshot"]);
    assert_eq!(code, 1);
    assert_names_newer(&err, &snapshot, "snapshot", newer, SNAPSHOT_VERSION);
    put_back(&snapshot, original);

    // Put back, the files are what they were: the engine starts on them.
    let daemon = Daemon::start(BIN, &config);
    assert!(daemon.stop().success());
}
