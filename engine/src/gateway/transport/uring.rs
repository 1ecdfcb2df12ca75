//! The io_uring backend: one ring, one gateway thread, nothing allocated after `bind`.
//!
//! How it works:
//! - **Accept**: one multishot accept on the listener. Each accepted socket takes a slot of the
//!   fixed connection table (allocated at bind); with every slot in use it is closed at once
//!   (`Refused`).
//! - **Receive**: one multishot receive per connection, all drawing from one provided buffer
//!   ring (`IORING_REGISTER_PBUF_RING`) of `recv_buffer_count` buffers of `read_buffer_bytes`
//!   each. The kernel picks a buffer per completion and names it in the CQE; the bytes stay
//!   valid while the gateway handles that `NetEvent::Data`, and the buffer goes back to the ring
//!   (one Release store of the ring's tail) when the next event or poll is asked for.
//!   The count is `2 * max_connections` rounded up to a power of two (the ring's size must be
//!   one), at least 64 and at most 32768 (the kernel's limit): enough for every connection to
//!   have one completion queued and one more arriving before the gateway drains the queue.
//!   Memory: `recv_buffer_count * read_buffer_bytes`, e.g. 512 * 64 KiB = 32 MiB for 256
//!   connections, 128 * 64 KiB = 8 MiB for 64. Page-aligned, allocated once at bind; pages
//!   are only touched as the kernel first fills them unless the process locks its memory.
//! - **Back-pressure**: when the gateway falls behind and the ring runs empty, a connection's
//!   multishot receive ends with ENOBUFS and nothing is lost: the bytes stay in the socket, TCP
//!   flow control pushes back on that client, and the receive is re-armed at the next poll, when
//!   every buffer is back in the ring (a poll only goes to the kernel once the gateway has
//!   taken every queued event).
//! - **Send**: each connection slot owns a send buffer of `send_buffer_bytes` (default
//!   [`SEND_BUFFER_BYTES_DEFAULT`], allocated for every slot at bind), used as a byte ring.
//!   `send` copies what fits and returns how much it took (0 when full, which leaves the rest
//!   with the gateway, whose backlog limit catches a client that does not read). At the next
//!   poll each connection with unsent bytes and no send in flight gets one `Send` for its
//!   contiguous unsent bytes; a short send resubmits the rest; an error closes the connection.
//!   Memory: `max_connections * send_buffer_bytes`, 16 MiB for 256 connections at the default.
//!   Registered (fixed) buffers are not used: a plain `Send` copies from user memory into the
//!   socket either way; fixed buffers pay off for zero-copy sends (SEND_ZC) of large payloads,
//!   not for the sub-kilobyte OUCH messages this gateway sends.
//! - **One enter per poll**: every SQE a poll queues (re-armed receives, sends, cancels) goes
//!   to the kernel in one `io_uring_enter`, the one that also waits when the poll has a
//!   timeout. A zero-timeout poll with nothing to submit makes no system call at all: the
//!   kernel posts completions to the shared ring on its own.
//! - **Close**: bytes already taken are still sent, then the socket is shut down (both ways)
//!   and its operations cancelled; the slot is reused only once every operation on it has
//!   completed (CQEs carry the slot's generation, so nothing is misattributed). A peer that
//!   does not read for [`CLOSE_LINGER`] after the close is shut down anyway, so it cannot pin a
//!   slot. Dropping the transport drains for up to [`CLOSE_LINGER`] as well, so that what the
//!   gateway queued last (End of Session) reaches clients even without `drain_sends`.

use super::{ConnId, NetEvent, Transport};
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::alloc::Layout;
use std::collections::VecDeque;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

/// Per-connection send buffer when the caller has no reason to choose: 64 KiB holds a full
/// replay batch of OUCH messages and matches the kernel's default socket send buffer, so a
/// client that keeps up never sees `send` take less than it was given.
pub const SEND_BUFFER_BYTES_DEFAULT: usize = 64 * 1024;
/// How long a closed connection may keep unsent bytes before it is shut down regardless.
pub const CLOSE_LINGER: Duration = Duration::from_secs(1);

const RECV_BUFFERS_MIN: u32 = 64;
/// The kernel's limit on the entries of one provided buffer ring.
const RECV_BUFFERS_MAX: u32 = 32768;
const SQ_ENTRIES_MIN: u32 = 64;
/// The kernel's limit on submission queue entries.
const SQ_ENTRIES_MAX: u32 = 32768;
const BUFFER_GROUP: u16 = 0;
const PAGE_BYTES: usize = 4096;
/// Completions copied out of the ring per batch in `reap` (a stack array, no allocation).
const REAP_BATCH: usize = 64;
/// Longest single wait inside `drain_sends`, so its deadline is checked regularly.
const DRAIN_WAIT_MAX: Duration = Duration::from_millis(10);

