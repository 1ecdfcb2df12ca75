//! The installed units as systemd reads them: `systemd-analyze verify` clean, and the engine's
//! hardening within its exposure bound.

use crate::systest::container::Container;
use crate::util::Result;

pub fn units_verify_and_security(c: &Container) -> Result {
    let units =
        "petrel-engine.service petrel-tuner.service petrel-tuner-verify.service petrel-tuner-verify.timer";
    let (code, text) = c.sh_status(&format!("systemd-analyze verify --man=no {units}"))?;
    if code != 0 || !text.trim().is_empty() {
        return Err(format!("systemd-analyze verify ({code}):\n{text}"));
    }
    // --threshold counts in tenths of the displayed exposure: 20 is 2.0.
    let report = c.sh(
        "systemd-analyze security --offline=yes --threshold=20 /lib/systemd/system/petrel-engine.service",
    )?;
    let overall = report.lines().find(|l| l.contains("Overall exposure level")).unwrap_or_default();
    println!("    {}", overall.trim());
    let exposure: f64 = overall
        .split(':')
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("no exposure figure in:\n{report}"))?;
    if exposure > 2.0 {
        return Err(format!("petrel-engine.service exposure {exposure} is above 2.0"));
    }
    Ok(())
}
