//! `petrel-engine run`: the daemon's life from configuration to exit.
//!
//! Start-up, each failure ending the process with a message naming what and where:
//! configuration, logging, users file, the output journals' tails and release mark (which
//! commands' messages a crash may have kept from them), journal recovery (snapshot + tail,
//! progress in `STATUS=`, collecting those commands' events for the gateway to regenerate),
//! the pinned pipeline, the gateway's listener, the admin endpoint. Only then
//! `READY=1`. The main thread is the control plane: it pings the watchdog only while every
//! data-plane thread makes progress (or idles with nothing queued), keeps `STATUS=` current,
//! reloads on SIGHUP and drains on SIGTERM/SIGINT: intake closes, queued commands are sequenced
//! and made durable, a snapshot is written, sessions get End of Session, exit 0.

use crate::admin::{self, AdminHandler, AdminServer};
use crate::config::{Config, GatewayBackend, Rejoin, Role};
use crate::gateway::{
    transport::epoll::EpollTransport, transport::uring::UringTransport, Gateway, GatewaySettings,
    GatewayStats, OutputTails, Regeneration, Transport,
};
use crate::latency_export::{self, JOURNAL_COMMIT, MATCHER_SERVICE, WIRE_TO_WIRE};
use crate::metrics::{self as m, Exposition, LatencySummary};
use crate::notify::{Notifier, ThreadProgress, Watchdog};
use crate::port::{GatewayPort, Ring, RuntimeStats};
use crate::replication::{
    self, epoch::EpochHistory, observe::StandbyObserved, peer::AtStart, primary::Primary, standby::Follower,
    ReplicationStats,
};
use crate::runtime::Runtime;
use crate::users::Users;
use petrel_core::{AccountId, Command, RejectReason};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

static STOP: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: nix::libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

extern "C" fn on_reload(_: nix::libc::c_int) {
    RELOAD.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() -> Result<(), String> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let stop = SigAction::new(SigHandler::Handler(on_stop), SaFlags::SA_RESTART, SigSet::empty());
    let reload = SigAction::new(SigHandler::Handler(on_reload), SaFlags::SA_RESTART, SigSet::empty());
    // SAFETY: the handlers only store to atomics, which is async-signal-safe.
    unsafe {
        for signal in [Signal::SIGTERM, Signal::SIGINT] {
            sigaction(signal, &stop).map_err(|e| format!("cannot handle {signal}: {e}"))?;
        }
        sigaction(Signal::SIGHUP, &reload).map_err(|e| format!("cannot handle SIGHUP: {e}"))?;
    }
    Ok(())
}

/// Why `run` ended without serving, or failed while serving.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Start(String),
    #[error("{0}")]
    Runtime(String),
}

impl DaemonError {
    pub fn exit_code(&self) -> u8 {
        match self {
            DaemonError::Config(_) => 2,
            DaemonError::Start(_) | DaemonError::Runtime(_) => 1,
        }
    }
}

/// What the admin endpoint and STATUS= read: counters owned by other threads, and a few of the
/// control plane's own.
struct Observed {
    config: Config,
    /// What recovery rebuilt at start: its last sequence and state hash (a restore is checked
    /// against its backup's manifest with these).
    recovered: (u64, String),
    runtime: Arc<RuntimeStats>,
    gateway: Arc<GatewayStats>,
    port: GatewayPort,
    gateway_log: Arc<crate::logging::HotLog>,
    ready: AtomicBool,
    start_unix_s: f64,
    watchdog_pings: AtomicU64,
    watchdog_withheld: [AtomicU64; 4],
    reloads_ok: AtomicU64,
    reloads_failed: AtomicU64,
    last_reload_ok: AtomicBool,
    latency: Mutex<Summaries>,
    /// With `[replication]` (this engine is the primary).
    replication: Option<Arc<ReplicationStats>>,
    /// With `[market_data]`.
    market_data: Option<Arc<crate::market_data::FeedStats>>,
    /// With `[failover] mode = "etcd"`.
    failover: Option<Arc<crate::failover::FailoverStats>>,
}

struct Summaries {
    wire_to_wire: LatencySummary,
    matcher: LatencySummary,
    fsync: LatencySummary,
}

/// The threads the watchdog watches, in `ThreadProgress` order.
const WATCHED: [&str; 4] = ["gateway", "sequencer", "journal", "housekeeping"];

impl Observed {
    fn new(
        config: Config,
        recovered: (u64, String),
        runtime: &Runtime,
        gateway: &BoundGateway,
        port: GatewayPort,
        replication: Option<Arc<ReplicationStats>>,
        failover: Option<Arc<crate::failover::FailoverStats>>,
    ) -> Observed {
        Observed {
            config,
            recovered,
            runtime: runtime.stats(),
            gateway: gateway.stats.clone(),
            port,
            gateway_log: gateway.log.clone(),
            ready: AtomicBool::new(false),
            start_unix_s: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()),
            watchdog_pings: AtomicU64::new(0),
            watchdog_withheld: Default::default(),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            last_reload_ok: AtomicBool::new(true),
            latency: Mutex::new(Summaries {
                wire_to_wire: LatencySummary::new(),
                matcher: LatencySummary::new(),
                fsync: LatencySummary::new(),
            }),
            replication,
            market_data: gateway.market_data.clone(),
            failover,
        }
    }

    /// Starts a new latency window (every 30 s), absorbing what the threads published.
    fn rotate_latency(&self) {
        self.absorb();
        let mut s = self.latency.lock().expect("summaries lock");
        s.wire_to_wire.rotate();
        s.matcher.rotate();
        s.fsync.rotate();
    }

    /// Moves the data plane's histogram samples into the summaries (never blocking them for
    /// long: they only `try_lock`).
    fn absorb(&self) {
        let mut s = self.latency.lock().expect("summaries lock");
        if let Ok(mut h) = self.gateway.wire_to_wire_ns.lock() {
            s.wire_to_wire.absorb(&h);
            h.reset();
        }
        if let Ok(mut h) = self.runtime.matcher_service_ns.lock() {
            s.matcher.absorb(&h);
            h.reset();
        }
        if let Ok(mut h) = self.runtime.journal_commit_ns.lock() {
            s.fsync.absorb(&h);
            h.reset();
        }
    }

    /// On a primary (configured so, or a promoted standby).
    fn replication_view<'a>(
        &'a self,
        config: &'a crate::config::ReplicationConfig,
        stats: &'a ReplicationStats,
    ) -> replication::observe::View<'a> {
        replication::observe::View {
            role: Role::Primary,
            config,
            stats,
            local_durable: self.port.gate.local.load(Ordering::Relaxed),
            promotable: replication::primary::promotable(&self.port),
        }
    }

    fn status_line(&self, orders_per_s: f64) -> String {
        let last = self.runtime.last_sequence.load(Ordering::Relaxed);
        let durable = self.runtime.durable_sequence.load(Ordering::Relaxed);
        let standby = match &self.replication {
            None => String::new(),
            Some(stats) if stats.connected.load(Ordering::Relaxed) => {
                format!(", standby lag {}", stats.lag(self.port.gate.local.load(Ordering::Relaxed)))
            }
            Some(stats) if stats.halted.load(Ordering::Relaxed) => {
                ", NO STANDBY: acknowledging nothing (on_standby_loss = halt)".to_owned()
            }
            Some(_) => ", no standby connected".to_owned(),
        };
        format!(
            "serving: {} sessions, {:.0} commands/s, last sequence {last}, journal lag {}{standby}",
            self.gateway.sessions_logged_in.load(Ordering::Relaxed),
            orders_per_s,
            last.saturating_sub(durable)
        )
    }
}

