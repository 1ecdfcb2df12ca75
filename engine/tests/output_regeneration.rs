//! Outputs a crash lost are regenerated at restart: the real daemon, real OUCH clients, real
//! files. A test-only failpoint aborts the daemon in the window between a command becoming
//! durable in the input journal and the gateway recording its messages (or the release mark);
//! after a restart the clients, reconnecting with the sequence number they expect next, must
//! get those messages exactly once, and the regenerated order must really be live.

mod support;
use petrel_engine::core::Event;
use petrel_engine::input_record;
use petrel_engine::recovery::{recover, recover_collecting, Collection};
use petrel_engine::runtime::reference::{Sequencer, SnapshotOutcome};
use petrel_journal::{Journal, JournalLocation};
use petrel_proto::ouch::{self, Outbound};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use support::*;

const AAPL_585_33: u64 = 5_853_300; // $585.33 in OUCH price units
const AAPL_585_40: u64 = 5_854_000;
const TICK: u64 = 100;
const BEFORE_RELEASE: &str = "PETREL_FAILPOINT_ABORT_BEFORE_RELEASE";
const BEFORE_RELEASE_MARK: &str = "PETREL_FAILPOINT_ABORT_BEFORE_RELEASE_MARK";

fn accepted(user_ref: u32) -> impl Fn(&OwnedOutbound) -> bool {
    move |m| matches!(m, OwnedOutbound::Accepted { user_ref: r, .. } if *r == user_ref)
}

/// A fresh journal: ALICE rests four bids, BOB sells 40 into the first one and rests an offer
/// of 100 at $585.40. Stopped cleanly. Returns the input sequence the next command will get.
/// ALICE's stream then holds 6 messages, BOB's 4.
fn first_session(config: &Path) -> u64 {
    let daemon = Daemon::start(BIN, config);
    let mut alice = Client::connect(daemon.addr);
    assert_eq!(
        alice.login("ALICE", "alice", 1),
        Got::LoginAccepted { session: "PETREL".into(), sequence: 1 }
    );
    assert_eq!(alice.ouch(), OwnedOutbound::SystemEvent { code: b'S' });
    let mut bob = Client::connect(daemon.addr);
    assert_eq!(bob.login("BOB", "bob", 1), Got::LoginAccepted { session: "PETREL".into(), sequence: 1 });
    assert_eq!(bob.ouch(), OwnedOutbound::SystemEvent { code: b'S' });
    for user_ref in 1..=4u32 {
        alice.enter(user_ref, b'B', 100, "AAPL", AAPL_585_33 - u64::from(user_ref - 1) * TICK, b'0');
        assert!(accepted(user_ref)(&alice.ouch()), "ALICE's order {user_ref} is acknowledged");
    }
    bob.enter(1, b'S', 40, "AAPL", AAPL_585_33, b'0');
    assert!(accepted(1)(&bob.ouch()));
    assert!(matches!(bob.ouch(), OwnedOutbound::Executed { user_ref: 1, qty: 40, liquidity: b'R', .. }));
    assert!(matches!(alice.ouch(), OwnedOutbound::Executed { user_ref: 1, qty: 40, liquidity: b'A', .. }));
    bob.enter(2, b'S', 100, "AAPL", AAPL_585_40, b'0');
    assert!(accepted(2)(&bob.ouch()));
    assert!(daemon.stop().success());
    assert_eq!(alice.recv(), Some(Got::EndOfSession));
    assert_eq!(bob.recv(), Some(Got::EndOfSession));
    // From the journal itself: /status's counter may trail the last acknowledgement by a moment.
    let journal = petrel_engine::config::Config::load(config).unwrap().journal;
    let input = petrel_journal::JournalLocation::new(&journal.dir, &journal.file_prefix);
    petrel_journal::verify(&input).unwrap().last_sequence.expect("the session's commands are journaled") + 1
}

