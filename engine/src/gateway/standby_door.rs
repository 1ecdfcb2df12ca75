//! A hot standby's answer to clients: it listens on the gateway's address and answers any
//! Login Request with Login Rejected, reason `S` (session not available), then closes. A client
//! configured with both hosts' addresses reads that as "not here: try the other host", at once
//! and without a timeout (docs/OPERATIONS.md, "The client contract"). Nothing a client sends
//! reaches the engine. One connection at a time, each bounded by a short timeout, on its own
//! thread (`petrel-door`); closed before a promotion opens the real gateway on the address.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use petrel_proto::soupbin::{LoginRejectReason, ServerPacket};

/// How long the door waits for a client's first bytes.
const READ_TIMEOUT: Duration = Duration::from_millis(500);

pub struct StandbyDoor {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    pub addr: SocketAddr,
    /// Logins answered with Login Rejected.
    pub turned_away: Arc<AtomicU64>,
}

impl StandbyDoor {
    /// Listens on `listen` (the gateway's address in the configuration).
    pub fn open(listen: SocketAddr) -> std::io::Result<StandbyDoor> {
        let listener = TcpListener::bind(listen)?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let turned_away = Arc::new(AtomicU64::new(0));
        let (halt, count) = (Arc::clone(&stop), Arc::clone(&turned_away));
        let thread = std::thread::Builder::new().name("petrel-door".into()).spawn(move || {
            while !halt.load(Ordering::Acquire) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        if turn_away(stream).is_ok() {
                            count.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        })?;
        Ok(StandbyDoor { stop, thread: Some(thread), addr, turned_away })
    }
}

/// Reads the client's first packet (whatever it is), answers Login Rejected `S`, closes.
fn turn_away(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    stream.set_write_timeout(Some(READ_TIMEOUT))?;
    let mut first = [0u8; 64];
    let _ = stream.read(&mut first)?;
    let mut answer = [0u8; 16];
    let len = ServerPacket::LoginRejected(LoginRejectReason::SessionNotAvailable)
        .encode(&mut answer)
        .expect("Login Rejected fits 16 bytes");
    stream.write_all(&answer[..len])?;
    // A graceful close: what the client still sends is read and dropped until it closes too (or
    // the timeout), so that no reset races the answer to the client.
    stream.shutdown(std::net::Shutdown::Write)?;
    let mut rest = [0u8; 256];
    while matches!(stream.read(&mut rest), Ok(n) if n > 0) {}
    Ok(())
}

impl Drop for StandbyDoor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
