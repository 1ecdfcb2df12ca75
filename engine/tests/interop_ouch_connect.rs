//! Interoperability with a SoupBinTCP/OUCH client this project did not write: `ouch-connect`
//! 5.0.1 from PyPI logs in to the real daemon over loopback (its login pads fields its own
//! way), sends a Cancel Order for an unknown order, receives and parses the Cancel Reject that
//! comes back as sequenced data, and logs out.
//! Its OUCH order messages use a 9-byte symbol where the OUCH 5.0 specification has 8 (see
//! engine/proto/SPEC-NOTES.md), so order entry is tested with our own client in gateway.rs.
//!
//! Needs python3 (>= 3.11) with venv and PyPI on first run; fails with a clear message if not.

mod support;
use petrel_testkit::venv::venv_python;
use std::path::Path;
use std::process::Command;
use support::*;

/// The independent client, pinned.
const OUCH_CONNECT: &[&str] = &["ouch-connect==5.0.1", "links_connect==0.1.2"];

#[test]
fn ouch_connect_logs_in_is_answered_in_sequenced_data_and_logs_out() {
    let python = venv_python(&Path::new(env!("CARGO_TARGET_TMPDIR")).join("ouch-connect-venv"), OUCH_CONNECT);
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(BIN, &write_config(dir.path(), "auto"));
    let output = Command::new(python)
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/daemon_client.py"))
        .arg(daemon.addr.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "client failed: {}\n{stdout}", String::from_utf8_lossy(&output.stderr));
    assert!(
        stdout.contains("CancelReject") && stdout.contains("77"),
        "the client parsed our Cancel Reject: {stdout}"
    );
    let logins = daemon.wait_log_lines("session logged in", std::time::Duration::from_secs(10));
    assert_eq!(logins.len(), 1, "the daemon logged the login: {logins:?}");
    assert!(logins[0].contains("account=0"), "alice is account 0: {logins:?}");
    assert!(daemon.stop().success());
}
