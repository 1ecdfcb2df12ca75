//! Automatic failover (`[failover] mode = "etcd"`): etcd decides which engine of a pair is the
//! primary, so that neither has to tell a dead peer from a broken link (docs/OPERATIONS.md,
//! "Automatic failover"). No consensus is written here: etcd's lease and atomic conditional
//! transactions are the whole protocol.
//!
//! - The primary holds `<prefix>/leader` = `{"epoch":N,"node":"ADDR"}`, bound to a lease of
//!   `lease_ttl_s` that its `petrel-lease` thread renews every quarter of the TTL. Each renewal
//!   sent at `t` proves the lease alive until `t + TTL` at the earliest (etcd counts from when
//!   it received it); the thread publishes `t + TTL - TTL/4` and the gateway releases nothing
//!   after that instant (`port::ReleaseGate::lease_valid`): a primary that cannot renew, for
//!   whatever reason (etcd unreachable, a partition, a pause), is fenced before its lease can
//!   expire, and so before a standby can take the key.
//! - Under `on_standby_loss = "continue"` the primary also writes `<prefix>/standby` =
//!   `{"epoch":N,"promotable":BOOL}` (bound to no lease, `promotable.rs`): `false` before it
//!   acknowledges anything without its standby (it stays halted while it cannot write it), `true`
//!   once the standby has caught up again; each write only while its leader key is still its own.
//! - The standby's `petrel-failover` thread reads the leader key every 100 ms. When it is gone
//!   (the lease expired) and this standby is promotable, it takes the key with its own lease
//!   and the next epoch, in one transaction that fails if anyone else created it first, and
//!   promotes itself. Promotable: under `ack = "standby"` with `halt`, by construction (what
//!   its primary last said); with `continue`, when its primary last said so, its state did not
//!   diverge, and `<prefix>/standby` is absent, of an older epoch than the one it follows, or
//!   `true` for that epoch; under `ack = "local"`, never without an operator.
//! - A key that does not parse, or names an epoch older than this engine's, is refused (logged,
//!   counted) and never followed.

pub mod etcd;
pub mod promotable;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use etcd::{Etcd, EtcdError};

use crate::config::FailoverConfig;
use crate::port::ReleaseGate;

/// How long one etcd request may take.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_millis(500);
/// How often a standby reads the leader key.
const WATCH_EVERY: Duration = Duration::from_millis(100);

/// Nanoseconds of the monotonic clock (`Instant`: CLOCK_MONOTONIC on Linux) since the first
/// call in this process: it runs on while the process is stopped, which a lease deadline needs.
pub fn monotonic_ns() -> u64 {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    // Never 0, so that 0 can mean "no lease".
    ORIGIN.get_or_init(std::time::Instant::now).elapsed().as_nanos() as u64 + 1
}

/// The leader key's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Leader {
    pub epoch: u64,
    /// The primary's replication address.
    pub node: SocketAddr,
}

impl Leader {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::json!({ "epoch": self.epoch, "node": self.node.to_string() }).to_string().into_bytes()
    }

    /// Strictly the shape `encode` writes; anything else is an error naming what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<Leader, String> {
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| format!("not JSON ({e}): {:?}", String::from_utf8_lossy(bytes)))?;
        let epoch = value["epoch"].as_u64().filter(|e| *e > 0).ok_or("no epoch (a number above 0)")?;
        let node = value["node"].as_str().and_then(|n| n.parse().ok()).ok_or("no node (ADDRESS:PORT)")?;
        Ok(Leader { epoch, node })
    }
}

/// The keys of one cluster.
pub fn leader_key(config: &FailoverConfig) -> String {
    format!("{}/leader", config.key_prefix)
}

/// What the admin endpoint shows of failover.
#[derive(Debug, Default)]
pub struct FailoverStats {
    /// This engine holds the leader key.
    pub leader: AtomicBool,
    /// The lease is certainly valid until this instant (`monotonic_ns`); 0: none held.
    pub lease_until_ns: AtomicU64,
    /// The lease was lost for good (etcd expired it, or the key is no longer ours).
    pub lost: AtomicBool,
    pub promotions_total: AtomicU64,
    /// Milliseconds from seeing the leader key gone to holding it (the last promotion).
    pub last_takeover_ms: AtomicU64,
    pub refused_total: AtomicU64,
    pub etcd_errors_total: AtomicU64,
    /// Primary, `on_standby_loss = "continue"`: it last wrote `<prefix>/standby` with
    /// `promotable: false` (its standby may lack acknowledged orders).
    pub standby_marked_unpromotable: AtomicBool,
}