const KIND_ACCEPT: u64 = 1;
const KIND_RECV: u64 = 2;
const KIND_WAKE: u64 = 3;
const KIND_SEND: u64 = 4;
const KIND_CANCEL: u64 = 5;
const GENERATION_MASK: u32 = 0xff_ffff;

fn user_data(kind: u64, generation: u32, conn: ConnId) -> u64 {
    (kind << 56) | (((generation & GENERATION_MASK) as u64) << 32) | conn as u64
}

/// Page-aligned memory the kernel reads or writes, allocated once. Only ever accessed through
/// raw pointers: the kernel may be using parts of it while we use others.
struct KernelMem {
    ptr: NonNull<u8>,
    layout: Layout,
    /// False when the kernel could not be shown to be done with it (see `Drop for
    /// UringTransport`): leaking beats freeing memory the kernel may still write.
    owned: bool,
}

// SAFETY: KernelMem owns its allocation exclusively (like a Box<[u8]>); the raw pointer is not
// shared with other threads, only with the kernel on behalf of the owning transport.
unsafe impl Send for KernelMem {}

impl KernelMem {
    fn zeroed(bytes: usize) -> io::Result<KernelMem> {
        assert!(bytes > 0, "kernel memory of zero bytes");
        let layout = Layout::from_size_align(bytes, PAGE_BYTES)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("{bytes} bytes: {e}")))?;
        // SAFETY: the layout has a non-zero size (asserted above).
        let ptr = unsafe { std::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).ok_or_else(|| {
            io::Error::new(io::ErrorKind::OutOfMemory, format!("cannot allocate {bytes} bytes for io_uring"))
        })?;
        Ok(KernelMem { ptr, layout, owned: true })
    }

    fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }
}

impl Drop for KernelMem {
    fn drop(&mut self) {
        if self.owned {
            // SAFETY: allocated in `zeroed` with this layout and not freed before.
            unsafe { std::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
        }
    }
}

/// The provided buffer ring: `count` entries naming `count` buffers; the kernel consumes
/// entries from its head, we add returned buffers at our tail.
struct BufRing {
    entries: KernelMem,
    buffers: KernelMem,
    count: u32,
    buffer_bytes: u32,
    /// Our tail, published to the kernel by `publish`.
    tail: u16,
}

impl BufRing {
    fn new(count: u32, buffer_bytes: u32) -> io::Result<BufRing> {
        assert!(count.is_power_of_two() && count <= RECV_BUFFERS_MAX, "buffer ring of {count} entries");
        let entries = KernelMem::zeroed(count as usize * std::mem::size_of::<types::BufRingEntry>())?;
        let buffers = KernelMem::zeroed(count as usize * buffer_bytes as usize)?;
        let mut ring = BufRing { entries, buffers, count, buffer_bytes, tail: 0 };
        for id in 0..count {
            ring.provide(id as u16);
        }
        ring.publish();
        Ok(ring)
    }

    fn entry_base(&self) -> *mut types::BufRingEntry {
        self.entries.as_ptr().cast()
    }

    /// Puts buffer `id` at our tail; the kernel sees it after `publish`.
    fn provide(&mut self, id: u16) {
        assert!((id as u32) < self.count, "buffer id {id} out of range");
        let index = (self.tail as u32 & (self.count - 1)) as usize;
        // SAFETY: index < count, inside the entries allocation. The entry at our tail is not
        // one the kernel reads: it reads only entries between its head and the published tail,
        // and at most count - 1 buffers are in the ring while `id` is out of it. The tail
        // field shared with entry 0 is left untouched by these setters.
        let entry = unsafe { &mut *self.entry_base().add(index) };
        // SAFETY: id < count, so the buffer lies inside the buffers allocation.
        let addr = unsafe { self.buffers.as_ptr().add(id as usize * self.buffer_bytes as usize) };
        entry.set_addr(addr as u64);
        entry.set_len(self.buffer_bytes);
        entry.set_bid(id);
        self.tail = self.tail.wrapping_add(1);
    }

    fn publish(&self) {
        // SAFETY: the tail lies in the first entry of our live, page-aligned allocation; the
        // kernel reads it concurrently, so it is written only through an atomic. Release makes
        // the entries written before visible to the kernel before the new tail is.
        unsafe {
            let tail = types::BufRingEntry::tail(self.entry_base()) as *const AtomicU16;
            (*tail).store(self.tail, Ordering::Release);
        }
    }

    fn give_back(&mut self, id: u16) {
        self.provide(id);
        self.publish();
    }

