//! The io_uring backend: one multishot accept, one receive in flight per connection into that
//! connection's own fixed buffer, every submission batched into one `io_uring_enter` per poll.
//!
//! Sends are direct non-blocking writes: on loopback and a quiet NIC a write completes at once,
//! and a synchronous write keeps buffer ownership simple. (A send path through the ring with
//! registered buffers, and receives through a provided buffer ring, are the next steps; the
//! session code above `Transport` does not change for them.)

use super::transport::{ConnId, NetEvent, Transport};
use io_uring::{cqueue, opcode, squeue, types, IoUring};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::time::Duration;

const KIND_ACCEPT: u64 = 1;
const KIND_RECV: u64 = 2;
const KIND_WAKE: u64 = 3;

fn user_data(kind: u64, generation: u32, conn: ConnId) -> u64 {
    (kind << 56) | ((generation as u64 & 0xff_ffff) << 32) | conn as u64
}

struct UConn {
    stream: TcpStream,
    buf: Box<[u8]>,
    generation: u32,
    recv_armed: bool,
    /// Closed by us; the slot is freed when its receive completes (the kernel may still be
    /// writing into `buf` until then).
    closing: bool,
}

enum Pending {
    Accepted(ConnId, SocketAddr),
    Refused(SocketAddr),
    Data(ConnId, usize),
    Closed(ConnId, Option<io::ErrorKind>),
}

pub struct UringTransport {
    ring: IoUring,
    listener: TcpListener,
    local_addr: SocketAddr,
    conns: Vec<Option<UConn>>,
    free: Vec<ConnId>,
    next_generation: u32,
    accept_armed: bool,
    pending: VecDeque<Pending>,
    read_buffer_bytes: usize,
    wake: Option<OwnedFd>,
    wake_armed: bool,
}

impl UringTransport {
    /// Fails when io_uring is unavailable (kernel.io_uring_disabled, a seccomp filter, an old
    /// kernel): the caller falls back to epoll and says so.
    pub fn bind(
        addr: SocketAddr,
        max_connections: u32,
        read_buffer_bytes: usize,
    ) -> io::Result<UringTransport> {
        let ring = IoUring::builder().build(1024)?;
        let mut probe = io_uring::Probe::new();
        ring.submitter().register_probe(&mut probe)?;
        for (code, name) in [(opcode::AcceptMulti::CODE, "multishot accept"), (opcode::Recv::CODE, "recv")] {
            if !probe.is_supported(code) {
                return Err(io::Error::new(io::ErrorKind::Unsupported, format!("io_uring lacks {name}")));
            }
        }
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        Ok(UringTransport {
            ring,
            listener,
            local_addr,
            conns: (0..max_connections).map(|_| None).collect(),
            free: (0..max_connections).rev().collect(),
            next_generation: 0,
            accept_armed: false,
            pending: VecDeque::with_capacity(512),
            read_buffer_bytes,
            wake: None,
            wake_armed: false,
        })
    }

    fn push(&mut self, entry: squeue::Entry) -> io::Result<()> {
        // SAFETY: every entry refers to a file descriptor and buffer that stay alive until its
        // completion is reaped: listener for accept, a `UConn` (freed only after its receive
        // completes) for receive.
        if unsafe { self.ring.submission().push(&entry) }.is_err() {
            self.ring.submit()?;
            // SAFETY: as above.
            unsafe { self.ring.submission().push(&entry) }
                .map_err(|_| io::Error::other("io_uring submission queue full after submit"))?;
        }
        Ok(())
    }

    fn arm(&mut self) -> io::Result<()> {
        if !self.accept_armed {
            let entry = opcode::AcceptMulti::new(types::Fd(self.listener.as_raw_fd()))
                .build()
                .user_data(user_data(KIND_ACCEPT, 0, 0));
            self.push(entry)?;
            self.accept_armed = true;
        }
        if let Some(fd) = self.wake.as_ref().filter(|_| !self.wake_armed).map(AsRawFd::as_raw_fd) {
            let entry = opcode::PollAdd::new(types::Fd(fd), nix::libc::POLLIN as u32)
                .multi(true)
                .build()
                .user_data(user_data(KIND_WAKE, 0, 0));
            self.push(entry)?;
            self.wake_armed = true;
        }
        for conn in 0..self.conns.len() {
            let Some(c) = self.conns[conn].as_mut() else { continue };
            if c.recv_armed || c.closing {
                continue;
            }
            c.recv_armed = true;
            let entry =
                opcode::Recv::new(types::Fd(c.stream.as_raw_fd()), c.buf.as_mut_ptr(), c.buf.len() as u32)
                    .build()
                    .user_data(user_data(KIND_RECV, c.generation, conn as ConnId));
            self.push(entry)?;
        }
        Ok(())
    }

