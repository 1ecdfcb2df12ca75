//! Reporters: plan tables, verify drift reports, JSON, and the node_exporter textfile.

use std::fmt::Write as _;
use std::path::Path;

use serde::Serialize;

use crate::error::Result;
use crate::plan::{Action, Plan, PlannedItem};

fn shown(value: &Option<String>) -> &str {
    value.as_deref().unwrap_or("(absent)")
}

fn reason(item: &PlannedItem) -> &str {
    match &item.action {
        Action::Skip { reason } | Action::Unavailable { reason } => reason,
        _ => "",
    }
}

pub fn plan_text(plan: &Plan) -> String {
    let key_width = plan.items.iter().map(|i| i.key.len()).max().unwrap_or(3).max(3);
    let mut out = format!("profile {}\n", plan.profile);
    let _ = writeln!(out, "{:<12} {:<key_width$} {:<24} {:<24} REASON", "ACTION", "KEY", "CURRENT", "WANTED");
    for item in &plan.items {
        let _ = writeln!(
            out,
            "{:<12} {:<key_width$} {:<24} {:<24} {}",
            item.action.label(),
            item.key,
            shown(&item.current),
            item.wanted,
            reason(item)
        );
    }
    let count = |f: fn(&Action) -> bool| plan.items.iter().filter(|i| f(&i.action)).count();
    let _ = writeln!(
        out,
        "{} to set, {} already set, {} skipped, {} need a reboot, {} unavailable",
        count(|a| *a == Action::Set),
        count(|a| *a == Action::AlreadySet),
        count(|a| matches!(a, Action::Skip { .. })),
        count(|a| *a == Action::NeedsReboot),
        count(|a| matches!(a, Action::Unavailable { .. })),
    );
    out
}

pub fn verify_text(plan: &Plan) -> String {
    let drift: Vec<&PlannedItem> = plan.drift().collect();
    let skipped = plan.items.iter().filter(|i| matches!(i.action, Action::Skip { .. })).count();
    let checked = plan.items.len() - skipped;
    if drift.is_empty() {
        return format!(
            "OK: host matches profile {} ({checked} items match, {skipped} skipped)\n",
            plan.profile
        );
    }
    let mut out = format!("DRIFT: {} of {checked} items differ from profile {}\n", drift.len(), plan.profile);
    for item in drift {
        let why = match &item.action {
            Action::NeedsReboot => " (kernel command line: reboot needed)".to_string(),
            Action::Unavailable { reason } => format!(" (required: {reason})"),
            _ => String::new(),
        };
        let _ =
            writeln!(out, "  {}: current {}, wanted {}{why}", item.key, shown(&item.current), item.wanted);
    }
    out
}

#[derive(Serialize)]
struct VerifyJson<'a> {
    profile: &'a str,
    ok: bool,
    drift: Vec<&'a PlannedItem>,
    items: &'a [PlannedItem],
}

pub fn verify_json(plan: &Plan) -> String {
    let report = VerifyJson {
        profile: &plan.profile,
        ok: plan.drift().next().is_none(),
        drift: plan.drift().collect(),
        items: &plan.items,
    };
    serde_json::to_string_pretty(&report).expect("plain structs serialise") + "\n"
}

pub fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value).expect("plain structs serialise") + "\n"
}

/// Prometheus text format for node_exporter's textfile collector: one gauge per checked item
/// (1 = drift) and a total, so an alert can fire on the total and name the item.
pub fn textfile(plan: &Plan, unix_time_s: u64) -> String {
    let profile = escape_label(&plan.profile);
    let mut out = String::new();
    out.push_str("# HELP petrel_tuner_drift 1 when the item differs from the petrel-tuner profile.\n");
    out.push_str("# TYPE petrel_tuner_drift gauge\n");
    for item in &plan.items {
        if matches!(item.action, Action::Skip { .. }) {
            continue;
        }
        let _ = writeln!(
            out,
            "petrel_tuner_drift{{profile=\"{profile}\",key=\"{}\"}} {}",
            escape_label(&item.key),
            u8::from(item.action.is_drift())
        );
    }
    out.push_str("# HELP petrel_tuner_drift_items Items that differ from the petrel-tuner profile.\n");
    out.push_str("# TYPE petrel_tuner_drift_items gauge\n");
    let _ = writeln!(out, "petrel_tuner_drift_items{{profile=\"{profile}\"}} {}", plan.drift().count());
    out.push_str("# HELP petrel_tuner_verify_timestamp_seconds When petrel-tuner verify last ran.\n");
    out.push_str("# TYPE petrel_tuner_verify_timestamp_seconds gauge\n");
    let _ = writeln!(out, "petrel_tuner_verify_timestamp_seconds{{profile=\"{profile}\"}} {unix_time_s}");
    out
}

/// Written atomically: node_exporter must never scrape half a file.
pub fn write_textfile(path: &Path, plan: &Plan, unix_time_s: u64) -> Result<()> {
    crate::state::write_atomically(path, textfile(plan, unix_time_s).as_bytes())
}

fn escape_label(value: &str) -> String {
    value.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}
