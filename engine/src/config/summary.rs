//! The one line an operator reads about a configuration: printed by `check-config` and logged
//! when the daemon starts.

use petrel_journal::Durability;

use super::{Ack, Config, DataPath, Rejoin, Role, StandbyLoss};

impl Config {
    /// One line for operators: what this configuration runs.
    pub fn summary(&self) -> String {
        let pinned: Vec<String> = self
            .runtime
            .threads()
            .iter()
            .filter(|(_, t)| !t.cores.is_empty())
            .map(|(name, t)| format!("{name}={:?}", t.cores))
            .collect();
        format!(
            "{} instruments, {} accounts in {} firms, max {} open orders; journal {} ({}); \
             snapshots every {} commands in {}; gateway {}; admin {}; data path {}; {}; \
             disk reserved at start: {}; {}",
            self.engine.instruments.len(),
            self.engine.accounts.len(),
            self.firms.len(),
            self.engine.max_orders,
            self.journal.dir.display(),
            match self.journal.durability {
                Durability::Fsync => "fsync",
                Durability::None => "no fsync",
            },
            self.snapshots.every_commands,
            self.snapshots.dir.display(),
            self.gateway.listen,
            self.admin.listen,
            match self.runtime.mode {
                DataPath::RunToCompletion =>
                    "run-to-completion (one thread: runtime.sequencer and runtime.journal unused)",
                DataPath::Pipeline => "pipeline",
            },
            if pinned.is_empty() {
                "no core pinning".to_owned()
            } else {
                format!("pinned {}", pinned.join(" "))
            },
            self.reserved_disk(),
            self.replication_summary()
        ) + &self.market_data_summary()
    }

    /// Nothing without `[market_data]`, so the line of a configuration without a feed is as it was.
    fn market_data_summary(&self) -> String {
        let Some(md) = &self.market_data else { return String::new() };
        let mut to: Vec<String> = md.multicast_group.iter().map(|g| format!("multicast {g}")).collect();
        to.extend(md.destinations.iter().map(|d| d.to_string()));
        format!(
            "; market data: ITCH 5.0 session {} to {}, heartbeat {} ms, {}",
            md.session,
            to.join(" "),
            md.heartbeat_interval_ms,
            md.retransmission_listen
                .map_or("no retransmission server".to_owned(), |a| format!("retransmission on {a}"))
        )
    }

    fn replication_summary(&self) -> String {
        let Some(r) = &self.replication else { return "no standby".to_owned() };
        let failover = match &self.failover {
            None => String::new(),
            Some(f) => format!(
                "; failover decided by etcd ({} members, key {}/leader, lease {} s)",
                f.endpoints.len(),
                f.key_prefix,
                f.lease_ttl_s
            ),
        };
        format!("{}{failover}", self.role_summary(r))
    }

    fn role_summary(&self, r: &super::ReplicationConfig) -> String {
        match r.role {
            Role::Primary => format!(
                "replication: primary of cluster {}, standby connects to {}, {}{}",
                r.cluster_id,
                r.listen,
                match (r.ack, r.on_standby_loss) {
                    (Ack::Local, _) => "acknowledges on local durability (asynchronous standby)".to_owned(),
                    (Ack::Standby, StandbyLoss::Halt) =>
                        "acknowledges once durable on both hosts; halts without a standby".to_owned(),
                    (Ack::Standby, StandbyLoss::Continue) =>
                        "acknowledges once durable on both hosts; continues alone without a standby"
                            .to_owned(),
                },
                match r.rejoin {
                    Rejoin::Manual => "",
                    Rejoin::Auto => "; rejoins as a standby by itself when replaced",
                }
            ),
            Role::Standby => format!(
                "replication: standby of cluster {}, following the primary at {}",
                r.cluster_id, r.peer
            ),
        }
    }

    /// What the configuration preallocates on disk before the first order: one input-journal
    /// segment, one output-journal segment per account and, with a feed, one feed-journal
    /// segment (more are created as they fill).
    fn reserved_disk(&self) -> String {
        let accounts = self.accounts.len() as u64;
        let input = self.journal.segment_size_bytes;
        let output = self.gateway.output_journal_segment_bytes;
        let feed = self.market_data.as_ref().map_or(0, |md| md.journal_segment_bytes);
        format!(
            "{} (input journal segment {} + {accounts} accounts x output journal segment {}{})",
            mib(input + accounts * output + feed),
            mib(input),
            mib(output),
            if feed > 0 { format!(" + feed journal segment {}", mib(feed)) } else { String::new() }
        )
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1u64 << 20) as f64)
}
