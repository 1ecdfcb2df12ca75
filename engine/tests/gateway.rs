//! The gateway end to end: the real daemon on loopback, driven by a SoupBinTCP/OUCH client,
//! on both network backends (each test runs once per backend).

mod support;
use support::*;

const AAPL_585: u64 = 5_853_300; // $585.33 in OUCH price units

fn scenario_trading(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(BIN, &write_config(dir.path(), backend));
    let mut alice = Client::connect(daemon.addr);
    // Sequence 0 asks for new messages only: the stream already holds Start of Day.
    assert_eq!(
        alice.login("ALICE", "alice", 0),
        Got::LoginAccepted { session: "PETREL".into(), sequence: 2 }
    );
    let mut bob = Client::connect(daemon.addr);
    assert_eq!(bob.login("bob", "bob", 1), Got::LoginAccepted { session: "PETREL".into(), sequence: 1 });
    assert_eq!(bob.ouch(), OwnedOutbound::SystemEvent { code: b'S' });

    // Alice rests a bid; Bob sells into it: both hear of the execution, one match number.
    alice.enter(1, b'B', 100, "AAPL", AAPL_585, b'0');
    let OwnedOutbound::Accepted { user_ref: 1, qty: 100, price: AAPL_585, order_ref, cl_ord_id } =
        alice.ouch()
    else {
        panic!()
    };
    assert_eq!(cl_ord_id, "CL1");
    assert!(order_ref > 0);
    bob.enter(1, b'S', 40, "AAPL", AAPL_585 - 100, b'3'); // IOC below the bid
    assert!(matches!(bob.ouch(), OwnedOutbound::Accepted { user_ref: 1, qty: 40, .. }));
    let OwnedOutbound::Executed { user_ref: 1, qty: 40, price: AAPL_585, liquidity: b'R', match_number } =
        bob.ouch()
    else {
        panic!()
    };
    let OwnedOutbound::Executed {
        user_ref: 1,
        qty: 40,
        price: AAPL_585,
        liquidity: b'A',
        match_number: maker_match,
    } = alice.ouch()
    else {
        panic!()
    };
    assert_eq!(match_number, maker_match);

    // Reduce, replace, cancel.
    alice.cancel(1, 50);
    assert_eq!(alice.ouch(), OwnedOutbound::Canceled { user_ref: 1, qty: 10, reason: b'U' });
    alice.replace(1, 2, 30, AAPL_585 - 200);
    assert_eq!(
        alice.ouch(),
        OwnedOutbound::Replaced { orig_user_ref: 1, user_ref: 2, qty: 30, price: AAPL_585 - 200 }
    );
    alice.cancel(2, 0);
    assert_eq!(alice.ouch(), OwnedOutbound::Canceled { user_ref: 2, qty: 30, reason: b'U' });

    // Rejects: price off tick, unknown symbol, cancel of an unknown order.
    alice.enter(3, b'B', 10, "AAPL", AAPL_585 + 1, b'0');
    assert_eq!(alice.ouch(), OwnedOutbound::Rejected { user_ref: 3, reason: OuchReject::INVALID_PRICE.0 });
    alice.enter(4, b'B', 10, "NOPE", AAPL_585, b'0');
    assert_eq!(alice.ouch(), OwnedOutbound::Rejected { user_ref: 4, reason: OuchReject::INVALID_SYMBOL.0 });
    alice.cancel(99, 0);
    assert_eq!(alice.ouch(), OwnedOutbound::CancelReject { user_ref: 99 });

    assert!(daemon.stop().success(), "SIGTERM drains and exits 0");
    assert_eq!(alice.recv(), Some(Got::EndOfSession));
}

