//! `[gateway]`: the OUCH listener, its bounds and the users file (resolved).

use std::path::Path;

use super::resolve;
use crate::config::locate::Locator;
use crate::config::locate::Seg::Key as K;
use crate::config::raw::RawGateway;
use crate::config::{ConfigFileError, GatewayConfig};

/// Most OUCH connections at once: each takes about 192 KiB of gateway buffers (io_uring: two
/// 64 KiB receive buffers in the shared ring and a 64 KiB send buffer), so 4,096 is 768 MiB.
pub const MAX_SESSIONS: u32 = 4_096;
/// Bounds of `gateway.max_send_backlog_bytes`.
pub const MIN_SEND_BACKLOG_BYTES: u64 = 4 * 1024;
pub const MAX_SEND_BACKLOG_BYTES: u64 = 1 << 30;
/// Bounds of `gateway.output_journal_segment_bytes`: a segment holds the output journal's
/// 64 KiB write buffer and its 4 KiB header; 1 GiB is far beyond any one day of one account.
pub const MIN_OUTPUT_SEGMENT_BYTES: u64 = 128 * 1024;
pub const MAX_OUTPUT_SEGMENT_BYTES: u64 = 1 << 30;

pub(super) fn gateway(raw: RawGateway, base: &Path, loc: &Locator) -> Result<GatewayConfig, ConfigFileError> {
    if raw.max_sessions == 0 || raw.max_sessions > MAX_SESSIONS {
        return Err(loc.error(
            &[K("gateway"), K("max_sessions")],
            format!("max_sessions = {} must be between 1 and {MAX_SESSIONS}", raw.max_sessions),
        ));
    }
    let name_ok = (1..=10).contains(&raw.session_name.len())
        && raw.session_name.bytes().all(|b| b.is_ascii_alphanumeric());
    if !name_ok {
        return Err(loc.error(
            &[K("gateway"), K("session_name")],
            format!("session_name = {:?} must be 1 to 10 letters or digits (SoupBinTCP)", raw.session_name),
        ));
    }
    if !(MIN_SEND_BACKLOG_BYTES..=MAX_SEND_BACKLOG_BYTES).contains(&raw.max_send_backlog_bytes) {
        return Err(loc.error(
            &[K("gateway"), K("max_send_backlog_bytes")],
            format!(
                "max_send_backlog_bytes = {} must be between {MIN_SEND_BACKLOG_BYTES} and {MAX_SEND_BACKLOG_BYTES}",
                raw.max_send_backlog_bytes
            ),
        ));
    }
    let segment = raw.output_journal_segment_bytes;
    if !(MIN_OUTPUT_SEGMENT_BYTES..=MAX_OUTPUT_SEGMENT_BYTES).contains(&segment) || segment % 4096 != 0 {
        return Err(loc.error(
            &[K("gateway"), K("output_journal_segment_bytes")],
            format!(
                "output_journal_segment_bytes = {segment} must be a multiple of 4096 between \
                 {MIN_OUTPUT_SEGMENT_BYTES} and {MAX_OUTPUT_SEGMENT_BYTES}"
            ),
        ));
    }
    Ok(GatewayConfig {
        listen: raw.listen,
        users_file: resolve(base, raw.users_file),
        backend: raw.backend,
        max_sessions: raw.max_sessions,
        session_name: raw.session_name,
        max_send_backlog_bytes: raw.max_send_backlog_bytes,
        output_journal_segment_bytes: segment,
        allow_readable_users_file: raw.allow_readable_users_file,
    })
}
