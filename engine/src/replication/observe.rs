//! What replication adds to `/metrics` and `/status`, on either role, and the standby's own
//! admin handler (a standby has no gateway or pipeline to describe).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{Refusal, ReplicationStats};
use crate::admin::AdminHandler;
use crate::config::{Config, ReplicationConfig, Role};
use crate::metrics::{self as m, Exposition};

/// The replication metrics; `local_durable` is this engine's own journal mark.
pub fn render_metrics(
    e: &mut Exposition<'_>,
    config: &ReplicationConfig,
    stats: &ReplicationStats,
    local_durable: u64,
) {
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    let flag = |a: &AtomicBool| if a.load(Ordering::Relaxed) { 1.0 } else { 0.0 };
    e.gauges(&m::REPLICATION_ROLE, [(config.role.as_str(), 1.0)]);
    e.gauge(&m::REPLICATION_CONNECTED, flag(&stats.connected));
    e.gauge(&m::REPLICATION_STANDBY_DURABLE_SEQUENCE, load(&stats.standby_durable) as f64);
    e.gauge(&m::REPLICATION_LAG_RECORDS, lag(config, stats, local_durable) as f64);
    e.counter(&m::REPLICATION_RECORDS_TOTAL, load(&stats.records_total));
    e.counters(&m::REPLICATION_REFUSED_TOTAL, Refusal::ALL.iter().map(|r| (r.as_str(), stats.refused(*r))));
    e.counter(&m::REPLICATION_DISCONNECTS_TOTAL, load(&stats.disconnects_total));
    e.gauge(&m::REPLICATION_HALTED, flag(&stats.halted));
    e.gauge(&m::REPLICATION_STANDBY_PROMOTABLE, flag(&stats.standby_promotable));
}

fn lag(config: &ReplicationConfig, stats: &ReplicationStats, local_durable: u64) -> u64 {
    match config.role {
        Role::Primary => stats.lag(local_durable),
        Role::Standby => stats.primary_durable.load(Ordering::Relaxed).saturating_sub(local_durable),
    }
}

/// The `replication` object of `/status`.
pub fn status(config: &ReplicationConfig, stats: &ReplicationStats, local_durable: u64) -> serde_json::Value {
    let load = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
    serde_json::json!({
        "role": config.role.as_str(),
        "cluster_id": config.cluster_id,
        "peer": match config.role {
            Role::Primary => config.listen.map(|a| a.to_string()),
            Role::Standby => config.primary.map(|a| a.to_string()),
        },
        "connected": stats.connected.load(Ordering::Relaxed),
        "standby_durable_sequence": load(&stats.standby_durable),
        "primary_durable_sequence": match config.role {
            Role::Primary => local_durable,
            Role::Standby => load(&stats.primary_durable),
        },
        "lag_records": lag(config, stats, local_durable),
        "halted": stats.halted.load(Ordering::Relaxed),
        "standby_promotable": stats.standby_promotable.load(Ordering::Relaxed),
        "records_total": load(&stats.records_total),
    })
}

/// The standby's admin endpoint: ready while following, its journal and the replication state.
pub struct StandbyObserved {
    pub config: Config,
    pub stats: Arc<ReplicationStats>,
    pub ready: AtomicBool,
    pub start_unix_s: f64,
}

impl StandbyObserved {
    fn replication(&self) -> &ReplicationConfig {
        self.config.replication.as_ref().expect("a standby has [replication]")
    }

    pub fn status_line(&self) -> String {
        let r = self.replication();
        let durable = self.stats.standby_durable.load(Ordering::Relaxed);
        format!(
            "standby of {}: {}, durable sequence {durable}, lag {} records",
            r.primary.map_or_else(String::new, |a| a.to_string()),
            if self.stats.connected.load(Ordering::Relaxed) { "following" } else { "not connected" },
            lag(r, &self.stats, durable)
        )
    }
}

impl AdminHandler for StandbyObserved {
    fn metrics(&self, out: &mut String) {
        let durable = self.stats.standby_durable.load(Ordering::Relaxed);
        let mut e = Exposition::new(out);
        e.gauges(&m::BUILD_INFO, [(env!("CARGO_PKG_VERSION"), 1.0)]);
        e.gauge(&m::START_TIME_SECONDS, self.start_unix_s);
        e.gauge(&m::READY, if self.ready() { 1.0 } else { 0.0 });
        e.gauge(&m::LAST_SEQUENCE, self.stats.applied.load(Ordering::Relaxed) as f64);
        e.gauge(&m::DURABLE_SEQUENCE, durable as f64);
        render_metrics(&mut e, self.replication(), &self.stats, durable);
    }

    fn ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    fn status_json(&self) -> String {
        let durable = self.stats.standby_durable.load(Ordering::Relaxed);
        serde_json::json!({
            "ready": self.ready(),
            "version": env!("CARGO_PKG_VERSION"),
            "role": "standby",
            "last_sequence": self.stats.applied.load(Ordering::Relaxed),
            "durable_sequence": durable,
            "journal_dir": self.config.journal.dir.display().to_string(),
            "replication": status(self.replication(), &self.stats, durable),
        })
        .to_string()
    }

    fn latency_json(&self) -> String {
        "{}".to_owned()
    }
}
