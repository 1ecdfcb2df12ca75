//! The io_uring transport on its own, over real loopback sockets: what the gateway relies on
//! beyond the end-to-end suite (which runs every gateway scenario on both backends).
//!
//! Loops that wait for the kernel are bounded by a count of polls, never by a clock; the
//! bounds are far above what a loaded machine needs and only keep a broken build from hanging.

use petrel_engine::gateway::transport::uring::UringTransport;
use petrel_engine::gateway::{ConnId, NetEvent, Transport};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{FromRawFd, OwnedFd};
use std::time::{Duration, Instant};

use petrel_testkit::alloc_counter;

#[global_allocator]
static GLOBAL: alloc_counter::Counting = alloc_counter::Counting;

const POLL: Duration = Duration::from_millis(10);
/// Most polls any wait below may take (at least 100 s at POLL each).
const POLLS_MAX: u32 = 10_000;

fn bind(max_connections: u32, read_buffer_bytes: usize, send_buffer_bytes: usize) -> UringTransport {
    UringTransport::bind(
        "127.0.0.1:0".parse().unwrap(),
        max_connections,
        read_buffer_bytes,
        send_buffer_bytes,
    )
    .expect("io_uring with multishot receive and buffer rings (Linux 6.0+)")
}

#[derive(Debug, PartialEq)]
enum Ev {
    Accepted(ConnId, SocketAddr),
    Refused,
    Data(ConnId, Vec<u8>),
    Closed(ConnId, Option<io::ErrorKind>),
}

/// One poll and every event it queued.
fn poll(t: &mut UringTransport, timeout: Duration) -> Vec<Ev> {
    t.poll(timeout).unwrap();
    let mut events = Vec::new();
    while let Some(event) = t.next_event() {
        events.push(match event {
            NetEvent::Accepted { conn, peer } => Ev::Accepted(conn, peer),
            NetEvent::Refused { .. } => Ev::Refused,
            NetEvent::Data { conn, bytes } => Ev::Data(conn, bytes.to_vec()),
            NetEvent::Closed { conn, error } => Ev::Closed(conn, error),
        });
    }
    events
}

/// Polls until the connection from `client` is accepted; its connection id.
fn accept(t: &mut UringTransport, client: &TcpStream) -> ConnId {
    let me = client.local_addr().unwrap();
    for _ in 0..POLLS_MAX {
        match poll(t, POLL).as_slice() {
            [] => {}
            [Ev::Accepted(conn, peer)] if *peer == me => return *conn,
            other => panic!("unexpected events while accepting: {other:?}"),
        }
    }
    panic!("connection from {me} never accepted");
}

fn pattern(seed: u8, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).wrapping_add(seed as u32).to_be_bytes()[0])
        .collect()
}

/// Reads until the peer ends the stream; panics on a read timeout (the peer never ended it).
fn read_to_end(client: &mut TcpStream) -> Vec<u8> {
    client.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        match client.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => return got,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("read failed after {} bytes: {e}", got.len()),
        }
    }
}

#[test]
fn one_megabyte_in_one_write_comes_back_intact() {
    let mut t = bind(4, 4096, 16 * 1024);
    let mut client = TcpStream::connect(t.local_addr()).unwrap();
    let conn = accept(&mut t, &client);
    let sent = pattern(7, 1 << 20);
    let writer = {
        let mut client = client.try_clone().unwrap();
        let sent = sent.clone();
        std::thread::spawn(move || client.write_all(&sent).unwrap())
    };
    let reader = std::thread::spawn(move || {
        let mut got = vec![0u8; 1 << 20];
        client.read_exact(&mut got).unwrap();
        got
    });
    // An echo server: whatever `send` does not take yet is offered again after the next poll.
    let mut backlog = Vec::new();
    let mut echoed = 0;
    for _ in 0..POLLS_MAX {
        for event in poll(&mut t, POLL) {
            match event {
                Ev::Data(c, bytes) if c == conn => {
                    assert!(bytes.len() <= 4096, "a Data event carries at most one receive buffer");
                    backlog.extend_from_slice(&bytes);
                }
                other => panic!("unexpected event: {other:?}"),
            }
        }
        let taken = t.send(conn, &backlog).unwrap();
        backlog.drain(..taken);
        echoed += taken;
        if echoed == sent.len() {
            break;
        }
    }
    assert_eq!(echoed, sent.len(), "every byte received was taken for sending");
    assert!(t.drain_sends(Duration::from_secs(30)).unwrap(), "everything taken reaches the kernel");
    writer.join().unwrap();
    assert!(reader.join().unwrap() == sent, "the echo is the megabyte, in order");
}

