//! petrel-tuner from its .deb: installed without touching the host, applied by its service
//! before the engine, undone by rollback, and its verify timer catching drift.

use super::checks::{expect_contains, expect_eq};
use super::install::apt_install;
use super::query::show;
use crate::systest::container::Container;
use crate::systest::Packages;
use crate::util::Result;

/// Sysctls a container with a private network may change (see system-tests.md).
const NET_PROFILE: &str = r#"name = "systest-net"
description = "net.* only: what a container with its own network namespace may change"

[sysctl]
"net.core.somaxconn" = 8192
"net.ipv4.tcp_slow_start_after_idle" = 0
"#;

const TEXTFILE: &str = "/var/lib/prometheus/node-exporter/petrel-tuner.prom";

pub fn tuner_deb_install(c: &Container, p: &Packages) -> Result {
    let before = c.sh("sysctl -n net.core.somaxconn")?;
    let deb = c.copy_in(&p.tuner_deb)?;
    let log = apt_install(c, &[deb])?;
    expect_contains("postinst message", &log, "systemctl start petrel-tuner")?;
    expect_eq("petrel-tuner.service enabled", &show(c, "petrel-tuner.service", "UnitFileState")?, "enabled")?;
    expect_eq("verify timer enabled", &show(c, "petrel-tuner-verify.timer", "UnitFileState")?, "enabled")?;
    expect_eq("verify timer active", &show(c, "petrel-tuner-verify.timer", "ActiveState")?, "active")?;
    expect_eq("tuner not run by the install", &show(c, "petrel-tuner.service", "ActiveState")?, "inactive")?;
    expect_eq("host unchanged by the install", &c.sh("sysctl -n net.core.somaxconn")?, &before)?;
    let conffiles = c.sh("dpkg-query -W -f='${Conffiles}' petrel-tuner")?;
    expect_contains("conffiles", &conffiles, "/etc/petrel/tuner.toml")?;
    expect_contains("conffiles", &conffiles, "/etc/default/petrel-tuner")?;
    c.sh("test -d /var/lib/petrel/tuner && test \"$(stat -c %a /var/lib/petrel/tuner)\" = 700")?;
    c.sh("man -w petrel-tuner >/dev/null 2>&1 || test -e /usr/share/man/man1/petrel-tuner.1.gz")?;
    let before_list = show(c, "petrel-tuner.service", "Before")?;
    expect_contains("petrel-tuner.service Before=", &before_list, "petrel-engine.service")
}

pub fn tuner_service_applies(c: &Container) -> Result {
    c.sh(&format!("cat > /etc/petrel/tuner.toml <<'EOF'\n{NET_PROFILE}EOF"))?;
    c.sh("sysctl -w net.core.somaxconn=128 net.ipv4.tcp_slow_start_after_idle=1 >/dev/null")?;
    c.sh("systemctl start petrel-tuner.service")?;
    expect_eq("tuner active", &show(c, "petrel-tuner.service", "ActiveState")?, "active")?;
    expect_eq("RemainAfterExit", &show(c, "petrel-tuner.service", "SubState")?, "exited")?;
    expect_eq("somaxconn applied", c.sh("sysctl -n net.core.somaxconn")?.trim(), "8192")?;
    expect_eq("slow start applied", c.sh("sysctl -n net.ipv4.tcp_slow_start_after_idle")?.trim(), "0")?;
    // The host's own value is not touched: the container has its own network namespace.
    let host = std::fs::read_to_string("/proc/sys/net/core/somaxconn").map_err(|e| e.to_string())?;
    if host.trim() == "8192" {
        return Err("the host's net.core.somaxconn is 8192: did the tuner leak out of the container?".into());
    }
    c.sh("petrel-tuner rollback")?;
    expect_eq("rollback restores", c.sh("sysctl -n net.core.somaxconn")?.trim(), "128")?;
    // Apply again for the drift scenario (the oneshot is already active: restart runs it again).
    c.sh("systemctl restart petrel-tuner.service")?;
    expect_eq("somaxconn re-applied", c.sh("sysctl -n net.core.somaxconn")?.trim(), "8192")
}

pub fn tuner_verify_detects_drift(c: &Container) -> Result {
    c.sh("systemctl start petrel-tuner-verify.service")?;
    let textfile = c.sh(&format!("cat {TEXTFILE}"))?;
    expect_contains(
        "textfile after a clean verify",
        &textfile,
        "petrel_tuner_drift_items{profile=\"systest-net\"} 0",
    )?;
    c.sh("sysctl -w net.core.somaxconn=256 >/dev/null")?;
    let (code, _) = c.sh_status("systemctl start petrel-tuner-verify.service")?;
    if code == 0 {
        return Err("petrel-tuner-verify.service succeeded on a drifted host".into());
    }
    expect_eq("verify result", &show(c, "petrel-tuner-verify.service", "Result")?, "exit-code")?;
    let textfile = c.sh(&format!("cat {TEXTFILE}"))?;
    expect_contains(
        "textfile after drift",
        &textfile,
        "petrel_tuner_drift_items{profile=\"systest-net\"} 1",
    )?;
    let log = c.sh("journalctl -u petrel-tuner-verify.service --no-pager -o cat")?;
    expect_contains("verify log names the item", &log, "net.core.somaxconn")?;
    let next = show(c, "petrel-tuner-verify.timer", "NextElapseUSecMonotonic")?;
    if next.is_empty() || next == "0" || next == "infinity" {
        return Err(format!("the verify timer has no next run scheduled ({next:?})"));
    }
    c.sh("systemctl reset-failed petrel-tuner-verify.service && petrel-tuner rollback >/dev/null").map(|_| ())
}
