//! `[replication]`: this engine's role in a primary/standby pair, the peer, and the shared
//! secret both prove they hold (read here, from a file only its owner may read).

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use super::resolve;
use crate::config::locate::Locator;
use crate::config::locate::Seg::Key as K;
use crate::config::raw::{RawFailover, RawReplication};
use crate::config::{
    Ack, ConfigFileError, FailoverConfig, FailoverMode, ReplicationConfig, Secret, StandbyLoss,
};

/// Fewest bytes a shared secret may have (128 bits).
pub const MIN_SECRET_BYTES: usize = 16;
const MAX_SECRET_BYTES: usize = 4096;

pub(super) fn replication(
    raw: Option<RawReplication>,
    base: &Path,
    loc: &Locator,
) -> Result<Option<ReplicationConfig>, ConfigFileError> {
    let Some(raw) = raw else { return Ok(None) };
    let at = |key: &'static str| [K("replication"), K(key)];
    let cluster_ok = (1..=64).contains(&raw.cluster_id.len())
        && raw.cluster_id.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b));
    if !cluster_ok {
        return Err(loc.error(
            &at("cluster_id"),
            format!("cluster_id {:?} must be 1 to 64 characters of [A-Za-z0-9_.-]", raw.cluster_id),
        ));
    }
    if raw.listen == raw.peer {
        return Err(loc.error(&at("peer"), format!("replication.peer = {} is this engine's own replication.listen: name the other engine's address", raw.peer)));
    }
    if raw.ack == Ack::Local && raw.on_standby_loss.is_some() {
        return Err(loc.error(
            &at("on_standby_loss"),
            "on_standby_loss applies to ack = \"standby\" only: with ack = \"local\" the primary never waits for its standby",
        ));
    }
    let secret_file = resolve(base, raw.secret_file);
    let secret = read_secret(&secret_file).map_err(|why| loc.error(&at("secret_file"), why))?;
    Ok(Some(ReplicationConfig {
        role: raw.role,
        cluster_id: raw.cluster_id,
        secret_file,
        secret,
        listen: raw.listen,
        peer: raw.peer,
        ack: raw.ack,
        on_standby_loss: raw.on_standby_loss.unwrap_or(StandbyLoss::Halt),
        rejoin: raw.rejoin,
    }))
}

/// Longest etcd lease the failover takes: a dead primary is replaced after about this long.
const MAX_LEASE_TTL_S: u64 = 60;

/// `[failover]`: only with `[replication]`; `mode = "etcd"` needs endpoints.
pub(super) fn failover(
    raw: Option<RawFailover>,
    replication: Option<&ReplicationConfig>,
    loc: &Locator,
) -> Result<Option<FailoverConfig>, ConfigFileError> {
    let Some(raw) = raw else { return Ok(None) };
    let at = |key: &'static str| [K("failover"), K(key)];
    let Some(replication) = replication else {
        return Err(loc.error(&at("mode"), "[failover] needs [replication]: failover moves the primary role between the two engines of a pair"));
    };
    if raw.mode == FailoverMode::Manual {
        return Ok(None);
    }
    if raw.endpoints.is_empty() {
        return Err(loc.error(&at("endpoints"), "mode = \"etcd\" needs the etcd members' client URLs, e.g. endpoints = [\"http://10.0.0.5:2379\"]"));
    }
    for endpoint in &raw.endpoints {
        let rest = endpoint.strip_prefix("http://").unwrap_or("");
        if rest.parse::<std::net::SocketAddr>().is_err() {
            return Err(loc.error(
                &at("endpoints"),
                format!("{endpoint:?} is not http://ADDRESS:PORT (an etcd client URL without TLS)"),
            ));
        }
    }
    if !(2..=MAX_LEASE_TTL_S).contains(&raw.lease_ttl_s) {
        return Err(loc.error(&at("lease_ttl_s"), format!("lease_ttl_s = {} must be 2 to {MAX_LEASE_TTL_S} seconds (etcd counts whole seconds and grants no less than about 2)", raw.lease_ttl_s)));
    }
    let key_prefix = raw.key_prefix.unwrap_or_else(|| format!("/petrel/{}", replication.cluster_id));
    if !key_prefix.starts_with('/') || key_prefix.ends_with('/') || key_prefix.len() > 200 {
        return Err(loc.error(
            &at("key_prefix"),
            format!("key_prefix {key_prefix:?} must start with / and not end with one"),
        ));
    }
    Ok(Some(FailoverConfig { endpoints: raw.endpoints, key_prefix, lease_ttl_s: raw.lease_ttl_s }))
}

/// The secret's bytes (surrounding whitespace trimmed), refused when others may read the file.
fn read_secret(path: &Path) -> Result<Secret, String> {
    let shown = path.display();
    let meta =
        std::fs::metadata(path).map_err(|e| format!("cannot read the replication secret {shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("the replication secret {shown} is not a regular file"));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "the replication secret {shown} has mode {:04o}: others may read it; run chmod 600 {shown}",
            meta.mode() & 0o7777
        ));
    }
    let bytes =
        std::fs::read(path).map_err(|e| format!("cannot read the replication secret {shown}: {e}"))?;
    let secret = bytes.trim_ascii();
    if !(MIN_SECRET_BYTES..=MAX_SECRET_BYTES).contains(&secret.len()) {
        return Err(format!(
            "the replication secret {shown} holds {} bytes; it must hold {MIN_SECRET_BYTES} to {MAX_SECRET_BYTES} (for example: head -c 32 /dev/urandom | base64 > {shown})",
            secret.len()
        ));
    }
    Ok(Secret(secret.to_vec()))
}