/// Restarts with `failpoint` at `sequence`; ALICE buys 150 at $585.40 (that command is
/// `sequence`): it takes BOB's 100 offered and rests 50. The daemon aborts before anyone hears.
fn crash_on_alices_fifth_order(config: &Path, failpoint: &str, sequence: u64) {
    let daemon = Daemon::start_with_env(BIN, config, &[(failpoint, &sequence.to_string())]);
    assert_eq!(daemon.last_sequence() + 1, sequence, "no command entered the journal at start");
    let mut alice = Client::connect(daemon.addr);
    assert_eq!(
        alice.login("ALICE", "alice", 7),
        Got::LoginAccepted { session: "PETREL".into(), sequence: 7 }
    );
    let mut bob = Client::connect(daemon.addr);
    assert_eq!(bob.login("BOB", "bob", 5), Got::LoginAccepted { session: "PETREL".into(), sequence: 5 });
    alice.enter(5, b'B', 150, "AAPL", AAPL_585_40, b'0');
    if failpoint == BEFORE_RELEASE {
        assert_eq!(alice.recv(), None, "the daemon dies before ALICE hears of order 5");
        assert_eq!(bob.recv(), None, "the daemon dies before BOB hears of the execution");
    } else {
        // The messages are recorded before the abort; whether some reached a socket first
        // depends on when the command's events arrived: the reconnect decides either way.
        while alice.recv().is_some() {}
        while bob.recv().is_some() {}
    }
    let status = daemon.wait_exit();
    assert_eq!(status.signal(), Some(nix::libc::SIGABRT), "the failpoint aborted the daemon: {status:?}");
}

/// Logs in asking for everything from sequence 1 and reads the whole stream: a Cancel of an
/// unknown order marks its end (its Cancel Reject is the first message after the replay).
fn whole_stream(daemon: &Daemon, user: &str, password: &str, marker: u32) -> Vec<OwnedOutbound> {
    let mut client = Client::connect(daemon.addr);
    assert_eq!(client.login(user, password, 1), Got::LoginAccepted { session: "PETREL".into(), sequence: 1 });
    client.cancel(marker, 0);
    let mut messages = Vec::new();
    loop {
        match client.ouch() {
            OwnedOutbound::CancelReject { user_ref } if user_ref == marker => return messages,
            other => messages.push(other),
        }
    }
}

fn kinds(messages: &[OwnedOutbound]) -> Vec<String> {
    messages
        .iter()
        .map(|m| match m {
            OwnedOutbound::SystemEvent { code } => format!("system {}", *code as char),
            OwnedOutbound::Accepted { user_ref, qty, .. } => format!("accepted {user_ref} qty {qty}"),
            OwnedOutbound::Executed { user_ref, qty, liquidity, .. } => {
                format!("executed {user_ref} qty {qty} {}", *liquidity as char)
            }
            OwnedOutbound::Canceled { user_ref, qty, .. } => format!("canceled {user_ref} qty {qty}"),
            OwnedOutbound::CancelReject { user_ref } => format!("cancel reject {user_ref}"),
            other => format!("{other:?}"),
        })
        .collect()
}

/// After the regenerating restart: ALICE cancels order 5 (it is live: 50 left), both streams
/// read from sequence 1 hold every message exactly once, across one more clean restart.
fn check_streams_after_regeneration(config: &Path, daemon: Daemon, mut alice: Client) {
    alice.cancel(5, 0);
    assert_eq!(alice.ouch(), OwnedOutbound::Canceled { user_ref: 5, qty: 50, reason: b'U' });
    assert!(daemon.stop().success());
    assert_eq!(alice.recv(), Some(Got::EndOfSession));

    let daemon = Daemon::start(BIN, config);
    assert!(
        daemon.log_lines("regenerated").is_empty(),
        "after a clean stop nothing is regenerated: {:?}",
        daemon.log_lines("regenerated")
    );
    let alice = whole_stream(&daemon, "ALICE", "alice", 99);
    assert_eq!(
        kinds(&alice),
        [
            "system S",
            "accepted 1 qty 100",
            "accepted 2 qty 100",
            "accepted 3 qty 100",
            "accepted 4 qty 100",
            "executed 1 qty 40 A",
            "accepted 5 qty 150",
            "executed 5 qty 100 R",
            "canceled 5 qty 50",
        ]
    );
    let bob = whole_stream(&daemon, "BOB", "bob", 98);
    assert_eq!(
        kinds(&bob),
        [
            "system S",
            "accepted 1 qty 40",
            "executed 1 qty 40 R",
            "accepted 2 qty 100",
            "executed 2 qty 100 A"
        ]
    );
    assert!(daemon.stop().success());
}