#[test]
fn an_empty_buffer_ring_holds_data_back_and_loses_none() {
    // 8 connections: 64 buffers of 1 KiB for 256 KiB in flight at once.
    let mut t = bind(8, 1024, 4096);
    assert_eq!(t.recv_buffer_count(), 64);
    let mut clients = Vec::new();
    let mut conns = Vec::new();
    for _ in 0..8 {
        let client = TcpStream::connect(t.local_addr()).unwrap();
        conns.push(accept(&mut t, &client));
        clients.push(client);
    }
    // Arms the receives of the connections accepted by the last poll.
    assert_eq!(poll(&mut t, Duration::ZERO), vec![]);
    // Nothing is taken from the transport while every client writes: the receives fill the
    // ring's 64 buffers and find it empty.
    let sent: Vec<Vec<u8>> = (0..8).map(|i| pattern(i as u8, 32 * 1024)).collect();
    for (client, bytes) in clients.iter_mut().zip(&sent) {
        client.write_all(bytes).unwrap();
    }
    let mut got: Vec<Vec<u8>> = vec![Vec::new(); 8];
    for _ in 0..POLLS_MAX {
        for event in poll(&mut t, POLL) {
            let Ev::Data(conn, bytes) = event else { panic!("unexpected event: {event:?}") };
            let index = conns.iter().position(|&c| c == conn).unwrap();
            got[index].extend_from_slice(&bytes);
        }
        if got.iter().map(Vec::len).sum::<usize>() == 8 * 32 * 1024 {
            break;
        }
    }
    assert!(t.buffer_ring_empty_total() > 0, "the ring ran empty (the test's premise)");
    for (index, bytes) in got.iter().enumerate() {
        assert!(*bytes == sent[index], "connection {index}: every byte, in order");
    }
}

#[test]
fn close_sends_what_was_taken_then_ends_the_stream() {
    let mut t = bind(2, 4096, 16 * 1024);
    let mut client = TcpStream::connect(t.local_addr()).unwrap();
    let conn = accept(&mut t, &client);
    let goodbye = pattern(1, 12 * 1024);
    assert_eq!(t.send(conn, &goodbye).unwrap(), goodbye.len());
    t.close(conn);
    assert_eq!(
        t.send(conn, b"late").unwrap_err().kind(),
        io::ErrorKind::NotConnected,
        "a closed connection takes nothing"
    );
    // The gateway goes on polling; no event ever follows the close.
    let reader = std::thread::spawn(move || read_to_end(&mut client));
    for _ in 0..POLLS_MAX {
        assert_eq!(poll(&mut t, POLL), vec![]);
        if reader.is_finished() {
            break;
        }
    }
    assert!(reader.join().unwrap() == goodbye, "every taken byte, then end of stream");
}

#[test]
fn dropping_the_transport_delivers_what_was_taken() {
    let mut t = bind(2, 4096, 16 * 1024);
    let mut client = TcpStream::connect(t.local_addr()).unwrap();
    let conn = accept(&mut t, &client);
    let last_words = pattern(2, 10_000);
    assert_eq!(t.send(conn, &last_words).unwrap(), last_words.len());
    t.close(conn);
    // Shutdown without drain_sends: nothing was submitted yet when the transport goes.
    drop(t);
    assert!(read_to_end(&mut client) == last_words);
}

