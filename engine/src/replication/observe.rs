//! What replication adds to `/metrics` and `/status`, on either role, and the standby's own
//! admin handler (a standby has no gateway or pipeline to describe).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use super::{Refusal, ReplicationStats};
use crate::admin::{AdminHandler, PromoteOptions};
use crate::config::{Config, ReplicationConfig, Role};
use crate::metrics::{self as m, Exposition};

/// What one engine says about its replication: its role now (a promoted standby is a
/// primary), its own journal's durable mark, and whether its standby could be promoted.
pub struct View<'a> {
    pub role: Role,
    pub config: &'a ReplicationConfig,
    pub stats: &'a ReplicationStats,
    pub local_durable: u64,
    pub promotable: bool,
}

fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

fn flag(a: &AtomicBool) -> f64 {
    if a.load(Ordering::Relaxed) {
        1.0
    } else {
        0.0
    }
}

impl View<'_> {
    /// Records the standby lacks: on a primary, its durable mark minus the standby's
    /// acknowledgement; on a standby, the primary's last announced mark minus its own.
    fn lag(&self) -> u64 {
        match self.role {
            Role::Primary => self.stats.lag(self.local_durable),
            Role::Standby => load(&self.stats.primary_durable).saturating_sub(self.local_durable),
        }
    }

    pub fn render_metrics(&self, e: &mut Exposition<'_>) {
        let stats = self.stats;
        e.gauges(&m::REPLICATION_ROLE, [(self.role.as_str(), 1.0)]);
        e.gauge(&m::REPLICATION_CONNECTED, flag(&stats.connected));
        e.gauge(&m::REPLICATION_STANDBY_DURABLE_SEQUENCE, load(&stats.standby_durable) as f64);
        e.gauge(&m::REPLICATION_LAG_RECORDS, self.lag() as f64);
        e.counter(&m::REPLICATION_RECORDS_TOTAL, load(&stats.records_total));
        e.counters(
            &m::REPLICATION_REFUSED_TOTAL,
            Refusal::ALL.iter().map(|r| (r.as_str(), stats.refused(*r))),
        );
        e.counter(&m::REPLICATION_DISCONNECTS_TOTAL, load(&stats.disconnects_total));
        e.gauge(&m::REPLICATION_HALTED, flag(&stats.halted));
        e.gauge(&m::REPLICATION_STANDBY_PROMOTABLE, if self.promotable { 1.0 } else { 0.0 });
        e.counter(&m::REPLICATION_HASH_CHECKS_TOTAL, load(&stats.hash_checks_total));
        e.counter(&m::REPLICATION_DIVERGENCES_TOTAL, load(&stats.divergences_total));
        e.gauge(&m::REPLICATION_EPOCH, load(&stats.epoch) as f64);
        e.counter(&m::REPLICATION_REBUILDS_TOTAL, load(&stats.rebuilds_total));
        if self.role == Role::Standby {
            e.gauge(&m::REPLICATION_LAG_SECONDS, self.lag_seconds());
        }
    }

    /// Standby: now minus the sequenced time of its last applied record while it lacks records
    /// the primary announced; 0 when it has them all. (Both clocks are wall clocks, on two
    /// hosts: NTP-close, never negative here.)
    fn lag_seconds(&self) -> f64 {
        if self.lag() == 0 {
            return 0.0;
        }
        let now_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        now_ns.saturating_sub(load(&self.stats.applied_timestamp_ns)) as f64 / 1e9
    }

    /// The `replication` object of `/status`.
    pub fn status(&self) -> serde_json::Value {
        let stats = self.stats;
        serde_json::json!({
            "role": self.role.as_str(),
            "epoch": load(&stats.epoch),
            "cluster_id": self.config.cluster_id,
            "listen": self.config.listen.to_string(),
            "peer": self.config.peer.to_string(),
            "connected": stats.connected.load(Ordering::Relaxed),
            "standby_durable_sequence": load(&stats.standby_durable),
            "primary_durable_sequence": match self.role {
                Role::Primary => self.local_durable,
                Role::Standby => load(&stats.primary_durable),
            },
                        "lag_records": self.lag(),
            "lag_seconds": if self.role == Role::Standby { Some(self.lag_seconds()) } else { None },
            "halted": stats.halted.load(Ordering::Relaxed),
            "standby_promotable": self.promotable,
                                    "stale": stats.stale.load(Ordering::Relaxed),
            "hash_checks_total": load(&stats.hash_checks_total),
            "diverged": stats.diverged.load(Ordering::Relaxed),
                        "records_total": load(&stats.records_total),
            "rebuilds_total": load(&stats.rebuilds_total),
        })
    }
}