#[test]
fn messages_lost_before_recording_are_regenerated_at_restart() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "auto");
    let sequence = first_session(&config);
    crash_on_alices_fifth_order(&config, BEFORE_RELEASE, sequence);

    let daemon = Daemon::start(BIN, &config);
    let expected =
        format!("regenerated 3 messages for 2 accounts from input sequences ({}, {sequence}]", sequence - 1);
    assert_eq!(daemon.log_lines(&expected).len(), 1, "start-up log: {:#?}", daemon.startup);
    let mut alice = Client::connect(daemon.addr);
    assert_eq!(
        alice.login("ALICE", "alice", 7),
        Got::LoginAccepted { session: "PETREL".into(), sequence: 7 }
    );
    let OwnedOutbound::Accepted { user_ref: 5, qty: 150, price: AAPL_585_40, order_ref, cl_ord_id } =
        alice.ouch()
    else {
        panic!("ALICE's order 5 must be acknowledged after the restart")
    };
    assert!(order_ref > 0);
    assert_eq!(cl_ord_id, "CL5", "the ClOrdID is journaled with the command");
    let OwnedOutbound::Executed { user_ref: 5, qty: 100, price: AAPL_585_40, liquidity: b'R', match_number } =
        alice.ouch()
    else {
        panic!("ALICE's execution must be regenerated")
    };
    let mut bob = Client::connect(daemon.addr);
    assert_eq!(bob.login("BOB", "bob", 5), Got::LoginAccepted { session: "PETREL".into(), sequence: 5 });
    assert_eq!(
        bob.ouch(),
        OwnedOutbound::Executed { user_ref: 2, qty: 100, price: AAPL_585_40, liquidity: b'A', match_number },
        "BOB hears of the same execution"
    );
    check_streams_after_regeneration(&config, daemon, alice);
}

#[test]
fn a_stream_torn_mid_command_is_completed_without_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "auto");
    let sequence = first_session(&config);
    // Both streams record all of the command's messages; the release mark is not moved.
    crash_on_alices_fifth_order(&config, BEFORE_RELEASE_MARK, sequence);

    // Tear ALICE's stream inside its last record (the Executed of that command), as a crash in
    // the middle of the commit's write would leave it: the next open cuts it off.
    let location = petrel_journal::JournalLocation::new(dir.path().join("journal/sessions"), "account_0");
    let verified = petrel_journal::verify(&location).unwrap();
    assert_eq!(verified.last_sequence, Some(8), "ALICE's stream holds the Accepted and Executed of order 5");
    let newest = verified.segments.last().unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&newest.path)
        .unwrap()
        .set_len(newest.data_end_offset - 8)
        .unwrap();

    let daemon = Daemon::start(BIN, &config);
    assert!(!daemon.log_lines("torn tail").is_empty(), "the cut is logged: {:#?}", daemon.startup);
    let expected =
        format!("regenerated 1 messages for 1 accounts from input sequences ({}, {sequence}]", sequence - 1);
    assert_eq!(daemon.log_lines(&expected).len(), 1, "start-up log: {:#?}", daemon.startup);
    let mut alice = Client::connect(daemon.addr);
    assert_eq!(
        alice.login("ALICE", "alice", 7),
        Got::LoginAccepted { session: "PETREL".into(), sequence: 7 }
    );
    // Recorded before the crash: the live mapping, ClOrdID included.
    let OwnedOutbound::Accepted { user_ref: 5, qty: 150, cl_ord_id, .. } = alice.ouch() else {
        panic!("the recorded Accepted is kept")
    };
    assert_eq!(cl_ord_id, "CL5");
    assert!(matches!(alice.ouch(), OwnedOutbound::Executed { user_ref: 5, qty: 100, liquidity: b'R', .. }));
    let mut bob = Client::connect(daemon.addr);
    assert_eq!(bob.login("BOB", "bob", 5), Got::LoginAccepted { session: "PETREL".into(), sequence: 5 });
    assert!(matches!(bob.ouch(), OwnedOutbound::Executed { user_ref: 2, qty: 100, liquidity: b'A', .. }));
    check_streams_after_regeneration(&config, daemon, alice);
}

