//! The key `<prefix>/standby` = `{"epoch":N,"promotable":BOOL}`, bound to no lease: under
//! `on_standby_loss = "continue"` the primary of epoch N says in it whether its standby may be
//! promoted without losing an acknowledged order.
//!
//! - The primary (`Marker`) writes `false` before it acknowledges anything without its standby,
//!   and `true` once the standby has caught up again; each write is one transaction that
//!   succeeds only while the primary's own leader key still holds its value and lease, so a
//!   deposed primary writes nothing (and is fenced for good, as a lost lease is).
//! - The standby (`may_take`) reads it once the leader key is gone. That ordering is the whole
//!   argument: every write needs the leader key, so whatever the old primary wrote was written
//!   before its key went away, and the standby reads after it did.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use super::etcd::Etcd;
use super::{FailoverStats, Lease, REQUEST_TIMEOUT};
use crate::config::FailoverConfig;

/// The standby key's value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StandbyMark {
    /// The epoch of the primary that wrote it.
    pub epoch: u64,
    pub promotable: bool,
}

impl StandbyMark {
    pub fn encode(&self) -> Vec<u8> {
        serde_json::json!({ "epoch": self.epoch, "promotable": self.promotable }).to_string().into_bytes()
    }

    /// Strictly the shape `encode` writes (no other field); anything else is an error naming
    /// what is wrong.
    pub fn parse(bytes: &[u8]) -> Result<StandbyMark, String> {
        let value: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| format!("not JSON ({e}): {:?}", String::from_utf8_lossy(bytes)))?;
        let object = value.as_object().ok_or("not a JSON object")?;
        if let Some(other) = object.keys().find(|k| *k != "epoch" && *k != "promotable") {
            return Err(format!("an unknown field {other:?} (only epoch and promotable)"));
        }
        let epoch = value["epoch"].as_u64().filter(|e| *e > 0).ok_or("no epoch (a number above 0)")?;
        let promotable = value["promotable"].as_bool().ok_or("no promotable (true or false)")?;
        Ok(StandbyMark { epoch, promotable })
    }
}

pub fn standby_key(config: &FailoverConfig) -> String {
    format!("{}/standby", config.key_prefix)
}

/// The primary's writer of the standby key, for the epoch of its lease.
pub struct Marker {
    etcd: Mutex<Etcd>,
    key: String,
    epoch: u64,
    /// The leader key, the value this engine wrote in it, and its lease: each write is
    /// conditional on all three.
    leader: (String, Vec<u8>),
    lease: i64,
    stats: Arc<FailoverStats>,
    fence: super::GateHandle,
}

impl Marker {
    /// A writer for the primary of `epoch` holding `lease`.
    pub fn new(config: &FailoverConfig, lease: &Lease, epoch: u64) -> Marker {
        Marker {
            etcd: Mutex::new(Etcd::new(&config.endpoints, REQUEST_TIMEOUT)),
            key: standby_key(config),
            epoch,
            leader: lease.key.clone(),
            lease: lease.id,
            stats: Arc::clone(&lease.stats),
            fence: Arc::clone(&lease.gate),
        }
    }

    /// Writes `{"epoch":N,"promotable":promotable}` while this engine still leads. An error
    /// says why nothing was written: etcd out of reach (counted), or this engine deposed (then
    /// fenced for good: the daemon stops, as for a lost lease).
    pub fn write(&self, promotable: bool) -> Result<(), String> {
        let value = StandbyMark { epoch: self.epoch, promotable }.encode();
        let mut etcd = self.etcd.lock().unwrap_or_else(|p| p.into_inner());
        let held = (self.leader.0.as_str(), self.leader.1.as_slice());
        match etcd.put_while(&self.key, &value, held, self.lease) {
            Ok(true) => {
                self.stats.standby_marked_unpromotable.store(!promotable, Ordering::Relaxed);
                tracing::info!(key = %self.key, epoch = self.epoch, promotable, "failover: wrote {}", self.key);
                Ok(())
            }
            Ok(false) => {
                super::lose(&self.stats, &self.fence);
                Err(format!(
                    "failover: cannot write {}: {} no longer holds this engine's value and lease: deposed, fenced",
                    self.key, self.leader.0
                ))
            }
            Err(e) => {
                self.stats.etcd_errors_total.fetch_add(1, Ordering::Relaxed);
                Err(format!("failover: cannot write {}: {e}", self.key))
            }
        }
    }
}

