//! The control node's Ansible: a virtual environment under target/ with exactly
//! ansible/requirements.txt installed, reused while that file is unchanged.

use crate::util::{run, Result};
use std::fs;
use std::path::{Path, PathBuf};

const VENV_DIR: &str = "target/ansible-venv";
const REQUIREMENTS: &str = "ansible/requirements.txt";
/// A copy of the requirements the venv was built from: equal contents mean nothing to install.
const STAMP: &str = "target/ansible-venv/requirements.installed";

/// The venv's bin directory, with ansible-playbook and ansible-lint in it.
pub fn ensure() -> Result<PathBuf> {
    let bin = Path::new(VENV_DIR).join("bin");
    let wanted = fs::read_to_string(REQUIREMENTS).map_err(|e| format!("cannot read {REQUIREMENTS}: {e}"))?;
    if fs::read_to_string(STAMP).is_ok_and(|installed| installed == wanted) {
        return absolute(&bin);
    }
    if Path::new(VENV_DIR).exists() {
        fs::remove_dir_all(VENV_DIR).map_err(|e| format!("cannot remove {VENV_DIR}: {e}"))?;
    }
    run("create the Ansible venv", "python3", &["-m", "venv", VENV_DIR], &[], None)?;
    let pip = bin.join("pip");
    let pip = pip.to_str().ok_or("venv path is not UTF-8")?;
    run(
        "install ansible/requirements.txt (PyPI)",
        pip,
        &["install", "--quiet", "--disable-pip-version-check", "-r", REQUIREMENTS],
        &[],
        None,
    )?;
    fs::write(STAMP, wanted).map_err(|e| format!("cannot write {STAMP}: {e}"))?;
    absolute(&bin)
}

pub fn absolute(path: &Path) -> Result<PathBuf> {
    fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))
}