fn scenario_login_rules(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(BIN, &write_config(dir.path(), backend));
    let mut wrong = Client::connect(daemon.addr);
    assert_eq!(wrong.login("ALICE", "nope", 0), Got::LoginRejected(LoginRejectReason::NotAuthorized.code()));
    assert!(wrong.closed_by_server());
    let mut unknown = Client::connect(daemon.addr);
    assert_eq!(unknown.login("EVE", "eve", 0), Got::LoginRejected(LoginRejectReason::NotAuthorized.code()));
    // Data before login is a protocol violation: the connection is dropped.
    let mut early = Client::connect(daemon.addr);
    early.send_packet(b'U', b"X\0\0\0\x01\0\0\0\0");
    assert!(early.closed_by_server());
    // A second login on a logged-in connection is a violation too.
    let mut twice = Client::connect(daemon.addr);
    assert!(matches!(twice.login("BOB", "bob", 0), Got::LoginAccepted { .. }));
    twice.send_packet(b'L', format!("{:<6}{:<10}{:<10}{:>20}", "BOB", "bob", "", 0).as_bytes());
    assert!(twice.closed_by_server());
    // A wrong session name is refused with 'S'.
    let mut session = Client::connect(daemon.addr);
    let payload = format!("{:<6}{:<10}{:<10}{:>20}", "BOB", "bob", "OTHER", 0);
    session.send_packet(b'L', payload.as_bytes());
    assert_eq!(session.recv(), Some(Got::LoginRejected(LoginRejectReason::SessionNotAvailable.code())));
    assert!(daemon.stop().success());
}

fn scenario_heartbeats(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(BIN, &write_config(dir.path(), backend));
    let mut alice = Client::connect(daemon.addr);
    assert!(matches!(alice.login("ALICE", "alice", 0), Got::LoginAccepted { .. }));
    // The server heartbeats an idle session (every second by default).
    assert_eq!(alice.recv_any(), Some(Got::Heartbeat));
    // A client that says nothing for the idle timeout (15 s) is dropped; one that sends
    // heartbeats stays. (Checked with a short read loop: heartbeats keep arriving.)
    for _ in 0..2 {
        alice.send_packet(b'R', b"");
        assert_eq!(alice.recv_any(), Some(Got::Heartbeat));
    }
    assert!(daemon.stop().success());
}

fn scenario_replay_after_restart(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), backend);
    let daemon = Daemon::start(BIN, &config);
    let mut alice = Client::connect(daemon.addr);
    assert!(matches!(alice.login("ALICE", "alice", 0), Got::LoginAccepted { sequence: 2, .. }));
    let mut seen = Vec::new();
    for i in 1..=5 {
        alice.enter(i, b'B', 10, "AAPL", AAPL_585 - 100 * i as u64, b'0');
        seen.push(alice.ouch());
    }
    // Alice's orders rest; Bob takes two of them while Alice is away.
    alice.send_packet(b'O', b"");
    assert!(alice.closed_by_server());
    let mut bob = Client::connect(daemon.addr);
    assert!(matches!(bob.login("BOB", "bob", 0), Got::LoginAccepted { .. }));
    bob.enter(1, b'S', 20, "AAPL", AAPL_585 - 200, b'3');
    assert!(matches!(bob.ouch(), OwnedOutbound::Accepted { .. }));
    // Alice logged out, so cancel-on-disconnect cancelled her orders before Bob's IOC:
    // Bob's IOC finds nothing and is cancelled.
    assert!(matches!(bob.ouch(), OwnedOutbound::Canceled { user_ref: 1, qty: 20, .. }));
    assert!(daemon.stop().success());

    // After a restart Alice asks for everything from message 4 (1 is Start of Day, 2 to 6 her
    // five acceptances): she gets 4..=6 and the five cancels of cancel-on-disconnect, exactly
    // as numbered and worded before.
    let daemon = Daemon::start(BIN, &config);
    let mut alice = Client::connect(daemon.addr);
    assert_eq!(
        alice.login("ALICE", "alice", 4),
        Got::LoginAccepted { session: "PETREL".into(), sequence: 4 }
    );
    assert_eq!(alice.ouch(), seen[2]);
    assert_eq!(alice.ouch(), seen[3]);
    assert_eq!(alice.ouch(), seen[4]);
    for _ in 0..5 {
        assert!(matches!(alice.ouch(), OwnedOutbound::Canceled { reason: b'Z', .. }));
    }
    // And new messages continue the numbering.
    alice.enter(6, b'B', 10, "AAPL", AAPL_585, b'0');
    assert!(matches!(alice.ouch(), OwnedOutbound::Accepted { user_ref: 6, .. }));
    assert!(daemon.stop().success());
}

