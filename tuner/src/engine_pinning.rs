//! Does the engine's thread pinning fit the profile's split of the CPUs? The data-plane threads
//! (gateway, sequencer, journal) belong on the isolated CPUs, housekeeping on the housekeeping
//! CPUs. Read from the engine's configuration file (`[runtime.<thread>] cores`), so that
//! `verify --engine-config` catches a host whose engine and tuning disagree.

use crate::cpuset::CpuSet;
use crate::error::{Error, Result};
use crate::profile::Cores;
use std::path::Path;

/// One disagreement between the engine's pinning and the profile.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    pub thread: &'static str,
    pub problem: String,
}

const DATA_PLANE: [&str; 3] = ["gateway", "sequencer", "journal"];

fn cores_of(runtime: Option<&toml::Table>, thread: &str, path: &Path) -> Result<Option<CpuSet>> {
    let Some(value) = runtime.and_then(|r| r.get(thread)).and_then(|t| t.get("cores")) else {
        return Ok(None);
    };
    let list = value.as_array().ok_or_else(|| {
        Error::Usage(format!("{}: runtime.{thread}.cores must be a list of CPU numbers", path.display()))
    })?;
    let mut text = Vec::with_capacity(list.len());
    for cpu in list {
        let n = cpu.as_integer().filter(|n| *n >= 0).ok_or_else(|| {
            Error::Usage(format!("{}: runtime.{thread}.cores holds {cpu}, not a CPU number", path.display()))
        })?;
        text.push(n.to_string());
    }
    if text.is_empty() {
        return Ok(None);
    }
    CpuSet::parse_list(&text.join(","))
        .map(Some)
        .map_err(|e| Error::Usage(format!("{}: runtime.{thread}.cores: {e}", path.display())))
}

/// Compares the engine configuration at `path` with the profile's cores.
pub fn check(path: &Path, cores: &Cores) -> Result<Vec<Finding>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.into(), source })?;
    let config: toml::Table = text
        .parse()
        .map_err(|e| Error::Usage(format!("{}: not a valid engine configuration: {e}", path.display())))?;
    let runtime = config.get("runtime").and_then(|r| r.as_table());
    let mut findings = Vec::new();
    for thread in DATA_PLANE {
        match cores_of(runtime, thread, path)? {
            None => findings.push(Finding {
                thread,
                problem: format!("not pinned; the profile isolates CPUs {} for the engine", cores.isolated),
            }),
            Some(set) => {
                let outside: Vec<String> =
                    set.iter().filter(|c| !cores.isolated.contains(*c)).map(|c| c.to_string()).collect();
                if !outside.is_empty() {
                    findings.push(Finding {
                        thread,
                        problem: format!(
                            "pinned to CPU {} outside the isolated CPUs {}",
                            outside.join(","),
                            cores.isolated
                        ),
                    });
                }
            }
        }
    }
    if let Some(set) = cores_of(runtime, "housekeeping", path)? {
        let outside: Vec<String> =
            set.iter().filter(|c| !cores.housekeeping.contains(*c)).map(|c| c.to_string()).collect();
        if !outside.is_empty() {
            findings.push(Finding {
                thread: "housekeeping",
                problem: format!(
                    "pinned to CPU {} outside the housekeeping CPUs {}",
                    outside.join(","),
                    cores.housekeeping
                ),
            });
        }
    }
    Ok(findings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cores() -> Cores {
        Cores {
            housekeeping: CpuSet::parse_list("0-1").unwrap(),
            isolated: CpuSet::parse_list("2-15").unwrap(),
        }
    }

    fn write(text: &str) -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("engine.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn the_shipped_production_layout_fits_trading_16core() {
        let path = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../config/production.toml"));
        assert_eq!(check(path, &cores()).unwrap(), vec![]);
    }

    #[test]
    fn unpinned_and_misplaced_threads_are_findings() {
        let (_dir, path) = write(
            "[runtime.gateway]\ncores = [2]\n[runtime.sequencer]\ncores = [1]\n[runtime.housekeeping]\ncores = [5]\n",
        );
        let findings = check(&path, &cores()).unwrap();
        let threads: Vec<&str> = findings.iter().map(|f| f.thread).collect();
        assert_eq!(threads, vec!["sequencer", "journal", "housekeeping"], "{findings:?}");
        assert!(findings[0].problem.contains("CPU 1 outside the isolated CPUs 2-15"), "{findings:?}");
        assert!(findings[1].problem.contains("not pinned"), "{findings:?}");
    }

    #[test]
    fn a_bad_file_is_an_error_that_names_it() {
        let (_dir, path) = write("[runtime.gateway]\ncores = \"two\"\n");
        let err = check(&path, &cores()).unwrap_err().to_string();
        assert!(err.contains("engine.toml") && err.contains("runtime.gateway.cores"), "{err}");
        let (_dir, path) = write("not toml [");
        assert!(check(&path, &cores()).unwrap_err().to_string().contains("not a valid engine configuration"));
    }
}