/// Recovery asked for the events after T starts from the newest snapshot at or before T (or
/// from sequence 1), reaches the same state as plain recovery, and collects exactly the events
/// the live engine produced for the commands after T (book changes aside), each command's last
/// one flagged.
#[test]
fn recovery_collects_the_live_events_of_the_commands_after_t() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = support::engine_setup::write_config(dir.path(), "none", 10_000);
    let recovered = recover(&config, &mut |_, _| {}).unwrap();
    let mut sequencer =
        Sequencer::new(recovered.engine, recovered.writer, support::engine_setup::test_clock())
            .with_snapshots(config.snapshots.clone(), config.journal.clone());
    let (commands, _) = petrel_workload::exchange_core_mix(25_000, 11);
    let mut live: Vec<(u64, Event)> = Vec::new();
    let mut snapshots = Vec::new();
    for chunk in commands[..25_000].chunks(1_000) {
        for command in chunk {
            let mut events = Vec::new();
            let sequence = sequencer.submit(command, &mut events).unwrap();
            live.extend(events.into_iter().map(|e| (sequence, e)));
        }
        if let SnapshotOutcome::Written(path) = sequencer.commit().unwrap().snapshot {
            snapshots.push(path);
        }
    }
    assert_eq!(snapshots.len(), 2, "snapshots at 10,000 and 20,000: {snapshots:?}");
    let (engine, writer) = sequencer.finish().unwrap();
    drop(writer); // its lock: recovery takes it next
    let live_hash = engine.state_hash();

    for (after, snapshot, replayed) in [(15_000u64, Some(10_000u64), 15_000u64), (5_000, None, 25_000)] {
        let (recovered, collection) = recover_collecting(&config, Some(after), &mut |_, _| {}).unwrap();
        assert_eq!(recovered.engine.state_hash(), live_hash, "after {after}: the same state");
        assert_eq!(recovered.report.snapshot.as_ref().map(|s| s.0), snapshot, "after {after}");
        assert_eq!(recovered.report.replayed_records, replayed, "after {after}");
        let Collection::Events { after: collected_after, events, echoes } = collection else {
            panic!("after {after}: events collected, got {collection:?}")
        };
        assert_eq!(collected_after, after);
        assert_eq!(echoes, [], "the reference sequencer journals no echo");
        assert_eq!(recovered.report.collected_events, events.len() as u64);
        let expected: Vec<(u64, Event)> =
            live.iter().filter(|(s, e)| *s > after && !matches!(e, Event::Book(_))).copied().collect();
        let got: Vec<(u64, Event)> = events.iter().map(|e| (e.sequence, e.event)).collect();
        assert_eq!(got.len(), expected.len(), "after {after}");
        assert!(got == expected, "after {after}: the collected events are the live ones");
        for (i, e) in events.iter().enumerate() {
            let last = events.get(i + 1).is_none_or(|next| next.sequence != e.sequence);
            assert_eq!(e.last_of_command, last, "event {i} (sequence {})", e.sequence);
        }
        drop(recovered);
    }

    // Nothing after T: nothing collected, and the newest snapshot serves as usual.
    let (recovered, collection) = recover_collecting(&config, Some(25_000), &mut |_, _| {}).unwrap();
    assert_eq!(collection, Collection::Events { after: 25_000, events: Vec::new(), echoes: Vec::new() });
    assert_eq!(recovered.report.snapshot.as_ref().map(|s| s.0), Some(20_000));
    assert_eq!(recovered.engine.state_hash(), live_hash);
}

// ---- regenerated messages are the live ones, byte for byte --------------------------------

fn send(client: &mut Client, message: ouch::Inbound<'_>) {
    let mut buf = [0u8; 256];
    let len = message.encode(&mut buf).unwrap();
    client.send_packet(b'U', &buf[..len]);
}

/// An Enter Order for AAPL with these echoed fields.
#[allow(clippy::too_many_arguments)]
fn enter(
    user_ref: u32,
    side: ouch::Side,
    qty: u32,
    price: u64,
    time_in_force: ouch::TimeInForce,
    display: ouch::Display,
    capacity: ouch::Capacity,
    cl_ord_id: &str,
) -> ouch::Inbound<'static> {
    ouch::Inbound::EnterOrder(ouch::EnterOrder {
        user_ref_num: user_ref,
        side,
        quantity: qty,
        symbol: ouch::Symbol::new("Symbol", "AAPL").unwrap(),
        price: ouch::Price(price),
        time_in_force,
        display,
        capacity,
        intermarket_sweep: ouch::IntermarketSweep::NotEligible,
        cross_type: ouch::CrossType::ContinuousMarket,
        cl_ord_id: ouch::ClOrdId::new("ClOrdID", cl_ord_id).unwrap(),
        appendage: ouch::Appendage::EMPTY,
    })
}