    /// The first `len` bytes of buffer `id`, which the kernel filled and handed to us.
    ///
    /// # Safety
    /// `id` must be out of the ring (named by a completion and not yet given back) and the
    /// kernel must have written `len` bytes to it.
    unsafe fn bytes(&self, id: u16, len: u32) -> &[u8] {
        assert!((id as u32) < self.count && len <= self.buffer_bytes, "buffer {id}, {len} bytes");
        // SAFETY: in bounds (asserted); the caller guarantees the kernel is done writing it
        // and will not reuse it until it is given back, which needs `&mut self`.
        unsafe {
            std::slice::from_raw_parts(
                self.buffers.as_ptr().add(id as usize * self.buffer_bytes as usize),
                len as usize,
            )
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Free,
    Open,
    /// The peer closed or an operation failed; a `Closed` event is queued and the slot waits
    /// for `close` (from `next_event` delivering it, or from the gateway).
    Failed,
    /// Closed by us: sending what was taken, then shut down, then freed.
    Closing,
}

struct Slot {
    stream: Option<TcpStream>,
    phase: Phase,
    generation: u32,
    recv_armed: bool,
    /// Bytes of the `Send` in flight (0: none). They are the first bytes of the unsent span.
    send_in_flight_bytes: u32,
    /// The unsent span of this slot's send buffer, a byte ring: `tx_len` bytes from `tx_start`.
    tx_start: usize,
    tx_len: usize,
    shut: bool,
    close_deadline: Instant,
    /// Queued in `UringTransport::dirty` (for `arm`) already.
    dirty: bool,
}

impl Slot {
    fn free(now: Instant) -> Slot {
        Slot {
            stream: None,
            phase: Phase::Free,
            generation: 0,
            recv_armed: false,
            send_in_flight_bytes: 0,
            tx_start: 0,
            tx_len: 0,
            shut: false,
            close_deadline: now,
            dirty: false,
        }
    }
}

enum Pending {
    Accepted(ConnId, SocketAddr),
    Refused(SocketAddr),
    Data { conn: ConnId, buffer: u16, len: u32 },
    Closed(ConnId, Option<io::ErrorKind>),
}

pub struct UringTransport {
    // Declared first so that it is dropped before the memory it used.
    ring: IoUring,
    listener: TcpListener,
    local_addr: SocketAddr,
    slots: Vec<Slot>,
    free: Vec<ConnId>,
    /// Connections that need an SQE at the next poll (re-arm, send, shut down, free).
    dirty: Vec<ConnId>,
    closing_count: u32,
    next_generation: u32,
    accept_armed: bool,
    wake: Option<OwnedFd>,
    wake_armed: bool,
    pending: VecDeque<Pending>,
    /// Every pending event comes from one completion, so reaping stops at this many.
    pending_max: usize,
    /// The buffer of the last `Data` event handed out; back to the ring on the next call.
    held_buffer: Option<u16>,
    recv: BufRing,
    send_mem: KernelMem,
    send_buffer_bytes: usize,
    buffer_ring_empty_total: u64,
    accept_errors_total: u64,
}

fn bind_listener(addr: SocketAddr) -> io::Result<TcpListener> {
    let listener = TcpListener::bind(addr)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn unsupported(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::Unsupported, format!("io_uring lacks {what}"))
}

/// Refuses a kernel that lacks an operation this backend needs, naming it.
fn check_features(ring: &IoUring) -> io::Result<()> {
    let mut probe = io_uring::Probe::new();
    ring.submitter().register_probe(&mut probe)?;
    // The probe sees opcodes, not multishot flags: multishot accept came with 5.19 and
    // multishot receive with 6.0, the release that added SEND_ZC, which stands for it.
    for (code, name) in [
        (opcode::AcceptMulti::CODE, "accept"),
        (opcode::RecvMulti::CODE, "recv"),
        (opcode::Send::CODE, "send"),
        (opcode::PollAdd::CODE, "poll"),
        (opcode::AsyncCancel::CODE, "async cancel"),
        (opcode::SendZc::CODE, "multishot receive (Linux 6.0)"),
    ] {
        if !probe.is_supported(code) {
            return Err(unsupported(name));
        }
    }
    Ok(())
}

/// Hands the receive buffers' ring to the kernel as buffer group [`BUFFER_GROUP`].
fn register_recv_ring(ring: &IoUring, recv: &BufRing, count: u32) -> io::Result<()> {
    // SAFETY: the entries stay allocated, at this address, until the ring is unregistered
    // (Drop for UringTransport, or in `bind` when binding fails) or, failing that, forever.
    let registered = unsafe {
        ring.submitter().register_buf_ring_with_flags(
            recv.entries.as_ptr() as u64,
            count as u16,
            BUFFER_GROUP,
            0,
        )
    };
    registered.map_err(|e| match e.raw_os_error() {
        Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => {
            unsupported("provided buffer rings (IORING_REGISTER_PBUF_RING, Linux 5.19)")
        }
        _ => e,
    })
}

impl UringTransport {
    /// Binds `addr` with room for `max_connections` connections, receive buffers of
    /// `read_buffer_bytes` (the most one `Data` event carries) and a send buffer of
    /// `send_buffer_bytes` per connection.
    ///
    /// Fails with [`io::ErrorKind::Unsupported`] naming the missing feature when the kernel
    /// lacks one this backend needs (multishot accept, multishot receive, provided buffer
    /// rings), and with the kernel's error when io_uring is unavailable altogether
    /// (kernel.io_uring_disabled, a seccomp filter): the caller falls back to epoll and says so.
    /// The listener is bound last, so a fallback can bind the same address.
    pub fn bind(
        addr: SocketAddr,
        max_connections: u32,
        read_buffer_bytes: usize,
        send_buffer_bytes: usize,
    ) -> io::Result<UringTransport> {
        assert!(max_connections > 0, "a gateway with no connection slots");
        for (what, bytes) in [("read", read_buffer_bytes), ("send", send_buffer_bytes)] {
            assert!(bytes > 0 && u32::try_from(bytes).is_ok(), "{what} buffer of {bytes} bytes");
        }
        let recv_buffer_count =
            max_connections.saturating_mul(2).next_power_of_two().clamp(RECV_BUFFERS_MIN, RECV_BUFFERS_MAX);
        // Per connection and poll at most: one receive re-arm, one send, one cancel; plus the
        // accept and the wake poll. Sized so that a poll never needs a second enter.
        let sq_entries = max_connections
            .saturating_mul(3)
            .saturating_add(2)
            .next_power_of_two()
            .clamp(SQ_ENTRIES_MIN, SQ_ENTRIES_MAX);
        let ring = IoUring::builder().build(sq_entries)?;
        check_features(&ring)?;
        // Everything fallible that needs no cleanup first; the listener last (see above).
        let recv = BufRing::new(recv_buffer_count, read_buffer_bytes as u32)?;
        let send_mem_bytes = (max_connections as usize).checked_mul(send_buffer_bytes).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{max_connections} connections of {send_buffer_bytes} send buffer bytes overflow"),
            )
        })?;
        let send_mem = KernelMem::zeroed(send_mem_bytes)?;
        register_recv_ring(&ring, &recv, recv_buffer_count)?;
        let listener = match bind_listener(addr) {
            Ok(listener) => listener,
            Err(e) => {
                // No operation was ever submitted, so the kernel wrote nothing into the
                // buffers; unregistering hands the entries back before they are freed.
                if ring.submitter().unregister_buf_ring(BUFFER_GROUP).is_err() {
                    std::mem::forget(recv);
                }
                return Err(e);
            }
        };
        let local_addr = listener.local_addr()?;
        let cq_entries = ring.params().cq_entries() as usize;
        let now = Instant::now();
        let slots = (0..max_connections).map(|_| Slot::free(now)).collect();
        Ok(UringTransport {
            ring,
            listener,
            local_addr,
            slots,
            free: (0..max_connections).rev().collect(),
            dirty: Vec::with_capacity(max_connections as usize),
            closing_count: 0,
            next_generation: 0,
            accept_armed: false,
            wake: None,
            wake_armed: false,
            pending: VecDeque::with_capacity(cq_entries),
            pending_max: cq_entries,
            held_buffer: None,
            recv,
            send_mem,
            send_buffer_bytes,
            buffer_ring_empty_total: 0,
            accept_errors_total: 0,
        })
    }