impl FailoverStats {
    /// Holding the key, but not certain the lease is valid now: nothing is acknowledged.
    pub fn fenced(&self) -> bool {
        self.leader.load(Ordering::Relaxed) && monotonic_ns() >= self.lease_until_ns.load(Ordering::Acquire)
    }

    /// Seconds the lease is certainly valid for (0 when fenced or not leader).
    pub fn lease_remaining_s(&self) -> f64 {
        let until = self.lease_until_ns.load(Ordering::Acquire);
        until.saturating_sub(monotonic_ns()) as f64 / 1e9
    }
}

impl FailoverStats {
    pub fn render_metrics(&self, e: &mut crate::metrics::Exposition<'_>) {
        use crate::metrics as m;
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        e.gauge(&m::FAILOVER_LEADER, flag(self.leader.load(Ordering::Relaxed)));
        e.gauge(&m::FAILOVER_FENCED, flag(self.fenced()));
        e.gauge(&m::FAILOVER_LEASE_REMAINING_SECONDS, self.lease_remaining_s());
        e.counter(&m::FAILOVER_PROMOTIONS_TOTAL, self.promotions_total.load(Ordering::Relaxed));
        e.gauge(&m::FAILOVER_TAKEOVER_SECONDS, self.last_takeover_ms.load(Ordering::Relaxed) as f64 / 1e3);
        e.counter(&m::FAILOVER_REFUSED_TOTAL, self.refused_total.load(Ordering::Relaxed));
        e.counter(&m::FAILOVER_ETCD_ERRORS_TOTAL, self.etcd_errors_total.load(Ordering::Relaxed));
        e.gauge(
            &m::FAILOVER_STANDBY_PROMOTABLE,
            flag(!self.standby_marked_unpromotable.load(Ordering::Relaxed)),
        );
    }

    /// The `failover` object of `/status`.
    pub fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "leader": self.leader.load(Ordering::Relaxed),
            "fenced": self.fenced(),
            "lease_remaining_s": self.lease_remaining_s(),
            "promotions_total": self.promotions_total.load(Ordering::Relaxed),
            "last_takeover_ms": self.last_takeover_ms.load(Ordering::Relaxed),
            "refused_total": self.refused_total.load(Ordering::Relaxed),
            "standby_promotable": !self.standby_marked_unpromotable.load(Ordering::Relaxed),
        })
    }
}

/// The release gate a lease fences, once attached.
type GateHandle = Arc<Mutex<Option<Arc<ReleaseGate>>>>;

/// Publishes until when releasing is safe (0: not at all).
fn publish(stats: &FailoverStats, gate: &GateHandle, until_ns: u64) {
    stats.lease_until_ns.store(until_ns, Ordering::Release);
    if let Some(gate) = &*gate.lock().unwrap_or_else(|p| p.into_inner()) {
        gate.lease_until_ns.store(until_ns, Ordering::Release);
    }
}

/// The lease is lost for good (expired, or the key is no longer ours): fenced from now on,
/// and the daemon stops.
fn lose(stats: &FailoverStats, gate: &GateHandle) {
    stats.lost.store(true, Ordering::Release);
    publish(stats, gate, 0);
}

