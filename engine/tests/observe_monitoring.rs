//! The shipped monitoring assets: alert rules checked and unit-tested by promtool, and the
//! rules and dashboard consistent with the metrics catalogue and the alert runbook.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use petrel_engine::metrics::CATALOGUE;

fn monitoring(path: &str) -> PathBuf {
    support::repo_root().join("monitoring").join(path)
}

fn promtool(args: &[&str], dir: &std::path::Path) {
    let out = Command::new(support::promtool()).args(args).current_dir(dir).output().unwrap();
    assert!(
        out.status.success(),
        "promtool {args:?} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn rules_pass_promtool_check_and_unit_tests() {
    let dir = monitoring("prometheus");
    promtool(&["check", "rules", "petrel.rules.yml"], &dir);
    promtool(&["test", "rules", "petrel.rules.test.yml"], &dir);
}

fn alert_names(rules: &str) -> Vec<String> {
    rules.lines().filter_map(|l| l.trim().strip_prefix("- alert: ")).map(|s| s.trim().to_owned()).collect()
}

fn catalogue() -> BTreeSet<String> {
    CATALOGUE.iter().map(|d| d.name.to_owned()).collect()
}

#[test]
fn every_alert_has_severity_a_runbook_section_and_both_test_outcomes() {
    let rules = std::fs::read_to_string(monitoring("prometheus/petrel.rules.yml")).unwrap();
    let tests = std::fs::read_to_string(monitoring("prometheus/petrel.rules.test.yml")).unwrap();
    let runbook = std::fs::read_to_string(support::repo_root().join("docs/ALERTS.md")).unwrap();
    let alerts = alert_names(&rules);
    assert!(alerts.len() >= 14, "{alerts:?}");

    let unknown: Vec<_> =
        support::metrics_sample::petrel_metrics_used(&rules).difference(&catalogue()).cloned().collect();
    assert!(unknown.is_empty(), "rules use metrics the engine does not export: {unknown:?}");

    let headings: BTreeSet<String> =
        runbook.lines().filter_map(|l| l.strip_prefix("## ")).map(|h| h.trim().to_lowercase()).collect();
    let blocks: Vec<&str> = rules.split("- alert: ").skip(1).collect();
    assert_eq!(blocks.len(), alerts.len());
    for (name, block) in alerts.iter().zip(&blocks) {
        assert!(
            ["severity: critical", "severity: warning", "severity: info"].iter().any(|s| block.contains(s)),
            "{name} has no severity"
        );
        let anchor = format!("docs/ALERTS.md#{}", name.to_lowercase());
        assert!(block.contains(&anchor), "{name}: runbook_url should point at {anchor}");
        assert!(headings.contains(&name.to_lowercase()), "docs/ALERTS.md has no section for {name}");

        // In the test file: a case expecting it (exp_labels follows) and one expecting none.
        let cases: Vec<&str> = tests
            .split("- eval_time: ")
            .skip(1)
            .filter(|c| c.contains(&format!("alertname: {name}\n")))
            .collect();
        assert!(cases.iter().any(|c| c.contains("exp_alerts: []")), "{name}: no non-firing test case");
        assert!(cases.iter().any(|c| c.contains("- exp_labels:")), "{name}: no firing test case");
    }
}

#[test]
fn dashboard_is_valid_json_and_covers_every_metric() {
    let text = std::fs::read_to_string(monitoring("grafana/petrel-dashboard.json")).unwrap();
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    assert_eq!(dashboard["uid"], "petrel-engine");
    let panels = dashboard["panels"].as_array().expect("panels");
    let mut exprs = String::new();
    let mut ids = BTreeSet::new();
    for p in panels {
        assert!(ids.insert(p["id"].as_u64().expect("panel id")), "duplicate panel id");
        if p["type"] == "row" {
            continue;
        }
        let targets = p["targets"].as_array().unwrap_or_else(|| panic!("{} has no targets", p["title"]));
        assert!(!targets.is_empty(), "{} has no targets", p["title"]);
        for t in targets {
            exprs.push_str(t["expr"].as_str().expect("expr"));
            exprs.push('\n');
        }
    }
    let used = support::metrics_sample::petrel_metrics_used(&exprs);
    let unknown: Vec<_> = used.difference(&catalogue()).cloned().collect();
    assert!(unknown.is_empty(), "dashboard uses metrics the engine does not export: {unknown:?}");
    let missing: Vec<_> = catalogue().difference(&used).cloned().collect();
    assert!(missing.is_empty(), "no dashboard panel shows {missing:?}");
}
