//! Per-connection SoupBinTCP life: the fixed table of `max_sessions` connections, each with its
//! session machine, bounded receive and send buffers, its replay position, and how it ends.
//!
//! A session never ends in the middle of something else: whoever finds that it must end (a
//! protocol violation, a failed send, a slow consumer) marks it *ending*, and the gateway's
//! loop finishes it later ([`ConnTable::take_ended`]), submitting the account's
//! cancel-on-disconnect from there. So no path that sends answers can recurse into one that
//! submits commands.

use super::stats::{bump, GatewayStats};
use super::transport::{ConnId, Transport};
use crate::logging::{HotLevel, HotLog, HotRecord};
use petrel_core::AccountId;
use petrel_journal::{JournalLocation, JournalReader};
use petrel_proto::session::{ServerSession, SessionEvent, SessionTimers, TimerAction, Violation};
use petrel_proto::soupbin::{next_client_packet, ClientPacket, FrameLimits, LoginRequest, ServerPacket};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Phase {
    Free,
    /// Connected, not logged in (or its login is being checked).
    Open,
    /// Logged in and sending the messages it asked to be replayed.
    Replaying,
    Live,
    /// Marked to end; the loop finishes it (see the module docs).
    Ending,
}

/// How a session ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Ending {
    /// From our side: what is queued is sent once more, then the socket is closed.
    Close,
    /// The transport already ended it (the peer closed, or it was reset as a slow consumer).
    Gone,
}

/// What one SoupBinTCP packet from a client asks of the gateway.
pub(super) enum Received {
    Login(LoginRequest),
    /// An OUCH message, copied into the caller's scratch buffer (`..len`).
    Data(usize),
    LoggedOut,
    Malformed,
    Violation(Violation),
    /// Heartbeats and debug packets: bookkeeping only.
    Nothing,
}

/// What a flush did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Flushed {
    Idle,
    Sent,
    /// The connection was marked ending (a failed send, or a slow consumer reset).
    Ended,
}

struct Conn {
    phase: Phase,
    generation: u32,
    session: ServerSession,
    account: Option<AccountId>,
    /// Received bytes; `rx_consumed..` is not yet processed. At most one transport read plus
    /// one partial packet.
    rx: Vec<u8>,
    rx_consumed: usize,
    tx: Vec<u8>,
    tx_sent: usize,
    /// The login's requested sequence, then the next message to replay.
    replay_next: u64,
    replay: Option<JournalReader>,
}

impl Conn {
    fn is_active(&self) -> bool {
        !matches!(self.phase, Phase::Free | Phase::Ending)
    }

    fn tx_backlog(&self) -> usize {
        self.tx.len() - self.tx_sent
    }
}

/// Limits of every connection.
#[derive(Clone, Copy, Debug)]
pub(super) struct ConnLimits {
    pub(super) rx_buffer_bytes: usize,
    pub(super) tx_backlog_bytes_max: usize,
    pub(super) frame: FrameLimits,
    pub(super) timers: SessionTimers,
}

/// Most messages a replay sends per loop, so that live sessions keep being served.
const REPLAY_BATCH_MESSAGES: u32 = 1024;

/// Every connection slot, indexed by [`ConnId`].
pub(super) struct ConnTable {
    conns: Vec<Conn>,
    /// Connections marked ending, in order; each at most once (its phase is `Ending`).
    ended: Vec<(ConnId, Ending)>,
    limits: ConnLimits,
}

impl ConnTable {
    pub(super) fn new(max_sessions: u32, limits: ConnLimits) -> ConnTable {
        let conns = (0..max_sessions)
            .map(|_| Conn {
                phase: Phase::Free,
                generation: 0,
                session: ServerSession::new(limits.timers, 0),
                account: None,
                rx: Vec::with_capacity(limits.rx_buffer_bytes),
                rx_consumed: 0,
                tx: Vec::new(),
                tx_sent: 0,
                replay_next: 0,
                replay: None,
            })
            .collect();
        ConnTable { conns, ended: Vec::with_capacity(max_sessions as usize), limits }
    }

    pub(super) fn len(&self) -> ConnId {
        self.conns.len() as ConnId
    }

    pub(super) fn phase(&self, conn: ConnId) -> Phase {
        self.conns.get(conn as usize).map_or(Phase::Free, |c| c.phase)
    }

    /// Not free and not ending: its packets are processed and its timers run.
    pub(super) fn is_active(&self, conn: ConnId) -> bool {
        self.conns.get(conn as usize).is_some_and(Conn::is_active)
    }

    pub(super) fn generation(&self, conn: ConnId) -> u32 {
        self.conns[conn as usize].generation
    }

    pub(super) fn account(&self, conn: ConnId) -> Option<AccountId> {
        self.conns[conn as usize].account
    }

