//! promtool, Prometheus's own checker, which the metrics and alert tests run on what Petrel
//! exports and ships.

use std::io::Write as _;
use std::process::{Command, Stdio};

/// The promtool binary, or a panic that says which package provides it.
pub fn promtool() -> &'static str {
    match Command::new("promtool").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(s) if s.success() => "promtool",
        _ => panic!(
            "promtool not found or not working: install the Debian package `prometheus` \
             (apt-get install --no-install-recommends prometheus); these tests validate the \
             metrics output and alert rules with it"
        ),
    }
}

/// Runs `promtool check metrics` on `text`; panics with promtool's report if it objects.
pub fn promtool_check_metrics(text: &str) {
    let mut child = Command::new(promtool())
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success() && output.stdout.is_empty() && output.stderr.is_empty(),
        "promtool check metrics refused the exposition ({}):\n{}{}\n--- exposition ---\n{text}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
}