fn scenario_garbage_does_not_hurt_others(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(BIN, &write_config(dir.path(), backend));
    let mut alice = Client::connect(daemon.addr);
    assert!(matches!(alice.login("ALICE", "alice", 0), Got::LoginAccepted { .. }));
    let addr = daemon.addr;
    let noise = std::thread::spawn(move || {
        use std::io::Write;
        let mut dropped = 0;
        let mut rng = 0x1234_5678_9abc_def0u64;
        for round in 0..200u32 {
            let Ok(mut s) = std::net::TcpStream::connect(addr) else { continue };
            let mut junk = vec![0u8; 64 + (round as usize % 200)];
            for b in junk.iter_mut() {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                *b = rng as u8;
            }
            // Some rounds send an oversize length prefix, some a valid login then junk.
            if round % 3 == 0 {
                junk[0] = 0xff;
                junk[1] = 0xff;
            }
            let _ = s.write_all(&junk);
            // Dropped means the server ended the connection, at once or, for a frame it is still
            // waiting to complete, at the login timeout (5 s): read to the end of the stream, with
            // a read timeout well past that, which only a server that keeps the junk ever reaches.
            s.set_read_timeout(Some(std::time::Duration::from_secs(60))).unwrap();
            let mut buf = [0u8; 64];
            let ended = loop {
                match std::io::Read::read(&mut s, &mut buf) {
                    Ok(0) => break true,
                    Ok(_) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(e) => break e.kind() == std::io::ErrorKind::ConnectionReset,
                }
            };
            if ended {
                dropped += 1;
            }
        }
        dropped
    });
    for i in 1..=200u32 {
        alice.enter(i, b'B', 1, "AAPL", AAPL_585 - 100 * (i as u64 % 50), b'0');
        assert!(matches!(alice.ouch(), OwnedOutbound::Accepted { user_ref, .. } if user_ref == i));
    }
    let dropped = noise.join().unwrap();
    assert!(dropped > 150, "garbage connections are dropped ({dropped} of 200)");
    assert!(daemon.stop().success());
}

/// Every data-plane thread parked for up to a second at a time (the longest `park` the
/// configuration accepts) still answers each order as soon as it is processed: the gateway,
/// sequencer and journal writer ring each other's doorbells instead of waiting out their
/// sleeps. Without the doorbells each order would wait out about three sleeps (≥ 20 s for these
/// 20 orders in all); with them the whole exchange takes milliseconds, so the 10 s bound below
/// only fails when a wake-up is lost. Also: the configured SoupBinTCP session name is used.
fn scenario_parked_engine_answers_at_once(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), backend);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            "idle = { park = { min_us = 50, max_us = 1_000 } }",
            "idle = { park = { min_us = 1_000_000, max_us = 1_000_000 } }",
        )
        .replace("session_name = \"PETREL\"", "session_name = \"DESK7\"");
    std::fs::write(&config, text).unwrap();
    let daemon = Daemon::start(BIN, &config);
    let mut alice = Client::connect(daemon.addr);
    assert!(
        matches!(alice.login("ALICE", "alice", 0), Got::LoginAccepted { session, .. } if session == "DESK7")
    );
    // Let every thread fall into its full one-second sleep first.
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    let started = std::time::Instant::now();
    for i in 1..=20u32 {
        alice.enter(i, b'B', 1, "AAPL", AAPL_585 - 100 * u64::from(i), b'0');
        assert!(matches!(alice.ouch(), OwnedOutbound::Accepted { user_ref, .. } if user_ref == i));
    }
    let elapsed = started.elapsed();
    assert!(elapsed < std::time::Duration::from_secs(10), "20 orders took {elapsed:?}: a wake-up was lost");
    assert!(daemon.stop().success());
}