impl AdminHandler for Observed {
    fn metrics(&self, out: &mut String) {
        self.absorb();
        let r = &self.runtime;
        let g = &self.gateway;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut e = Exposition::new(out);
        e.gauges(&m::BUILD_INFO, [(env!("CARGO_PKG_VERSION"), 1.0)]);
        e.gauge(&m::START_TIME_SECONDS, self.start_unix_s);
        e.gauge(&m::READY, if self.ready.load(Ordering::Relaxed) { 1.0 } else { 0.0 });
        e.counter(&m::COMMANDS_TOTAL, load(&r.commands_total));
        e.counters(
            &m::REJECTS_TOTAL,
            RejectReason::ALL.iter().map(|reason| (reason.as_str(), r.rejects(*reason))),
        );
        e.counter(&m::EXECUTIONS_TOTAL, load(&r.executions_total));
        e.counter(&m::CANCELS_TOTAL, load(&r.cancels_total));
        let names: Vec<&str> = self.config.accounts.iter().map(|a| a.name.as_str()).collect();
        e.counters(
            &m::POSITION_LIMIT_REJECTS_TOTAL,
            names.iter().copied().zip(g.position_rejects_total.iter().map(load)),
        );
        e.gauges(
            &m::KILL_SWITCH_ENGAGED,
            names.iter().copied().zip(g.kill_switch_engaged.iter().map(|f| {
                if f.load(Ordering::Relaxed) {
                    1.0
                } else {
                    0.0
                }
            })),
        );
        e.gauge(&m::SESSIONS, load(&g.sessions_logged_in) as f64);
        e.counters(
            &m::SESSION_DISCONNECTS_TOTAL,
            [
                ("logout", load(&g.disconnects_logout_total)),
                ("peer_closed", load(&g.disconnects_peer_total)),
                ("heartbeat_timeout", load(&g.disconnects_timeout_total)),
                (
                    "protocol_error",
                    load(&g.disconnects_protocol_total)
                        + load(&g.violations_total)
                        + load(&g.malformed_total),
                ),
                ("slow_consumer", load(&g.disconnects_slow_consumer_total)),
            ],
        );
        e.counter(&m::GATEWAY_CONNECTIONS_REFUSED_TOTAL, load(&g.connections_refused_total));
        e.counter(&m::OUTPUTS_REGENERATED_TOTAL, load(&g.regenerated_messages_total));
        let depth = |ring: Ring| -> f64 {
            match ring {
                Ring::Inbound => self.port.inbound.len() as f64,
                Ring::Outbound => self.port.outbound.len() as f64,
                Ring::Journal => load(&r.journal_ring_depth) as f64,
                Ring::Admin => 0.0,
            }
        };
        e.gauges(&m::RING_DEPTH, Ring::ALL.iter().map(|ring| (ring.as_str(), depth(*ring))));
        e.gauges(
            &m::RING_CAPACITY,
            [
                ("inbound", self.port.inbound.capacity() as f64),
                ("outbound", self.port.outbound.capacity() as f64),
            ],
        );
        e.counters(&m::RING_FULL_TOTAL, Ring::ALL.iter().map(|ring| (ring.as_str(), r.ring_full(*ring))));
        e.gauge(&m::LAST_SEQUENCE, load(&r.last_sequence) as f64);
        e.gauge(&m::DURABLE_SEQUENCE, load(&r.durable_sequence) as f64);
        e.counter(&m::JOURNAL_BYTES_TOTAL, load(&r.journal_bytes_total));
        e.counter(&m::JOURNAL_BATCHES_TOTAL, load(&r.journal_batches_total));
        e.gauge(&m::JOURNAL_BATCH_RECORDS, load(&r.journal_batch_records) as f64);
        if let Ok(fs) = nix::sys::statvfs::statvfs(&self.config.journal.dir) {
            e.gauge(&m::JOURNAL_DISK_FREE_BYTES, fs.blocks_available() as f64 * fs.fragment_size() as f64);
            e.gauge(&m::JOURNAL_DISK_SIZE_BYTES, fs.blocks() as f64 * fs.fragment_size() as f64);
        }
        {
            let s = self.latency.lock().expect("summaries lock");
            e.summary_ns(&m::JOURNAL_FSYNC_LATENCY_SECONDS, &s.fsync);
            e.summary_ns(&m::WIRE_TO_WIRE_LATENCY_SECONDS, &s.wire_to_wire);
            e.summary_ns(&m::MATCHER_SERVICE_TIME_SECONDS, &s.matcher);
        }
        e.counter(&m::WATCHDOG_PINGS_TOTAL, load(&self.watchdog_pings));
        e.counters(
            &m::WATCHDOG_WITHHELD_TOTAL,
            WATCHED.iter().copied().zip(self.watchdog_withheld.iter().map(load)),
        );
        e.counter(&m::LOG_DROPPED_TOTAL, self.gateway_log.dropped_total());
        e.counters(
            &m::CONFIG_RELOADS_TOTAL,
            [("ok", load(&self.reloads_ok)), ("failed", load(&self.reloads_failed))],
        );
        e.gauge(
            &m::CONFIG_LAST_RELOAD_OK,
            if self.last_reload_ok.load(Ordering::Relaxed) { 1.0 } else { 0.0 },
        );
        if let (Some(config), Some(stats)) = (&self.config.replication, &self.replication) {
            self.replication_view(config, stats).render_metrics(&mut e);
        }
        if let Some(feed) = &self.market_data {
            feed.render_metrics(&mut e);
        }
        if let Some(failover) = &self.failover {
            failover.render_metrics(&mut e);
        }
    }

    fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    fn status_json(&self) -> String {
        let r = &self.runtime;
        serde_json::json!({
            "ready": self.ready(),
            "version": env!("CARGO_PKG_VERSION"),
            "sessions": self.gateway.sessions_logged_in.load(Ordering::Relaxed),
            "commands_total": r.commands_total.load(Ordering::Relaxed),
            "executions_total": r.executions_total.load(Ordering::Relaxed),
            "last_sequence": r.last_sequence.load(Ordering::Relaxed),
            "durable_sequence": r.durable_sequence.load(Ordering::Relaxed),
            "journal_dir": self.config.journal.dir.display().to_string(),
            "recovered_sequence": self.recovered.0,
            "recovered_state_hash": self.recovered.1,
            "durability": match self.config.journal.durability {
                petrel_journal::Durability::Fsync => "fsync",
                petrel_journal::Durability::None => "none",
            },
            "role": if self.config.replication.is_some() { "primary" } else { "single" },
                        "replication": match (&self.config.replication, &self.replication) {
                (Some(config), Some(stats)) => self.replication_view(config, stats).status(),
                _ => serde_json::Value::Null,
            },
            "failover": self.failover.as_ref().map(|f| f.status()),
        })
        .to_string()
    }

    fn latency_json(&self) -> String {
        self.absorb();
        let s = self.latency.lock().expect("summaries lock");
        latency_export::latency_json(&[
            (JOURNAL_COMMIT, &s.fsync),
            (WIRE_TO_WIRE, &s.wire_to_wire),
            (MATCHER_SERVICE, &s.matcher),
        ])
    }
}

/// The daemon's whole life, in order: every stage of start-up, the control loop, the drain.
/// Longer than most functions here on purpose: the stages read top to bottom, each a call or
/// two, with the clean-up each failure needs beside it.
pub fn run(config_path: &Path) -> Result<(), DaemonError> {
    // 1. Configuration, logging, systemd, users, signals.
    let (config, _log, notifier, users) = prepare(config_path)?;
    // With etcd failover: this engine's leader lease, once it holds one.
    let failover_stats =
        config.failover.as_ref().map(|_| Arc::new(crate::failover::FailoverStats::default()));
    let Some(start) = take_role(&config, &notifier, &failover_stats)? else {
        return Ok(()); // a standby that stopped without being promoted
    };
    // 2. Recovery: the output journals' tails, then the engine from snapshot and journal.
    let (recovered, regeneration, recovered_state) = recover(&config, &notifier)?;
    // 3. The pinned pipeline: sequencer/matcher, journal writer, housekeeping.
    let (runtime, port) =
        Runtime::start(&config, recovered).map_err(|e| DaemonError::Start(e.to_string()))?;
    // 3b. The epoch, the lease and the standby: set before any client can be acknowledged.
    let (primary, replication_stats, lease) =
        match start_primary(&config, start, &runtime, &port, failover_stats.as_ref()) {
            Ok(started) => started,
            Err(e) => {
                let _ = runtime.shutdown(false);
                return Err(e);
            }
        };
    let _ = notifier.watchdog(); // as in recovery: a promoted standby is under the watchdog
                                 // 4. The gateway thread (which regenerates lost outputs before it listens).
    let users = Arc::new(RwLock::new(Arc::new(users)));
    let (gateway, bound) = match start_gateway(&config, &users, &port, regeneration) {
        Ok(started) => started,
        Err(e) => {
            let _ = runtime.shutdown(false);
            return Err(e);
        }
    };
    // 5. The admin endpoint; then READY=1.
    let observed = Arc::new(Observed::new(
        config.clone(),
        recovered_state,
        &runtime,
        &bound,
        port.clone(),
        replication_stats,
        failover_stats.clone(),
    ));
    let admin: AdminServer = admin::serve(config.admin.listen, observed.clone()).map_err(|e| {
        STOP.store(true, Ordering::SeqCst);
        DaemonError::Start(format!("admin endpoint: {e}"))
    })?;
    observed.ready.store(true, Ordering::Relaxed);
    tracing::info!(addr = %bound.addr, backend = bound.backend, admin = %admin.local_addr(), "ready: gateway listening");
    let _ = notifier.ready(&observed.status_line(0.0));
    // 6. The control loop, until SIGTERM/SIGINT or a failure.
    let control =
        Control { config_path, notifier: &notifier, observed: &observed, runtime: &runtime, users: &users };
    let failure = control.run(config, &gateway, &bound);
    // 7. Drain: the gateway acknowledges the closed intake, the runtime sequences and makes
    // durable what is queued and snapshots, the gateway delivers it and ends every session.
    tracing::info!("stopping: closing intake, draining the pipeline");
    let _ = notifier.stopping("stopping: draining the pipeline and sessions");
    observed.ready.store(false, Ordering::Relaxed);
    bound.intake.close_and_wait(&port.gateway_bell);
    let report = runtime.shutdown(true).map_err(|e| DaemonError::Runtime(e.to_string()));
    STOP.store(true, Ordering::SeqCst);
    // A parked gateway sleeps in its poll: wake it to see STOP now, not when its sleep ends.
    port.gateway_bell.wake();
    let gateway_result =
        gateway.join().map_err(|_| DaemonError::Runtime("the gateway thread panicked".into()))?;
    admin.shutdown();
    hand_over(primary, lease, failure.is_none());
    let report = report?;
    tracing::info!(
        last_sequence = report.last_sequence,
        durable_sequence = report.durable_sequence,
        state_hash = %report.state_hash,
        snapshot = ?report.snapshot,
        "stopped"
    );
    gateway_result.map_err(DaemonError::Runtime)?;
    match failure {
        Some(why) => Err(DaemonError::Runtime(why)),
        None => Ok(()),
    }
}