/// The commands of [`echoed_session`], in order from its first sequence.
const ECHOED_COMMANDS: u64 = 5;

/// A clean session that only logs ALICE and BOB in (their streams hold Start of Day), then a
/// restart whose commands carry non-default echoes, aborted by `failpoint` at its last one
/// (ALICE's mass cancel). Returns the first sequence of those commands and a copy of the
/// output journals as the clean session left them.
fn echoed_session(dir: &Path, config: &Path, failpoint: &str) -> (u64, PathBuf) {
    let daemon = Daemon::start(BIN, config);
    for (user, password) in [("ALICE", "alice"), ("BOB", "bob")] {
        let mut client = Client::connect(daemon.addr);
        assert_eq!(
            client.login(user, password, 1),
            Got::LoginAccepted { session: "PETREL".into(), sequence: 1 }
        );
        assert_eq!(client.ouch(), OwnedOutbound::SystemEvent { code: b'S' });
    }
    assert!(daemon.stop().success());
    let first = daemon_last_sequence(config) + 1;
    let saved = dir.join("sessions-before");
    copy_dir(&dir.join("journal/sessions"), &saved);

    let last = first + ECHOED_COMMANDS - 1;
    let daemon = Daemon::start_with_env(BIN, config, &[(failpoint, &last.to_string())]);
    let mut alice = Client::connect(daemon.addr);
    assert_eq!(
        alice.login("ALICE", "alice", 2),
        Got::LoginAccepted { session: "PETREL".into(), sequence: 2 }
    );
    let mut bob = Client::connect(daemon.addr);
    assert_eq!(bob.login("BOB", "bob", 2), Got::LoginAccepted { session: "PETREL".into(), sequence: 2 });
    use ouch::{Capacity as C, Display as D, Side, TimeInForce as T};
    send(
        &mut alice,
        enter(1, Side::Buy, 100, AAPL_585_33, T::Day, D::Attributable, C::Principal, "ALICE-ONE"),
    );
    assert!(matches!(alice.ouch(), OwnedOutbound::Accepted { user_ref: 1, .. }));
    // Off the tick: Order Rejected, which repeats the ClOrdID.
    send(&mut alice, enter(2, Side::Buy, 100, AAPL_585_33 + 1, T::Day, D::Visible, C::Riskless, "OFF-TICK"));
    assert!(matches!(alice.ouch(), OwnedOutbound::Rejected { user_ref: 2, .. }));
    send(
        &mut alice,
        ouch::Inbound::ReplaceOrder(ouch::ReplaceOrder {
            orig_user_ref_num: 1,
            user_ref_num: 3,
            quantity: 80,
            price: ouch::Price(AAPL_585_33 - TICK),
            time_in_force: T::Day,
            display: D::Attributable,
            intermarket_sweep: ouch::IntermarketSweep::NotEligible,
            cl_ord_id: ouch::ClOrdId::new("ClOrdID", "ALICE-THREE").unwrap(),
            appendage: ouch::Appendage::EMPTY,
        }),
    );
    assert!(matches!(alice.ouch(), OwnedOutbound::Replaced { user_ref: 3, .. }));
    send(
        &mut bob,
        enter(1, Side::Sell, 50, AAPL_585_33 - TICK, T::ImmediateOrCancel, D::Visible, C::Other, "BOB-IOC"),
    );
    assert!(matches!(bob.ouch(), OwnedOutbound::Accepted { user_ref: 1, .. }));
    assert!(matches!(bob.ouch(), OwnedOutbound::Executed { user_ref: 1, qty: 50, .. }));
    assert!(matches!(alice.ouch(), OwnedOutbound::Executed { user_ref: 3, qty: 50, .. }));
    send(
        &mut alice,
        ouch::Inbound::MassCancel(ouch::MassCancel {
            user_ref_num: 9,
            firm: ouch::Firm::new("Firm", "FRMA").unwrap(),
            symbol: ouch::Symbol::new("Symbol", "AAPL").unwrap(),
            appendage: ouch::Appendage::EMPTY,
        }),
    );
    // Whether any of its answers reached the socket before the abort does not matter here.
    while alice.recv().is_some() {}
    let status = daemon.wait_exit();
    assert_eq!(status.signal(), Some(nix::libc::SIGABRT), "the failpoint aborted the daemon: {status:?}");
    (first, saved)
}

