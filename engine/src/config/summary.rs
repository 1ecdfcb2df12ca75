//! The one line an operator reads about a configuration: printed by `check-config` and logged
//! when the daemon starts.

use petrel_journal::Durability;

use super::Config;

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
             snapshots every {} commands in {}; gateway {}; admin {}; {}",
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
            if pinned.is_empty() {
                "no core pinning".to_owned()
            } else {
                format!("pinned {}", pinned.join(" "))
            }
        )
    }
}
