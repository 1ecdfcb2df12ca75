//! The primary's replication thread (`replication.role = "primary"`).
//!
//! One standby at a time. After the handshake it ships, from the journal files, every record
//! from the standby's next sequence up to the local durable mark, and a thread of its own reads
//! the standby's acknowledgements into the release gate: with `ack = "standby"` the gateway
//! releases a command's outputs only once the standby has it too. When the standby goes away
//! the policy decides, loudly: `halt` acknowledges nothing until a standby has caught up,
//! `continue` goes on alone and marks the standby not promotable until it has. With etcd
//! failover, `continue` first says so in etcd (`MarkStandby`), and stays halted while it cannot.

use std::cell::{Cell, RefCell};
use std::io::Write;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use petrel_journal::{JournalLocation, JournalTail, TailRecord};

use super::epoch::Epoch;
use super::wire::{self, Frame, FrameReader, FrameWriter, Proof, WireError};
use super::{MarkStandby, Refusal, ReplicationStats};
use crate::config::{Ack, Config, ReplicationConfig, StandbyLoss};
use crate::port::GatewayPort;

/// How long a peer has to complete the handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// A heartbeat when nothing was shipped for this long (the standby's liveness check).
const HEARTBEAT_EVERY: Duration = Duration::from_millis(100);
/// A standby silent for this long is gone.
const STANDBY_TIMEOUT: Duration = Duration::from_secs(3);
/// A failed write of the standby's promotability to etcd is tried again after this long.
const MARK_RETRY_EVERY: Duration = Duration::from_millis(500);

pub struct Primary {
    thread: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    pub addr: SocketAddr,
}