    /// Buffers in the provided buffer ring.
    pub fn recv_buffer_count(&self) -> u32 {
        self.recv.count
    }

    /// Times a connection's receive found the buffer ring empty and waited for the next poll
    /// (back-pressure, not loss).
    pub fn buffer_ring_empty_total(&self) -> u64 {
        self.buffer_ring_empty_total
    }

    /// Accepts the kernel failed (a connection reset in the backlog, no file descriptors).
    pub fn accept_errors_total(&self) -> u64 {
        self.accept_errors_total
    }

    fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        // SAFETY: every entry refers to a descriptor and memory that outlive its completion:
        // the listener and the wake fd live as long as the ring; a connection's socket and its
        // slot of the send buffer are released only once its receive and send completed; the
        // buffer ring is unregistered before it is freed.
        if unsafe { self.ring.submission().push(&entry) }.is_err() {
            // Only when more connections need an SQE in one poll than the ring was sized for.
            self.ring.submit()?;
            // SAFETY: as above.
            unsafe { self.ring.submission().push(&entry) }
                .map_err(|_| io::Error::other("io_uring submission queue full after submit"))?;
        }
        Ok(())
    }

    fn mark_dirty(&mut self, conn: ConnId) {
        let slot = &mut self.slots[conn as usize];
        if !slot.dirty {
            slot.dirty = true;
            // Never grows: each slot is in the list at most once.
            debug_assert!(self.dirty.len() < self.dirty.capacity());
            self.dirty.push(conn);
        }
    }

    fn give_back_held(&mut self) {
        if let Some(buffer) = self.held_buffer.take() {
            self.recv.give_back(buffer);
        }
    }

    /// Queues what connections need: receives re-armed, sends, shutdowns; frees finished slots.
    fn arm(&mut self) -> io::Result<()> {
        if !self.accept_armed {
            let entry = opcode::AcceptMulti::new(types::Fd(self.listener.as_raw_fd()))
                .build()
                .user_data(user_data(KIND_ACCEPT, 0, 0));
            self.push(entry)?;
            self.accept_armed = true;
        }
        if let Some(fd) = self.wake.as_ref().filter(|_| !self.wake_armed).map(AsRawFd::as_raw_fd) {
            let entry = opcode::PollAdd::new(types::Fd(fd), libc::POLLIN as u32)
                .multi(true)
                .build()
                .user_data(user_data(KIND_WAKE, 0, 0));
            self.push(entry)?;
            self.wake_armed = true;
        }
        while let Some(conn) = self.dirty.pop() {
            self.slots[conn as usize].dirty = false;
            match self.slots[conn as usize].phase {
                Phase::Free | Phase::Failed => {}
                Phase::Open => {
                    self.arm_recv(conn)?;
                    self.arm_send(conn)?;
                }
                Phase::Closing => {
                    self.arm_send(conn)?;
                    let slot = &self.slots[conn as usize];
                    if !slot.shut && slot.tx_len == 0 && slot.send_in_flight_bytes == 0 {
                        self.shut(conn)?;
                    }
                    self.free_if_done(conn);
                }
            }
        }
        Ok(())
    }

    fn arm_recv(&mut self, conn: ConnId) -> io::Result<()> {
        let slot = &mut self.slots[conn as usize];
        if slot.recv_armed {
            return Ok(());
        }
        let fd = slot.stream.as_ref().expect("an open slot has a socket").as_raw_fd();
        slot.recv_armed = true;
        let entry = opcode::RecvMulti::new(types::Fd(fd), BUFFER_GROUP).build().user_data(user_data(
            KIND_RECV,
            slot.generation,
            conn,
        ));
        self.push(entry)
    }

    fn arm_send(&mut self, conn: ConnId) -> io::Result<()> {
        let cap = self.send_buffer_bytes;
        let slot = &mut self.slots[conn as usize];
        if slot.send_in_flight_bytes != 0 || slot.tx_len == 0 || slot.shut {
            return Ok(());
        }
        let len = slot.tx_len.min(cap - slot.tx_start);
        let fd = slot.stream.as_ref().expect("a sending slot has a socket").as_raw_fd();
        slot.send_in_flight_bytes = len as u32;
        // SAFETY: conn < max_connections and tx_start + len <= cap: inside this slot's part
        // of the send memory, which lives as long as the ring.
        let buf = unsafe { self.send_mem.as_ptr().add(conn as usize * cap + slot.tx_start) };
        let entry = opcode::Send::new(types::Fd(fd), buf, len as u32)
            .flags(libc::MSG_NOSIGNAL)
            .build()
            .user_data(user_data(KIND_SEND, slot.generation, conn));
        self.push(entry)
    }

    /// Shuts the socket down both ways (which ends its receive, and a send waiting for room)
    /// and cancels whatever is still in flight on it.
    fn shut(&mut self, conn: ConnId) -> io::Result<()> {
        let slot = &mut self.slots[conn as usize];
        slot.shut = true;
        // What was not sent by now never will be.
        slot.tx_len = 0;
        slot.tx_start = 0;
        let stream = slot.stream.as_ref().expect("a closing slot has a socket");
        // ENOTCONN: the peer is gone already, which is what we want.
        let _ = stream.shutdown(Shutdown::Both);
        let fd = stream.as_raw_fd();
        if slot.recv_armed || slot.send_in_flight_bytes != 0 {
            let entry = opcode::AsyncCancel2::new(types::CancelBuilder::fd(types::Fd(fd)).all())
                .build()
                .user_data(user_data(KIND_CANCEL, 0, conn));
            self.push(entry)?;
        }
        Ok(())
    }

    fn free_if_done(&mut self, conn: ConnId) {
        let slot = &mut self.slots[conn as usize];
        if slot.phase == Phase::Closing && slot.shut && !slot.recv_armed && slot.send_in_flight_bytes == 0 {
            slot.stream = None;
            slot.phase = Phase::Free;
            self.closing_count -= 1;
            self.free.push(conn);
        }
    }

    /// Shuts down closing connections whose peer has not taken their last bytes in time.
    fn expire_closing(&mut self, now: Instant) -> io::Result<()> {
        if self.closing_count == 0 {
            return Ok(());
        }
        for conn in 0..self.slots.len() as ConnId {
            let slot = &self.slots[conn as usize];
            if slot.phase == Phase::Closing && !slot.shut && now >= slot.close_deadline {
                self.shut(conn)?;
            }
        }
        Ok(())
    }

    /// One `io_uring_enter`: submits what `arm` queued and waits up to `timeout` for a
    /// completion; none when there is nothing to submit and nothing to wait for.
    fn enter(&mut self, timeout: Duration) -> io::Result<()> {
        let result = if timeout.is_zero() {
            let mut sq = self.ring.submission();
            sq.sync();
            if sq.is_empty() && !sq.cq_overflow() && !sq.taskrun() {
                return Ok(());
            }
            drop(sq);
            self.ring.submit()
        } else {
            let ts = types::Timespec::new().sec(timeout.as_secs()).nsec(timeout.subsec_nanos());
            let args = types::SubmitArgs::new().timespec(&ts);
            self.ring.submitter().submit_with_args(1, &args)
        };
        match result {
            Ok(_) => Ok(()),
            // The timeout passed, a signal came, or the completion queue is full until we
            // reap it: all retried by the next poll.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME) | Some(libc::EINTR) | Some(libc::EBUSY) | Some(libc::EAGAIN)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Takes completions off the ring, at most as many as the event queue has room for (the
    /// rest stay in the ring for the next poll).
    fn reap(&mut self) {
        let mut batch = [(0u64, 0i32, 0u32); REAP_BATCH];
        loop {
            let room = (self.pending_max - self.pending.len()).min(REAP_BATCH);
            if room == 0 {
                return;
            }
            let mut n = 0;
            {
                let mut cq = self.ring.completion();
                while n < room {
                    let Some(cqe) = cq.next() else { break };
                    batch[n] = (cqe.user_data(), cqe.result(), cqe.flags());
                    n += 1;
                }
            }
            for &(data, result, flags) in &batch[..n] {
                self.complete(data, result, flags);
            }
            if n < room {
                return;
            }
        }
    }

    fn complete(&mut self, data: u64, result: i32, flags: u32) {
        let kind = data >> 56;
        let conn = (data & 0xffff_ffff) as ConnId;
        let generation = ((data >> 32) as u32) & GENERATION_MASK;
        match kind {
            KIND_ACCEPT => self.complete_accept(result, flags),
            KIND_RECV => self.complete_recv(conn, generation, result, flags),
            KIND_SEND => self.complete_send(conn, generation, result),
            KIND_WAKE => {
                if !cqueue::more(flags) {
                    self.wake_armed = false;
                }
                if let Some(fd) = &self.wake {
                    // Resets the eventfd's counter (non-blocking; EAGAIN: already reset).
                    let mut counter = [0u8; 8];
                    let _ = nix::unistd::read(fd.as_raw_fd(), &mut counter);
                }
            }
            // Its target completes on its own; a cancel that found nothing is fine.
            KIND_CANCEL => {}
            _ => unreachable!("completion with unknown user data {data:#x}"),
        }
    }

    fn complete_accept(&mut self, result: i32, flags: u32) {
        if !cqueue::more(flags) {
            self.accept_armed = false;
        }
        if result < 0 {
            // A connection reset in the backlog, or no descriptors left: not fatal to the
            // listener; the accept is re-armed at the next poll if it ended.
            self.accept_errors_total += 1;
            return;
        }
        // SAFETY: a successful accept returns a new socket descriptor that nothing else owns.
        let stream = unsafe { TcpStream::from_raw_fd(result) };
        // A peer that already reset has no address; its receive reports the reset.
        let peer = stream.peer_addr().unwrap_or(self.local_addr);
        let Some(conn) = self.free.pop() else {
            drop(stream);
            self.pending.push_back(Pending::Refused(peer));
            return;
        };
        // Orders are small and latency-bound: never wait to coalesce them.
        let _ = stream.set_nodelay(true);
        self.next_generation = self.next_generation.wrapping_add(1) & GENERATION_MASK;
        let slot = &mut self.slots[conn as usize];
        debug_assert!(slot.phase == Phase::Free && slot.stream.is_none());
        *slot = Slot {
            stream: Some(stream),
            phase: Phase::Open,
            generation: self.next_generation,
            recv_armed: false,
            send_in_flight_bytes: 0,
            tx_start: 0,
            tx_len: 0,
            shut: false,
            close_deadline: slot.close_deadline,
            dirty: false,
        };
        self.mark_dirty(conn);
        self.pending.push_back(Pending::Accepted(conn, peer));
    }

    fn complete_recv(&mut self, conn: ConnId, generation: u32, result: i32, flags: u32) {
        let buffer = cqueue::buffer_select(flags);
        let slot = &mut self.slots[conn as usize];
        // A slot is reused only after its receive ended, so a receive completion always
        // belongs to the slot's current connection.
        assert_eq!(slot.generation, generation, "receive completion for a reused slot {conn}");
        let more = cqueue::more(flags);
        if !more {
            slot.recv_armed = false;
        }
        match slot.phase {
            Phase::Open => {
                if result > 0 {
                    let buffer = buffer.expect("a buffer-select receive names its buffer");
                    self.pending.push_back(Pending::Data { conn, buffer, len: result as u32 });
                    if !more {
                        self.mark_dirty(conn);
                    }
                    return;
                }
                if let Some(buffer) = buffer {
                    self.recv.give_back(buffer);
                }
                let errno = -result;
                if result == 0 {
                    slot.phase = Phase::Failed;
                    self.pending.push_back(Pending::Closed(conn, None));
                } else if errno == libc::ENOBUFS {
                    self.buffer_ring_empty_total += 1;
                    self.mark_dirty(conn);
                } else if matches!(errno, libc::EAGAIN | libc::EINTR | libc::ECANCELED) {
                    if !more {
                        self.mark_dirty(conn);
                    }
                } else {
                    slot.phase = Phase::Failed;
                    let kind = io::Error::from_raw_os_error(errno).kind();
                    self.pending.push_back(Pending::Closed(conn, Some(kind)));
                }
            }
            Phase::Failed | Phase::Closing => {
                if let Some(buffer) = buffer {
                    self.recv.give_back(buffer);
                }
                if !more && slot.phase == Phase::Closing {
                    self.mark_dirty(conn);
                }
            }
            Phase::Free => unreachable!("receive completion on free slot {conn}"),
        }
    }

    fn complete_send(&mut self, conn: ConnId, generation: u32, result: i32) {
        let cap = self.send_buffer_bytes;
        let slot = &mut self.slots[conn as usize];
        assert_eq!(slot.generation, generation, "send completion for a reused slot {conn}");
        let in_flight = slot.send_in_flight_bytes as usize;
        assert!(in_flight > 0, "send completion without a send in flight on slot {conn}");
        slot.send_in_flight_bytes = 0;
        let errno = -result;
        if slot.shut {
            // Shut down while this send was in flight: whatever it did, nothing more goes out.
            debug_assert_eq!(slot.tx_len, 0);
        } else if result > 0 {
            let sent = result as usize;
            assert!(sent <= in_flight, "sent {sent} of {in_flight} bytes");
            slot.tx_start = (slot.tx_start + sent) % cap;
            slot.tx_len -= sent;
            if slot.tx_len == 0 {
                // Keeps the next sends contiguous: one SQE each.
                slot.tx_start = 0;
            }
        } else if result < 0 && matches!(errno, libc::EAGAIN | libc::EINTR) {
            // Nothing sent; resubmitted at the next poll.
        } else {
            // Nothing more will go out on this socket (0: it took nothing, which a stream
            // socket only does when it cannot).
            slot.tx_len = 0;
            slot.tx_start = 0;
            if slot.phase == Phase::Open {
                slot.phase = Phase::Failed;
                let kind = if result == 0 {
                    io::ErrorKind::WriteZero
                } else {
                    io::Error::from_raw_os_error(errno).kind()
                };
                self.pending.push_back(Pending::Closed(conn, Some(kind)));
            }
        }
        let slot = &self.slots[conn as usize];
        if slot.tx_len > 0 || slot.phase == Phase::Closing {
            self.mark_dirty(conn);
        }
    }

    fn unsent_bytes(&self) -> usize {
        self.slots.iter().filter(|s| matches!(s.phase, Phase::Open | Phase::Closing)).map(|s| s.tx_len).sum()
    }
}

impl Transport for UringTransport {
    fn name(&self) -> &'static str {
        "io_uring"
    }

    fn set_wake_fd(&mut self, fd: OwnedFd) -> io::Result<()> {
        self.wake = Some(fd);
        self.wake_armed = false;
        Ok(())
    }

    fn poll(&mut self, timeout: Duration) -> io::Result<()> {
        self.give_back_held();
        if !self.pending.is_empty() {
            return Ok(());
        }
        if self.closing_count > 0 {
            self.expire_closing(Instant::now())?;
        }
        self.arm()?;
        self.enter(timeout)?;
        self.reap();
        // A send that completed just now may leave bytes queued behind it: hand them to the
        // kernel at once rather than at the next poll, which may come only after a group
        // commit (running to completion) or a sleep.
        if !self.dirty.is_empty() {
            self.arm()?;
            self.enter(Duration::ZERO)?;
        }
        Ok(())
    }

    fn next_event(&mut self) -> Option<NetEvent<'_>> {
        self.give_back_held();
        loop {
            match self.pending.pop_front()? {
                Pending::Accepted(conn, peer) => return Some(NetEvent::Accepted { conn, peer }),
                Pending::Refused(peer) => return Some(NetEvent::Refused { peer }),
                Pending::Closed(conn, error) => {
                    self.close(conn);
                    return Some(NetEvent::Closed { conn, error });
                }
                Pending::Data { conn, buffer, len } => {
                    if !matches!(self.slots[conn as usize].phase, Phase::Open | Phase::Failed) {
                        self.recv.give_back(buffer);
                        continue;
                    }
                    self.held_buffer = Some(buffer);
                    // SAFETY: the completion named this buffer and its length; it is out of
                    // the ring until the next call on the transport, which ends this borrow.
                    let bytes = unsafe { self.recv.bytes(buffer, len) };
                    return Some(NetEvent::Data { conn, bytes });
                }
            }
        }
    }

    fn send(&mut self, conn: ConnId, bytes: &[u8]) -> io::Result<usize> {
        let cap = self.send_buffer_bytes;
        let Some(slot) = self.slots.get_mut(conn as usize) else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        match slot.phase {
            Phase::Open => {}
            // Its Closed event is queued: the connection ends there.
            Phase::Failed => return Ok(0),
            Phase::Free | Phase::Closing => return Err(io::ErrorKind::NotConnected.into()),
        }
        let n = bytes.len().min(cap - slot.tx_len);
        if n == 0 {
            return Ok(0);
        }
        let end = (slot.tx_start + slot.tx_len) % cap;
        let first = n.min(cap - end);
        let base = self.send_mem.as_ptr();
        // SAFETY: both ranges lie in this slot's part of the send memory (end + first <= cap,
        // n - first <= tx_start) and outside its unsent span, the only part a send in flight
        // reads, because n <= cap - tx_len.
        unsafe {
            std::ptr::copy_nonoverlapping(bytes.as_ptr(), base.add(conn as usize * cap + end), first);
            std::ptr::copy_nonoverlapping(bytes[first..].as_ptr(), base.add(conn as usize * cap), n - first);
        }
        slot.tx_len += n;
        if slot.send_in_flight_bytes == 0 {
            self.mark_dirty(conn);
        }
        Ok(n)
    }

    fn close(&mut self, conn: ConnId) {
        let Some(slot) = self.slots.get_mut(conn as usize) else { return };
        if matches!(slot.phase, Phase::Free | Phase::Closing) {
            return;
        }
        slot.phase = Phase::Closing;
        slot.close_deadline = Instant::now() + CLOSE_LINGER;
        self.closing_count += 1;
        // No event follows a close: received bytes and a queued Closed are dropped.
        let recv = &mut self.recv;
        self.pending.retain(|p| match *p {
            Pending::Data { conn: c, buffer, .. } if c == conn => {
                recv.give_back(buffer);
                false
            }
            Pending::Closed(c, _) => c != conn,
            _ => true,
        });
        self.mark_dirty(conn);
    }

    fn abort(&mut self, conn: ConnId) {
        let Some(stream) = self.slots.get(conn as usize).and_then(|s| s.stream.as_ref()) else { return };
        super::reset_on_close(stream);
        self.close(conn);
        // No linger: the next poll shuts it down, cancels what is in flight and frees the slot,
        // and dropping the socket then resets the connection.
        let slot = &mut self.slots[conn as usize];
        if slot.phase == Phase::Closing {
            slot.close_deadline = Instant::now();
        }
    }

    fn drain_sends(&mut self, timeout: Duration) -> io::Result<bool> {
        let deadline = Instant::now() + timeout;
        loop {
            self.give_back_held();
            let now = Instant::now();
            self.expire_closing(now)?;
            self.arm()?;
            if self.unsent_bytes() == 0 {
                // Submits the shutdowns' cancels.
                self.enter(Duration::ZERO)?;
                return Ok(true);
            }
            // A full event queue stops reaping: the caller must take events first.
            if now >= deadline || self.pending.len() >= self.pending_max {
                self.enter(Duration::ZERO)?;
                return Ok(false);
            }
            self.enter((deadline - now).min(DRAIN_WAIT_MAX))?;
            self.reap();
        }
    }

    fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for UringTransport {
    fn drop(&mut self) {
        if let Err(e) = self.drain_sends(CLOSE_LINGER) {
            tracing::debug!(error = %e, "io_uring: draining sends at drop failed");
        }
        for slot in &self.slots {
            if let Some(stream) = &slot.stream {
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
        // The kernel may use our memory until every operation has ended and the buffer ring
        // is unregistered; if it cannot be shown to be done, leak rather than free.
        let cancelled = match self
            .ring
            .submitter()
            .register_sync_cancel(Some(types::Timespec::new().sec(1)), types::CancelBuilder::any())
        {
            Ok(()) => true,
            Err(e) => e.kind() == io::ErrorKind::NotFound,
        };
        let unregistered = self.ring.submitter().unregister_buf_ring(BUFFER_GROUP).is_ok();
        if !(cancelled && unregistered) {
            tracing::warn!("io_uring: operations outlived the transport; leaking its buffers");
            self.recv.entries.owned = false;
            self.recv.buffers.owned = false;
            self.send_mem.owned = false;
        }
    }
}
