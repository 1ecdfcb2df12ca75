//! Shared by the observe_* tests: a full sample of every exported metric, and the metric names
//! a document or a rule file mentions.

use std::collections::BTreeSet;

use petrel_engine::core::RejectReason;
use petrel_engine::metrics::{self, Exposition, LatencySummary, MetricKind, CATALOGUE};

/// Label values used for each label name in the sample.
pub fn sample_label_values(label: &str) -> Vec<String> {
    match label {
        "reason" => RejectReason::ALL.iter().map(|r| r.as_str().to_owned()).collect(),
        "account" => vec!["1".into(), "2".into()],
        "cause" => [
            "logout",
            "peer_closed",
            "heartbeat_timeout",
            "protocol_error",
            "slow_consumer",
            "io_error",
            "shutdown",
        ]
        .map(String::from)
        .to_vec(),
        "ring" => vec!["inbound".into(), "outbound".into()],
        "thread" => vec!["gateway".into(), "sequencer".into(), "journal".into()],
        "result" => vec!["applied".into(), "refused".into()],
        "version" => vec![env!("CARGO_PKG_VERSION").into()],
        "role" => vec!["primary".into(), "standby".into()],
        "refusal" => ["protocol", "cluster", "secret", "sequence", "epoch"].map(String::from).to_vec(),
        other => panic!("no sample values for label {other:?}: add them here and to docs/METRICS.md"),
    }
}

/// Every metric in the catalogue, with plausible values, as the engine will render it.
pub fn render_full_sample(out: &mut String) {
    let mut latency = LatencySummary::new();
    for v in 1..=10_000u64 {
        latency.record_ns(2_000 + v * 3);
    }
    let empty = LatencySummary::new();
    let mut e = Exposition::new(out);
    for (i, def) in CATALOGUE.iter().enumerate() {
        let n = i as u64 * 7 + 1;
        match (def.kind, def.label) {
            (MetricKind::Counter, None) => e.counter(def, n * 1000),
            (MetricKind::Gauge, None) => e.gauge(def, n as f64),
            (MetricKind::Counter, Some(l)) => {
                let values = sample_label_values(l);
                e.counters(def, values.iter().enumerate().map(|(j, v)| (v.as_str(), n + j as u64)));
            }
            (MetricKind::Gauge, Some(l)) => {
                let values = sample_label_values(l);
                e.gauges(def, values.iter().map(|v| (v.as_str(), 1.0)));
            }
            // One summary with observations, one empty (NaN quantiles): both must be valid.
            (MetricKind::Summary, None) if def.name == metrics::MATCHER_SERVICE_TIME_SECONDS.name => {
                e.summary_ns(def, &empty)
            }
            (MetricKind::Summary, None) => e.summary_ns(def, &latency),
            (MetricKind::Summary, Some(_)) => panic!("labelled summaries are not rendered"),
        }
    }
}

/// `petrel_...` metric names mentioned in `text` (PromQL, Markdown), a summary's `_sum` and
/// `_count` folded into the summary's name.
pub fn petrel_metrics_used(text: &str) -> BTreeSet<String> {
    let summaries: Vec<&str> =
        CATALOGUE.iter().filter(|d| d.kind == MetricKind::Summary).map(|d| d.name).collect();
    let mut used = BTreeSet::new();
    let mut rest = text;
    while let Some(pos) = rest.find("petrel_") {
        let prev = rest[..pos].chars().last();
        let tail = &rest[pos..];
        let end = tail.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(tail.len());
        let name = &tail[..end];
        rest = &tail[end..];
        // `petrel:...` recording rules and names inside URLs or anchors are not metrics.
        if matches!(prev, Some(c) if c.is_ascii_alphanumeric() || c == ':' || c == '#' || c == '/') {
            continue;
        }
        let base = summaries
            .iter()
            .find(|s| name == format!("{s}_sum") || name == format!("{s}_count"))
            .map_or(name, |s| *s);
        used.insert(base.to_owned());
    }
    used
}
