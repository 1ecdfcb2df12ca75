//! Real-kernel test: `petrel-tuner apply / verify / rollback` on the live root (`--root /`)
//! inside a private network namespace (`unshare -n`), where the net sysctls listed in
//! shared/guide/system-tests.md are the namespace's own copies. The host's values must not
//! move. Needs root; set PETREL_TUNER_SKIP_ROOT_TESTS=1 to skip on purpose (it says so).

mod common;

use std::collections::BTreeMap;
use std::process::Command;

use common::{text, BIN};

const KNOBS: [&str; 4] =
    ["net.core.somaxconn", "net.ipv4.tcp_notsent_lowat", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem"];

fn root_or_explicit_skip() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var_os("PETREL_TUNER_SKIP_ROOT_TESTS").is_some() {
        eprintln!("SKIPPED: network-namespace test needs root (PETREL_TUNER_SKIP_ROOT_TESTS is set)");
        return false;
    }
    panic!(
        "the network-namespace test needs root (it runs unshare -n); run `cargo test` as root, \
         or set PETREL_TUNER_SKIP_ROOT_TESTS=1 to skip it explicitly"
    );
}

fn read_sysctl(name: &str) -> String {
    let path = format!("/proc/sys/{}", name.replace('.', "/"));
    let raw = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    raw.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A value for each knob that differs from what the host has, so a change is visible.
fn wanted_values() -> BTreeMap<&'static str, String> {
    let pick = |name: &str, a: &str, b: &str| if read_sysctl(name) == a { b } else { a }.to_string();
    BTreeMap::from([
        ("net.core.somaxconn", pick("net.core.somaxconn", "8191", "8190")),
        ("net.ipv4.tcp_notsent_lowat", pick("net.ipv4.tcp_notsent_lowat", "131072", "131073")),
        ("net.ipv4.tcp_rmem", pick("net.ipv4.tcp_rmem", "4096 1048576 16777216", "4096 1048577 16777216")),
        ("net.ipv4.tcp_wmem", pick("net.ipv4.tcp_wmem", "4096 1048576 16777216", "4096 1048577 16777216")),
    ])
}

fn profile_text(values: &BTreeMap<&str, String>) -> String {
    let mut text = String::from("name = \"netns-test\"\n[sysctl]\n");
    for (name, value) in values {
        text.push_str(&format!("\"{name}\" = \"{value}\"\n"));
    }
    text
}

/// Runs `script` in a fresh network namespace with lo up; `$BIN`, `$PROFILE` and `$STATE`
/// are set. The script prints `name=value` lines; they come back as a map.
fn in_namespace(script: &str, profile: &str) -> (BTreeMap<String, String>, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let profile_path = dir.path().join("profile.toml");
    std::fs::write(&profile_path, profile).expect("write profile");
    let mut read_knobs = String::new();
    for (i, knob) in KNOBS.iter().enumerate() {
        let path = format!("/proc/sys/{}", knob.replace('.', "/"));
        read_knobs.push_str(&format!("echo \"k{i}=$(cat {path} | tr -s '[:space:]' ' ' | sed 's/ $//')\"; "));
    }
    let full = format!("set -u; ip link set lo up || exit 99; show() {{ {read_knobs} }}; {script}");
    let out = Command::new("unshare")
        .args(["-n", "sh", "-c", &full])
        .env("BIN", BIN)
        .env("PROFILE", &profile_path)
        .env("STATE", dir.path().join("state"))
        .output()
        .expect("run unshare (util-linux)");
    let log = text(&out);
    assert!(out.status.success(), "namespace script failed: {log}");
    let map = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (map, log)
}

#[test]
fn net_sysctls_apply_verify_and_roll_back_inside_a_namespace_only() {
    if !root_or_explicit_skip() {
        return;
    }
    let host_before: Vec<String> = KNOBS.iter().map(|k| read_sysctl(k)).collect();
    let wanted = wanted_values();
    let script = r#"
        run() { "$BIN" --root / --profile "$PROFILE" --state-dir "$STATE" --only net "$@" >/dev/null 2>&1; }
        echo phase=before; show | sed 's/^/before_/'
        run verify; echo verify_before=$?
        run apply; echo apply=$?
        show | sed 's/^/applied_/'
        run verify; echo verify_applied=$?
        run apply; echo apply_again=$?
        run rollback; echo rollback=$?
        show | sed 's/^/rolled_back_/'
        run verify; echo verify_rolled_back=$?
    "#;
    let (values, log) = in_namespace(script, &profile_text(&wanted));
    let get = |k: &str| values.get(k).cloned().unwrap_or_else(|| panic!("no {k} in {log}"));
    assert_eq!(get("verify_before"), "1", "{log}");
    assert_eq!(get("apply"), "0", "{log}");
    assert_eq!(get("verify_applied"), "0", "{log}");
    assert_eq!(get("apply_again"), "0", "{log}");
    assert_eq!(get("rollback"), "0", "{log}");
    assert_eq!(get("verify_rolled_back"), "1", "{log}");
    for (i, knob) in KNOBS.iter().enumerate() {
        assert_eq!(get(&format!("applied_k{i}")), wanted[knob], "{knob} inside: {log}");
        assert_eq!(
            get(&format!("rolled_back_k{i}")),
            get(&format!("before_k{i}")),
            "{knob} restored inside: {log}"
        );
    }
    let host_after: Vec<String> = KNOBS.iter().map(|k| read_sysctl(k)).collect();
    assert_eq!(host_after, host_before, "the host's own values must not move");
}

#[test]
fn a_value_the_kernel_rejects_restores_the_earlier_changes_inside_a_namespace() {
    if !root_or_explicit_skip() {
        return;
    }
    let mut wanted = wanted_values();
    // Sorted order: somaxconn and tcp_notsent_lowat change first, then tcp_rmem is refused.
    wanted.insert("net.ipv4.tcp_rmem", "4096 1 not-a-number".to_string());
    let script = r#"
        show | sed 's/^/before_/'
        "$BIN" --root / --profile "$PROFILE" --state-dir "$STATE" apply >/dev/null 2>"$STATE.err"
        echo apply=$?
        echo "failed_item=$(sed -n 's/.*apply failed at \(sysctl:[a-z0-9._]*\).*/\1/p' "$STATE.err")"
        echo "restored=$(grep -o 'restored the [0-9]* item' "$STATE.err")"
        show | sed 's/^/after_/'
        test -e "$STATE/state.json"; echo state_left=$?
    "#;
    let (values, log) = in_namespace(script, &profile_text(&wanted));
    let get = |k: &str| values.get(k).cloned().unwrap_or_else(|| panic!("no {k} in {log}"));
    assert_eq!(get("apply"), "4", "{log}");
    assert_eq!(get("failed_item"), "sysctl:net.ipv4.tcp_rmem", "{log}");
    assert_eq!(get("restored"), "restored the 2 item", "{log}");
    for i in 0..KNOBS.len() {
        assert_eq!(get(&format!("after_k{i}")), get(&format!("before_k{i}")), "{log}");
    }
    assert_eq!(get("state_left"), "1", "no state file after a restored failure: {log}");
}
