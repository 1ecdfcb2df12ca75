//! A journal write that fails stops the engine and loses nothing it acknowledged, on either
//! data path (CI runs this file on both; see `xtask/src/ci.rs`). A test-only failpoint makes
//! the group commit holding one command fail as a failed write would, before any of its bytes
//! reach the disk: that command is never acknowledged, the engine stops with an error that
//! names the journal, and a restart recovers exactly what was acknowledged and trades on.

mod support;

use support::*;

const JOURNAL_FAIL_AT: &str = "PETREL_FAILPOINT_JOURNAL_FAIL_AT";
const AAPL_585_33: u64 = 5_853_300;
const TICK: u64 = 100;

#[test]
fn a_failed_journal_write_stops_the_engine_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "auto");
    // A fresh journal: ALICE's orders 1, 2 and 3 are commands 1, 2 and 3, each committed alone
    // (she waits for each answer), so the failpoint hits order 3's commit and nothing else.
    let daemon = Daemon::start_with_env(BIN, &config, &[(JOURNAL_FAIL_AT, "3")]);
    let mut alice = Client::connect(daemon.addr);
    assert_eq!(
        alice.login("ALICE", "alice", 1),
        Got::LoginAccepted { session: "PETREL".into(), sequence: 1 }
    );
    assert_eq!(alice.ouch(), OwnedOutbound::SystemEvent { code: b'S' });
    for user_ref in 1..=2u32 {
        alice.enter(user_ref, b'B', 100, "AAPL", AAPL_585_33 - u64::from(user_ref) * TICK, b'0');
        assert!(
            matches!(alice.ouch(), OwnedOutbound::Accepted { user_ref: r, .. } if r == user_ref),
            "order {user_ref} is acknowledged"
        );
    }
    alice.enter(3, b'B', 100, "AAPL", AAPL_585_33 - 3 * TICK, b'0');
    // The engine stops: the session ends (End of Session, or the connection closes) and order 3
    // was never acknowledged.
    match alice.recv() {
        Some(Got::EndOfSession) | None => {}
        Some(Got::Ouch(m)) => panic!("nothing may answer order 3 after its commit failed: {m:?}"),
        Some(other) => panic!("unexpected {other:?}"),
    }
    let failed = daemon.wait_log_lines("journal writer failed", std::time::Duration::from_secs(10));
    assert!(
        failed.iter().any(|l| l.contains("durable_sequence=2") && l.contains(JOURNAL_FAIL_AT)),
        "the failure names the last durable sequence and its cause: {failed:?}"
    );
    let status = daemon.wait_exit();
    assert_eq!(status.code(), Some(1), "a journal failure is an error exit, for systemd to restart");

    // The restart recovers exactly commands 1 and 2, and trading goes on: order 3's reference
    // was never journaled (a reused reference would be refused), and order 1 still rests.
    let daemon = Daemon::start(BIN, &config);
    assert_eq!(daemon.last_sequence(), 2, "the journal holds what was acknowledged, nothing more");
    let mut alice = Client::connect(daemon.addr);
    assert_eq!(
        alice.login("ALICE", "alice", 4),
        Got::LoginAccepted { session: "PETREL".into(), sequence: 4 }
    );
    alice.enter(3, b'B', 100, "AAPL", AAPL_585_33 - 3 * TICK, b'0');
    assert!(
        matches!(alice.ouch(), OwnedOutbound::Accepted { user_ref: 3, .. }),
        "order 3's reference is free"
    );
    alice.cancel(1, 0);
    assert!(
        matches!(alice.ouch(), OwnedOutbound::Canceled { user_ref: 1, qty: 100, .. }),
        "order 1 survived"
    );
    assert!(daemon.stop().success());
}
