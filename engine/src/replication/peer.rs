//! Asking the peer which epoch it is in, without following it: a primary at start (is a
//! newer primary already serving?) and `petrel-engine rejoin` (where did the new primary's
//! epoch begin?).

use std::io::Write;
use std::time::Duration;

use super::epoch::{Epoch, EpochHistory};
use super::wire::{Frame, FrameReader, FrameWriter};
use crate::config::{Config, ReplicationConfig};

/// The epoch of the primary at `config.peer`; `None` when no primary answers there (nothing
/// listens: the peer is a standby, or down).
pub fn probe(config: &ReplicationConfig, why: &str) -> Option<Epoch> {
    let mut stream = std::net::TcpStream::connect_timeout(&config.peer, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut reader = FrameReader::new();
    let epoch = match reader.read(&mut stream) {
        Ok(Frame::Challenge { epoch, epoch_first_sequence, .. }) => {
            Epoch { number: epoch, first_sequence: epoch_first_sequence }
        }
        _ => return None,
    };
    // Said so that the primary logs why a peer left without a Hello.
    let _ = stream.write_all(FrameWriter::new().refused(why));
    Some(epoch)
}

/// Why a primary may not serve at start.
pub enum AtStart {
    /// A newer primary (a promoted standby) runs at the peer: this engine is stale.
    Stale(String),
    /// Another primary of the same epoch runs at the peer (a configuration mistake).
    Conflict(String),
}

/// A primary at start: refuses to serve when a newer primary (a promoted standby) runs at the
/// peer, or another primary of the same epoch does.
pub fn check_at_start(config: &ReplicationConfig, ours: Epoch) -> Result<(), AtStart> {
    let peer = config.peer;
    match probe(config, "a primary checking its peer's epoch at start") {
        Some(theirs) if theirs.number > ours.number => Err(AtStart::Stale(format!(
            "a newer primary, of epoch {} (from sequence {}), runs at {peer}: this engine (epoch {}) is a stale primary and must not serve; records it holds from sequence {} on were never acknowledged. Make it a standby of the new primary: run petrel-engine rejoin, then set replication.role = \"standby\"",
                        theirs.number, theirs.first_sequence, ours.number, theirs.first_sequence
        ))),
        Some(theirs) if theirs.number == ours.number => Err(AtStart::Conflict(format!(
            "another primary of the same epoch {} runs at {peer} (replication.peer): two primaries would each acknowledge orders the other lacks; set replication.role = \"standby\" on one of them",
                        theirs.number
        ))),
        _ => Ok(()),
    }
}

/// `petrel-engine rejoin`: a primary that was replaced (the engine must be stopped) cuts its
/// journal back to where the new primary's epoch began, drops the snapshots after that point,
/// cuts its output journals at the same point, and adopts the new epoch; it can then start as
/// a standby, whose streams go on with the new primary's messages.
pub fn rejoin(config: &Config) -> Result<String, String> {
    let r = config.replication.as_ref().ok_or("the configuration has no [replication] section")?;
    let journal = &config.journal;
    let mut epochs = EpochHistory::load(&journal.dir, &journal.file_prefix)?;
    let ours = epochs.current();
    let peer = r.peer;
    let theirs = probe(r, "rejoining as a standby: reading the primary's epoch").ok_or_else(|| {
        format!("no primary answers at {peer} (replication.peer): rejoin needs the new primary running")
    })?;
    if theirs.number <= ours.number {
        return Err(format!(
            "the primary at {peer} is of epoch {}, not newer than this engine's {}: there is nothing to rejoin (start this engine as a standby as it is)",
            theirs.number, ours.number
        ));
    }
    let last_kept = theirs.first_sequence - 1;
    let cut = petrel_journal::truncate_after(journal, last_kept).map_err(|e| e.to_string())?;
    let mut snapshots = 0;
    for (sequence, path) in
        petrel_journal::list_snapshots(&config.snapshots.dir).map_err(|e| e.to_string())?
    {
        if sequence > last_kept {
            std::fs::remove_file(&path).map_err(|e| format!("cannot remove {}: {e}", path.display()))?;
            snapshots += 1;
        }
    }
    let settings = crate::gateway::GatewaySettings::from_config(config);
    let streams =
        crate::gateway::regeneration::cut_streams_after(&settings, config.accounts.len(), last_kept)
            .map_err(|e| {
                format!("cutting the session output journals in {}: {e}", settings.sessions_dir.display())
            })?;
    let feed = crate::market_data::cut_after(config, last_kept).map_err(|e| e.to_string())?;
    epochs.adopt(theirs)?;
    Ok(format!(
        "rejoined epoch {} (the primary at {peer} began it at sequence {}): cut {} records after sequence {last_kept} (never acknowledged), removed {snapshots} snapshots after it{}. Set replication.role = \"standby\" and start the engine: it follows the new primary.\n",
        theirs.number,
        theirs.first_sequence,
        cut.removed_records,
                        if streams.streams > 0 || feed > 0 {
            format!(
                ", cut {} messages from {} accounts' streams and {feed} from the market-data feed",
                streams.messages, streams.streams
            )
        } else {
            String::new()
        }
    ))
}