/// A client that sends orders but never reads its answers is disconnected once its queued
/// answers pass `gateway.max_send_backlog_bytes` (counted as a slow consumer), and its
/// connection is reset: the answers still queued in the kernel are discarded, not trickled out
/// to it for minutes. A client that reads keeps trading meanwhile.
fn scenario_slow_consumer_is_disconnected(backend: &str) {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), backend);
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("max_send_backlog_bytes = 8_388_608", "max_send_backlog_bytes = 4_096");
    std::fs::write(&config, text).unwrap();
    let daemon = Daemon::start(BIN, &config);
    let mut bob = Client::connect(daemon.addr);
    assert!(matches!(bob.login("BOB", "bob", 0), Got::LoginAccepted { .. }));
    // Alice's receive buffer stays at its initial size (tcp_rmem's default, 128 KiB): the kernel
    // only grows it for a reader. (Shrinking it further makes loopback TCP drop segments and back
    // off for minutes, which tests the kernel, not the gateway.)
    let mut alice = Client::connect(daemon.addr);
    assert!(matches!(alice.login("ALICE", "alice", 0), Got::LoginAccepted { .. }));
    // Orders and cancels whose answers (an Accepted and a Canceled, some 120 bytes a pair)
    // Alice never reads, until the gateway gives up on her: her receive
    // buffer, the server's send buffer (which the kernel grows to tcp_wmem's maximum, 4 MiB by
    // default), the transport's buffer and the 4 KiB backlog fill after some 4.3 MB. Bounded by
    // time, not volume, so a host with larger socket buffers only takes longer. The metrics are
    // checked every 50 ms so that Alice mostly stops writing before the gateway gives up on
    // her (a write to a closed socket draws a reset whatever the gateway did); Bob heartbeats
    // meanwhile, or a slow run would end his session for idling (15 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let mut checked = std::time::Instant::now();
    let mut disconnected = false;
    let mut i = 0u32;
    while std::time::Instant::now() < deadline {
        i += 1;
        let writes = alice
            .try_enter(i, b'B', 1, "AAPL", AAPL_585 - 100 * u64::from(i % 50), b'0')
            .and_then(|()| alice.try_cancel(i, 0));
        let reset = writes.is_err(); // the gateway reset the connection under us
        if reset || checked.elapsed() >= std::time::Duration::from_millis(50) {
            bob.send_packet(b'R', b"");
            if daemon_disconnects(&daemon, "slow_consumer") > 0 {
                disconnected = true;
                break;
            }
            checked = std::time::Instant::now();
        }
        if reset {
            // Reset by the gateway, which may not have counted it yet: wait for the count.
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
    assert!(disconnected, "the slow consumer was never disconnected");
    // The other session is unaffected.
    bob.enter(1, b'S', 1, "AAPL", AAPL_585 + 10_000, b'0');
    assert!(matches!(bob.ouch(), OwnedOutbound::Accepted { user_ref: 1, .. }));
    assert_eq!(daemon_disconnects(&daemon, "slow_consumer"), 1);
    // Reading what reached Alice's own buffer (at most a few hundred KiB) ends the connection
    // (in a reset, or end-of-file when her last write already took the reset), not the megabytes
    // the server's socket held. A gracefully closed socket would send them all before its FIN.
    let mut chunk = vec![0u8; 1 << 16];
    let mut read = 0;
    loop {
        match std::io::Read::read(&mut alice.stream, &mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                read += n;
                assert!(read < 1 << 20, "the answers queued for the slow consumer trickle out to it");
            }
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("reading the slow consumer's socket: {e}"),
        }
    }
    assert!(daemon.stop().success());
}

fn daemon_disconnects(daemon: &Daemon, cause: &str) -> u64 {
    let metrics = http_get(daemon.admin.expect("admin address"), "/metrics");
    let needle = format!("petrel_session_disconnects_total{{cause=\"{cause}\"}} ");
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&needle))
        .unwrap_or_else(|| panic!("no {needle} in /metrics"))
        .trim()
        .parse()
        .unwrap()
}