/// Stage 1 of [`run`]: the configuration, logging (its guard lives as long as the daemon),
/// systemd's notifier, the users file, the signal handlers.
fn prepare(config_path: &Path) -> Result<(Config, crate::logging::LogSetup, Notifier, Users), DaemonError> {
    let config = Config::load(config_path).map_err(|e| DaemonError::Config(e.to_string()))?;
    let log = crate::logging::init(&config.log).map_err(|e| DaemonError::Config(e.to_string()))?;
    let notifier = Notifier::from_env().map_err(|e| DaemonError::Start(e.to_string()))?;
    let users =
        Users::load(&config.gateway.users_file, &config).map_err(|e| DaemonError::Config(e.to_string()))?;
    if users.is_empty() {
        tracing::warn!(file = %config.gateway.users_file.display(), "the users file defines no users: nobody can log in");
    }
    install_signal_handlers().map_err(DaemonError::Start)?;
    tracing::info!(config = %config_path.display(), log = ?log.target, "{}", config.summary());
    Ok((config, log, notifier, users))
}

/// The primary's side of a start: the lease gates releases, a promotion's epoch note is
/// sequenced first, and with a standby the replication thread sets the release gate before any
/// client can be acknowledged. Returns that thread, its statistics and the lease.
#[allow(clippy::type_complexity)]
fn start_primary(
    config: &Config,
    start: Start,
    runtime: &Runtime,
    port: &GatewayPort,
    failover_stats: Option<&Arc<crate::failover::FailoverStats>>,
) -> Result<(Option<Primary>, Option<Arc<ReplicationStats>>, Option<crate::failover::Lease>), DaemonError> {
    let Start { epoch, alone, promoted, lease } = start;
    // With etcd failover, nothing is released but while the leader lease is certainly valid.
    if let (Some(lease), Some(stats)) = (&lease, failover_stats) {
        lease.attach(Arc::clone(&port.gate), stats);
    }
    if let (true, Some(epoch)) = (promoted, epoch) {
        // The epoch's first record says so (sequenced ahead of any client's command).
        let note = crate::gateway::notes::EngineNote::Epoch { number: epoch.number };
        let command = Command::Note { account: crate::gateway::notes::ENGINE, note: note.encode() };
        if runtime.submit_admin(command).is_err() {
            tracing::warn!("the admin ring is full: the new epoch is not journaled as a note");
        }
    }
    let Some(_) = &config.replication else { return Ok((None, None, lease)) };
    let stats = Arc::new(ReplicationStats::default());
    let epoch = epoch.expect("loaded with [replication]");
    let mark = standby_marker(config, lease.as_ref(), epoch.number);
    let primary = Primary::start(config, epoch, alone, port.clone(), Arc::clone(&stats), mark)
        .map_err(DaemonError::Start)?;
    Ok((Some(primary), Some(stats), lease))
}

/// After the drain: the replication thread stops, and a clean stop hands the leader key over
/// at once (a planned switchover: everything acknowledged was drained to the standby).
fn hand_over(primary: Option<Primary>, lease: Option<crate::failover::Lease>, clean: bool) {
    if let Some(primary) = primary {
        primary.shutdown();
    }
    if let (Some(lease), true) = (lease, clean) {
        lease.revoke();
    }
}

/// Reads which commands may lack their messages in some output journal (a crash between the
/// input journal and the gateway), then recovers the engine, collecting those commands' events.
fn recover(
    config: &Config,
    notifier: &Notifier,
) -> Result<(crate::recovery::Recovered, Regeneration, (u64, String)), DaemonError> {
    let _ = notifier.status("recovering the journal");
    // A promoted standby recovers while its unit is active, under the watchdog: each sign of
    // progress is a ping (before READY=1 at a first start, systemd does not yet count them).
    let _ = notifier.watchdog();
    let started = Instant::now();
    let sessions_dir = GatewaySettings::from_config(config).sessions_dir;
    let tails = OutputTails::read(&sessions_dir, config.accounts.len())
        .map_err(|e| DaemonError::Start(format!("reading the session output journals: {e}")))?;
    // The market-data feed journal may need events from further back than the streams do.
    let feed_after = crate::market_data::regenerate_after(config)
        .map_err(|e| DaemonError::Start(format!("reading the market-data feed journal: {e}")))?;
    let after = tails.regenerate_after().map(|t| feed_after.map_or(t, |f| t.min(f)));
    let mut last_progress = Instant::now();
    let (recovered, collection) = crate::recovery::recover_collecting(config, after, &mut |done, total| {
        if last_progress.elapsed() > Duration::from_millis(500) || done == total {
            last_progress = Instant::now();
            let _ = notifier.status(&format!("replaying journal: {done} of {total}"));
            let _ = notifier.watchdog();
            tracing::info!("replaying journal: {done} of {total}");
        }
    })
    .map_err(|e| DaemonError::Start(e.to_string()))?;
    let report = &recovered.report;
    let state_hash = recovered.engine.state_hash().to_string();
    tracing::info!(
        replayed = report.replayed_records,
        last_sequence = report.last_sequence,
        snapshot = ?report.snapshot.as_ref().map(|s| s.0),
        collected_events = report.collected_events,
        elapsed_ms = started.elapsed().as_millis() as u64,
        state_hash = %state_hash,
        "journal recovered"
    );
    let regeneration = Regeneration { tails, collection, last_sequence: report.last_sequence };
    let recovered_state = (report.last_sequence, state_hash);
    Ok((recovered, regeneration, recovered_state))
}

/// What the gateway thread hands back once it listens.
struct BoundGateway {
    addr: SocketAddr,
    backend: &'static str,
    stats: Arc<GatewayStats>,
    heartbeat: Arc<AtomicU64>,
    intake: crate::gateway::IntakeHandle,
    log: Arc<crate::logging::HotLog>,
    /// With `[market_data]`.
    market_data: Option<Arc<crate::market_data::FeedStats>>,
}

type GatewayThread = std::thread::JoinHandle<Result<(), String>>;

