//! The engine's admin endpoint as `petrel-load bench` reads it: `/status` for the journal's
//! durability, and `/latency` for the engine's own latency histograms since it started
//! (journal group commit, wire to wire, matcher), decoded. Two readings subtracted
//! ([`EngineLatency::since`]) are exactly what the engine recorded in between.

use super::decomposition::Durability;
use base64::Engine as _;
use hdrhistogram::serialization::Deserializer;
use hdrhistogram::Histogram;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// How long connecting, and then reading one whole answer, may take.
const ADMIN_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest answer read: `/latency` is a few KiB.
const ADMIN_ANSWER_BYTES_MAX: u64 = 4 << 20;

/// Why the engine's own figures could not be had.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(
        "cannot reach the engine's admin endpoint at {addr} ({source}): pass the engine's [admin] listen address with --admin"
    )]
    Unreachable { addr: SocketAddr, source: std::io::Error },
    #[error("the engine's admin endpoint at {addr} answered GET {path} with {message}")]
    BadAnswer { addr: SocketAddr, path: &'static str, message: String },
    #[error(
        "the engine's histograms went back between the readings (was it restarted during the run?): {0}"
    )]
    WentBack(String),
}

/// The body of `GET path` (one request per connection, as the admin server serves them).
fn get(addr: SocketAddr, path: &'static str) -> Result<String, AdminError> {
    let unreachable = |source| AdminError::Unreachable { addr, source };
    let bad = |message: String| AdminError::BadAnswer { addr, path, message };
    let mut stream = TcpStream::connect_timeout(&addr, ADMIN_TIMEOUT).map_err(unreachable)?;
    stream.set_read_timeout(Some(ADMIN_TIMEOUT)).map_err(unreachable)?;
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")
        .map_err(unreachable)?;
    let mut answer = Vec::new();
    stream
        .take(ADMIN_ANSWER_BYTES_MAX)
        .read_to_end(&mut answer)
        .map_err(|e| bad(format!("an unreadable answer: {e}")))?;
    let answer = String::from_utf8(answer).map_err(|_| bad("an answer that is not UTF-8".into()))?;
    let (head, body) = answer.split_once("\r\n\r\n").ok_or_else(|| bad("no HTTP answer".into()))?;
    let status_line = head.lines().next().unwrap_or("");
    if !status_line.starts_with("HTTP/1.1 200") {
        return Err(bad(format!("{status_line:?} (an engine older than this petrel-load?)")));
    }
    Ok(body.to_owned())
}

/// The journal's durability as the engine's `/status` says it; `None` when it does not say.
pub fn read_durability(addr: SocketAddr) -> Result<Option<Durability>, AdminError> {
    let body = get(addr, "/status")?;
    let status: serde_json::Value = serde_json::from_str(&body).map_err(|e| AdminError::BadAnswer {
        addr,
        path: "/status",
        message: format!("JSON that does not parse: {e}"),
    })?;
    Ok(status["durability"].as_str().and_then(Durability::parse))
}

/// The engine's latency histograms, ns.
#[derive(Clone, Debug)]
pub struct EngineLatency {
    /// One journal group commit each: the write and, with fsync, its fdatasync.
    pub journal_commit: Histogram<u64>,
    /// An Enter Order's or Replace's bytes read off the socket to its Accepted or Replaced
    /// handed to the transport (cancels are not timed).
    pub wire_to_wire: Histogram<u64>,
    /// The matcher's time per command: one sample per command sequenced.
    pub matcher_service: Histogram<u64>,
}

impl EngineLatency {
    /// Reads the histograms since the engine started.
    pub fn read(addr: SocketAddr) -> Result<EngineLatency, AdminError> {
        let body = get(addr, "/latency")?;
        EngineLatency::parse(&body).map_err(|message| AdminError::BadAnswer {
            addr,
            path: "/latency",
            message,
        })
    }

    /// Decodes a `/latency` answer.
    pub fn parse(body: &str) -> Result<EngineLatency, String> {
        let json: serde_json::Value =
            serde_json::from_str(body).map_err(|e| format!("JSON that does not parse: {e}"))?;
        let decode = |name: &str| -> Result<Histogram<u64>, String> {
            let encoded = json["histograms"][name]["histogram"]
                .as_str()
                .ok_or_else(|| format!("no histograms.{name}.histogram"))?;
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .map_err(|e| format!("histograms.{name}: not base64: {e}"))?;
            Deserializer::new()
                .deserialize(&mut bytes.as_slice())
                .map_err(|e| format!("histograms.{name}: not an HdrHistogram V2 encoding: {e}"))
        };
        Ok(EngineLatency {
            journal_commit: decode("journal_commit")?,
            wire_to_wire: decode("wire_to_wire")?,
            matcher_service: decode("matcher_service")?,
        })
    }