#[test]
fn send_takes_only_what_fits_and_the_rest_later() {
    let mut t = bind(1, 4096, 8192);
    let mut client = TcpStream::connect(t.local_addr()).unwrap();
    let conn = accept(&mut t, &client);
    let bytes = pattern(3, 20_000);
    assert_eq!(t.send(conn, &bytes).unwrap(), 8192, "one send buffer's worth");
    assert_eq!(t.send(conn, &bytes[8192..]).unwrap(), 0, "nothing more until it is submitted");
    let mut offset = 8192;
    for _ in 0..POLLS_MAX {
        assert_eq!(poll(&mut t, POLL), vec![]);
        offset += t.send(conn, &bytes[offset..]).unwrap();
        if offset == bytes.len() {
            break;
        }
    }
    assert_eq!(offset, bytes.len());
    t.close(conn);
    assert!(t.drain_sends(Duration::from_secs(30)).unwrap());
    assert!(read_to_end(&mut client) == bytes, "in order, nothing doubled or lost");
}

#[test]
fn a_peer_that_never_reads_does_not_pin_its_slot() {
    let mut t = bind(1, 4096, 4096);
    let mut stuck = TcpStream::connect(t.local_addr()).unwrap();
    let conn = accept(&mut t, &stuck);
    // Fill everything between us and the client (send buffer, socket buffers): `send` takes
    // nothing for 50 polls in a row.
    let chunk = [0x5au8; 4096];
    let mut idle_polls = 0;
    for _ in 0..POLLS_MAX {
        assert_eq!(poll(&mut t, POLL), vec![]);
        if t.send(conn, &chunk).unwrap() == 0 {
            idle_polls += 1;
            if idle_polls == 50 {
                break;
            }
        } else {
            idle_polls = 0;
        }
    }
    assert_eq!(idle_polls, 50, "the client's buffers filled up");
    t.close(conn);
    assert!(!t.drain_sends(Duration::ZERO).unwrap(), "bytes are still waiting for the client");
    // The only slot comes free after the linger: a new client is refused until then.
    let mut accepted = false;
    for _ in 0..POLLS_MAX / 10 {
        let next = TcpStream::connect(t.local_addr()).unwrap();
        let me = next.local_addr().unwrap();
        let mut answered = false;
        for _ in 0..POLLS_MAX {
            for event in poll(&mut t, POLL) {
                match event {
                    Ev::Refused => answered = true,
                    Ev::Accepted(c, peer) if peer == me => {
                        assert_eq!(c, conn);
                        accepted = true;
                    }
                    other => panic!("unexpected event: {other:?}"),
                }
            }
            if answered || accepted {
                break;
            }
        }
        if accepted {
            break;
        }
        // A refusal is immediate: let the linger run on a quiet poll before the next try.
        assert_eq!(poll(&mut t, POLL), vec![]);
    }
    assert!(accepted, "the slot of a peer that never reads is freed");
    // The stuck client gets part of what was queued, then the end of the stream.
    let got = read_to_end(&mut stuck);
    assert!(got.iter().all(|&b| b == 0x5a));
}

#[test]
fn a_peer_closing_is_reported_once_and_its_slot_reused() {
    let mut t = bind(1, 4096, 4096);
    let mut client = TcpStream::connect(t.local_addr()).unwrap();
    let conn = accept(&mut t, &client);
    client.write_all(b"last").unwrap();
    drop(client);
    let mut events = Vec::new();
    for _ in 0..POLLS_MAX {
        events.extend(poll(&mut t, POLL));
        if events.iter().any(|e| matches!(e, Ev::Closed(..))) {
            break;
        }
    }
    assert_eq!(events, vec![Ev::Data(conn, b"last".to_vec()), Ev::Closed(conn, None)]);
    assert_eq!(t.send(conn, b"x").unwrap_err().kind(), io::ErrorKind::NotConnected);
    let next = TcpStream::connect(t.local_addr()).unwrap();
    assert_eq!(accept(&mut t, &next), conn, "the slot is free again");
}

