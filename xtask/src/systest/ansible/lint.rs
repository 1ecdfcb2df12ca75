//! The static checks of ansible/: `ansible-lint` with the production profile (clean), a syntax
//! check of every playbook (against the production inventory), and every inventory parsed.

use super::venv;
use crate::util::{run, Result};
use std::path::Path;

const INVENTORIES: &[&str] = &["inventories/dev", "inventories/staging", "inventories/production"];

/// The environment every Ansible command of the tests runs with (in ansible/).
pub fn environment(bin: &Path) -> Result<Vec<(String, String)>> {
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    Ok(vec![
        ("PATH".into(), path),
        ("ANSIBLE_CONFIG".into(), venv::absolute(Path::new("ansible/ansible.cfg"))?.display().to_string()),
        ("ANSIBLE_VAULT_PASSWORD_FILE".into(), "tests/vault-password".into()),
        ("ANSIBLE_NOCOLOR".into(), "1".into()),
        ("ANSIBLE_FORCE_COLOR".into(), "0".into()),
        ("NO_COLOR".into(), "1".into()),
    ])
}

pub fn lint() -> Result {
    let bin = venv::ensure()?;
    let env = environment(&bin)?;
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let dir = Some(Path::new("ansible"));
    let tool = |name: &str| bin.join(name).display().to_string();
    run("ansible-lint (production profile)", &tool("ansible-lint"), &["--profile", "production"], &env, dir)?;
    let mut playbooks: Vec<String> = std::fs::read_dir("ansible/playbooks")
        .map_err(|e| format!("cannot list ansible/playbooks: {e}"))?
        .flatten()
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.ends_with(".yml"))
        .collect();
    playbooks.sort();
    for inventory in INVENTORIES {
        run(
            &format!("parse {inventory}"),
            &tool("ansible-inventory"),
            &["-i", inventory, "--graph"],
            &env,
            dir,
        )?;
    }
    for playbook in &playbooks {
        let path = format!("playbooks/{playbook}");
        run(
            &format!("syntax check {path}"),
            &tool("ansible-playbook"),
            &["--syntax-check", "-i", "inventories/production", &path],
            &env,
            dir,
        )?;
    }
    Ok(())
}