    fn reap(&mut self) {
        let completions: Vec<(u64, i32, u32)> =
            self.ring.completion().map(|cqe| (cqe.user_data(), cqe.result(), cqe.flags())).collect();
        for (data, result, flags) in completions {
            let kind = data >> 56;
            let conn = (data & 0xffff_ffff) as ConnId;
            let generation = ((data >> 32) & 0xff_ffff) as u32;
            match kind {
                KIND_ACCEPT => {
                    if !cqueue::more(flags) {
                        self.accept_armed = false;
                    }
                    if result < 0 {
                        tracing::debug!(errno = -result, "accept failed");
                        continue;
                    }
                    // SAFETY: a successful accept returns a new, owned socket descriptor.
                    let stream = unsafe { TcpStream::from_raw_fd(result) };
                    let peer = stream.peer_addr().unwrap_or(self.local_addr);
                    match self.free.pop() {
                        Some(slot) => {
                            let _ = stream.set_nonblocking(true);
                            let _ = stream.set_nodelay(true);
                            self.next_generation = self.next_generation.wrapping_add(1) & 0xff_ffff;
                            self.conns[slot as usize] = Some(UConn {
                                stream,
                                buf: vec![0u8; self.read_buffer_bytes].into_boxed_slice(),
                                generation: self.next_generation,
                                recv_armed: false,
                                closing: false,
                            });
                            self.pending.push_back(Pending::Accepted(slot, peer));
                        }
                        None => self.pending.push_back(Pending::Refused(peer)),
                    }
                }
                KIND_RECV => {
                    let Some(c) = self.conns.get_mut(conn as usize).and_then(Option::as_mut) else {
                        continue;
                    };
                    if c.generation != generation {
                        continue;
                    }
                    c.recv_armed = false;
                    if c.closing {
                        self.conns[conn as usize] = None;
                        self.free.push(conn);
                    } else if result > 0 {
                        self.pending.push_back(Pending::Data(conn, result as usize));
                    } else if result == 0 {
                        self.pending.push_back(Pending::Closed(conn, None));
                    } else if -result == libc_eagain() || -result == libc_eintr() {
                        // Spurious: re-armed on the next poll.
                    } else {
                        let kind = io::Error::from_raw_os_error(-result).kind();
                        self.pending.push_back(Pending::Closed(conn, Some(kind)));
                    }
                }
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
                _ => {}
            }
        }
    }
}

fn libc_eagain() -> i32 {
    nix::errno::Errno::EAGAIN as i32
}

fn libc_eintr() -> i32 {
    nix::errno::Errno::EINTR as i32
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
        if !self.pending.is_empty() {
            return Ok(());
        }
        self.arm()?;
        if timeout.is_zero() {
            self.ring.submit()?;
        } else {
            let ts = types::Timespec::new().sec(timeout.as_secs()).nsec(timeout.subsec_nanos());
            let args = types::SubmitArgs::new().timespec(&ts);
            match self.ring.submitter().submit_with_args(1, &args) {
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ETIME as i32) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.reap();
        Ok(())
    }

    fn next_event(&mut self) -> Option<NetEvent<'_>> {
        match self.pending.pop_front()? {
            Pending::Accepted(conn, peer) => Some(NetEvent::Accepted { conn, peer }),
            Pending::Refused(peer) => Some(NetEvent::Refused { peer }),
            Pending::Closed(conn, error) => {
                self.close(conn);
                Some(NetEvent::Closed { conn, error })
            }
            Pending::Data(conn, len) => {
                if self.conns[conn as usize].as_ref().is_none_or(|c| c.closing) {
                    return self.next_event();
                }
                let c = self.conns[conn as usize].as_ref().expect("checked above");
                Some(NetEvent::Data { conn, bytes: &c.buf[..len] })
            }
        }
    }

    fn send(&mut self, conn: ConnId, bytes: &[u8]) -> io::Result<usize> {
        let Some(c) = self.conns.get_mut(conn as usize).and_then(Option::as_mut).filter(|c| !c.closing)
        else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        match c.stream.write(bytes) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    fn close(&mut self, conn: ConnId) {
        let Some(c) = self.conns.get_mut(conn as usize).and_then(Option::as_mut) else { return };
        if c.closing {
            return;
        }
        let _ = c.stream.shutdown(Shutdown::Both);
        self.pending.retain(|p| !matches!(p, Pending::Data(c2, _) if *c2 == conn));
        if c.recv_armed {
            // The receive completes (with 0 or an error) now that the socket is shut down;
            // the slot is freed then.
            c.closing = true;
        } else {
            self.conns[conn as usize] = None;
            self.free.push(conn);
        }
    }

    fn drain_sends(&mut self, _timeout: Duration) -> io::Result<bool> {
        // `send` writes straight to the socket: there is never anything of ours left.
        Ok(true)
    }

    fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}