/// A held leader lease, renewed by the `petrel-lease` thread until dropped.
pub struct Lease {
    pub id: i64,
    endpoints: Vec<String>,
    /// The leader key and the value this engine wrote in it.
    key: (String, Vec<u8>),
    stats: Arc<FailoverStats>,
    stop: Arc<AtomicBool>,
    gate: GateHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Lease {
    /// Starts renewing lease `id`, just granted (or renewed) at `granted_at_ns`.
    fn keep(
        config: &FailoverConfig,
        id: i64,
        granted_at_ns: u64,
        key: (String, Vec<u8>),
        stats: Arc<FailoverStats>,
    ) -> Result<Lease, String> {
        let ttl_ns = config.lease_ttl_s * 1_000_000_000;
        stats.lease_until_ns.store(granted_at_ns + ttl_ns - ttl_ns / 4, Ordering::Release);
        stats.leader.store(true, Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let gate: GateHandle = Arc::default();
        let keeper = Keeper {
            etcd: Etcd::new(&config.endpoints, REQUEST_TIMEOUT),
            id,
            ttl_ns,
            key: key.clone(),
            stats: Arc::clone(&stats),
            stop: Arc::clone(&stop),
            gate: Arc::clone(&gate),
        };
        let thread = std::thread::Builder::new()
            .name("petrel-lease".into())
            .spawn(move || keeper.run())
            .map_err(|e| format!("cannot start the lease thread: {e}"))?;
        Ok(Lease { id, endpoints: config.endpoints.clone(), key, stats, stop, gate, thread: Some(thread) })
    }

    /// From now on the gateway releases only while the lease is certainly valid.
    pub fn attach(&self, gate: Arc<ReleaseGate>, stats: &FailoverStats) {
        gate.lease_until_ns.store(stats.lease_until_ns.load(Ordering::Acquire), Ordering::Release);
        *self.gate.lock().unwrap_or_else(|p| p.into_inner()) = Some(gate);
    }
}

impl Lease {
    /// Stops renewing and ends the lease now: the leader key goes with it, and a standby takes
    /// it at its next read instead of after the TTL.
    pub fn revoke(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        if let Err(e) = self.etcd_for_revoke().revoke(self.id) {
            tracing::warn!("failover: cannot revoke the leader lease ({e}); it expires by itself");
        }
    }

    fn etcd_for_revoke(&self) -> Etcd {
        Etcd::new(&self.endpoints, REQUEST_TIMEOUT)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Keeper {
    etcd: Etcd,
    id: i64,
    ttl_ns: u64,
    /// The leader key and the value this engine wrote: still ours at every renewal.
    key: (String, Vec<u8>),
    stats: Arc<FailoverStats>,
    stop: Arc<AtomicBool>,
    gate: GateHandle,
}

impl Keeper {
    fn run(mut self) {
        let every = Duration::from_nanos(self.ttl_ns / 4);
        while !self.stop.load(Ordering::Acquire) {
            std::thread::sleep(every);
            let sent_ns = monotonic_ns();
            match self.renew() {
                Ok(true) => publish(&self.stats, &self.gate, sent_ns + self.ttl_ns - self.ttl_ns / 4),
                Ok(false) => return lose(&self.stats, &self.gate),
                Err(e) => {
                    self.stats.etcd_errors_total.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("failover: cannot renew the leader lease: {e}");
                }
            }
        }
    }

    /// Renews the lease and checks the key is still the one this engine wrote.
    fn renew(&mut self) -> Result<bool, EtcdError> {
        if self.etcd.keepalive(self.id)? == 0 {
            tracing::error!(
                lease = self.id,
                "failover: etcd says the leader lease expired: fenced; another engine may be the primary now"
            );
            return Ok(false);
        }
        match self.etcd.get(&self.key.0)? {
            Some(kv) if kv.lease == self.id && kv.value == self.key.1 => Ok(true),
            other => {
                tracing::error!(key = %self.key.0, found = ?other.map(|kv| String::from_utf8_lossy(&kv.value).into_owned()), "failover: the leader key is no longer this engine's: fenced");
                Ok(false)
            }
        }
    }
}

/// Why a campaign did not make this engine the leader.
pub enum Campaign {
    /// A primary of a newer epoch holds the key: this engine is stale (it rejoins).
    Stale(Leader),
    /// The other engine of the pair, of this engine's epoch, holds the key (both started as
    /// primaries; etcd chose): this engine follows it.
    Follow(Leader),
    Failed(String),
}

/// A primary at start: takes the leader key for `ours` (its epoch and address). A key of this
/// engine's own last run waits for its lease to expire.
pub fn campaign(
    config: &FailoverConfig,
    ours: Leader,
    stats: &Arc<FailoverStats>,
) -> Result<Lease, Campaign> {
    let mut etcd = Etcd::new(&config.endpoints, REQUEST_TIMEOUT);
    let key = leader_key(config);
    let failed = |e: EtcdError| Campaign::Failed(format!("failover: {e}"));
    let give_up = monotonic_ns() + 3 * config.lease_ttl_s * 1_000_000_000;
    loop {
        let granted_at = monotonic_ns();
        let id = etcd.grant(config.lease_ttl_s).map_err(failed)?;
        let existing = match etcd.create(&key, &ours.encode(), id).map_err(failed)? {
            Ok(()) => {
                return Lease::keep(config, id, granted_at, (key, ours.encode()), Arc::clone(stats))
                    .map_err(Campaign::Failed)
            }
            Err(existing) => existing,
        };
        let _ = etcd.revoke(id);
        let Some(existing) = existing else { continue };
        match Leader::parse(&existing.value) {
            Ok(theirs) if theirs.epoch > ours.epoch => return Err(Campaign::Stale(theirs)),
            Ok(theirs) if theirs.node == ours.node && monotonic_ns() < give_up => {
                tracing::info!(epoch = theirs.epoch, "failover: the leader key is this engine's from its last run; waiting for its lease to expire");
            }
            Ok(theirs) if theirs.epoch == ours.epoch && theirs.node != ours.node => {
                return Err(Campaign::Follow(theirs))
            }
            Ok(theirs) => {
                stats.refused_total.fetch_add(1, Ordering::Relaxed);
                let why = if theirs.node == ours.node {
                    "its lease did not expire"
                } else {
                    "an epoch older than this engine's"
                };
                return Err(Campaign::Failed(format!(
                    "failover: {key} names {} of epoch {} as the primary ({why}; this engine is of epoch {}): refused; remove it (etcdctl del {key}) if no engine holds it",
                    theirs.node, theirs.epoch, ours.epoch
                )));
            }
            Err(why) => {
                stats.refused_total.fetch_add(1, Ordering::Relaxed);
                return Err(Campaign::Failed(format!("failover: {key} holds a value this engine refuses ({why}); remove it (etcdctl del {key})")));
            }
        }
        std::thread::sleep(WATCH_EVERY * 5);
    }
}

/// The leader etcd names now, if any (a key that does not parse is an error naming it).
pub fn leader_now(config: &FailoverConfig) -> Result<Option<Leader>, String> {
    let key = leader_key(config);
    let kv = Etcd::new(&config.endpoints, REQUEST_TIMEOUT).get(&key).map_err(|e| format!("failover: {e}"))?;
    kv.map(|kv| Leader::parse(&kv.value).map_err(|why| format!("failover: {key}: {why}"))).transpose()
}

/// A standby's watch over the leader key: takes it, and asks for promotion, once it is gone.
pub struct Watcher {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Option<Lease>>>,
}

/// What the watcher needs of the standby.
pub struct Standby {
    /// This engine's epoch now (it follows its primary's).
    pub epoch: Box<dyn Fn() -> u64 + Send>,
    /// This standby holds everything acknowledged and its state matches (may be promoted).
    pub promotable: Box<dyn Fn() -> bool + Send>,
    /// Under `on_standby_loss = "continue"`, in place of `promotable`: this standby's state
    /// matches and its primary last said it holds everything acknowledged; whether its
    /// primary acknowledged alone since, `<prefix>/standby` says (`promotable::may_take`).
    pub fit_if_etcd_agrees: Option<Box<dyn Fn() -> bool + Send>>,
    /// Promotes this engine (acknowledging alone until a standby follows it).
    pub promote: Box<dyn Fn() + Send>,
    pub node: SocketAddr,
}

impl Watcher {
    pub fn start(
        config: &FailoverConfig,
        standby: Standby,
        stats: Arc<FailoverStats>,
    ) -> Result<Watcher, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let (config, halt) = (config.clone(), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("petrel-failover".into())
            .spawn(move || watch(&config, &standby, &stats, &halt))
            .map_err(|e| format!("cannot start the failover thread: {e}"))?;
        Ok(Watcher { stop, thread: Some(thread) })
    }

    /// Stops watching; the lease taken for a promotion, if one was.
    pub fn finish(mut self) -> Option<Lease> {
        self.stop.store(true, Ordering::Release);
        self.thread.take().and_then(|t| t.join().ok()).flatten()
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn watch(
    config: &FailoverConfig,
    standby: &Standby,
    stats: &Arc<FailoverStats>,
    stop: &AtomicBool,
) -> Option<Lease> {
    let mut etcd = Etcd::new(&config.endpoints, REQUEST_TIMEOUT);
    let key = leader_key(config);
    let mut complaint = String::new();
    let mut gone_since: Option<u64> = None;
    while !stop.load(Ordering::Acquire) {
        std::thread::sleep(WATCH_EVERY);
        let said = match etcd.get(&key) {
            Err(e) => {
                stats.etcd_errors_total.fetch_add(1, Ordering::Relaxed);
                format!("cannot read {key}: {e}; nobody is promoted while etcd is out of reach")
            }
            Ok(Some(kv)) => {
                gone_since = None;
                let ours = (standby.epoch)();
                match Leader::parse(&kv.value) {
                    Ok(leader) if leader.epoch >= ours => String::new(),
                    Ok(leader) => {
                        stats.refused_total.fetch_add(1, Ordering::Relaxed);
                        format!("refused {key}: it names epoch {}, older than this engine's {ours}; not following it", leader.epoch)
                    }
                    Err(why) => {
                        stats.refused_total.fetch_add(1, Ordering::Relaxed);
                        format!("refused {key}: {why}")
                    }
                }
            }
            Ok(None) => {
                let since = *gone_since.get_or_insert_with(monotonic_ns);
                match may_promote(config, &mut etcd, standby, stats) {
                    Err(why) => why,
                    Ok(()) => match take(config, &mut etcd, &key, standby, stats, since) {
                        Some(lease) => {
                            (standby.promote)();
                            return Some(lease);
                        }
                        None => String::new(),
                    },
                }
            }
        };
        if said != complaint {
            if !said.is_empty() {
                tracing::warn!("failover: {said}");
            }
            complaint = said;
        }
    }
    None
}

/// Whether this standby may take the free leader key; `Err`: why not, for the log.
fn may_promote(
    config: &FailoverConfig,
    etcd: &mut Etcd,
    standby: &Standby,
    stats: &FailoverStats,
) -> Result<(), String> {
    let not_promotable = "the leader key is gone, but this standby is not promotable (it may lack acknowledged orders, or its state diverged): not taking it";
    match &standby.fit_if_etcd_agrees {
        None if (standby.promotable)() => Ok(()),
        Some(fit) if fit() => promotable::may_take(config, etcd, (standby.epoch)(), stats),
        _ => Err(not_promotable.to_owned()),
    }
}

/// A promotion asked for by hand (`petrel-engine promote`, `POST /promote`) under etcd
/// failover: this standby takes the leader key for epoch `epoch_now + 1` before it promotes, as
/// the watcher does, or is refused. A primary serving without the key would be neither fenced
/// nor known to the other engine, which at its next start would find the key free and serve
/// too. Refused while the key is held (a primary may still serve: stop it, or wait for its
/// lease to expire) or etcd is out of reach; `--force` overrides neither.
pub fn take_by_hand(
    config: &FailoverConfig,
    epoch_now: u64,
    node: SocketAddr,
    stats: &Arc<FailoverStats>,
) -> Result<Lease, String> {
    let mut etcd = Etcd::new(&config.endpoints, REQUEST_TIMEOUT);
    let key = leader_key(config);
    let unreachable = |e: EtcdError| {
        stats.etcd_errors_total.fetch_add(1, Ordering::Relaxed);
        format!("refused: cannot take {key} in etcd ({e}): under [failover] mode = \"etcd\" a primary needs the leader key; promote once etcd answers\n")
    };
    if let Some(kv) = etcd.get(&key).map_err(unreachable)? {
        return Err(format!(
            "refused: {key} is held ({}): its primary may still serve; stop it, or wait for its lease ({} s) to expire, then promote again\n",
            String::from_utf8_lossy(&kv.value),
            config.lease_ttl_s
        ));
    }
    let ours = Leader { epoch: epoch_now + 1, node };
    let granted_at = monotonic_ns();
    let id = etcd.grant(config.lease_ttl_s).map_err(unreachable)?;
    match etcd.create(&key, &ours.encode(), id) {
        Ok(Ok(())) => {
            stats.promotions_total.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                epoch = ours.epoch,
                "failover: took {key} for epoch {} by hand: promoting",
                ours.epoch
            );
            Lease::keep(config, id, granted_at, (key, ours.encode()), Arc::clone(stats))
        }
        Ok(Err(_)) => {
            let _ = etcd.revoke(id);
            Err(format!("refused: another engine took {key} first\n"))
        }
        Err(e) => {
            let _ = etcd.revoke(id);
            Err(unreachable(e))
        }
    }
}

/// Takes the leader key for the next epoch; `None` when another engine was first, or etcd
/// failed (tried again at the next read).
fn take(
    config: &FailoverConfig,
    etcd: &mut Etcd,
    key: &str,
    standby: &Standby,
    stats: &Arc<FailoverStats>,
    gone_since_ns: u64,
) -> Option<Lease> {
    let ours = Leader { epoch: (standby.epoch)() + 1, node: standby.node };
    let granted_at = monotonic_ns();
    let id = etcd.grant(config.lease_ttl_s).ok()?;
    match etcd.create(key, &ours.encode(), id) {
        Ok(Ok(())) => {
            let took_ms = (monotonic_ns() - gone_since_ns) / 1_000_000;
            stats.last_takeover_ms.store(took_ms, Ordering::Relaxed);
            stats.promotions_total.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                epoch = ours.epoch,
                took_ms,
                "failover: the leader key was gone; took it for epoch {}: promoting",
                ours.epoch
            );
            Lease::keep(config, id, granted_at, (key.to_owned(), ours.encode()), Arc::clone(stats)).ok()
        }
        _ => {
            let _ = etcd.revoke(id);
            None
        }
    }
}