/// Whether a standby following `epoch`, and otherwise fit, may take the free leader key by
/// what the standby key says: absent, of an older epoch (its primary never wrote it), or
/// `true` for this epoch. `Err`: why not, for the log.
pub fn may_take(
    config: &FailoverConfig,
    etcd: &mut Etcd,
    epoch: u64,
    stats: &FailoverStats,
) -> Result<(), String> {
    let key = standby_key(config);
    let kv = etcd.get(&key).map_err(|e| {
        stats.etcd_errors_total.fetch_add(1, Ordering::Relaxed);
        format!("the leader key is gone, but {key} cannot be read ({e}): not taking the leader key")
    })?;
    let Some(kv) = kv else { return Ok(()) };
    match StandbyMark::parse(&kv.value) {
        Ok(mark) if mark.epoch < epoch || (mark.epoch == epoch && mark.promotable) => Ok(()),
        Ok(mark) if mark.epoch == epoch => Err(format!(
            "the primary of epoch {epoch} acknowledged without this standby ({key} says not promotable): not taking the leader key; promote by hand with --force if the old primary is gone for good"
        )),
        Ok(mark) => Err(format!(
            "{key} is of epoch {}, newer than the epoch {epoch} this standby follows: not taking the leader key",
            mark.epoch
        )),
        Err(why) => {
            stats.refused_total.fetch_add(1, Ordering::Relaxed);
            Err(format!("refused {key}: {why}; treated as not promotable: not taking the leader key"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::StandbyMark;

    #[test]
    fn the_standby_key_reads_back_what_it_writes() {
        for mark in [StandbyMark { epoch: 1, promotable: false }, StandbyMark { epoch: 7, promotable: true }]
        {
            assert_eq!(StandbyMark::parse(&mark.encode()), Ok(mark));
        }
        let by_hand = StandbyMark::parse(br#"{ "promotable": true, "epoch": 3 }"#);
        assert_eq!(by_hand, Ok(StandbyMark { epoch: 3, promotable: true }));
    }

    #[test]
    fn a_standby_key_of_another_shape_is_refused_saying_what_is_wrong() {
        let refused = |text: &str| StandbyMark::parse(text.as_bytes()).unwrap_err();
        assert!(refused("").contains("not JSON"));
        assert!(refused("{\"epoch\":1,").contains("not JSON"));
        assert!(refused("[1,true]").contains("not a JSON object"));
        assert!(refused("{\"promotable\":true}").contains("no epoch"));
        assert!(refused("{\"epoch\":0,\"promotable\":true}").contains("no epoch"));
        assert!(refused("{\"epoch\":-1,\"promotable\":true}").contains("no epoch"));
        assert!(refused("{\"epoch\":\"2\",\"promotable\":true}").contains("no epoch"));
        assert!(refused("{\"epoch\":2.5,\"promotable\":true}").contains("no epoch"));
        assert!(refused("{\"epoch\":2}").contains("no promotable"));
        assert!(refused("{\"epoch\":2,\"promotable\":\"true\"}").contains("no promotable"));
        assert!(refused("{\"epoch\":2,\"promotable\":1}").contains("no promotable"));
        let extra = refused("{\"epoch\":2,\"promotable\":true,\"node\":\"10.0.0.1:15300\"}");
        assert!(extra.contains("unknown field \"node\""), "{extra}");
    }
}
