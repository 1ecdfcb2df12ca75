//! The order-entry gateway: SoupBinTCP 3.0 sessions carrying OUCH 5.0, on one thread.
//!
//! The files follow one order through the gateway:
//! - [`transport`]: bytes in and out of sockets (io_uring, epoll, or later a kernel-bypass
//!   backend), behind one trait;
//! - [`session`]: each connection's SoupBinTCP life (packets, the session machine, bounded
//!   buffers, replay position, how it ends); [`auth`]: password checks on their own thread;
//! - [`ouch_map`]: OUCH messages to core commands and core events to OUCH messages (pure);
//!   [`echo`]: what of a client's message its answers repeat, journaled with its command;
//!   [`notes`]: the gateway's own answers (Start of Day, refusals), sequenced as notes;
//! - this file: the loop, and `submit`, which hands commands to the runtime's inbound ring;
//! - [`release`]: events back from the runtime leave only once their command is durable;
//! - [`streams`]: each account's sequenced stream, recorded in its output journal before its
//!   bytes reach the socket; [`release_mark`] and [`regeneration`]: outputs a crash lost are
//!   regenerated at start;
//! - [`mirror`]: on a hot standby, the same streams written from the records it follows;
//!   [`standby_door`]: what a standby answers a client at the gateway's address (Login
//!   Rejected: try the other host);
//! - [`stats`], [`settings`], [`intake`]: counters, configuration, and the shutdown handshake.
//!
//! Every per-session buffer is bounded: a client that stops reading is disconnected when its
//! backlog passes the limit, and never stalls the matcher or other sessions. A session never
//! ends in the middle of other work: it is marked ending and finished by the loop
//! ([`Gateway::finish_ended`]), which submits its cancel-on-disconnect; so nothing that sends
//! answers recurses into submitting commands.

pub mod auth;
pub mod echo;
pub mod intake;
mod mirror;
pub mod notes;
mod ouch_map;
pub mod regeneration;
mod release;
pub mod release_mark;
mod session;
pub mod settings;
pub mod standby_door;
pub mod stats;
mod streams;
pub mod transport;

use crate::config::Config;
use crate::input_record::CommandEcho;
use crate::logging::{HotLevel, HotLog, HotRecord};
use crate::market_data::MarketData;
use crate::port::{GatewayPort, InboundCommand, InlineCore, ADMIN_CONN};
use crate::runtime::{IdleStrategy, Idler};
use crate::users::Users;
use auth::Auth;
use intake::Intake;
use ouch_map::{Mapped, Symbols};
use petrel_core::{AccountId, Command};
use petrel_proto::ouch;
use petrel_proto::session::{CloseReason, TimerAction};
use petrel_proto::soupbin::{
    FrameLimits, LoginAccepted, LoginRejectReason, LoginRequest, ServerPacket, SessionName,
};
use release::{Failpoints, Outputs, Releaser};
use session::{ConnLimits, ConnTable, Ending, Flushed, Phase, Received};
use stats::{bump, LatencyRecorder};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use streams::StreamSet;

pub use intake::IntakeHandle;
pub use mirror::Mirror;
pub use regeneration::{Held, OutputTails, Regeneration, StreamTail};
pub use release_mark::{ReleaseMark, RELEASE_MARK_FILE};
pub use settings::{GatewayError, GatewaySettings};
pub use stats::GatewayStats;
pub use streams::NOT_FROM_A_COMMAND;
pub use transport::{ConnId, NetEvent, Transport};

/// Records the gateway's log ring holds before it drops (and counts) records.
const HOT_LOG_RECORDS: usize = 4096;
/// How long shutdown waits for queued bytes (End of Session) to reach the kernel.
const SHUTDOWN_SEND_WAIT: Duration = Duration::from_millis(500);

/// The parts of a gateway that released events go to (a macro: the fields are borrowed apart
/// from the releaser and the port).
macro_rules! outputs {
    ($gateway:ident) => {
        Outputs {
            streams: &mut $gateway.streams,
            conns: &mut $gateway.conns,
            stats: &$gateway.stats,
            log: &$gateway.hot_log,
            latency: &mut $gateway.latency,
            symbols: &$gateway.symbols,
            started: $gateway.started,
            feed: &mut $gateway.market_data,
        }
    };
}

