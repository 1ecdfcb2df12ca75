//! `petrel-engine journal backup|restore` on the real daemon: a backup taken while a client
//! keeps trading, verified by its manifest's checksums, restored onto an empty directory with a
//! second configuration, and the daemon started there recovers to the manifest's sequence and
//! state hash with every acknowledged order in its clients' streams. Restore refuses a damaged
//! backup and a non-empty target without writing anything; backup refuses a non-empty target.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use support::{
    copy_dir, http_get, log_field, wait_for, write_config, Client, Daemon, Got, OwnedOutbound, BIN,
};

const AAPL_585: u64 = 5_853_300;
/// Alice's resting orders, all acknowledged before the backup.
const ALICE_ORDERS: u32 = 50;

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN).args(args).output().unwrap();
    (
        out.status.code().expect("exited"),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// The development configuration in `dir`, writing a snapshot every 200 commands so that
/// backups are taken while snapshots are written and pruned.
fn config_in(dir: &Path) -> PathBuf {
    let path = write_config(dir, "epoll");
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("every_commands = 100_000"), "config/dev.toml's snapshot interval moved");
    std::fs::write(&path, text.replace("every_commands = 100_000", "every_commands = 200")).unwrap();
    path
}

fn sha256_hex(path: &Path) -> String {
    Sha256::digest(std::fs::read(path).unwrap()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Bob enters an order, hears it accepted, cancels it, hears it cancelled, and again, until
/// told to stop; `acked` is the user reference of the last order he heard accepted. One order
/// at a time: at most one of his commands is in flight.
fn bob_trades(
    addr: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU32>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut bob = Client::connect(addr);
        assert!(matches!(bob.login("bob", "bob", 0), Got::LoginAccepted { .. }));
        let mut user_ref = 1u32;
        while !stop.load(Ordering::SeqCst) {
            bob.enter(user_ref, b'S', 1, "AAPL", AAPL_585 + 100, b'0');
            assert!(matches!(bob.ouch(), OwnedOutbound::Accepted { user_ref: r, .. } if r == user_ref));
            acked.store(user_ref, Ordering::SeqCst);
            bob.cancel(user_ref, 0);
            assert!(matches!(bob.ouch(), OwnedOutbound::Canceled { user_ref: r, .. } if r == user_ref));
            user_ref += 1;
        }
    })
}

/// The messages of `user`'s stream from message 1, as many as it held at login.
fn whole_stream(addr: std::net::SocketAddr, user: &str, password: &str) -> Vec<OwnedOutbound> {
    let mut client = Client::connect(addr);
    let Got::LoginAccepted { sequence: next, .. } = client.login(user, password, 0) else { panic!("login") };
    client.send_packet(b'O', b"");
    assert!(client.closed_by_server());
    let mut client = Client::connect(addr);
    assert!(matches!(client.login(user, password, 1), Got::LoginAccepted { sequence: 1, .. }));
    (1..next).map(|_| client.ouch()).collect()
}