fn daemon_last_sequence(config: &Path) -> u64 {
    let journal = petrel_engine::config::Config::load(config).unwrap().journal;
    let input = JournalLocation::new(&journal.dir, &journal.file_prefix);
    petrel_journal::verify(&input).unwrap().last_sequence.unwrap_or(0)
}

/// A second data directory: `dir`'s input journal and snapshots, with output journals as
/// `sessions` holds them. Returns its configuration.
fn replica(dir: &Path, sessions: &Path) -> (tempfile::TempDir, PathBuf) {
    let replica = tempfile::tempdir().unwrap();
    copy_dir(&dir.join("journal"), &replica.path().join("journal"));
    std::fs::remove_dir_all(replica.path().join("journal/sessions")).unwrap();
    copy_dir(sessions, &replica.path().join("journal/sessions"));
    if dir.join("snapshots").is_dir() {
        copy_dir(&dir.join("snapshots"), &replica.path().join("snapshots"));
    }
    let config = write_config(replica.path(), "auto");
    (replica, config)
}

/// One account's output journal: each record's source input sequence and packet.
fn stream_records(dir: &Path, account: usize) -> Vec<(u64, Vec<u8>)> {
    let location = JournalLocation::new(dir.join("journal/sessions"), format!("account_{account}"));
    let recovery = petrel_journal::open_read_only(&location).unwrap();
    let mut reader = recovery.replay_from(1).unwrap();
    let mut records = Vec::new();
    while let Some(record) = reader.next_record().unwrap() {
        records.push((record.timestamp_ns, record.payload.to_vec()));
    }
    records
}

/// The OUCH message of a recorded SoupBinTCP Sequenced Data packet (length, 'S', message).
fn ouch_of(packet: &[u8]) -> Outbound<'_> {
    assert_eq!(packet[2], b'S', "a sequenced data packet");
    Outbound::decode(&packet[3..]).unwrap()
}

/// Starts the daemon on `config`, which must regenerate `messages` for both accounts from input
/// sequences up to `last`, starting at or before `first` (the release mark the clean session
/// left may lag behind its last commands, which produced no message), and stops it.
fn start_regenerating(config: &Path, messages: u64, first: u64, last: u64) {
    let daemon = Daemon::start(BIN, config);
    let needle = format!("regenerated {messages} messages for 2 accounts from input sequences (");
    let lines = daemon.log_lines(&needle);
    assert_eq!(lines.len(), 1, "start-up log: {:#?}", daemon.startup);
    let range = lines[0].split(&needle).nth(1).unwrap();
    let (after, rest) = range.split_once(", ").unwrap();
    assert!(after.parse::<u64>().unwrap() < first, "{}", lines[0]);
    assert!(rest.starts_with(&format!("{last}]")), "{}", lines[0]);
    assert!(daemon.stop().success());
}

/// The crashed gateway recorded every message of the session live (the failpoint fires after
/// they were committed). Output journals from before the session, put next to the same input
/// journal, are regenerated from it at start: they must come out as the very records the live
/// gateway wrote, ClOrdIDs, Display, Capacity, Time in Force and the Mass Cancel Response
/// included.
#[test]
fn regenerated_messages_are_the_bytes_the_live_gateway_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "auto");
    let (first, before) = echoed_session(dir.path(), &config, BEFORE_RELEASE_MARK);
    let live: Vec<_> = (0..2).map(|account| stream_records(dir.path(), account)).collect();
    let kinds: Vec<u8> = live[0].iter().map(|(_, packet)| packet[3]).collect();
    assert_eq!(kinds, b"SAJUECX".to_vec(), "ALICE's live stream: Start of Day, Accepted, Rejected, Replaced, Executed, Canceled, Mass Cancel Response");
    let Outbound::MassCancelResponse(response) = ouch_of(&live[0][6].1) else {
        panic!("a Mass Cancel Response")
    };
    assert_eq!(
        (response.user_ref_num, response.firm.as_str(), response.symbol.as_str()),
        (9, "FRMA", "AAPL")
    );

    let (replica, replica_config) = replica(dir.path(), &before);
    let last = first + ECHOED_COMMANDS - 1;
    start_regenerating(&replica_config, 6 + 2, first, last);
    for (account, live) in live.iter().enumerate() {
        let regenerated = stream_records(replica.path(), account);
        assert_eq!(regenerated.len(), live.len(), "account {account}");
        for (i, (got, want)) in regenerated.iter().zip(live).enumerate() {
            assert_eq!(got.0, want.0, "account {account}, record {i}: source sequence");
            assert!(
                got.1 == want.1,
                "account {account}, record {i}: {:?} != live {:?}",
                ouch_of(&got.1),
                ouch_of(&want.1)
            );
        }
    }
}