    pub(super) fn accept(&mut self, conn: ConnId, now_ns: u64) {
        let c = &mut self.conns[conn as usize];
        c.phase = Phase::Open;
        c.generation = c.generation.wrapping_add(1);
        c.session = ServerSession::new(self.limits.timers, now_ns);
        c.account = None;
        c.rx.clear();
        c.rx_consumed = 0;
        c.tx.clear();
        c.tx_sent = 0;
        c.replay = None;
    }

    /// Takes received bytes. `false`: they would overflow the receive buffer, which only a
    /// broken client can do (each read is processed before the next).
    pub(super) fn receive(&mut self, conn: ConnId, bytes: &[u8]) -> bool {
        let c = &mut self.conns[conn as usize];
        if c.rx.len() + bytes.len() > self.limits.rx_buffer_bytes {
            return false;
        }
        c.rx.extend_from_slice(bytes);
        true
    }

    /// The next complete packet of an active connection, through its session machine; `None`
    /// when no complete packet is left (the processed bytes are then dropped).
    pub(super) fn next_received(
        &mut self,
        conn: ConnId,
        now_ns: u64,
        scratch: &mut [u8],
    ) -> Option<Received> {
        let c = &mut self.conns[conn as usize];
        if !c.is_active() {
            return None;
        }
        let packet = match next_client_packet(&c.rx[c.rx_consumed..], self.limits.frame) {
            Ok(Some((packet, used))) => {
                c.rx_consumed += used;
                packet
            }
            Ok(None) => {
                c.rx.drain(..c.rx_consumed);
                c.rx_consumed = 0;
                return None;
            }
            Err(_) => return Some(Received::Malformed),
        };
        let event = match packet {
            ClientPacket::UnsequencedData(data) => {
                scratch[..data.len()].copy_from_slice(data);
                c.session.on_packet(now_ns, ClientPacket::UnsequencedData(data)).map(|e| match e {
                    SessionEvent::Data(d) => Received::Data(d.len()),
                    other => received(other),
                })
            }
            other => c.session.on_packet(now_ns, other).map(received),
        };
        Some(event.unwrap_or_else(Received::Violation))
    }

    /// Remembers the sequence the login asked to start from.
    pub(super) fn set_requested_sequence(&mut self, conn: ConnId, sequence: u64) {
        self.conns[conn as usize].replay_next = sequence;
    }

    pub(super) fn requested_sequence(&self, conn: ConnId) -> u64 {
        self.conns[conn as usize].replay_next
    }

    /// Login accepted: replays from `start` when it is below the stream's `next` message.
    pub(super) fn log_in(&mut self, conn: ConnId, account: AccountId, start: u64, next: u64, now_ns: u64) {
        let c = &mut self.conns[conn as usize];
        c.session.accept(now_ns);
        c.account = Some(account);
        c.replay_next = start;
        c.phase = if start < next { Phase::Replaying } else { Phase::Live };
    }

    /// Login refused: queues the answer and marks the connection ending.
    pub(super) fn reject_login(&mut self, conn: ConnId, answer: &ServerPacket<'_>) {
        self.conns[conn as usize].session.reject();
        self.queue_packet(conn, answer);
        self.end(conn, Ending::Close);
    }

    /// Queues a SoupBinTCP packet (login answers, heartbeats, End of Session).
    pub(super) fn queue_packet(&mut self, conn: ConnId, packet: &ServerPacket<'_>) {
        let mut buf = [0u8; 64];
        if let Ok(len) = packet.encode(&mut buf) {
            self.conns[conn as usize].tx.extend_from_slice(&buf[..len]);
        }
    }

    /// Queues an already-recorded stream message to a live connection (a replaying one gets it
    /// from the journal instead).
    pub(super) fn queue_live(&mut self, conn: ConnId, bytes: &[u8]) {
        let c = &mut self.conns[conn as usize];
        if c.phase == Phase::Live {
            c.tx.extend_from_slice(bytes);
        }
    }

    /// Marks a connection ending (see the module docs); a no-op if it is free or ending already.
    pub(super) fn end(&mut self, conn: ConnId, how: Ending) {
        let Some(c) = self.conns.get_mut(conn as usize) else { return };
        if c.is_active() {
            c.phase = Phase::Ending;
            self.ended.push((conn, how));
        }
    }

    /// The next connection marked ending, for the loop to finish.
    pub(super) fn take_ended(&mut self) -> Option<(ConnId, Ending)> {
        if self.ended.is_empty() {
            None
        } else {
            Some(self.ended.remove(0))
        }
    }

    /// Frees an ending connection's slot; returns the account it was logged in to.
    pub(super) fn free(&mut self, conn: ConnId) -> Option<AccountId> {
        let c = &mut self.conns[conn as usize];
        c.phase = Phase::Free;
        c.replay = None;
        c.tx.clear();
        c.tx_sent = 0;
        c.rx.clear();
        c.rx_consumed = 0;
        c.account.take()
    }

    /// Shutdown: tells the session machine the trading session ended.
    pub(super) fn end_of_session(&mut self, conn: ConnId) {
        self.conns[conn as usize].session.end_of_session();
    }

