//! A Python venv with pinned packages from PyPI, for the interoperability tests that run a
//! client this project did not write.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The python of the venv at `dir` holding `requirements` (pinned, `name==version`): created
/// and installed on first use (python3 >= 3.11 with venv, and PyPI, needed then), reused after.
/// Panics with what to install when it cannot. Tests running at once (the threads of one test
/// binary; cargo runs the binaries one after another) create it once: the first holds the lock
/// while the others wait, then find it ready.
pub fn venv_python(dir: &Path, requirements: &[&str]) -> PathBuf {
    let python = dir.join("bin/python");
    // The marker names what was installed, so a changed pin installs again.
    let ready = dir.join(format!(".installed-{}", requirements.join(",")));
    if ready.exists() {
        return python;
    }
    static CREATING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _creating = CREATING.lock().unwrap_or_else(|p| p.into_inner());
    if ready.exists() {
        return python;
    }
    let status = Command::new("python3").args(["-m", "venv"]).arg(dir).status();
    assert!(
        matches!(status, Ok(s) if s.success()),
        "cannot create a venv with `python3 -m venv` (install python3 >= 3.11 and python3-venv): {status:?}"
    );
    let status = Command::new(&python).args(["-m", "pip", "install", "-q"]).args(requirements).status();
    assert!(
        matches!(status, Ok(s) if s.success()),
        "pip could not install {} from PyPI: {status:?}",
        requirements.join(" ")
    );
    std::fs::write(&ready, b"").unwrap();
    python
}