/// Rewrites the input journal as builds before echoes wrote it: each record's payload is the
/// core's command alone.
fn strip_echoes(config: &Path) {
    let journal = petrel_engine::config::Config::load(config).unwrap().journal;
    let (writer, recovery) = Journal::open(&journal).unwrap();
    drop(writer);
    let mut reader = recovery.replay_from(recovery.next_sequence() - recovery.record_count).unwrap();
    let mut records = Vec::new();
    let mut stripped = 0;
    while let Some(record) = reader.next_record().unwrap() {
        let (command, echo) = input_record::decode(record.payload).unwrap();
        stripped += usize::from(!echo.is_empty());
        let mut old = [0u8; petrel_engine::core::codec::MAX_COMMAND_BYTES];
        let len = petrel_engine::core::codec::encode(&command, &mut old);
        records.push((record.sequence, record.timestamp_ns, old[..len].to_vec()));
    }
    assert_eq!(stripped, ECHOED_COMMANDS as usize, "each command a client sent carried an echo");
    for segment in &recovery.segments {
        std::fs::remove_file(&segment.path).unwrap();
    }
    let (mut writer, _) = Journal::open(&journal).unwrap();
    assert_eq!(writer.next_sequence(), 1, "the journal begins again, at 1");
    for (sequence, timestamp_ns, payload) in records {
        writer.append(sequence, timestamp_ns, &payload).unwrap();
    }
    writer.commit().unwrap();
}

/// The messages a client would have been sent without the echo: ClOrdID blank, Visible,
/// Agency, Day, and no Mass Cancel Response.
fn without_echo(message: Outbound<'_>) -> Option<Outbound<'_>> {
    let blank = ouch::ClOrdId::BLANK;
    Some(match message {
        Outbound::OrderAccepted(a) => Outbound::OrderAccepted(ouch::OrderAccepted {
            cl_ord_id: blank,
            display: ouch::Display::Visible,
            capacity: ouch::Capacity::Agency,
            time_in_force: ouch::TimeInForce::Day,
            ..a
        }),
        Outbound::OrderReplaced(r) => Outbound::OrderReplaced(ouch::OrderReplaced {
            cl_ord_id: blank,
            display: ouch::Display::Visible,
            capacity: ouch::Capacity::Agency,
            ..r
        }),
        Outbound::OrderRejected(r) => Outbound::OrderRejected(ouch::OrderRejected { cl_ord_id: blank, ..r }),
        Outbound::MassCancelResponse(_) => return None,
        other => other,
    })
}

/// A journal written before echoes were journaled still recovers, and its lost messages are
/// regenerated as before: the live messages with the echoed fields at their defaults.
#[test]
fn a_journal_without_echoes_regenerates_with_the_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "auto");
    let (first, before) = echoed_session(dir.path(), &config, BEFORE_RELEASE_MARK);
    let live: Vec<_> = (0..2).map(|account| stream_records(dir.path(), account)).collect();
    let (replica, replica_config) = replica(dir.path(), &before);
    strip_echoes(&replica_config);
    let last = first + ECHOED_COMMANDS - 1;
    start_regenerating(&replica_config, 5 + 2, first, last);
    for (account, live) in live.iter().enumerate() {
        let regenerated = stream_records(replica.path(), account);
        let got: Vec<(u64, Outbound<'_>)> = regenerated.iter().map(|(s, p)| (*s, ouch_of(p))).collect();
        let want: Vec<(u64, Outbound<'_>)> =
            live.iter().filter_map(|(s, p)| without_echo(ouch_of(p)).map(|m| (*s, m))).collect();
        assert_eq!(got, want, "account {account}");
    }
    let blank_ids = (0..2)
        .flat_map(|a| stream_records(replica.path(), a))
        .filter(|(_, p)| matches!(ouch_of(p), Outbound::OrderAccepted(a) if a.cl_ord_id.is_blank()))
        .count();
    assert_eq!(blank_ids, 2, "both Accepted messages lost their ClOrdID");
}