impl Primary {
    /// Binds the replication listener and starts the thread. Sets the release gate for the
    /// configured policy before any client can be acknowledged. `mark`: with etcd failover
    /// under `on_standby_loss = "continue"`, where the standby's promotability is written.
    pub fn start(
        engine_config: &Config,
        epoch: Epoch,
        alone: bool,
        port: GatewayPort,
        stats: Arc<ReplicationStats>,
        mark: Option<MarkStandby>,
    ) -> Result<Primary, String> {
        let config = engine_config.replication.as_ref().ok_or("the configuration has no [replication]")?;
        let location = JournalLocation::new(&engine_config.journal.dir, &engine_config.journal.file_prefix);
        let listen = config.listen;
        let listener = TcpListener::bind(listen)
            .map_err(|e| format!("cannot listen for the standby on {listen} (replication.listen): {e}"))?;
        listener.set_nonblocking(true).map_err(|e| format!("replication listener: {e}"))?;
        let addr = listener.local_addr().map_err(|e| format!("replication listener: {e}"))?;
        // Logged here, before the daemon says it is ready, so that the address is known by then.
        tracing::info!(addr = %addr, epoch = epoch.number, "replication: waiting for the standby");
        // Alone (a promotion that asked for it): acknowledge on local durability until a
        // standby has caught up, then the configured policy.
        let halt = config.ack == Ack::Standby && config.on_standby_loss == StandbyLoss::Halt && !alone;
        if alone {
            tracing::warn!(
                "replication: acknowledging alone until a standby catches up (promoted with --alone)"
            );
        }
        let mark = mark.map(Marking::new);
        // A primary that starts acknowledging without a standby (`continue`, or alone) first
        // says so in etcd, as when it loses one: its standby's promotability from before a
        // restart of this primary would otherwise still read true. Halted while it cannot.
        let pending = !halt && config.ack == Ack::Standby && mark.as_ref().is_some_and(|m| !m.write(false));
        if let Some(mark) = mark.as_ref().filter(|_| pending) {
            mark.alone_pending.set(true);
            tracing::error!("replication: etcd cannot be told that the standby is not promotable: acknowledging nothing until it can, or a standby has caught up");
        }
        port.gate.gating.store(halt || pending, Ordering::Release);
        stats.halted.store(halt || pending, Ordering::Relaxed);
        stats.epoch.store(epoch.number, Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let shipper = Shipper {
            config: config.clone(),
            engine_config: engine_config.clone(),
            epoch,
            location,
            port,
            stats,
            stop: Arc::clone(&stop),
            mark,
        };
        let thread = std::thread::Builder::new()
            .name("petrel-replicate".into())
            .spawn(move || shipper.run(listener))
            .map_err(|e| format!("cannot start the replication thread: {e}"))?;
        Ok(Primary { thread: Some(thread), stop, addr })
    }

    pub fn shutdown(mut self) {
        self.stop_and_join();
    }

    fn stop_and_join(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Primary {
    fn drop(&mut self) {
        self.stop_and_join();
    }
}

struct Shipper {
    config: ReplicationConfig,
    /// The whole configuration: what a backup for a standby to rebuild from copies.
    engine_config: Config,
    epoch: Epoch,
    location: JournalLocation,
    port: GatewayPort,
    stats: Arc<ReplicationStats>,
    stop: Arc<AtomicBool>,
    mark: Option<Marking>,
}

/// The standby's promotability as this primary last wrote it to etcd. Only the replication
/// thread touches it (hence `Cell`s).
struct Marking {
    write: MarkStandby,
    /// What was last written (`None`: nothing yet, this epoch).
    written: Cell<Option<bool>>,
    /// The standby was lost but `false` could not be written: halted until it is.
    alone_pending: Cell<bool>,
    /// The last attempt: a failed one is retried `MARK_RETRY_EVERY` later at the earliest.
    tried: Cell<Option<Instant>>,
    /// The last failure logged (each different one once).
    complaint: RefCell<String>,
}

impl Marking {
    fn new(write: MarkStandby) -> Marking {
        let (written, alone_pending, tried) = (Cell::new(None), Cell::new(false), Cell::new(None));
        Marking { write, written, alone_pending, tried, complaint: RefCell::default() }
    }

    fn due(&self) -> bool {
        self.tried.get().is_none_or(|t| t.elapsed() >= MARK_RETRY_EVERY)
    }

    /// Writes `promotable` unless it is what etcd holds already; whether etcd holds it now.
    fn write(&self, promotable: bool) -> bool {
        if self.written.get() == Some(promotable) {
            return true;
        }
        self.tried.set(Some(Instant::now()));
        match (self.write)(promotable) {
            Ok(()) => {
                self.written.set(Some(promotable));
                self.complaint.borrow_mut().clear();
                // Only failures wait before the next attempt.
                self.tried.set(None);
                true
            }
            Err(why) => {
                if *self.complaint.borrow() != why {
                    tracing::error!("replication: {why}; tried again every {MARK_RETRY_EVERY:?}");
                    *self.complaint.borrow_mut() = why;
                }
                false
            }
        }
    }
}

impl Shipper {
    fn run(self, listener: TcpListener) {
        while !self.stop.load(Ordering::Acquire) {
            match listener.accept() {
                Ok((stream, peer)) => self.serve(stream, peer),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    self.retry_alone();
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => {
                    tracing::warn!("replication: accept failed: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    /// One standby, from handshake to disconnection.
    fn serve(&self, mut stream: TcpStream, peer: SocketAddr) {
        let next_sequence = match self.handshake(&mut stream, peer) {
            Ok(next) => next,
            Err((why, message)) => {
                self.stats.refuse(why);
                tracing::warn!(peer = %peer, reason = why.as_str(), "replication: refused a standby: {message}");
                let _ = stream.write_all(FrameWriter::new().refused(&message));
                return;
            }
        };
        tracing::info!(peer = %peer, from_sequence = next_sequence, "replication: standby connected");
        // A standby is back: whether to go alone is decided again if it is lost again.
        if let Some(mark) = &self.mark {
            mark.alone_pending.set(false);
        }
        self.stats.connected.store(true, Ordering::Relaxed);
        let acks = match self.start_ack_reader(&stream, peer) {
            Ok(acks) => acks,
            Err(e) => {
                tracing::warn!(peer = %peer, "replication: {e}");
                return;
            }
        };
        let result = self.ship(&mut stream, next_sequence, &acks);
        let _ = stream.shutdown(std::net::Shutdown::Both);
        let _ = acks.thread.join();
        self.stats.connected.store(false, Ordering::Relaxed);
        self.stats.disconnects_total.fetch_add(1, Ordering::Relaxed);
        self.stats.caught_up.store(false, Ordering::Relaxed);
        match result {
            // This engine stops: the standby keeps what it has; no policy to apply.
            Ok(()) => tracing::info!(peer = %peer, "replication: standby disconnected (stopping)"),
            Err(e) => {
                tracing::error!(peer = %peer, "replication: standby lost: {e}");
                self.standby_lost();
            }
        }
    }

    /// Challenge, Hello, Welcome. The standby's next sequence, or why it is refused.
    fn handshake(&self, stream: &mut TcpStream, peer: SocketAddr) -> Result<u64, (Refusal, String)> {
        let protocol = |e: String| (Refusal::Protocol, e);

        stream.set_nodelay(true).map_err(|e| protocol(e.to_string()))?;
        stream.set_read_timeout(Some(HANDSHAKE_TIMEOUT)).map_err(|e| protocol(e.to_string()))?;
        let nonce_p = wire::nonce().map_err(|e| protocol(format!("no random nonce: {e}")))?;
        let ours = self.epoch;
        let challenge = FrameWriter::new().challenge(ours.number, ours.first_sequence, &nonce_p).to_vec();
        stream.write_all(&challenge).map_err(|e| protocol(e.to_string()))?;
        let mut reader = FrameReader::new();
        let frame = reader.read(stream).map_err(|e| protocol(format!("reading Hello from {peer}: {e}")))?;
        if let Frame::Refused { reason } = frame {
            return Err((
                Refusal::Epoch,
                format!("{peer} asked for this primary's epoch and left: {reason}"),
            ));
        }
        let Frame::Hello { version, cluster, epoch, policy, next_sequence, nonce, mac } = frame else {
            return Err(protocol(format!("expected Hello from {peer}, got {}", frame.name())));
        };
        if version != wire::VERSION {
            return Err(protocol(format!(
                "protocol version {version}, this primary speaks {}",
                wire::VERSION
            )));
        }
        if cluster != self.config.cluster_id.as_bytes() {
            return Err((
                Refusal::Cluster,
                format!(
                    "standby of cluster {:?}, this primary is of cluster {:?}",
                    String::from_utf8_lossy(cluster),
                    self.config.cluster_id
                ),
            ));
        }
        let secret = &self.config.secret.0;
        let cluster_id = self.config.cluster_id.as_bytes();
        let numbers = [next_sequence, epoch, ours.number, u64::from(policy)];
        let proof =
            Proof { label: b"standby", cluster: cluster_id, first: &nonce_p, second: &nonce, numbers };
        if !proof.holds(secret, &mac) {
            return Err((
                Refusal::Secret,
                "the standby's proof of the shared secret does not hold (replication.secret_file differs)"
                    .into(),
            ));
        }
        if policy != super::policy_byte(&self.config) {
            return Err((
                Refusal::Cluster,
                "the standby's replication.ack or replication.on_standby_loss differs from this primary's: both ends of a pair must be configured alike".into(),
            ));
        }
        if epoch > ours.number {
            self.stats.stale.store(true, Ordering::Release);
            return Err((
                Refusal::Epoch,
                format!("the standby is of epoch {epoch}, newer than this primary's {}: a standby was promoted since, so this primary is stale and stops serving", ours.number),
            ));
        }
        if epoch < ours.number && next_sequence > ours.first_sequence {
            return Err((
                Refusal::Sequence,
                format!("the standby, of epoch {epoch}, holds records up to {} but epoch {} began at sequence {}: those records were never acknowledged and must be cut (petrel-engine rejoin) before it follows", next_sequence - 1, ours.number, ours.first_sequence),
            ));
        }
        let local = self.port.gate.local.load(Ordering::Acquire);
        if next_sequence == 0 || next_sequence > local + 1 {
            return Err((
                Refusal::Sequence,
                format!("the standby holds records up to {} but this primary's journal ends at {local}: it has records this primary never had; its journal must be cut or rebuilt before it follows this primary", next_sequence.saturating_sub(1)),
            ));
        }
        let tag = Proof { label: b"primary", cluster: cluster_id, first: &nonce, second: &nonce_p, numbers }
            .tag(secret);
        stream.write_all(FrameWriter::new().welcome(&tag)).map_err(|e| protocol(e.to_string()))?;
        Ok(next_sequence)
    }

    /// Ships records and heartbeats until the standby goes, an error, or stop.
    fn ship(&self, stream: &mut TcpStream, from: u64, acks: &AckReader) -> Result<(), String> {
        stream.set_write_timeout(Some(STANDBY_TIMEOUT)).map_err(|e| e.to_string())?;
        let mut tail = match JournalTail::open(&self.location, from) {
            Ok(tail) => tail,
            Err(petrel_journal::JournalError::SequenceNotRetained { requested, first_available }) => {
                return self.rebuild_standby(stream, requested, first_available)
            }
            Err(other) => return Err(other.to_string()),
        };
        let (mut records, mut payloads) = (
            Vec::<TailRecord>::with_capacity(4096),
            Vec::<u8>::with_capacity(wire::RECORDS_FRAME_PAYLOAD_BYTES + 65_536),
        );
        let mut frame = FrameWriter::new();
        let mut last_sent = Instant::now();
        let gate = &self.port.gate;
        let mut checkpoint_sent = 0u64;
        loop {
            if self.stop.load(Ordering::Acquire) {
                return Ok(());
            }
            if let Some(e) = acks.failure() {
                return Err(e);
            }
            // The newest state hash goes right after its record, before the next one.
            let checkpoint = *self.port.stats.checkpoint.lock().unwrap_or_else(|p| p.into_inner());
            let checkpoint = checkpoint.filter(|(sequence, _)| *sequence > checkpoint_sent);
            if let Some((sequence, hash)) = checkpoint {
                if tail.next_sequence() == sequence + 1 {
                    stream
                        .write_all(frame.state_hash(sequence, hash.0))
                        .map_err(|e| format!("sending a state hash: {e}"))?;
                    self.stats.hash_checks_total.fetch_add(1, Ordering::Relaxed);
                    checkpoint_sent = sequence;
                } else if tail.next_sequence() > sequence + 1 {
                    checkpoint_sent = sequence; // shipped before this connection began
                }
            }
            if acks.last_heard().elapsed() > STANDBY_TIMEOUT {
                return Err(format!("no acknowledgement or heartbeat answer for {STANDBY_TIMEOUT:?}"));
            }
            let durable = gate.local.load(Ordering::Acquire);
            // Written is enough to ship: the standby's commit overlaps this engine's own sync,
            // and the release gate still waits for both to be durable.
            let written = gate.written.load(Ordering::Acquire).max(durable);
            // Up to a pending state hash's sequence at most, so that it follows its record.
            let local = match checkpoint {
                Some((sequence, _)) if sequence >= tail.next_sequence() => written.min(sequence),
                _ => written,
            };
            if tail.next_sequence() <= local {
                records.clear();
                payloads.clear();
                tail.read(local, wire::RECORDS_FRAME_PAYLOAD_BYTES, &mut records, &mut payloads)
                    .map_err(|e| e.to_string())?;
                if !records.is_empty() {
                    frame.begin_records(durable, promotable(&self.port));
                    for r in &records {
                        frame.record(
                            r.sequence,
                            r.timestamp_ns,
                            &payloads[r.payload_at..r.payload_at + r.payload_len],
                        );
                    }
                    stream.write_all(frame.finish_records()).map_err(|e| format!("sending records: {e}"))?;
                    self.stats.records_total.fetch_add(records.len() as u64, Ordering::Relaxed);
                    last_sent = Instant::now();
                    continue;
                }
            }
            self.mark_promotable_again();
            if last_sent.elapsed() >= HEARTBEAT_EVERY {
                stream
                    .write_all(frame.heartbeat(durable, promotable(&self.port)))
                    .map_err(|e| format!("sending a heartbeat: {e}"))?;
                last_sent = Instant::now();
            }
            // Sleep until the journal commits more (its doorbell) or the next heartbeat.
            gate.shipper.prepare_sleep();
            if gate.written.load(Ordering::Acquire).max(gate.local.load(Ordering::Acquire))
                >= tail.next_sequence()
                || self.stop.load(Ordering::Acquire)
            {
                gate.shipper.cancel_sleep();
                continue;
            }
            gate.shipper.sleep(HEARTBEAT_EVERY / 4);
        }
    }

    /// The standby needs records retention deleted here: it gets a backup of this primary to
    /// rebuild from (`rebuild.rs`), then reconnects from the backup's last sequence.
    fn rebuild_standby(
        &self,
        stream: &mut TcpStream,
        requested: u64,
        first_available: u64,
    ) -> Result<(), String> {
        tracing::warn!(
            requested,
            first_available,
            "replication: the standby needs sequence {requested} but this journal begins at {first_available} (retention deleted the rest): sending it a backup of this primary to rebuild from"
        );
        let gate = Arc::clone(&self.port.gate);
        let durable = Arc::new(move || gate.local.load(Ordering::Acquire));
        let sent = super::rebuild::send_backup(&self.engine_config, durable, stream)?;
        self.stats.rebuilds_total.fetch_add(1, Ordering::Relaxed);
        Err(format!(
            "sent the standby a backup through sequence {} ({} files, {} bytes) to rebuild from; it reconnects from there",
            sent.sequence, sent.files, sent.bytes
        ))
    }

    /// The standby went away: the policy takes over.
    fn standby_lost(&self) {
        if self.config.ack == Ack::Local {
            return;
        }
        match self.config.on_standby_loss {
            StandbyLoss::Halt => {
                self.stats.halted.store(true, Ordering::Relaxed);
                tracing::error!("replication: no standby: acknowledging nothing until a standby has caught up (replication.on_standby_loss = \"halt\")");
            }
            // Nothing goes out without the standby before etcd says it is not promotable.
            StandbyLoss::Continue if !self.mark.as_ref().is_none_or(|m| m.write(false)) => {
                self.stats.halted.store(true, Ordering::Relaxed);
                if let Some(mark) = &self.mark {
                    mark.alone_pending.set(true);
                }
                tracing::error!("replication: no standby, and etcd cannot be told that it is not promotable: acknowledging nothing until it can, or a standby has caught up (replication.on_standby_loss = \"continue\" with [failover] mode = \"etcd\")");
            }
            StandbyLoss::Continue => self.go_alone(),
        }
    }

    fn go_alone(&self) {
        self.stats.halted.store(false, Ordering::Relaxed);
        self.port.gate.gating.store(false, Ordering::Release);
        self.port.gate.publish(&self.port.durable_sequence);
        self.port.gateway_bell.ring();
        tracing::error!("replication: no standby: continuing alone; the standby is not promotable until it has caught up (replication.on_standby_loss = \"continue\")");
    }

    /// No standby, halted because etcd could not be told it is not promotable: tells it again
    /// (at most every `MARK_RETRY_EVERY`), and goes alone once it has.
    fn retry_alone(&self) {
        let Some(mark) = &self.mark else { return };
        if mark.alone_pending.get() && mark.due() && mark.write(false) {
            mark.alone_pending.set(false);
            self.go_alone();
        }
    }

    /// The standby caught up (the gate holds acknowledgements for it again): etcd is told it is
    /// promotable. Rare (once per catch-up, or every `MARK_RETRY_EVERY` while etcd fails), so
    /// done here, between two frames; leaving `false` meanwhile is safe.
    fn mark_promotable_again(&self) {
        let Some(mark) = &self.mark else { return };
        let caught_up =
            self.port.gate.gating.load(Ordering::Acquire) && self.stats.caught_up.load(Ordering::Relaxed);
        if caught_up && mark.written.get() == Some(false) && mark.due() {
            mark.write(true);
        }
    }

    fn start_ack_reader(&self, stream: &TcpStream, peer: SocketAddr) -> Result<AckReader, String> {
        let mut read = stream.try_clone().map_err(|e| format!("cannot clone the standby's socket: {e}"))?;
        read.set_read_timeout(Some(STANDBY_TIMEOUT)).map_err(|e| e.to_string())?;
        let state = Arc::new(AckState::default());
        let (port, stats, config, shared) =
            (self.port.clone(), Arc::clone(&self.stats), self.config.clone(), Arc::clone(&state));
        let thread = std::thread::Builder::new()
            .name("petrel-repl-ack".into())
            .spawn(move || {
                let mut reader = FrameReader::new();
                loop {
                    let ack = match reader.read(&mut read) {
                        Ok(Frame::Ack { durable_through }) => durable_through,
                        Ok(other) => {
                            shared.fail(format!("expected Ack from {peer}, got {}", other.name()));
                            stats.refuse(Refusal::Protocol);
                            return;
                        }
                        Err(WireError::Closed) => {
                            return shared.fail("the standby closed the connection".into())
                        }
                        Err(e) => {
                            if !matches!(e, WireError::Io(_)) {
                                stats.refuse(Refusal::Protocol);
                            }
                            return shared.fail(format!("reading from the standby at {peer}: {e}"));
                        }
                    };
                    shared.heard();
                                        let local = port.gate.local.load(Ordering::Acquire);
                    let written = port.gate.written.load(Ordering::Acquire).max(local);
                    if ack > written {
                        stats.refuse(Refusal::Sequence);
                        return shared.fail(format!(
                            "the standby acknowledged sequence {ack}, beyond what this primary wrote ({written})"
                        ));
                    }
                    port.gate.standby.fetch_max(ack, Ordering::AcqRel);
                    stats.standby_durable.store(ack, Ordering::Relaxed);
                                        if ack >= local {
                        caught_up(&port, &stats, &config);
                    }
                    port.gate.publish(&port.durable_sequence);
                    port.gateway_bell.ring();
                }
            })
            .map_err(|e| format!("cannot start the acknowledgement reader: {e}"))?;
        Ok(AckReader { thread, state })
    }
}

/// Whether the standby holds every record a client was acknowledged: always while the gate
/// holds acknowledgements for it; otherwise once it has acknowledged the released mark.
pub fn promotable(port: &GatewayPort) -> bool {
    port.gate.gating.load(Ordering::Acquire)
        || port.gate.standby.load(Ordering::Acquire) >= port.durable_sequence.load(Ordering::Acquire)
}

/// The standby has every record the primary made durable: the gate back on for `continue` (it
/// never let go for `halt`), and no longer halted.
fn caught_up(port: &GatewayPort, stats: &ReplicationStats, config: &ReplicationConfig) {
    if stats.caught_up.swap(true, Ordering::Relaxed) {
        return;
    }
    tracing::info!("replication: the standby has caught up");
    stats.halted.store(false, Ordering::Relaxed);
    if config.ack == Ack::Standby {
        port.gate.gating.store(true, Ordering::Release);
    }
}

struct AckReader {
    thread: JoinHandle<()>,
    state: Arc<AckState>,
}

impl AckReader {
    fn failure(&self) -> Option<String> {
        self.state.failure.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn last_heard(&self) -> Instant {
        *self.state.heard.lock().unwrap_or_else(|p| p.into_inner())
    }
}

struct AckState {
    failure: std::sync::Mutex<Option<String>>,
    heard: std::sync::Mutex<Instant>,
}

impl Default for AckState {
    fn default() -> AckState {
        AckState { failure: std::sync::Mutex::new(None), heard: std::sync::Mutex::new(Instant::now()) }
    }
}

impl AckState {
    fn fail(&self, why: String) {
        self.failure.lock().unwrap_or_else(|p| p.into_inner()).get_or_insert(why);
    }

    fn heard(&self) {
        *self.heard.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }
}