    /// Runs a connection's timers: a heartbeat to send, or a timeout (the connection is then
    /// marked ending and the timeout returned, for the caller to count and log).
    pub(super) fn poll_timers(&mut self, conn: ConnId, now_ns: u64) -> TimerAction {
        let c = &mut self.conns[conn as usize];
        if !c.is_active() {
            return TimerAction::Nothing;
        }
        let action = c.session.poll(now_ns);
        match action {
            TimerAction::Nothing => {}
            TimerAction::SendHeartbeat => self.queue_packet(conn, &ServerPacket::ServerHeartbeat),
            TimerAction::Disconnect(_) => self.end(conn, Ending::Close),
        }
        action
    }

    /// Sends what the connection has queued. A failed send, or a backlog over its limit (a
    /// slow consumer: reset, so the kernel drops what it holds for it), ends it.
    pub(super) fn flush(
        &mut self,
        conn: ConnId,
        transport: &mut impl Transport,
        now_ns: u64,
        stats: &GatewayStats,
        log: &HotLog,
    ) -> Flushed {
        let c = &mut self.conns[conn as usize];
        if c.tx_sent == c.tx.len() {
            return Flushed::Idle;
        }
        match transport.send(conn, &c.tx[c.tx_sent..]) {
            Ok(0) => {}
            Ok(n) => {
                c.tx_sent += n;
                c.session.on_sent(now_ns);
                if c.tx_sent == c.tx.len() {
                    c.tx.clear();
                    c.tx_sent = 0;
                } else if c.tx_sent > c.tx.len() / 2 {
                    c.tx.drain(..c.tx_sent);
                    c.tx_sent = 0;
                }
            }
            Err(_) => {
                log.try_log(HotRecord::new(HotLevel::Debug, "send failed: connection closed").session(conn));
                bump(&stats.disconnects_peer_total);
                self.end(conn, Ending::Close);
                return Flushed::Ended;
            }
        }
        if c.tx_backlog() > self.limits.tx_backlog_bytes_max && c.phase != Phase::Ending {
            bump(&stats.disconnects_slow_consumer_total);
            log.try_log(
                HotRecord::new(
                    HotLevel::Warn,
                    "client is not reading (send backlog over its limit): resetting the connection",
                )
                .session(conn),
            );
            // Reset, not closed: the answers queued in the kernel would otherwise trickle out
            // to a client that does not read, holding their memory for minutes.
            transport.abort(conn);
            self.end(conn, Ending::Gone);
            return Flushed::Ended;
        }
        Flushed::Sent
    }

    /// Sends more of a replay from the account's output journal, up to the stream's `end`
    /// (exclusive). `Err` when the journal cannot be read (the caller ends the session).
    pub(super) fn continue_replay(
        &mut self,
        conn: ConnId,
        location: &JournalLocation,
        end: u64,
        stats: &GatewayStats,
    ) -> Result<bool, petrel_journal::JournalError> {
        let c = &mut self.conns[conn as usize];
        if c.replay_next >= end {
            c.replay = None;
            c.phase = Phase::Live;
            return Ok(true);
        }
        if c.tx_backlog() > self.limits.tx_backlog_bytes_max / 2 {
            return Ok(false);
        }
        let reader = match &mut c.replay {
            Some(reader) => reader,
            None => c.replay.insert(super::streams::open_reader(location, c.replay_next)?),
        };
        for _ in 0..REPLAY_BATCH_MESSAGES {
            if c.replay_next >= end {
                break;
            }
            let record = match reader.next_record() {
                Ok(Some(record)) => record,
                // The reader reached what was committed when it got there: reopen next time.
                Ok(None) | Err(petrel_journal::JournalError::SequenceBeyondEnd { .. }) => {
                    c.replay = None;
                    break;
                }
                Err(e) => return Err(e),
            };
            debug_assert_eq!(record.sequence, c.replay_next);
            c.tx.extend_from_slice(record.payload);
            c.replay_next += 1;
            bump(&stats.replayed_messages_total);
        }
        Ok(true)
    }
}

fn received(event: SessionEvent<'_>) -> Received {
    match event {
        SessionEvent::LoginRequested(request) => Received::Login(request),
        SessionEvent::Data(d) => Received::Data(d.len()),
        SessionEvent::LoggedOut => Received::LoggedOut,
        SessionEvent::Heartbeat | SessionEvent::Debug(_) => Received::Nothing,
    }
}

pub(super) fn violation_message(violation: Violation) -> &'static str {
    match violation {
        Violation::DataBeforeLogin => "SoupBinTCP violation: data before login: disconnecting",
        Violation::SecondLogin => "SoupBinTCP violation: second login on a logged-in session: disconnecting",
        Violation::PacketDuringLogin => {
            "SoupBinTCP violation: packet while the login is being checked: disconnecting"
        }
        Violation::AfterClose => "SoupBinTCP violation: packet after the session closed: disconnecting",
    }
}
