//! Nothing allocates per message on the gateway thread: after a warm-up, two OUCH sessions
//! trade over loopback (enter, execute, reduce, replace, cancel, reject) and the gateway thread
//! makes no heap allocation while decoding, mapping, releasing, recording and sending. Runs on
//! both network backends, and once more with the market-data feed recorded from the same
//! release path. A counting global allocator counts only the gateway thread's calls
//! (a thread-local flag), so the test client may allocate freely.

mod support;

use petrel_testkit::alloc_counter;

#[global_allocator]
static GLOBAL: alloc_counter::Counting = alloc_counter::Counting;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use petrel_engine::config::Config;
use petrel_engine::gateway::{Gateway, GatewaySettings, OutputTails, Regeneration};
use petrel_engine::runtime::Runtime;
use petrel_engine::users::Users;
use support::*;

const AAPL_585: u64 = 5_853_300;

/// One round: Alice rests a bid, Bob sells part into it (both hear the execution), Alice
/// reduces, replaces and cancels what is left, and sends one order that is rejected.
fn round(alice: &mut Client, bob: &mut Client, i: u32) {
    let (a1, a2, a3) = (3 * i + 1, 3 * i + 2, 3 * i + 3);
    alice.enter(a1, b'B', 100, "AAPL", AAPL_585, b'0');
    assert!(matches!(alice.ouch(), OwnedOutbound::Accepted { user_ref, .. } if user_ref == a1));
    bob.enter(i + 1, b'S', 40, "AAPL", AAPL_585, b'3');
    assert!(matches!(bob.ouch(), OwnedOutbound::Accepted { .. }));
    assert!(matches!(bob.ouch(), OwnedOutbound::Executed { qty: 40, .. }));
    assert!(matches!(alice.ouch(), OwnedOutbound::Executed { qty: 40, .. }));
    alice.cancel(a1, 50);
    assert!(matches!(alice.ouch(), OwnedOutbound::Canceled { qty: 10, .. }));
    alice.replace(a1, a2, 30, AAPL_585 - 100);
    assert!(matches!(alice.ouch(), OwnedOutbound::Replaced { user_ref, .. } if user_ref == a2));
    alice.cancel(a2, 0);
    assert!(matches!(alice.ouch(), OwnedOutbound::Canceled { qty: 30, .. }));
    alice.enter(a3, b'B', 10, "AAPL", AAPL_585 + 1, b'0'); // off tick
    assert!(matches!(alice.ouch(), OwnedOutbound::Rejected { user_ref, .. } if user_ref == a3));
}

fn no_allocation_per_message(backend: &str, feed: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(dir.path(), backend);
    // The feed's datagrams go to a socket nobody reads: the kernel drops what overflows it.
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    if feed {
        let mut text = std::fs::read_to_string(&path).unwrap();
        let to = sink.local_addr().unwrap();
        text.push_str(&format!("\n[market_data]\nsession = \"NOALLOC\"\ndestinations = [\"{to}\"]\n"));
        std::fs::write(&path, text).unwrap();
    }
    let config = Config::load(&path).unwrap();
    let users = Users::load(&config.gateway.users_file, &config).unwrap();
    let settings = GatewaySettings::from_config(&config);
    // The daemon's start-up order: output tails, recovery (collecting what they lack), runtime.
    let tails = OutputTails::read(&settings.sessions_dir, config.accounts.len()).unwrap();
    let (recovered, collection) =
        petrel_engine::recovery::recover_collecting(&config, tails.regenerate_after(), &mut |_, _| {})
            .unwrap();
    let regeneration = Regeneration { tails, collection, last_sequence: recovered.report.last_sequence };
    let (runtime, port) = Runtime::start(&config, recovered).unwrap();
    let transport = petrel_engine::daemon::bind(&config).unwrap();
    assert_eq!(transport.name(), backend);
    let users = Arc::new(RwLock::new(Arc::new(users)));
    let mut gateway = Gateway::new(transport, port, &config, users, settings, regeneration).unwrap();
    let addr = gateway.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    let gateway_stop = Arc::clone(&stop);
    let gateway_thread = std::thread::spawn(move || {
        alloc_counter::watch_this_thread(true);
        gateway.run(&gateway_stop).unwrap();
    });

    let mut alice = Client::connect(addr);
    assert!(matches!(alice.login("ALICE", "alice", 0), Got::LoginAccepted { .. }));
    let mut bob = Client::connect(addr);
    assert!(matches!(bob.login("BOB", "bob", 0), Got::LoginAccepted { .. }));
    // Warm-up: per-connection buffers reach their working size, journals their first segment.
    for i in 0..300 {
        round(&mut alice, &mut bob, i);
    }
    alloc_counter::count_watched_threads();
    for i in 300..1_300 {
        round(&mut alice, &mut bob, i);
    }
    let allocations = alloc_counter::stop_counting();

    stop.store(true, Ordering::SeqCst);
    gateway_thread.join().unwrap();
    runtime.shutdown(false).unwrap();
    if feed {
        let location = petrel_engine::market_data::feed_location(&config);
        let recorded = petrel_journal::open_read_only(&location).unwrap().next_sequence() - 1;
        assert!(recorded > 1_300 * 5, "the feed recorded every book change: {recorded}");
    }
    // 1,000 rounds: 6,000 messages in and 8,000 out (and, with the feed, 5,000 ITCH messages).
    assert_eq!(
        allocations, 0,
        "{backend} (feed: {feed}): the gateway thread allocated {allocations} times in 1,000 rounds"
    );
}

/// One test for both backends, one after the other: the counters are process-wide.
#[test]
fn no_allocation_per_message_on_either_backend() {
    // The counter itself: it sees a watched thread's allocation and ignores the others.
    alloc_counter::count_watched_threads();
    std::thread::spawn(|| std::hint::black_box(vec![0u8; 64])).join().unwrap();
    alloc_counter::watch_this_thread(true);
    std::hint::black_box(vec![0u8; 64]);
    alloc_counter::watch_this_thread(false);
    assert_eq!(alloc_counter::stop_counting(), 1, "the counter counts exactly the watched thread");

    no_allocation_per_message("epoll", false);
    no_allocation_per_message("io_uring", false);
    no_allocation_per_message("epoll", true);
}
