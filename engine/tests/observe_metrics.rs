//! The full exposition the engine will serve is accepted by `promtool check metrics`, and
//! docs/METRICS.md documents exactly the catalogue.

mod support;

use std::collections::BTreeSet;

use petrel_engine::metrics::{MetricKind, CATALOGUE};

#[test]
fn full_sample_passes_promtool_check_metrics() {
    let mut out = String::new();
    support::metrics_sample::render_full_sample(&mut out);
    for def in CATALOGUE {
        assert!(out.contains(&format!("# TYPE {} ", def.name)), "{} not rendered", def.name);
    }
    support::promtool_check_metrics(&out);
}

#[test]
fn promtool_check_is_not_a_rubber_stamp() {
    // The same checker refuses a counter without HELP text, so the test above can fail.
    let result = std::panic::catch_unwind(|| support::promtool_check_metrics("petrel_x_total 1\n"));
    assert!(result.is_err());
}

#[test]
fn metrics_md_documents_exactly_the_catalogue() {
    let doc = std::fs::read_to_string(support::repo_root().join("docs/METRICS.md")).unwrap();
    let documented = support::metrics_sample::petrel_metrics_used(&doc);
    let catalogue: BTreeSet<String> = CATALOGUE.iter().map(|d| d.name.to_owned()).collect();
    let undocumented: Vec<_> = catalogue.difference(&documented).collect();
    let unknown: Vec<_> = documented.difference(&catalogue).collect();
    assert!(undocumented.is_empty(), "in metrics::CATALOGUE but not docs/METRICS.md: {undocumented:?}");
    assert!(unknown.is_empty(), "in docs/METRICS.md but not metrics::CATALOGUE: {unknown:?}");
    for def in CATALOGUE {
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", def.name)))
            .unwrap_or_else(|| panic!("no table row for {}", def.name));
        let kind = match def.kind {
            MetricKind::Counter => "| counter |",
            MetricKind::Gauge => "| gauge |",
            MetricKind::Summary => "| summary |",
        };
        assert!(row.contains(kind), "{}: type differs from the catalogue: {row}", def.name);
        if let Some(label) = def.label {
            assert!(row.contains(&format!("`{label}`")), "{}: label {label} undocumented: {row}", def.name);
        }
    }
}
