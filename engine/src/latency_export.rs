//! `GET /latency`: the engine's latency distributions since it started, exact, for a client
//! that reads them before and after an interval and subtracts (`petrel-load bench` does, to set
//! the journal's durable-write latency beside the round trips it measured over the same orders).
//!
//! Each is a [`LatencySummary`]'s lifetime histogram (ns, 1 ns to 60 s, 3 significant digits)
//! in HdrHistogram's V2 compressed ("deflate") encoding, in standard base64: the form of
//! HdrHistogram's interval logs, which its Java, C, Go and Rust implementations decode. The
//! summaries on `/metrics` cover a sliding window and cannot be subtracted; these can.

use base64::Engine as _;
use hdrhistogram::serialization::{Serializer as _, V2DeflateSerializer};
use hdrhistogram::Histogram;
use serde_json::json;

use crate::metrics::LatencySummary;

/// One group commit of the input journal: the write and, with `durability = "fsync"`, the
/// fdatasync after it (the durable write every acknowledgement waits for).
pub const JOURNAL_COMMIT: &str = "journal_commit";
/// From an Enter Order's or Replace's bytes read off the socket to its Accepted or Replaced
/// handed to the transport (cancels are not timed).
pub const WIRE_TO_WIRE: &str = "wire_to_wire";
/// The matcher's time per command (risk, match, events).
pub const MATCHER_SERVICE: &str = "matcher_service";

/// What the `encoding` field of the answer names.
pub const ENCODING: &str = "hdrhistogram-v2-deflate-base64";

/// The JSON body of `/latency` for the named summaries: per name, the lifetime count, p50,
/// p99 and max (for a person with curl; `null` while empty) and the encoded histogram.
pub fn latency_json(summaries: &[(&str, &LatencySummary)]) -> String {
    let mut histograms = serde_json::Map::new();
    for (name, summary) in summaries {
        let h = summary.lifetime();
        let quantile = |q: f64| (!h.is_empty()).then(|| h.value_at_quantile(q));
        histograms.insert(
            (*name).to_owned(),
            json!({
                "count": h.len(),
                "p50_ns": quantile(0.5),
                "p99_ns": quantile(0.99),
                "max_ns": (!h.is_empty()).then(|| h.max()),
                "histogram": encode(h),
            }),
        );
    }
    json!({ "unit": "ns", "since": "start", "encoding": ENCODING, "histograms": histograms }).to_string()
}

/// A histogram in V2 deflate encoding, base64.
pub fn encode(h: &Histogram<u64>) -> String {
    let mut bytes = Vec::with_capacity(1024);
    // Into memory only a count above i64::MAX can fail, which a u64 counter of latencies
    // never reaches.
    V2DeflateSerializer::new().serialize(h, &mut bytes).expect("a latency histogram serializes");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use hdrhistogram::serialization::Deserializer;

    fn decode(text: &str) -> Histogram<u64> {
        let bytes = base64::engine::general_purpose::STANDARD.decode(text).unwrap();
        Deserializer::new().deserialize(&mut bytes.as_slice()).unwrap()
    }

    #[test]
    fn two_reads_subtracted_give_exactly_the_latencies_between_them() {
        let mut summary = LatencySummary::new();
        for v in [5_000u64, 7_000, 9_000] {
            summary.record_ns(v);
        }
        let body = |s: &LatencySummary| -> serde_json::Value {
            serde_json::from_str(&latency_json(&[(JOURNAL_COMMIT, s)])).unwrap()
        };
        let before = body(&summary);
        // A window rotation between the reads changes nothing in what they return.
        summary.rotate();
        for v in [200_000u64, 300_000] {
            summary.record_ns(v);
        }
        let after = body(&summary);
        assert_eq!(after["encoding"], ENCODING);
        let entry = &after["histograms"][JOURNAL_COMMIT];
        assert_eq!(entry["count"], 5);
        let max = entry["max_ns"].as_u64().unwrap();
        assert!(summary.lifetime().equivalent(max, 300_000), "{max}");

        let mut interval = decode(entry["histogram"].as_str().unwrap());
        interval
            .subtract(decode(before["histograms"][JOURNAL_COMMIT]["histogram"].as_str().unwrap()))
            .unwrap();
        assert_eq!(interval.len(), 2);
        assert!(interval.equivalent(interval.min(), 200_000) && interval.equivalent(interval.max(), 300_000));
    }

    #[test]
    fn an_empty_histogram_has_null_quantiles_and_still_decodes() {
        let body: serde_json::Value =
            serde_json::from_str(&latency_json(&[(WIRE_TO_WIRE, &LatencySummary::new())])).unwrap();
        let entry = &body["histograms"][WIRE_TO_WIRE];
        assert_eq!((entry["count"].as_u64(), entry["p50_ns"].is_null()), (Some(0), true));
        assert!(decode(entry["histogram"].as_str().unwrap()).is_empty());
    }
}