    /// What the engine recorded between `before` and this reading (both cumulative since its
    /// start): fails when `before` holds what this one does not, i.e. the engine restarted.
    pub fn since(&self, before: &EngineLatency) -> Result<EngineLatency, AdminError> {
        let minus = |after: &Histogram<u64>, before: &Histogram<u64>, name: &str| {
            let mut interval = after.clone();
            interval.subtract(before).map_err(|e| AdminError::WentBack(format!("{name}: {e:?}")))?;
            Ok::<_, AdminError>(interval)
        };
        Ok(EngineLatency {
            journal_commit: minus(&self.journal_commit, &before.journal_commit, "journal_commit")?,
            wire_to_wire: minus(&self.wire_to_wire, &before.wire_to_wire, "wire_to_wire")?,
            matcher_service: minus(&self.matcher_service, &before.matcher_service, "matcher_service")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::{Serializer as _, V2DeflateSerializer};

    fn histogram(values_ns: &[u64]) -> Histogram<u64> {
        let mut h = Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap();
        for &v in values_ns {
            h.record(v).unwrap();
        }
        h
    }

    /// A `/latency` answer as the engine writes it (engine/src/latency_export.rs).
    fn answer(commits: &[u64], wire: &[u64], matcher: &[u64]) -> String {
        let encode = |values: &[u64]| {
            let mut bytes = Vec::new();
            V2DeflateSerializer::new().serialize(&histogram(values), &mut bytes).unwrap();
            base64::engine::general_purpose::STANDARD.encode(bytes)
        };
        serde_json::json!({
            "unit": "ns",
            "encoding": "hdrhistogram-v2-deflate-base64",
            "histograms": {
                "journal_commit": { "count": commits.len(), "histogram": encode(commits) },
                "wire_to_wire": { "count": wire.len(), "histogram": encode(wire) },
                "matcher_service": { "count": matcher.len(), "histogram": encode(matcher) },
            }
        })
        .to_string()
    }

    #[test]
    fn two_readings_subtract_to_exactly_what_was_recorded_between_them() {
        let before = EngineLatency::parse(&answer(&[200_000, 210_000], &[50_000], &[900])).unwrap();
        let after = EngineLatency::parse(&answer(
            &[200_000, 210_000, 300_000, 310_000, 320_000],
            &[50_000, 700_000, 800_000],
            &[900, 1_000, 1_100, 1_200],
        ))
        .unwrap();
        let interval = after.since(&before).unwrap();
        assert_eq!(interval.journal_commit.len(), 3);
        let h = &interval.journal_commit;
        assert!(h.equivalent(h.min(), 300_000) && h.equivalent(h.max(), 320_000), "{} {}", h.min(), h.max());
        assert!(h.equivalent(h.value_at_quantile(0.5), 310_000));
        assert_eq!((interval.wire_to_wire.len(), interval.matcher_service.len()), (2, 3));
        assert!(interval.wire_to_wire.equivalent(interval.wire_to_wire.min(), 700_000));
    }

    #[test]
    fn a_reading_that_went_back_is_an_engine_restart_not_an_interval() {
        let before = EngineLatency::parse(&answer(&[200_000, 210_000], &[50_000], &[900])).unwrap();
        let after = EngineLatency::parse(&answer(&[200_000], &[50_000], &[900])).unwrap();
        let e = after.since(&before).unwrap_err();
        assert!(e.to_string().contains("restarted") && e.to_string().contains("journal_commit"), "{e}");
    }

    #[test]
    fn malformed_answers_say_what_is_wrong() {
        assert!(EngineLatency::parse("{").unwrap_err().contains("does not parse"));
        let e = EngineLatency::parse(r#"{"histograms":{}}"#).unwrap_err();
        assert!(e.contains("no histograms.journal_commit.histogram"), "{e}");
        let e = EngineLatency::parse(r#"{"histograms":{"journal_commit":{"histogram":"!!"}}}"#).unwrap_err();
        assert!(e.contains("not base64"), "{e}");
    }

    #[test]
    fn an_endpoint_nobody_listens_on_is_unreachable_with_the_way_out() {
        // Bind and drop to find a port nothing listens on.
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let e = EngineLatency::read(addr).unwrap_err();
        assert!(matches!(e, AdminError::Unreachable { .. }), "{e}");
        assert!(e.to_string().contains("--admin") && e.to_string().contains(&addr.to_string()), "{e}");
    }
}