#[test]
fn a_backup_taken_while_trading_restores_to_its_recovery_point() {
    let live_dir = tempfile::tempdir().unwrap();
    let live = config_in(live_dir.path());
    let daemon = Daemon::start(BIN, &live);
    let mut alice = Client::connect(daemon.addr);
    assert!(matches!(alice.login("ALICE", "alice", 0), Got::LoginAccepted { .. }));
    for i in 1..=ALICE_ORDERS {
        alice.enter(i, b'B', 10, "AAPL", AAPL_585 - 100 * u64::from(i), b'0');
        assert!(matches!(alice.ouch(), OwnedOutbound::Accepted { user_ref, .. } if user_ref == i));
    }
    let (stop, acked) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicU32::new(0)));
    let bob = bob_trades(daemon.addr, stop.clone(), acked.clone());
    wait_for("Bob's 300th order", || acked.load(Ordering::SeqCst) >= 300);

    // A backup into a directory that holds something is refused, and the something is kept.
    let scratch = tempfile::tempdir().unwrap();
    std::fs::write(scratch.path().join("keep.txt"), "mine").unwrap();
    let (code, _, err) = run(&[
        "journal",
        "backup",
        "--config",
        live.to_str().unwrap(),
        "--to",
        scratch.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(err.contains("is not empty") && err.contains("keep.txt"), "{err}");
    assert_eq!(std::fs::read_to_string(scratch.path().join("keep.txt")).unwrap(), "mine");

    // The backup, while Bob trades: the recovery point is the engine's durable sequence.
    let backups = tempfile::tempdir().unwrap();
    let backup = backups.path().join("b1");
    let acked_before = acked.load(Ordering::SeqCst);
    let admin = daemon.admin.expect("the daemon logged its admin address").to_string();
    let args = [
        "journal",
        "backup",
        "--config",
        live.to_str().unwrap(),
        "--to",
        backup.to_str().unwrap(),
        "--admin",
        &admin,
    ];
    let (code, out, err) = run(&args);
    let acked_after = acked.load(Ordering::SeqCst);
    assert_eq!(code, 0, "{err}");
    let printed: serde_json::Value = serde_json::from_str(out.trim()).expect("one JSON line");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(backup.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["sequence_source"], "admin");
    assert_eq!(printed["sequence"], manifest["sequence"]);
    assert_eq!(printed["state_hash"], manifest["state_hash"]);
    let sequence = manifest["sequence"].as_u64().unwrap();
    let state_hash = manifest["state_hash"].as_str().unwrap().to_owned();
    assert!(manifest["snapshot_sequence"].as_u64().is_some_and(|s| s > 0 && s <= sequence), "{manifest}");
    assert_eq!(manifest["formats"], serde_json::json!({"journal": 1, "snapshot": 1}));
    let files = manifest["files"].as_array().unwrap();
    for folder in [
        "journal/input-",
        "snapshots/snapshot-",
        "sessions/account_0-",
        "sessions/account_1-",
        "sessions/released",
    ] {
        assert!(
            files.iter().any(|f| f["path"].as_str().unwrap().starts_with(folder)),
            "no {folder} in {manifest}"
        );
    }
    for file in files {
        let path = backup.join(file["path"].as_str().unwrap());
        assert_eq!(sha256_hex(&path), file["sha256"].as_str().unwrap(), "{}", path.display());
    }

    // A second backup, the recovery point read from the journal (no admin address: the test
    // configuration's admin port is 0); `journal replay` of its copy prints its state hash.
    let backup2 = backups.path().join("b2");
    let (code, out, err) =
        run(&["journal", "backup", "--config", live.to_str().unwrap(), "--to", backup2.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let second: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(second["sequence_source"], "journal");
    assert!(second["sequence"].as_u64().unwrap() >= sequence);
    let (code, out, err) = run(&[
        "journal",
        "replay",
        "--config",
        live.to_str().unwrap(),
        "--dir",
        backup2.join("journal").to_str().unwrap(),
        "--prefix",
        "input",
    ]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&format!("state hash      {}", second["state_hash"].as_str().unwrap())), "{out}");

    stop.store(true, Ordering::SeqCst);
    bob.join().unwrap();
    assert!(daemon.stop().success());

    // Restore refuses a damaged backup, naming the file, and writes nothing.
    let restored_dir = tempfile::tempdir().unwrap();
    let target = config_in(restored_dir.path());
    let damaged = backups.path().join("damaged");
    copy_dir(&backup, &damaged);
    let segment =
        files.iter().map(|f| f["path"].as_str().unwrap()).find(|p| p.starts_with("journal/input-")).unwrap();
    let file = std::fs::OpenOptions::new().read(true).write(true).open(damaged.join(segment)).unwrap();
    let mut byte = [0u8; 1];
    std::os::unix::fs::FileExt::read_exact_at(&file, &mut byte, 4096 + 40).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&file, &[byte[0] ^ 0x01], 4096 + 40).unwrap();
    let (code, _, err) = run(&[
        "journal",
        "restore",
        "--config",
        target.to_str().unwrap(),
        "--from",
        damaged.to_str().unwrap(),
    ]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&damaged.join(segment).display().to_string()) && err.contains("is damaged"),
        "{err}"
    );
    assert!(!restored_dir.path().join("journal").exists() && !restored_dir.path().join("snapshots").exists());

    // Restore refuses a target that holds a journal, naming what is there.
    let (code, _, err) =
        run(&["journal", "restore", "--config", live.to_str().unwrap(), "--from", backup.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("is not empty") && err.contains("input-00000000000000000001.seg"), "{err}");

    // Restored, the daemon recovers to the manifest's sequence and state hash...
    let (code, out, err) = run(&[
        "journal",
        "restore",
        "--config",
        target.to_str().unwrap(),
        "--from",
        backup.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{err}");
    let printed: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(printed["state_hash"].as_str().unwrap(), state_hash);
    let daemon = Daemon::start(BIN, &target);
    let recovered = daemon.log_lines("journal recovered");
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert_eq!(log_field(&recovered[0], "state_hash"), state_hash);
    assert_eq!(log_field(&recovered[0], "last_sequence"), sequence.to_string());
    // The admin endpoint says what recovery rebuilt at start: what a restore is checked against.
    let status: serde_json::Value =
        serde_json::from_str(&http_get(daemon.admin.expect("admin address"), "/status")).unwrap();
    assert_eq!(status["recovered_state_hash"].as_str().unwrap(), state_hash);
    assert_eq!(status["recovered_sequence"].as_u64().unwrap(), sequence);

    // ... with every order acknowledged before the backup in its clients' streams.
    let alice = whole_stream(daemon.addr, "ALICE", "alice");
    assert_eq!(alice[0], OwnedOutbound::SystemEvent { code: b'S' });
    let accepted: Vec<u32> = alice[1..]
        .iter()
        .map(|m| match m {
            OwnedOutbound::Accepted { user_ref, .. } => *user_ref,
            other => panic!("Alice's stream holds {other:?}"),
        })
        .collect();
    assert_eq!(accepted, (1..=ALICE_ORDERS).collect::<Vec<_>>());
    let bob = whole_stream(daemon.addr, "bob", "bob");
    assert_eq!(bob[0], OwnedOutbound::SystemEvent { code: b'S' });
    let mut bob_accepted = 0;
    for (i, message) in bob[1..].iter().enumerate() {
        let user_ref = i as u32 / 2 + 1;
        match message {
            OwnedOutbound::Accepted { user_ref: r, .. } if i % 2 == 0 && *r == user_ref => {
                bob_accepted = user_ref
            }
            OwnedOutbound::Canceled { user_ref: r, .. } if i % 2 == 1 && *r == user_ref => {}
            other => panic!("Bob's message {} is {other:?}", i + 2),
        }
    }
    assert!(
        bob_accepted >= acked_before && bob_accepted <= acked_after + 1,
        "Bob's stream holds his orders 1..={bob_accepted}; acknowledged {acked_before} before the \
         backup and {acked_after} when it ended"
    );
    assert!(daemon.stop().success());
}