/// Starts the gateway thread: pins it, binds the listener, builds the gateway (regenerating
/// lost outputs), and returns once it serves, or with the first error.
fn start_gateway(
    config: &Config,
    users: &Arc<RwLock<Arc<Users>>>,
    port: &GatewayPort,
    regeneration: Regeneration,
) -> Result<(GatewayThread, BoundGateway), DaemonError> {
    let (bound_tx, bound_rx) = crossbeam::channel::bounded::<Result<BoundGateway, String>>(1);
    let (config, users, port) = (config.clone(), users.clone(), port.clone());
    let thread = std::thread::Builder::new()
        .name("petrel-gateway".into())
        .spawn(move || -> Result<(), String> {
            let fail = |e: String| {
                let _ = bound_tx.send(Err(e.clone()));
                Err(e)
            };
            let runtime = &config.runtime;
            if let Err(e) = crate::runtime::os::prepare_current_thread(
                "gateway",
                &runtime.gateway,
                runtime.realtime_priority,
            ) {
                return fail(e.to_string());
            }
            let transport = match bind(&config) {
                Ok(t) => t,
                Err(e) => return fail(e),
            };
            let settings = GatewaySettings::from_config(&config);
            let mut gateway = match Gateway::new(transport, port, &config, users, settings, regeneration) {
                Ok(g) => g,
                Err(e) => return fail(e.to_string()),
            };
            let _ = bound_tx.send(Ok(BoundGateway {
                addr: gateway.local_addr(),
                backend: gateway.transport_name(),
                stats: gateway.stats(),
                heartbeat: gateway.heartbeat(),
                intake: gateway.take_intake_handle().expect("taken once, here"),
                log: gateway.hot_log(),
                market_data: gateway.market_data_stats(),
            }));
            gateway.run(&STOP).map_err(|e| e.to_string())
        })
        .map_err(|e| DaemonError::Start(format!("cannot start the gateway thread: {e}")))?;
    match bound_rx.recv() {
        Ok(Ok(bound)) => Ok((thread, bound)),
        Ok(Err(e)) => Err(DaemonError::Start(e)),
        Err(_) => Err(DaemonError::Start("the gateway thread ended during start-up".into())),
    }
}

/// The control plane's loop on the main thread: reloads, watchdog, STATUS=, latency windows,
/// and the gateway's log records reaching tracing (journald), never from the gateway itself.
struct Control<'a> {
    config_path: &'a Path,
    notifier: &'a Notifier,
    observed: &'a Arc<Observed>,
    runtime: &'a Runtime,
    users: &'a Arc<RwLock<Arc<Users>>>,
}

/// How often the control loop wakes.
const CONTROL_TICK: Duration = Duration::from_millis(10);

impl Control<'_> {
    /// Runs until STOP; returns why the engine must stop when something failed.
    fn run(&self, mut current: Config, gateway: &GatewayThread, bound: &BoundGateway) -> Option<String> {
        let mut watchdog = Watchdog::new(WATCHED.len());
        let ping_every = self.notifier.watchdog_interval();
        // The first ping at the first tick: after an in-process promotion the unit's watchdog
        // has been running all along, and waiting a whole interval first could overrun it.
        let mut last_ping: Option<Instant> = None;
        let (mut last_status, mut last_rotate) = (Instant::now(), Instant::now());
        let mut last_commands = self.observed.runtime.commands_total.load(Ordering::Relaxed);
        let mut journaled_standby = None;
        while !STOP.load(Ordering::SeqCst) {
            if RELOAD.swap(false, Ordering::SeqCst) {
                current = self.reload(current);
            }
            let progress = self.runtime.progress();
            if let Some(why) = progress.failure.clone() {
                tracing::error!("the pipeline stopped: {why}; stopping so that a restart recovers");
                return Some(why);
            }
            if gateway.is_finished() {
                return Some("the gateway thread ended".into());
            }
            if self.observed.failover.as_ref().is_some_and(|f| f.lost.load(Ordering::Acquire)) {
                let why = "failover: the leader lease was lost (etcd expired it, or the key is no longer this engine's): another engine may be the primary now; stopping, to rejoin as its standby at the next start";
                tracing::error!("{why}");
                return Some(why.into());
            }
            if self.observed.replication.as_ref().is_some_and(|r| r.stale.load(Ordering::Acquire)) {
                let why = "a standby of a newer epoch connected: a standby was promoted since this engine became primary, so it is stale; stopping (petrel-engine rejoin makes it a standby of the new primary)";
                tracing::error!("{why}");
                return Some(why.into());
            }
            if ping_every.is_some_and(|every| last_ping.is_none_or(|at| at.elapsed() >= every)) {
                last_ping = Some(Instant::now());
                self.watchdog_tick(&mut watchdog, &progress, bound);
            }
            self.journal_standby_state(&mut journaled_standby);
            if last_status.elapsed() >= Duration::from_secs(2) {
                let commands = self.observed.runtime.commands_total.load(Ordering::Relaxed);
                let rate = (commands - last_commands) as f64 / last_status.elapsed().as_secs_f64();
                (last_commands, last_status) = (commands, Instant::now());
                let _ = self.notifier.status(&self.observed.status_line(rate));
            }
            if last_rotate.elapsed() >= Duration::from_secs(30) {
                last_rotate = Instant::now();
                self.observed.rotate_latency();
            }
            bound.log.drain(1024);
            std::thread::sleep(CONTROL_TICK);
        }
        None
    }

    /// Under `ack = "standby"`, journals each change of the standby's state (promotable,
    /// halted) as an engine note, so that the journal alone tells from which record this
    /// primary acknowledged without a standby, or nothing at all. Retried next tick when the
    /// admin ring is full.
    fn journal_standby_state(&self, journaled: &mut Option<(bool, bool)>) {
        let (Some(stats), Some(r)) = (&self.observed.replication, &self.observed.config.replication) else {
            return;
        };
        if r.ack != crate::config::Ack::Standby {
            return;
        }
        let now =
            (replication::primary::promotable(&self.observed.port), stats.halted.load(Ordering::Relaxed));
        if *journaled == Some(now) {
            return;
        }
        let note = crate::gateway::notes::EngineNote::Replication { promotable: now.0, halted: now.1 };
        let command = Command::Note { account: crate::gateway::notes::ENGINE, note: note.encode() };
        if self.runtime.submit_admin(command).is_ok() {
            *journaled = Some(now);
        }
    }

    /// SIGHUP: the new configuration, or the current one when the new one is refused.
    fn reload(&self, current: Config) -> Config {
        let _ = self.notifier.reloading("reloading configuration and users");
        let observed = self.observed;
        match reload(self.config_path, &current, self.users, self.runtime) {
            Ok(next) => {
                observed.reloads_ok.fetch_add(1, Ordering::Relaxed);
                observed.last_reload_ok.store(true, Ordering::Relaxed);
                let _ = self.notifier.ready(&observed.status_line(0.0));
                next
            }
            Err(e) => {
                tracing::error!("reload refused, the running configuration stays in force: {e}");
                observed.reloads_failed.fetch_add(1, Ordering::Relaxed);
                observed.last_reload_ok.store(false, Ordering::Relaxed);
                let _ = self.notifier.ready(&format!("reload refused (running configuration kept): {e}"));
                current
            }
        }
    }

    /// Pings the watchdog only if every data-plane thread progressed (or idles with nothing
    /// queued) since the last tick; otherwise says which did not.
    fn watchdog_tick(
        &self,
        watchdog: &mut Watchdog,
        progress: &crate::runtime::ProgressSnapshot,
        bound: &BoundGateway,
    ) {
        let mut threads = [ThreadProgress { heartbeats: 0, idle_empty: false }; 4];
        // The gateway loops continuously (its poll waits at most its park bound), so it is
        // never idle-with-nothing-queued: only its heartbeat counts.
        threads[0] =
            ThreadProgress { heartbeats: bound.heartbeat.load(Ordering::Relaxed), idle_empty: false };
        for (i, t) in progress.threads.iter().enumerate() {
            threads[i + 1] = ThreadProgress { heartbeats: t.heartbeat, idle_empty: t.idle };
        }
        if watchdog.tick(&threads) {
            let _ = self.notifier.watchdog();
            self.observed.watchdog_pings.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let stalled: Vec<&str> = watchdog.stalled().iter().map(|&i| WATCHED[i]).collect();
        for &i in watchdog.stalled() {
            self.observed.watchdog_withheld[i].fetch_add(1, Ordering::Relaxed);
        }
        tracing::error!(threads = ?stalled, "watchdog ping withheld: no progress");
    }
}