pub struct Gateway<T: Transport> {
    transport: T,
    port: GatewayPort,
    /// Run to completion: the sequencing, matching and journal this thread runs itself
    /// (`None` in the pipeline, whose threads do that).
    core: Option<Box<dyn InlineCore>>,
    session_name: SessionName,
    users: Arc<RwLock<Arc<Users>>>,
    symbols: Symbols,
    conns: ConnTable,
    streams: StreamSet,
    releaser: Releaser,
    auth: Auth,
    intake: Intake,
    intake_handle: Option<IntakeHandle>,
    stats: Arc<GatewayStats>,
    heartbeat: Arc<AtomicU64>,
    started: Instant,
    /// One OUCH message, copied out of a connection's receive buffer.
    scratch: Box<[u8]>,
    latency: LatencyRecorder,
    /// The gateway never writes logs itself: records go to this ring, which the control plane
    /// drains into tracing (journald), so a slow log sink cannot stall order flow.
    hot_log: Arc<HotLog>,
    idle: IdleStrategy,
    /// The market-data feed (`[market_data]`), recorded from the same release path.
    market_data: MarketData,
}

impl<T: Transport> Gateway<T> {
    /// Opens every account's output journal, regenerates the messages a crash kept from them
    /// (see [`regeneration`]) and records them before any client can log in.
    pub fn new(
        mut transport: T,
        port: GatewayPort,
        config: &Config,
        users: Arc<RwLock<Arc<Users>>>,
        settings: GatewaySettings,
        regeneration: Regeneration,
    ) -> Result<Gateway<T>, GatewayError> {
        let session_name = SessionName::new("session", &settings.session_name)
            .ok()
            .filter(|_| settings.session_name.bytes().all(|b| b.is_ascii_alphanumeric()))
            .ok_or_else(|| GatewayError::SessionName(settings.session_name.clone()))?;
        let failpoints = Failpoints::from_env()?;
        let stats = Arc::new(GatewayStats::new(config.accounts.len()));
        let hot_log = Arc::new(HotLog::new(HOT_LOG_RECORDS));
        let names: Vec<String> = config.accounts.iter().map(|a| a.name.clone()).collect();
        let streams =
            StreamSet::open(&names, &settings, &regeneration.tails, stats.clone(), hot_log.clone())?;
        let mark =
            release_mark::MarkFile::open(&settings.sessions_dir, failpoints.abort_before_release_mark)?;
        if let Some(fd) = port.gateway_bell.wake_fd()? {
            transport.set_wake_fd(fd)?;
        }
        let auth = Auth::start(users.clone(), Arc::clone(&port.gateway_bell))?;
        let market_data = MarketData::open(config, regeneration.last_sequence)?;
        let (intake, intake_handle) = Intake::new();
        let limits = ConnLimits {
            rx_buffer_bytes: settings.rx_buffer_bytes,
            tx_backlog_bytes_max: settings.tx_backlog_bytes_max,
            frame: FrameLimits::new(settings.packet_bytes_max),
            timers: settings.timers,
        };
        let mut gateway = Gateway {
            transport,
            core: port.core.take(),
            port,
            session_name,
            users,
            symbols: Symbols::new(config.engine.instruments.iter().map(|i| i.symbol.0).collect()),
            conns: ConnTable::new(settings.max_sessions, limits),
            streams,
            releaser: Releaser::new(mark, failpoints),
            auth,
            intake,
            intake_handle: Some(intake_handle),
            stats,
            heartbeat: Arc::new(AtomicU64::new(0)),
            started: Instant::now(),
            scratch: vec![0u8; settings.packet_bytes_max].into_boxed_slice(),
            latency: LatencyRecorder::new(),
            hot_log,
            idle: settings.idle,
            market_data,
        };
        gateway.streams.start_of_day(&mut gateway.conns);
        let feed_before = gateway.market_data.next_sequence();
        gateway.regenerate(&names, &regeneration);
        if let (Some(before), Some(after)) = (feed_before, gateway.market_data.next_sequence()) {
            gateway.market_data.count_regenerated(after - before);
        }
        gateway.market_data.commit();
        // Every command up to the recovered last sequence now has its messages recorded (or
        // was reported as lost): the mark starts there.
        let last = regeneration.last_sequence;
        gateway.releaser.mark.released_through(last);
        if gateway.streams.commit() {
            gateway.releaser.mark.write_at_start(last, &gateway.hot_log);
        }
        Ok(gateway)
    }

    /// Sequences one of the gateway's own answers (see [`notes`]): its message is written when
    /// the note is released, in its place in the account's stream.
    fn submit_note(&mut self, conn: ConnId, account: AccountId, answer: notes::Answer) {
        let command = Command::Note { account, note: answer.encode() };
        self.submit(InboundCommand { conn, command, echo: CommandEcho::NONE });
    }