/// The standby's admin endpoint: ready while following, its journal and the replication
/// state; `POST /promote` asks the daemon to promote it.
pub struct StandbyObserved {
    pub config: Config,
    pub stats: Arc<ReplicationStats>,
    pub ready: AtomicBool,
    pub start_unix_s: f64,
    /// Set by `POST /promote` once the checks pass; the daemon's loop acts on it.
    pub promote: AtomicBool,
    /// The promotion asked the new primary to acknowledge alone until a standby catches up.
    pub promote_alone: AtomicBool,
    /// With `[failover] mode = "etcd"`: the standby's watch over the leader key.
    pub failover: Option<Arc<crate::failover::FailoverStats>>,
    /// With etcd failover, the leader lease a promotion by hand took (`POST /promote`).
    pub lease_by_hand: std::sync::Mutex<Option<crate::failover::Lease>>,
}

impl StandbyObserved {
    fn view(&self) -> View<'_> {
        View {
            role: Role::Standby,
            config: self.config.replication.as_ref().expect("a standby has [replication]"),
            stats: &self.stats,
            local_durable: load(&self.stats.standby_durable),
            promotable: self.stats.standby_promotable.load(Ordering::Relaxed)
                && !self.stats.diverged.load(Ordering::Relaxed),
        }
    }

    pub fn status_line(&self) -> String {
        let view = self.view();
        format!(
            "standby of {} (epoch {}): {}, durable sequence {}, lag {} records{}",
            view.config.peer,
            load(&self.stats.epoch),
            if self.stats.connected.load(Ordering::Relaxed) { "following" } else { "not connected" },
            view.local_durable,
            view.lag(),
            if self.stats.diverged.load(Ordering::Relaxed) {
                ", DIVERGED: not promotable"
            } else if view.promotable {
                ""
            } else {
                ", not promotable"
            }
        )
    }
}

impl AdminHandler for StandbyObserved {
    fn metrics(&self, out: &mut String) {
        let mut e = Exposition::new(out);
        e.gauges(&m::BUILD_INFO, [(env!("CARGO_PKG_VERSION"), 1.0)]);
        e.gauge(&m::START_TIME_SECONDS, self.start_unix_s);
        e.gauge(&m::READY, if self.ready() { 1.0 } else { 0.0 });
        e.gauge(&m::LAST_SEQUENCE, load(&self.stats.applied) as f64);
        e.gauge(&m::DURABLE_SEQUENCE, load(&self.stats.standby_durable) as f64);
        self.view().render_metrics(&mut e);
        if let Some(failover) = &self.failover {
            failover.render_metrics(&mut e);
        }
    }

    fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    fn status_json(&self) -> String {
        let view = self.view();
        serde_json::json!({
            "ready": self.ready(),
            "version": env!("CARGO_PKG_VERSION"),
            "role": "standby",
            "last_sequence": load(&self.stats.applied),
            "durable_sequence": view.local_durable,
            "journal_dir": self.config.journal.dir.display().to_string(),
                        "replication": view.status(),
            "failover": self.failover.as_ref().map(|f| f.status()),
        })
        .to_string()
    }

    fn latency_json(&self) -> String {
        "{}".to_owned()
    }

    fn promote(&self, options: PromoteOptions) -> Result<String, String> {
        let durable = load(&self.stats.standby_durable);
        if self.stats.diverged.load(Ordering::Relaxed) {
            return Err(format!(
                "refused: this standby's state diverged from its primary's ({} state hash differences, see the \
                 log): promoting it would serve a different book; rebuild it from the primary\n",
                load(&self.stats.divergences_total)
            ));
        }
        let known = self.stats.standby_promotable.load(Ordering::Relaxed);
        if !known && !options.force {
            return Err(format!(
                "refused: this standby may lack orders its primary acknowledged (durable sequence {durable}, the \
                 primary's last announced {}; {}): promoting it could lose them. If the primary is gone for good \
                 and that loss is accepted, promote with --force\n",
                load(&self.stats.primary_durable),
                if self.stats.connected.load(Ordering::Relaxed) {
                    "its primary reports it behind"
                } else {
                    "cut off from its primary, whose policy lets it acknowledge alone, it cannot tell"
                }
            ));
        }
        if self.promote.load(Ordering::Acquire) {
            return Ok("already promoting\n".to_owned());
        }
        // Under etcd failover the new primary needs the leader key, taken here or refused.
        let took = match (&self.config.failover, &self.failover) {
            (Some(failover), Some(stats)) => {
                let r = self.config.replication.as_ref().expect("a standby has [replication]");
                let epoch_now = load(&self.stats.epoch);
                let lease = crate::failover::take_by_hand(failover, epoch_now, r.listen, stats)?;
                *self.lease_by_hand.lock().unwrap_or_else(|p| p.into_inner()) = Some(lease);
                format!("; took the leader key for epoch {}", epoch_now + 1)
            }
            _ => String::new(),
        };
        self.promote_alone.store(options.alone, Ordering::Release);
        self.promote.store(true, Ordering::Release);
        Ok(format!(
            "promoting: durable sequence {durable}{took}{}{}\n",
            if known { "" } else { " (forced: acknowledged orders after it may be lost)" },
            if options.alone { "; acknowledging alone until a standby catches up" } else { "" }
        ))
    }
}