/// The configured network backend, bound to `gateway.listen` (`auto`: io_uring, else epoll, logged).
pub fn bind(config: &Config) -> Result<Box<dyn Transport>, String> {
    let g = &config.gateway;
    let read_buffer_bytes = 64 * 1024;
    let send_buffer_bytes = crate::gateway::transport::uring::SEND_BUFFER_BYTES_DEFAULT;
    let uring = || UringTransport::bind(g.listen, g.max_sessions, read_buffer_bytes, send_buffer_bytes);
    let epoll = || {
        EpollTransport::bind(g.listen, g.max_sessions, read_buffer_bytes)
            .map(|t| Box::new(t) as Box<dyn Transport>)
            .map_err(|e| format!("cannot listen on {} with epoll: {e}", g.listen))
    };
    match g.backend {
        GatewayBackend::Epoll => epoll(),
        GatewayBackend::IoUring => uring().map(|t| Box::new(t) as Box<dyn Transport>).map_err(|e| {
            format!("cannot listen on {} with io_uring (gateway.backend = \"io_uring\"): {e}", g.listen)
        }),
        GatewayBackend::Auto => match uring() {
            Ok(t) => Ok(Box::new(t)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                Err(format!("cannot listen on {}: {e}", g.listen))
            }
            Err(e) => {
                tracing::warn!("io_uring is unavailable ({e}); the gateway uses epoll");
                epoll()
            }
        },
    }
}

/// SIGHUP: re-read the configuration and the users file; apply changed risk limits as
/// sequenced commands and swap the users atomically. Nothing else may change at run time.
fn reload(
    path: &Path,
    current: &Config,
    users: &Arc<RwLock<Arc<Users>>>,
    runtime: &Runtime,
) -> Result<Config, String> {
    let next = Config::load(path).map_err(|e| e.to_string())?;
    if next.engine.instruments != current.engine.instruments || next.accounts.len() != current.accounts.len()
    {
        return Err("instruments and accounts cannot change while running (restart to apply)".into());
    }
    let next_users = Users::load(&next.gateway.users_file, &next).map_err(|e| e.to_string())?;
    let mut changed = 0;
    for (i, (old, new)) in current.engine.accounts.iter().zip(&next.engine.accounts).enumerate() {
        if old.limits != new.limits {
            let command = Command::SetRiskLimits { account: AccountId(i as u32), limits: new.limits };
            let mut tries = 0;
            while runtime.submit_admin(command).is_err() {
                tries += 1;
                if tries > 1000 {
                    return Err("the admin ring stayed full for a second".into());
                }
                std::thread::sleep(Duration::from_millis(1));
            }
            changed += 1;
        }
    }
    *users.write().expect("users lock") = Arc::new(next_users);
    tracing::info!(risk_limits_changed = changed, "reloaded configuration and users");
    Ok(next)
}

/// With etcd failover under `ack = "standby"`, `on_standby_loss = "continue"`: the primary's
/// writer of `<prefix>/standby` for `epoch`, conditional on the leader key of its `lease`.
fn standby_marker(
    config: &Config,
    lease: Option<&crate::failover::Lease>,
    epoch: u64,
) -> Option<replication::MarkStandby> {
    let (failover, r, lease) = (config.failover.as_ref()?, config.replication.as_ref()?, lease?);
    if r.ack != crate::config::Ack::Standby || r.on_standby_loss != crate::config::StandbyLoss::Continue {
        return None;
    }
    let marker = crate::failover::promotable::Marker::new(failover, lease, epoch);
    Some(Arc::new(move |promotable| marker.write(promotable)))
}

/// What replication decided before recovery: this engine's epoch (`None` without
/// `[replication]`), and, for a promoted standby, whether it acknowledges alone and the lease
/// it took.
struct Start {
    epoch: Option<replication::epoch::Epoch>,
    /// A standby promoted with `--alone` acknowledges without a standby until one catches up.
    alone: bool,
    promoted: bool,
    lease: Option<crate::failover::Lease>,
}

/// Primary or standby: decides, follows as a standby until a stop (`None`) or a promotion,
/// and returns where this engine starts as the primary.
fn take_role(
    config: &Config,
    notifier: &Notifier,
    failover_stats: &Option<Arc<crate::failover::FailoverStats>>,
) -> Result<Option<Start>, DaemonError> {
    let mut start = Start { epoch: None, alone: false, promoted: false, lease: None };
    let Some(r) = &config.replication else { return Ok(Some(start)) };
    let mut epochs = load_epochs(config)?;
    if should_follow(config, r, &mut epochs, failover_stats, &mut start.lease)? {
        match run_standby(config, notifier, epochs, failover_stats.clone())? {
            StandbyEnd::Stopped => return Ok(None),
            StandbyEnd::Promoted { next_sequence, epochs: history, alone, lease } => {
                epochs = history;
                (start.alone, start.promoted, start.lease) = (alone, true, lease);
                let epoch = epochs.begin(next_sequence).map_err(DaemonError::Start)?;
                tracing::warn!(
                    epoch = epoch.number,
                    first_sequence = next_sequence,
                    "promoted: this engine is the primary of epoch {} from sequence {next_sequence}",
                    epoch.number
                );
            }
        }
    }
    start.epoch = Some(epochs.current());
    Ok(Some(start))
}