    /// Writes what each stream lacks of the commands recovery collected (see [`regeneration`]).
    fn regenerate(&mut self, names: &[String], regeneration: &Regeneration) {
        let mark_path = self.releaser.mark.path.clone();
        regeneration::feed(regeneration, names, &mark_path, &mut outputs!(self));
    }

    pub fn stats(&self) -> Arc<GatewayStats> {
        self.stats.clone()
    }

    /// The market-data feed's counters, when it is configured.
    pub fn market_data_stats(&self) -> Option<Arc<crate::market_data::FeedStats>> {
        self.market_data.stats()
    }

    /// Bumped once per loop: the watchdog's proof that this thread is alive.
    pub fn heartbeat(&self) -> Arc<AtomicU64> {
        self.heartbeat.clone()
    }

    /// The gateway's log records, for the control plane to drain.
    pub fn hot_log(&self) -> Arc<HotLog> {
        self.hot_log.clone()
    }

    /// The daemon's handle to close the intake at shutdown (see [`intake`]); `None` after the
    /// first call.
    pub fn take_intake_handle(&mut self) -> Option<IntakeHandle> {
        self.intake_handle.take()
    }

    pub fn local_addr(&self) -> std::net::SocketAddr {
        self.transport.local_addr()
    }

    pub fn transport_name(&self) -> &'static str {
        self.transport.name()
    }

    fn now_ns(&self) -> u64 {
        self.started.elapsed().as_nanos() as u64
    }

    fn log(&self, record: HotRecord) {
        self.hot_log.try_log(record);
    }

    /// Serves until `stop` is set, then ends every session with End of Session.
    ///
    /// Idle behaviour follows `runtime.gateway.idle`: `busy-spin` and `spin-yield` poll the
    /// network without waiting; `park` sleeps in the network poll itself (back-off from `min_us`
    /// to `max_us`), from which a client's bytes, the journal writer's doorbell (new durable
    /// events) or the auth thread's wake it at once.
    pub fn run(&mut self, stop: &AtomicBool) -> Result<(), GatewayError> {
        let mut idler = Idler::new(self.idle);
        let mut park_us = 0u32;
        let mut work = true;
        while !stop.load(Ordering::Acquire) {
            self.heartbeat.fetch_add(1, Ordering::Relaxed);
            if self.intake.observe_close() {
                self.log(HotRecord::new(
                    HotLevel::Info,
                    "gateway intake closed: new orders are no longer accepted",
                ));
            }
            if work {
                park_us = 0;
                work = self.poll_network(Duration::ZERO)?;
            } else {
                work = self.poll_idle(&mut idler, &mut park_us)?;
            }
            // Sessions the network ended are finished before logins are answered, so that a
            // client reconnecting at once does not find its account still taken.
            work |= self.finish_ended(true);
            work |= self.run_core();
            work |= self.auth_results();
            work |= self.release();
            work |= self.flush_all();
            self.timers();
            work |= self.finish_ended(true);
            self.latency.publish(&self.stats);
            if !work {
                self.releaser.mark.write_if_moved(&self.hot_log);
            }
        }
        self.close_all();
        Ok(())
    }

    /// A loop that found nothing to do: spin, yield, or sleep in the network poll (announced
    /// to the doorbell first, then the queues checked once more, so that a ring just before
    /// the announcement is not missed).
    fn poll_idle(&mut self, idler: &mut Idler, park_us: &mut u32) -> Result<bool, GatewayError> {
        let IdleStrategy::Park { min_us, max_us } = self.idle else {
            idler.idle(false);
            return self.poll_network(Duration::ZERO);
        };
        *park_us = if *park_us == 0 { min_us.max(1) } else { (*park_us * 2).min(max_us.max(1)) };
        let bell = Arc::clone(&self.port.gateway_bell);
        bell.prepare_sleep();
        let core_has_work = self.core.as_ref().is_some_and(|core| core.has_work());
        if core_has_work || self.releaser.has_releasable(&self.port) || self.auth.has_results() {
            bell.cancel_sleep();
            return self.poll_network(Duration::ZERO);
        }
        let polled = self.poll_network(Duration::from_micros(u64::from(*park_us)));
        bell.cancel_sleep();
        polled
    }

    fn poll_network(&mut self, timeout: Duration) -> Result<bool, GatewayError> {
        self.transport.poll(timeout)?;
        let mut work = false;
        let now = self.now_ns();
        while let Some(event) = self.transport.next_event() {
            work = true;
            match event {
                NetEvent::Accepted { conn, peer: _ } => {
                    bump(&self.stats.connections_total);
                    self.hot_log
                        .try_log(HotRecord::new(HotLevel::Debug, "connection accepted").session(conn));
                    self.conns.accept(conn, now);
                }
                NetEvent::Refused { peer: _ } => {
                    bump(&self.stats.connections_refused_total);
                    self.hot_log.try_log(HotRecord::new(
                        HotLevel::Warn,
                        "connection refused: every session slot (gateway.max_sessions) is in use",
                    ));
                }
                NetEvent::Data { conn, bytes } => {
                    bump(&self.stats.messages_in_total);
                    if !self.conns.is_active(conn) {
                        continue;
                    }
                    if self.conns.receive(conn, bytes) {
                        self.process_rx(conn, now);
                    } else {
                        bump(&self.stats.disconnects_protocol_total);
                        self.log(
                            HotRecord::new(HotLevel::Warn, "receive buffer overflow: disconnecting")
                                .session(conn),
                        );
                        self.conns.end(conn, Ending::Close);
                    }
                }
                NetEvent::Closed { conn, error: _ } => {
                    self.hot_log
                        .try_log(HotRecord::new(HotLevel::Debug, "connection closed by peer").session(conn));
                    bump(&self.stats.disconnects_peer_total);
                    self.conns.end(conn, Ending::Gone);
                }
            }
        }
        Ok(work)
    }

    /// Every complete packet a connection has received, in order.
    fn process_rx(&mut self, conn: ConnId, now: u64) {
        while let Some(received) = self.conns.next_received(conn, now, &mut self.scratch) {
            match received {
                Received::Login(request) => self.on_login(conn, &request),
                Received::Data(len) => self.on_ouch(conn, len),
                Received::LoggedOut => {
                    bump(&self.stats.disconnects_logout_total);
                    self.conns.end(conn, Ending::Close);
                }
                Received::Malformed => {
                    bump(&self.stats.malformed_total);
                    let why = "malformed SoupBinTCP packet: disconnecting";
                    self.log(HotRecord::new(HotLevel::Warn, why).session(conn));
                    self.conns.end(conn, Ending::Close);
                }
                Received::Violation(violation) => {
                    bump(&self.stats.violations_total);
                    self.log(
                        HotRecord::new(HotLevel::Warn, session::violation_message(violation)).session(conn),
                    );
                    self.conns.end(conn, Ending::Close);
                }
                Received::Nothing => {}
            }
        }
    }

    fn on_login(&mut self, conn: ConnId, request: &LoginRequest) {
        let session_ok = request.requested_session.is_blank()
            || request.requested_session.trimmed() == self.session_name.trimmed();
        self.conns.set_requested_sequence(conn, request.requested_sequence_number);
        if !session_ok {
            self.reject_login(conn, LoginRejectReason::SessionNotAvailable);
            return;
        }
        let generation = self.conns.generation(conn);
        if !self.auth.request(conn, generation, request.username.trimmed(), request.password.trimmed()) {
            // A login storm: refuse rather than queue without bound.
            self.reject_login(conn, LoginRejectReason::NotAuthorized);
        }
    }

    fn reject_login(&mut self, conn: ConnId, reason: LoginRejectReason) {
        bump(&self.stats.logins_rejected_total);
        self.conns.reject_login(conn, &ServerPacket::LoginRejected(reason));
    }

    fn auth_results(&mut self) -> bool {
        let mut work = false;
        while let Some(result) = self.auth.next_result() {
            work = true;
            let conn = result.conn;
            if self.conns.generation(conn) != result.generation || self.conns.phase(conn) != Phase::Open {
                continue; // the connection went away, or its slot was reused
            }
            match result.account {
                Some(account) if self.streams.contains(account) && self.streams.conn(account).is_none() => {
                    self.log_in(conn, account)
                }
                Some(account) => {
                    let why = "login rejected: the account's session is already logged in";
                    self.log(HotRecord::new(HotLevel::Warn, why).session(conn).account(account.0));
                    self.reject_login(conn, LoginRejectReason::NotAuthorized);
                }
                None => {
                    let why = "login rejected: unknown user or wrong password";
                    self.log(HotRecord::new(HotLevel::Warn, why).session(conn));
                    self.reject_login(conn, LoginRejectReason::NotAuthorized);
                }
            }
        }
        work
    }

    fn log_in(&mut self, conn: ConnId, account: AccountId) {
        self.streams.attach(account, conn);
        let next = self.streams.next_sequence(account);
        let start = petrel_proto::session::resolve_start_sequence(self.conns.requested_sequence(conn), next);
        let now = self.now_ns();
        self.conns.log_in(conn, account, start, next, now);
        bump(&self.stats.logins_accepted_total);
        self.stats.sessions_logged_in.fetch_add(1, Ordering::Relaxed);
        self.log(
            HotRecord::new(HotLevel::Info, "session logged in")
                .session(conn)
                .account(account.0)
                .sequence(start),
        );
        let accepted = LoginAccepted { session: self.session_name, sequence_number: start };
        self.conns.queue_packet(conn, &ServerPacket::LoginAccepted(accepted));
    }

    /// One OUCH inbound message (in `scratch[..len]`): a command to submit, or an answer.
    fn on_ouch(&mut self, conn: ConnId, len: usize) {
        let Some(account) = self.conns.account(conn) else { return };
        let rx_ns = self.now_ns();
        let mapped = ouch::Inbound::decode(&self.scratch[..len])
            .map(|message| ouch_map::inbound(&message, account, &self.symbols, rx_ns));
        let Ok(mapped) = mapped else {
            bump(&self.stats.malformed_total);
            self.log(HotRecord::new(HotLevel::Warn, "malformed OUCH message: disconnecting").session(conn));
            self.conns.end(conn, Ending::Close);
            return;
        };
        let answer = match mapped {
            Mapped::Submit { command, echo } => {
                let journaled = match echo {
                    Some(echo) => {
                        self.streams.remember(account, echo);
                        echo::order(&echo)
                    }
                    None => CommandEcho::NONE,
                };
                return self.submit(InboundCommand { conn, command, echo: journaled });
            }
            Mapped::MassCancel { command, echo } => {
                self.streams.set_mass_cancel(account, echo);
                return self.submit(InboundCommand { conn, command, echo: echo::mass_cancel(&echo) });
            }
            Mapped::Refuse { user_ref, cl_ord_id, reason } => {
                notes::Answer::OrderRejected { user_ref, reason, cl_ord_id }
            }
            Mapped::ModifyUnsupported { user_ref } => {
                let why = "Modify Order is not supported: answered with Cancel Reject";
                self.log(HotRecord::new(HotLevel::Info, why).session(conn).order_ref(u64::from(user_ref)));
                notes::Answer::CancelReject { user_ref }
            }
            Mapped::AccountQuery => {
                notes::Answer::AccountQuery { next_user_ref: self.streams.next_user_ref(account) }
            }
        };
        self.submit_note(conn, account, answer);
    }

    /// Hands a command to the sequencer; when the ring is full the gateway waits (and stops
    /// reading meanwhile): backpressure, never a dropped order, until the intake closes at
    /// shutdown (then, as at the top of this function, the command is not accepted). While
    /// waiting it releases what is durable and sends, so the core can make progress; sessions
    /// that end meanwhile are only marked, and finished by the loop after this command.
    fn submit(&mut self, mut command: InboundCommand) {
        if self.intake.is_closed() {
            let why = "shutting down: command not accepted";
            self.log(HotRecord::new(HotLevel::Debug, why).session(command.conn));
            return;
        }
        let mut counted = false;
        loop {
            match self.port.try_submit(command) {
                Ok(()) => {
                    self.port.sequencer_bell.ring();
                    return;
                }
                Err(back) => {
                    command = back;
                    if !counted {
                        bump(&self.stats.inbound_full_total);
                        counted = true;
                    }
                    if self.run_core() {
                        continue; // it emptied the ring
                    }
                    // A runtime that stopped taking commands (its journal failed) never empties
                    // the ring: the daemon then closes the intake, seen here as between commands,
                    // since this one was never submitted (nor acknowledged).
                    if self.intake.observe_close() {
                        let why = "shutting down: command not accepted";
                        self.log(HotRecord::new(HotLevel::Info, why).session(command.conn));
                        return;
                    }
                    self.release();
                    self.flush_all();
                    std::thread::yield_now();
                }
            }
        }
    }

    fn release(&mut self) -> bool {
        self.releaser.release(&self.port, &mut outputs!(self))
    }

    /// Run to completion: sequences, matches and journals what was submitted, and makes it
    /// durable (one group commit); `release` then sends the answers. The core releases from
    /// inside only when the outbound ring fills in the middle of a command.
    fn run_core(&mut self) -> bool {
        let Some(core) = self.core.as_mut() else { return false };
        let (releaser, port) = (&mut self.releaser, &self.port);
        let mut out = outputs!(self);
        core.run(&mut || {
            releaser.release(port, &mut out);
        })
    }

    /// Sends what each connection has queued and continues replays. The output journals are
    /// committed first: the gateway's own answers (refusals, Account Query) are emitted while
    /// reading, outside any release, and must be written before their bytes leave.
    fn flush_all(&mut self) -> bool {
        self.streams.commit();
        let now = self.now_ns();
        let mut work = false;
        for conn in 0..self.conns.len() {
            match self.conns.phase(conn) {
                Phase::Free | Phase::Ending => continue,
                Phase::Replaying => work |= self.continue_replay(conn),
                Phase::Open | Phase::Live => {}
            }
            work |=
                self.conns.flush(conn, &mut self.transport, now, &self.stats, &self.hot_log) != Flushed::Idle;
        }
        work
    }

    fn continue_replay(&mut self, conn: ConnId) -> bool {
        let Some(account) = self.conns.account(conn) else { return false };
        let end = self.streams.next_sequence(account);
        match self.conns.continue_replay(conn, self.streams.location(account), end, &self.stats) {
            Ok(work) => work,
            Err(_) => {
                let why = "session replay failed reading the output journal: disconnecting";
                self.log(HotRecord::new(HotLevel::Error, why).session(conn));
                self.conns.end(conn, Ending::Close);
                true
            }
        }
    }

    fn timers(&mut self) {
        let now = self.now_ns();
        for conn in 0..self.conns.len() {
            let TimerAction::Disconnect(reason) = self.conns.poll_timers(conn, now) else { continue };
            let why = match reason {
                CloseReason::LoginTimeout => "session timed out before logging in",
                _ => "session timed out: no heartbeat",
            };
            match reason {
                CloseReason::IdleTimeout | CloseReason::LoginTimeout => {
                    bump(&self.stats.disconnects_timeout_total)
                }
                _ => bump(&self.stats.disconnects_protocol_total),
            }
            self.log(HotRecord::new(HotLevel::Info, why).session(conn));
        }
    }

    /// Finishes the sessions marked ending: a last send and the close (ours), the slot freed,
    /// and, with `cancel_on_disconnect`, the account's orders cancelled where its user asks for
    /// that (a sequenced `Disconnect`, submitted here and nowhere else).
    fn finish_ended(&mut self, cancel_on_disconnect: bool) -> bool {
        let mut work = false;
        while let Some((conn, how)) = self.conns.take_ended() {
            work = true;
            if how == Ending::Close {
                let now = self.now_ns();
                self.conns.flush(conn, &mut self.transport, now, &self.stats, &self.hot_log);
                self.transport.close(conn);
            }
            let Some(account) = self.conns.free(conn) else { continue };
            self.stats.sessions_logged_in.fetch_sub(1, Ordering::Relaxed);
            self.streams.detach(account);
            if cancel_on_disconnect && self.cancels_on_disconnect(account) {
                let why = "session ended: cancelling the account's orders (cancel on disconnect)";
                self.log(HotRecord::new(HotLevel::Info, why).session(conn).account(account.0));
                self.submit(InboundCommand::new(ADMIN_CONN, Command::Disconnect { account }));
            }
        }
        work
    }

    fn cancels_on_disconnect(&self, account: AccountId) -> bool {
        self.users.read().expect("users lock").by_account(account).is_some_and(|u| u.cancel_on_disconnect)
    }

    /// Shutdown: deliver what is durable, send End of Session to every session, close. Ending
    /// the trading session is not a disconnect: no cancel-on-disconnect here.
    fn close_all(&mut self) {
        while self.run_core() | self.release() {}
        self.finish_ended(false);
        for conn in 0..self.conns.len() {
            if !self.conns.is_active(conn) {
                continue;
            }
            self.conns.end_of_session(conn);
            self.conns.queue_packet(conn, &ServerPacket::EndOfSession);
            self.conns.end(conn, Ending::Close);
        }
        self.finish_ended(false);
        if self.streams.commit() {
            self.releaser.mark.after_commit(&self.hot_log);
        }
        self.releaser.mark.write_if_moved(&self.hot_log);
        // End of Session is queued; give every client a moment to receive it.
        if let Ok(false) = self.transport.drain_sends(SHUTDOWN_SEND_WAIT) {
            self.log(HotRecord::new(
                HotLevel::Warn,
                "shutdown: some clients did not take their End of Session in time",
            ));
        }
    }
}