macro_rules! both_backends {
    ($($name:ident),*) => {
        mod epoll { $( #[test] fn $name() { super::$name("epoll") } )* }
        mod io_uring { $( #[test] fn $name() { super::$name("io_uring") } )* }
    };
}

both_backends!(
    scenario_trading,
    scenario_login_rules,
    scenario_heartbeats,
    scenario_replay_after_restart,
    scenario_garbage_does_not_hurt_others,
    scenario_parked_engine_answers_at_once,
    scenario_slow_consumer_is_disconnected
);

/// A login's replay reads the output journal from where it starts, without checking the whole
/// stream first (which cost every session 0.4 s per 10 million messages of a busy account):
/// with a record of the stream's first segment damaged while the daemon runs, a replay of the
/// newest messages is served in full, and a replay from message 1 reaches the damage and is
/// ended with an error rather than skipping it.
#[test]
fn a_replay_reads_only_what_it_sends() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "auto");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "max_send_backlog_bytes = 8_388_608",
        "max_send_backlog_bytes = 8_388_608\noutput_journal_segment_bytes = 131_072",
    );
    std::fs::write(&config, text).unwrap();
    let daemon = Daemon::start(BIN, &config);
    let mut alice = Client::connect(daemon.addr);
    assert!(matches!(alice.login("ALICE", "alice", 0), Got::LoginAccepted { .. }));
    // 4,000 answers (the first 1,000 orders rest, the others pass her open-order limit): some
    // 400 KB of stream, so several 128 KiB segments.
    const ORDERS: u32 = 4_000;
    for i in 1..=ORDERS {
        alice.enter(i, b'B', 1, "AAPL", AAPL_585 - 100 * u64::from(i % 100), b'0');
    }
    for _ in 0..ORDERS {
        assert!(matches!(alice.ouch(), OwnedOutbound::Accepted { .. } | OwnedOutbound::Rejected { .. }));
    }
    alice.send_packet(b'O', b"");
    assert!(alice.closed_by_server());
    let sessions = dir.path().join("journal/sessions");
    let mut segments: Vec<_> = std::fs::read_dir(&sessions)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("account_0-"))
        .collect();
    segments.sort_by_key(|p| {
        let name = p.file_stem().unwrap().to_string_lossy().into_owned();
        name.rsplit('-').next().unwrap().parse::<u64>().unwrap()
    });
    assert!(segments.len() >= 3, "Alice's stream spans several segments: {segments:?}");
    // A flipped byte inside the first segment's records (past its 4 KiB header).
    let first = std::fs::OpenOptions::new().read(true).write(true).open(&segments[0]).unwrap();
    let mut byte = [0u8; 1];
    std::os::unix::fs::FileExt::read_exact_at(&first, &mut byte, 4096 + 1000).unwrap();
    std::os::unix::fs::FileExt::write_all_at(&first, &[byte[0] ^ 0x5a], 4096 + 1000).unwrap();

    // The newest 100 messages: served, numbered as asked, the last one Alice's last answer.
    let mut alice = Client::connect(daemon.addr);
    let Got::LoginAccepted { sequence: next, .. } = alice.login("ALICE", "alice", 0) else { panic!("login") };
    alice.send_packet(b'O', b"");
    assert!(alice.closed_by_server());
    let mut alice = Client::connect(daemon.addr);
    assert_eq!(
        alice.login("ALICE", "alice", next - 100),
        Got::LoginAccepted { session: "PETREL".into(), sequence: next - 100 }
    );
    for _ in 0..100 {
        assert!(matches!(
            alice.ouch(),
            OwnedOutbound::Accepted { .. } | OwnedOutbound::Rejected { .. } | OwnedOutbound::Canceled { .. }
        ));
    }
    alice.send_packet(b'O', b"");
    assert!(alice.closed_by_server());

    // From message 1: the damage is reached and reported, the session ended, nothing skipped.
    let mut alice = Client::connect(daemon.addr);
    assert!(matches!(alice.login("ALICE", "alice", 1), Got::LoginAccepted { sequence: 1, .. }));
    let mut received = 0u64;
    while let Some(got) = alice.recv() {
        assert!(matches!(got, Got::Ouch(_)), "{got:?}");
        received += 1;
    }
    assert!(received < next - 1, "a replay through a damaged record ended early ({received} messages)");
    let failed = daemon.wait_log_lines(
        "session replay failed reading the output journal",
        std::time::Duration::from_secs(60),
    );
    assert!(!failed.is_empty(), "the failed replay is logged");
    assert!(daemon.stop().success());
}
