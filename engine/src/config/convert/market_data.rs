//! `[market_data]`: the ITCH feed's session, where its packets go, heartbeats, packet size, the
//! retransmission server and its bounds. Every limit is checked here, naming the key.

use crate::config::locate::Locator;
use crate::config::locate::Seg::Key as K;
use crate::config::raw::RawMarketData;
use crate::config::{AccountInfo, ConfigFileError, MarketDataConfig};

/// The smallest feed-journal segment the journal accepts: its header page and one write
/// buffer (64 KiB) or one record of the largest payload, whichever is more.
const SEGMENT_BYTES_MIN: u64 = 73_728;
/// The largest UDP payload over IPv4.
const UDP_PAYLOAD_BYTES_MAX: u32 = 65_507;
/// A packet must hold the MoldUDP64 header and the largest ITCH message with its length.
const PACKET_BYTES_MIN: u32 =
    (petrel_proto::moldudp64::HEADER_BYTES + 2 + petrel_proto::itch::MESSAGE_BYTES_MAX) as u32;

pub(super) fn market_data(
    raw: Option<RawMarketData>,
    accounts: &[AccountInfo],
    loc: &Locator,
) -> Result<Option<MarketDataConfig>, ConfigFileError> {
    let Some(raw) = raw else { return Ok(None) };
    check_session_and_destinations(&raw, loc)?;
    if let Some(unknown) = raw.attributed_accounts.iter().find(|n| !accounts.iter().any(|a| &a.name == *n)) {
        let names: Vec<String> = accounts.iter().map(|a| a.name.clone()).collect();
        return Err(loc.error(
            &[K("market_data"), K("attributed_accounts")],
            format!(
                "attributed_accounts names {unknown:?}, which is not an account; defined: {}",
                super::list(&names)
            ),
        ));
    }
    let at = |key: &'static str| [K("market_data"), K(key)];
    let ranged = |key: &'static str, value: u64, min: u64, max: u64| {
        if (min..=max).contains(&value) {
            Ok(value)
        } else {
            Err(loc.error(&at(key), format!("{key} = {value} must be between {min} and {max}")))
        }
    };
    let multicast_ttl = ranged("multicast_ttl", raw.multicast_ttl.unwrap_or(1).into(), 0, 255)? as u32;
    let heartbeat_interval_ms =
        ranged("heartbeat_interval_ms", raw.heartbeat_interval_ms.unwrap_or(1000), 10, 60_000)?;
    let max_packet_bytes = ranged(
        "max_packet_bytes",
        raw.max_packet_bytes.unwrap_or(1400).into(),
        PACKET_BYTES_MIN.into(),
        UDP_PAYLOAD_BYTES_MAX.into(),
    )? as u32;
    let max_messages_per_request =
        ranged("max_messages_per_request", raw.max_messages_per_request.unwrap_or(1000).into(), 1, 65_534)?
            as u32;
    let requests_per_second_per_requester = ranged(
        "requests_per_second_per_requester",
        raw.requests_per_second_per_requester.unwrap_or(100).into(),
        1,
        1_000_000,
    )? as u32;
    let journal_segment_bytes = raw.journal_segment_bytes.unwrap_or(16 << 20);
    if journal_segment_bytes % 4096 != 0 || !(SEGMENT_BYTES_MIN..=1 << 34).contains(&journal_segment_bytes) {
        return Err(loc.error(
            &at("journal_segment_bytes"),
            format!(
                "journal_segment_bytes = {journal_segment_bytes} must be a multiple of 4096 between \
                 {SEGMENT_BYTES_MIN} and 16 GiB"
            ),
        ));
    }
    Ok(Some(MarketDataConfig {
        session: raw.session,
        multicast_group: raw.multicast_group,
        multicast_interface: raw.multicast_interface,
        multicast_ttl,
        destinations: raw.destinations,
        retransmission_listen: raw.retransmission_listen,
        snapshot_listen: raw.snapshot_listen,
        attributed_accounts: raw.attributed_accounts,
        heartbeat_interval_ms,
        max_packet_bytes,
        max_messages_per_request,
        requests_per_second_per_requester,
        journal_segment_bytes,
    }))
}

/// The session is a MoldUDP64 session field; the feed must go somewhere, multicast to a group.
fn check_session_and_destinations(raw: &RawMarketData, loc: &Locator) -> Result<(), ConfigFileError> {
    let at = |key: &'static str| [K("market_data"), K(key)];
    if !(1..=10).contains(&raw.session.len()) || !raw.session.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(loc.error(
            &at("session"),
            format!("session {:?} must be 1 to 10 letters or digits (the MoldUDP64 session)", raw.session),
        ));
    }
    if let Some(group) = raw.multicast_group {
        let multicast = matches!(group, std::net::SocketAddr::V4(v4) if v4.ip().is_multicast());
        if !multicast {
            return Err(loc.error(
                &at("multicast_group"),
                format!("multicast_group = {group} is not an IPv4 multicast address (224.0.0.0/4)"),
            ));
        }
    }
    if raw.multicast_group.is_none() && raw.destinations.is_empty() {
        return Err(loc.error(
            &at("destinations"),
            "the feed goes nowhere: set multicast_group, or list unicast destinations",
        ));
    }
    Ok(())
}