fn load_epochs(config: &Config) -> Result<EpochHistory, DaemonError> {
    EpochHistory::load(&config.journal.dir, &config.journal.file_prefix).map_err(DaemonError::Start)
}

/// `petrel-engine rejoin`, done by the engine itself; the epoch history it leaves.
fn rejoin_now(config: &Config) -> Result<EpochHistory, DaemonError> {
    let said = replication::peer::rejoin(config).map_err(DaemonError::Start)?;
    tracing::warn!("{}", said.trim_end());
    load_epochs(config)
}

/// Whether this engine starts as a standby: as configured, or because etcd (or the peer, with
/// `rejoin = "auto"`) says another engine is the primary. With etcd failover a primary takes
/// the leader key here (`lease`); a stale engine rejoins first (`epochs` is then the new one).
fn should_follow(
    config: &Config,
    r: &crate::config::ReplicationConfig,
    epochs: &mut EpochHistory,
    failover_stats: &Option<Arc<crate::failover::FailoverStats>>,
    lease: &mut Option<crate::failover::Lease>,
) -> Result<bool, DaemonError> {
    use crate::failover::Campaign;
    let standby = r.role == Role::Standby;
    match (standby, &config.failover, failover_stats) {
        (false, Some(failover), Some(stats)) => {
            let ours = crate::failover::Leader { epoch: epochs.current().number, node: r.listen };
            match crate::failover::campaign(failover, ours, stats) {
                Ok(held) => *lease = Some(held),
                Err(Campaign::Stale(theirs)) => {
                    tracing::warn!(epoch = theirs.epoch, node = %theirs.node, "failover: a primary of a newer epoch holds the leader key; this engine rejoins as its standby");
                    *epochs = rejoin_now(config)?;
                    return Ok(true);
                }
                Err(Campaign::Follow(theirs)) => {
                    tracing::warn!(epoch = theirs.epoch, node = %theirs.node, "failover: the other engine holds the leader key; this engine follows it as its standby");
                    return Ok(true);
                }
                Err(Campaign::Failed(why)) => return Err(DaemonError::Start(why)),
            }
        }
        (true, Some(failover), _) => {
            // A standby that was a primary of an older epoch first cuts what it journaled
            // after the current leader's epoch began.
            if let Ok(Some(leader)) = crate::failover::leader_now(failover) {
                if leader.epoch > epochs.current().number {
                    match rejoin_now(config) {
                        Ok(rejoined) => *epochs = rejoined,
                        Err(why) => tracing::warn!(
                            "failover: cannot rejoin epoch {} yet ({why}); following as it is",
                            leader.epoch
                        ),
                    }
                }
            }
        }
        (false, _, _) => match replication::peer::check_at_start(r, epochs.current()) {
            Ok(()) => {}
            Err(AtStart::Stale(why)) if r.rejoin == Rejoin::Auto => {
                tracing::warn!("{why}; rejoining by itself (replication.rejoin = \"auto\")");
                *epochs = rejoin_now(config)?;
                return Ok(true);
            }
            Err(AtStart::Stale(why) | AtStart::Conflict(why)) => return Err(DaemonError::Start(why)),
        },
        (true, None, _) => {}
    }
    Ok(standby)
}

/// How a standby's life ended.
enum StandbyEnd {
    Stopped,
    /// `POST /promote`: the follower stopped and released the journal; the daemon goes on as
    /// the primary of a new epoch starting at `next_sequence`.
    Promoted {
        next_sequence: u64,
        epochs: EpochHistory,
        alone: bool,
        /// With etcd failover: the leader lease the standby took to promote itself.
        lease: Option<crate::failover::Lease>,
    },
}

/// `replication.role = "standby"`: recovers its own journal, then follows the primary
/// (journaling and applying every record it ships) until SIGTERM or a promotion. No gateway
/// listens: clients trade with the primary.
fn run_standby(
    config: &Config,
    notifier: &Notifier,
    mut epochs: EpochHistory,
    failover: Option<Arc<crate::failover::FailoverStats>>,
) -> Result<StandbyEnd, DaemonError> {
    let stats = Arc::new(ReplicationStats::default());
    let observed = Arc::new(StandbyObserved {
        config: config.clone(),
        stats: Arc::clone(&stats),
        ready: AtomicBool::new(false),
        start_unix_s: SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64()),
        promote: AtomicBool::new(false),
        promote_alone: AtomicBool::new(false),
        failover: failover.clone(),
        lease_by_hand: std::sync::Mutex::new(None),
    });
    // One admin endpoint for the standby's whole life, rebuilds included.
    let admin: AdminServer = admin::serve(config.admin.listen, observed.clone())
        .map_err(|e| DaemonError::Start(format!("admin endpoint: {e}")))?;
    let ended = loop {
        match follow_once(config, notifier, epochs, &observed, &admin, failover.as_ref()) {
            Ok(Once::Rebuild { staging, epochs: kept }) => {
                let _ = notifier.status("rebuilding from the primary's backup");
                let _ = notifier.watchdog();
                // The unit is active: each sign of progress feeds its watchdog.
                let mut last = Instant::now();
                let mut progress = |done: u64, total: u64| {
                    if last.elapsed() > Duration::from_millis(500) {
                        last = Instant::now();
                        let _ = notifier
                            .status(&format!("rebuilding from the primary's backup: {done} of {total}"));
                        let _ = notifier.watchdog();
                    }
                };
                match replication::rebuild::rebuild_from(config, &staging, &kept, &mut progress) {
                    Ok(said) => tracing::warn!("standby: {said}; following the primary again"),
                    Err(e) => break Err(DaemonError::Start(e)),
                }
                epochs = kept;
            }
            Ok(Once::End(end)) => break Ok(end),
            Err(e) => break Err(e),
        }
    };
    admin.shutdown();
    ended
}

/// How one spell of following ended: for good, or to rebuild from the primary's backup.
enum Once {
    End(StandbyEnd),
    Rebuild { staging: std::path::PathBuf, epochs: EpochHistory },
}