fn eventfd() -> OwnedFd {
    // SAFETY: eventfd takes no pointers; a non-negative result is a new descriptor we own.
    let fd = unsafe { libc::eventfd(0, libc::EFD_NONBLOCK | libc::EFD_CLOEXEC) };
    assert!(fd >= 0, "eventfd: {}", io::Error::last_os_error());
    // SAFETY: fd is a fresh descriptor owned by nothing else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[test]
fn the_wake_fd_ends_a_long_poll() {
    let mut t = bind(1, 4096, 4096);
    let wake = eventfd();
    let ring_it = std::fs::File::from(wake.try_clone().unwrap());
    t.set_wake_fd(wake).unwrap();
    assert_eq!(poll(&mut t, Duration::ZERO), vec![]);
    let timeout = Duration::from_secs(60);
    let started = Instant::now();
    let doorbell = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(50));
        (&ring_it).write_all(&1u64.to_ne_bytes()).unwrap();
        ring_it
    });
    assert_eq!(poll(&mut t, timeout), vec![]);
    assert!(started.elapsed() < timeout, "the poll ended on the doorbell, not its timeout");
    let mut ring_it = doorbell.join().unwrap();
    let mut counter = [0u8; 8];
    assert_eq!(
        ring_it.read(&mut counter).unwrap_err().kind(),
        io::ErrorKind::WouldBlock,
        "the transport reset the doorbell"
    );
}

/// Runs `f` with this thread's allocations counted.
fn counted<R>(f: impl FnOnce() -> R) -> R {
    alloc_counter::watch_this_thread(true);
    let result = f();
    alloc_counter::watch_this_thread(false);
    result
}

#[test]
fn nothing_allocates_after_bind() {
    let mut t = bind(4, 4096, 4096);
    t.set_wake_fd(eventfd()).unwrap();
    let addr = t.local_addr();
    // Only this thread's allocations inside `counted`: other tests run alongside.
    alloc_counter::count_watched_threads();
    for round in 0..3u8 {
        let mut client = TcpStream::connect(addr).unwrap();
        let mut conn = None;
        for _ in 0..POLLS_MAX {
            counted(|| {
                t.poll(POLL).unwrap();
                while let Some(event) = t.next_event() {
                    match event {
                        NetEvent::Accepted { conn: c, .. } => conn = Some(c),
                        _ => panic!("unexpected event"),
                    }
                }
            });
            if conn.is_some() {
                break;
            }
        }
        let conn = conn.expect("accepted");
        let mut reply = [0u8; 64];
        for message in 0..200u32 {
            let request = [round, message as u8, (message >> 8) as u8, 0xab];
            client.write_all(&request).unwrap();
            let mut echoed = 0;
            for _ in 0..POLLS_MAX {
                counted(|| {
                    t.poll(POLL).unwrap();
                    let mut got = [0u8; 64];
                    let mut len = 0;
                    while let Some(event) = t.next_event() {
                        match event {
                            NetEvent::Data { conn: c, bytes } if c == conn => {
                                got[len..len + bytes.len()].copy_from_slice(bytes);
                                len += bytes.len();
                            }
                            _ => panic!("unexpected event"),
                        }
                    }
                    echoed += t.send(conn, &got[..len]).unwrap();
                });
                if echoed == request.len() {
                    break;
                }
            }
            counted(|| t.poll(Duration::ZERO).unwrap());
            client.read_exact(&mut reply[..4]).unwrap();
            assert_eq!(reply[..4], request);
        }
        if round % 2 == 0 {
            counted(|| {
                t.send(conn, b"bye").unwrap();
                t.close(conn);
                assert!(t.drain_sends(Duration::from_secs(30)).unwrap());
            });
            assert_eq!(read_to_end(&mut client), b"bye");
        } else {
            drop(client);
            let mut closed = false;
            for _ in 0..POLLS_MAX {
                counted(|| {
                    t.poll(POLL).unwrap();
                    while let Some(event) = t.next_event() {
                        closed |= matches!(event, NetEvent::Closed { conn: c, error: None } if c == conn);
                    }
                });
                if closed {
                    break;
                }
            }
            assert!(closed);
        }
    }
    assert_eq!(alloc_counter::stop_counting(), 0, "allocations in the transport after bind");
}
