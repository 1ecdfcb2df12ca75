//! The epoll backend (through nix): level-triggered readiness on a non-blocking listener and
//! non-blocking connections, one read per ready connection per poll into one shared buffer.

use super::{ConnId, NetEvent, Transport};
use nix::sys::epoll::{Epoll, EpollCreateFlags, EpollEvent, EpollFlags, EpollTimeout};
use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::time::Duration;

const LISTENER: u64 = u64::MAX;
const WAKE: u64 = u64::MAX - 1;
/// Most connections accepted in one poll, so a connection flood cannot starve established
/// sessions of service.
const ACCEPTS_PER_POLL: usize = 16;

pub struct EpollTransport {
    epoll: Epoll,
    listener: TcpListener,
    local_addr: SocketAddr,
    conns: Vec<Option<TcpStream>>,
    free: Vec<ConnId>,
    ready: Vec<EpollEvent>,
    pending: VecDeque<Pending>,
    buf: Box<[u8]>,
    wake: Option<OwnedFd>,
}

enum Pending {
    Accepted(ConnId, SocketAddr),
    Refused(SocketAddr),
    Readable(ConnId),
}

impl EpollTransport {
    pub fn bind(
        addr: SocketAddr,
        max_connections: u32,
        read_buffer_bytes: usize,
    ) -> io::Result<EpollTransport> {
        let listener = TcpListener::bind(addr)?;
        listener.set_nonblocking(true)?;
        let local_addr = listener.local_addr()?;
        let epoll = Epoll::new(EpollCreateFlags::EPOLL_CLOEXEC)?;
        epoll.add(listener.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, LISTENER))?;
        Ok(EpollTransport {
            epoll,
            listener,
            local_addr,
            conns: (0..max_connections).map(|_| None).collect(),
            free: (0..max_connections).rev().collect(),
            ready: vec![EpollEvent::empty(); 256],
            pending: VecDeque::with_capacity(512),
            buf: vec![0u8; read_buffer_bytes].into_boxed_slice(),
            wake: None,
        })
    }
}

impl Transport for EpollTransport {
    fn name(&self) -> &'static str {
        "epoll"
    }

    fn set_wake_fd(&mut self, fd: OwnedFd) -> io::Result<()> {
        self.epoll.add(fd.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, WAKE))?;
        self.wake = Some(fd);
        Ok(())
    }

    fn poll(&mut self, timeout: Duration) -> io::Result<()> {
        if !self.pending.is_empty() {
            return Ok(());
        }
        // Rounded up: a 50 µs park must not become a busy zero-timeout loop.
        let ms = timeout.as_micros().div_ceil(1000).min(u16::MAX as u128) as u16;
        let n = match self.epoll.wait(&mut self.ready, EpollTimeout::from(ms)) {
            Ok(n) => n,
            Err(nix::errno::Errno::EINTR) => 0,
            Err(e) => return Err(e.into()),
        };
        for event in &self.ready[..n] {
            if event.data() == WAKE {
                if let Some(fd) = &self.wake {
                    // Resets the eventfd's counter; EAGAIN means another poll already did.
                    let mut counter = [0u8; 8];
                    let _ = nix::unistd::read(fd.as_raw_fd(), &mut counter);
                }
            } else if event.data() == LISTENER {
                for _ in 0..ACCEPTS_PER_POLL {
                    match self.listener.accept() {
                        Ok((stream, peer)) => match self.free.pop() {
                            Some(conn) => {
                                stream.set_nonblocking(true)?;
                                stream.set_nodelay(true)?;
                                self.epoll
                                    .add(stream.as_fd(), EpollEvent::new(EpollFlags::EPOLLIN, conn as u64))?;
                                self.conns[conn as usize] = Some(stream);
                                self.pending.push_back(Pending::Accepted(conn, peer));
                            }
                            None => {
                                drop(stream);
                                self.pending.push_back(Pending::Refused(peer));
                            }
                        },
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) => {
                            // A connection that died in the backlog: not the listener's fault.
                            tracing::debug!(error = %e, "accept failed");
                            break;
                        }
                    }
                }
            } else {
                self.pending.push_back(Pending::Readable(event.data() as ConnId));
            }
        }
        Ok(())
    }

    fn next_event(&mut self) -> Option<NetEvent<'_>> {
        loop {
            match self.pending.pop_front()? {
                Pending::Accepted(conn, peer) => return Some(NetEvent::Accepted { conn, peer }),
                Pending::Refused(peer) => return Some(NetEvent::Refused { peer }),
                Pending::Readable(conn) => {
                    let Some(stream) = self.conns[conn as usize].as_mut() else { continue };
                    match stream.read(&mut self.buf) {
                        Ok(0) => {
                            self.close(conn);
                            return Some(NetEvent::Closed { conn, error: None });
                        }
                        Ok(n) => return Some(NetEvent::Data { conn, bytes: &self.buf[..n] }),
                        Err(e)
                            if e.kind() == io::ErrorKind::WouldBlock
                                || e.kind() == io::ErrorKind::Interrupted =>
                        {
                            continue
                        }
                        Err(e) => {
                            self.close(conn);
                            return Some(NetEvent::Closed { conn, error: Some(e.kind()) });
                        }
                    }
                }
            }
        }
    }

    fn send(&mut self, conn: ConnId, bytes: &[u8]) -> io::Result<usize> {
        let Some(stream) = self.conns.get_mut(conn as usize).and_then(Option::as_mut) else {
            return Err(io::ErrorKind::NotConnected.into());
        };
        match stream.write(bytes) {
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {
                Ok(0)
            }
            Err(e) => Err(e),
        }
    }

    fn close(&mut self, conn: ConnId) {
        if let Some(stream) = self.conns.get_mut(conn as usize).and_then(Option::take) {
            let _ = self.epoll.delete(stream.as_fd());
            self.free.push(conn);
            // Readiness already queued for this id belongs to the closed socket.
            self.pending.retain(|p| !matches!(p, Pending::Readable(c) if *c == conn));
        }
    }

    fn abort(&mut self, conn: ConnId) {
        if let Some(stream) = self.conns.get(conn as usize).and_then(Option::as_ref) {
            super::reset_on_close(stream);
        }
        self.close(conn);
    }

    fn drain_sends(&mut self, _timeout: Duration) -> io::Result<bool> {
        // `send` writes straight to the socket: there is never anything of ours left.
        Ok(true)
    }

    fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}