/// Recovers this standby's journal and streams, then follows until a stop, a promotion, or a
/// backup of the primary to rebuild from.
fn follow_once(
    config: &Config,
    notifier: &Notifier,
    epochs: EpochHistory,
    observed: &Arc<StandbyObserved>,
    admin: &AdminServer,
    failover: Option<&Arc<crate::failover::FailoverStats>>,
) -> Result<Once, DaemonError> {
    let stats = &observed.stats;
    let (recovered, regeneration, _) = recover(config, notifier)?;
    let mirror = crate::gateway::Mirror::open(config, regeneration)
        .map_err(|e| DaemonError::Start(format!("the session output journals: {e}")))?;
    let replication = config.replication.clone().expect("a standby has [replication]");
    let mut follower = Follower::new(
        recovered.engine,
        recovered.writer,
        epochs,
        mirror,
        replication,
        Arc::clone(stats),
        replication::standby::Files { snapshots: config.snapshots.clone(), journal: config.journal.clone() },
    );
    let follow = Arc::new(AtomicBool::new(false));
    let thread = {
        let follow = Arc::clone(&follow);
        std::thread::Builder::new()
            .name("petrel-follow".into())
            .spawn(move || {
                let result = follower.run(&follow);
                (follower, result)
            })
            .map_err(|e| DaemonError::Start(format!("cannot start the follower thread: {e}")))?
    };
    // Clients that reach the standby are told to try the other host (until a promotion).
    let door = match crate::gateway::standby_door::StandbyDoor::open(config.gateway.listen) {
        Ok(door) => {
            tracing::info!(addr = %door.addr, "standby: answering logins at the gateway's address with Login Rejected (session not available: try the primary)");
            Some(door)
        }
        Err(e) => {
            tracing::warn!(addr = %config.gateway.listen, "standby: cannot listen at the gateway's address ({e}): clients reaching this host get no answer");
            None
        }
    };
    let watcher = match (&config.failover, failover) {
        (Some(f), Some(stats)) => {
            Some(start_watcher(config, f, observed, stats).map_err(DaemonError::Start)?)
        }
        _ => None,
    };
    observed.ready.store(true, Ordering::Relaxed);
    tracing::info!(admin = %admin.local_addr(), "ready: standby following the primary");
    let _ = notifier.ready(&observed.status_line());
    let ping_every = notifier.watchdog_interval();
    let (mut last_ping, mut last_status) = (Instant::now(), Instant::now());
    let promote = loop {
        if STOP.load(Ordering::SeqCst) || thread.is_finished() {
            break false;
        }
        if observed.promote.load(Ordering::Acquire) {
            break true;
        }
        if ping_every.is_some_and(|every| last_ping.elapsed() >= every) {
            last_ping = Instant::now();
            let _ = notifier.watchdog();
        }
        if last_status.elapsed() >= Duration::from_secs(2) {
            last_status = Instant::now();
            let _ = notifier.status(&observed.status_line());
        }
        std::thread::sleep(CONTROL_TICK);
    };
    let _ = notifier.status(if promote { "promoting" } else { "stopping the standby" });
    if promote {
        // The unit stays active through the promotion: its watchdog keeps counting.
        let _ = notifier.watchdog();
    }
    observed.ready.store(false, Ordering::Relaxed);
    follow.store(true, Ordering::SeqCst);
    let (follower, result) =
        thread.join().map_err(|_| DaemonError::Runtime("the follower thread panicked".into()))?;
    drop(door); // the gateway's address is the promoted gateway's from here on
    tracing::info!(
        last_sequence = follower.engine.last_sequence(),
        durable_sequence = follower.writer.durable_sequence(),
        state_hash = %follower.engine.state_hash(),
        "standby stopped following"
    );
    if let replication::standby::Followed::Rebuild(staging) = result.map_err(DaemonError::Runtime)? {
        // Every lock and file of this spell goes with the follower.
        return Ok(Once::Rebuild { staging, epochs: follower.epochs });
    }
    if !promote {
        return Ok(Once::End(StandbyEnd::Stopped));
    }
    let next_sequence = follower.writer.next_sequence();
    let epochs = follower.epochs;
    // The journal's lock goes with the writer: the primary's recovery takes it again.
    drop(follower.writer);
    let alone = observed.promote_alone.load(Ordering::Acquire);
    let lease = watcher
        .and_then(crate::failover::Watcher::finish)
        .or_else(|| observed.lease_by_hand.lock().unwrap_or_else(|p| p.into_inner()).take());
    Ok(Once::End(StandbyEnd::Promoted { next_sequence, epochs, alone, lease }))
}

/// The standby's watch over etcd's leader key: it promotes this engine (alone: the old primary
/// is gone) once the key is gone and this standby holds every acknowledged order.
fn start_watcher(
    config: &Config,
    failover: &crate::config::FailoverConfig,
    observed: &Arc<StandbyObserved>,
    stats: &Arc<crate::failover::FailoverStats>,
) -> Result<crate::failover::Watcher, String> {
    let r = config.replication.as_ref().expect("a standby has [replication]");
    let (for_epoch, for_check, for_promote) =
        (Arc::clone(observed), Arc::clone(observed), Arc::clone(observed));
    // Under `continue`, a disconnect alone says nothing: the primary says in etcd whether it
    // went on without this standby.
    let continues =
        r.ack == crate::config::Ack::Standby && r.on_standby_loss == crate::config::StandbyLoss::Continue;
    let for_fit = Arc::clone(observed);
    let fit = move || {
        for_fit.stats.primary_said_promotable.load(Ordering::Relaxed)
            && !for_fit.stats.diverged.load(Ordering::Relaxed)
    };
    let standby = crate::failover::Standby {
        epoch: Box::new(move || for_epoch.stats.epoch.load(Ordering::Relaxed)),
        promotable: Box::new(move || {
            for_check.stats.standby_promotable.load(Ordering::Relaxed)
                && !for_check.stats.diverged.load(Ordering::Relaxed)
        }),
        fit_if_etcd_agrees: continues.then(|| Box::new(fit) as Box<dyn Fn() -> bool + Send>),
        promote: Box::new(move || {
            for_promote.promote_alone.store(true, Ordering::Release);
            for_promote.promote.store(true, Ordering::Release);
        }),
        node: r.listen,
    };
    crate::failover::Watcher::start(failover, standby, Arc::clone(stats))
}
