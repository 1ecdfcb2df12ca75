//! The host seen through a root directory: `/` in production, a fake `/proc` + `/sys` tree in
//! tests. Every read and write of a kernel knob goes through here.
//!
//! Sysctls are read and written as files under `<root>/proc/sys` rather than with the `sysctl`
//! crate: the crate always opens the live `/proc/sys`, which would defeat the fake-tree design,
//! and a sysctl is exactly one small file to read and one `write(2)` to set.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::cpuset::CpuSet;
use crate::error::{Error, Result};

/// Bound on one knob or config file read; the largest kernel knob we read
/// (`/proc/cmdline`, a scheduler list) is far smaller.
pub const READ_LIMIT_BYTES: usize = 64 * 1024;

/// Bound on directory listings (IRQs, CPUs, NICs): a host with more entries than this is not
/// one this tool was written for, and the bound keeps a pathological tree from stalling a run.
pub const DIR_ENTRY_LIMIT: usize = 65_536;

#[derive(Debug, Clone)]
pub struct Host {
    root: PathBuf,
}

impl Host {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// True when this is the live host rather than a fake tree.
    pub fn is_live(&self) -> bool {
        self.root == Path::new("/")
    }

    /// Maps an absolute host path (`/proc/sys/vm/swappiness`) under the root.
    pub fn path(&self, host_path: &str) -> PathBuf {
        debug_assert!(host_path.starts_with('/'), "host paths are absolute: {host_path}");
        self.root.join(host_path.trim_start_matches('/'))
    }

    /// Reads a knob or small file; `None` when it does not exist on this host.
    pub fn read(&self, host_path: &str) -> Result<Option<String>> {
        let path = self.path(host_path);
        let file = match fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(path, e)),
        };
        let mut bytes = Vec::new();
        file.take(READ_LIMIT_BYTES as u64 + 1).read_to_end(&mut bytes).map_err(|e| Error::io(&path, e))?;
        if bytes.len() > READ_LIMIT_BYTES {
            return Err(Error::TooLarge { path, limit_bytes: READ_LIMIT_BYTES });
        }
        Ok(Some(String::from_utf8_lossy(&bytes).into_owned()))
    }

    pub fn exists(&self, host_path: &str) -> bool {
        self.path(host_path).exists()
    }

    /// Writes a kernel knob in one `write(2)`: procfs and sysfs parse each write as a whole
    /// value, so the value must not be split. Truncation only matters for a fake tree.
    pub fn write_knob(&self, host_path: &str, value: &str) -> Result<()> {
        let path = self.path(host_path);
        let mut file =
            fs::OpenOptions::new().write(true).truncate(true).open(&path).map_err(|e| Error::io(&path, e))?;
        let line = format!("{value}\n");
        let written = file.write(line.as_bytes()).map_err(|e| Error::io(&path, e))?;
        if written != line.len() {
            return Err(Error::io(
                &path,
                std::io::Error::other(format!("kernel took {written} of {} bytes", line.len())),
            ));
        }
        Ok(())
    }

    /// Replaces a configuration file atomically (`None` removes it), so a crash leaves either
    /// the old or the new file, never half of one.
    pub fn write_file(&self, host_path: &str, content: Option<&str>) -> Result<()> {
        let path = self.path(host_path);
        match content {
            Some(content) => crate::state::write_atomically(&path, content.as_bytes()),
            None => match fs::remove_file(&path) {
                Ok(()) => crate::state::sync_parent(&path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error::io(path, e)),
            },
        }
    }

    /// Names in a directory, sorted; empty when the directory does not exist.
    pub fn list_dir(&self, host_path: &str) -> Result<Vec<String>> {
        let path = self.path(host_path);
        let entries = match fs::read_dir(&path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(path, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&path, e))?;
            if names.len() == DIR_ENTRY_LIMIT {
                return Err(Error::io(
                    &path,
                    std::io::Error::other(format!("more than {DIR_ENTRY_LIMIT} entries")),
                ));
            }
            names.push(entry.file_name().to_string_lossy().into_owned());
        }
        names.sort_by(|a, b| natural_order(a, b));
        Ok(names)
    }

    pub fn read_cpu_list(&self, host_path: &str) -> Result<Option<CpuSet>> {
        match self.read(host_path)? {
            None => Ok(None),
            Some(text) => CpuSet::parse_list(&text)
                .map(Some)
                .map_err(|source| Error::HostValue { path: self.path(host_path), source }),
        }
    }

    pub fn online_cpus(&self) -> Result<CpuSet> {
        let path = "/sys/devices/system/cpu/online";
        self.read_cpu_list(path)?.ok_or_else(|| {
            Error::io(
                self.path(path),
                std::io::Error::new(std::io::ErrorKind::NotFound, "no list of online CPUs"),
            )
        })
    }

    pub fn cmdline(&self) -> Result<Cmdline> {
        Ok(Cmdline::parse(&self.read("/proc/cmdline")?.unwrap_or_default()))
    }
}

/// Orders `irq2` before `irq10` so reports read like the kernel's own listings.
fn natural_order(a: &str, b: &str) -> std::cmp::Ordering {
    let split = |s: &str| {
        let digits_at = s.find(|c: char| c.is_ascii_digit()).unwrap_or(s.len());
        let (head, tail) = s.split_at(digits_at);
        (head.to_string(), tail.parse::<u64>().ok(), tail.to_string())
    };
    split(a).cmp(&split(b))
}

/// The kernel command line as `name -> value` (a bare flag has the value `""`). Parameters
/// after `--` go to init, not the kernel, and are dropped; the last occurrence wins, as in
/// the kernel.
#[derive(Debug, Clone, Default)]
pub struct Cmdline {
    params: Vec<(String, String)>,
}

impl Cmdline {
    pub fn parse(text: &str) -> Self {
        let mut params = Vec::new();
        for word in text.split_whitespace() {
            if word == "--" {
                break;
            }
            let (name, value) = word.split_once('=').unwrap_or((word, ""));
            params.push((name.to_string(), value.trim_matches('"').to_string()));
        }
        Self { params }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cmdline_last_wins_and_init_args_dropped() {
        let c = Cmdline::parse("ro quiet nohz_full=1 nohz_full=2-3 -- nohz_full=9\n");
        assert_eq!(c.get("nohz_full"), Some("2-3"));
        assert_eq!(c.get("quiet"), Some(""));
        assert_eq!(c.get("rcu_nocbs"), None);
    }

    #[test]
    fn natural_order_puts_small_numbers_first() {
        let mut names = vec!["irq10", "irq2", "default", "irq1"];
        names.sort_by(|a, b| natural_order(a, b));
        assert_eq!(names, ["default", "irq1", "irq2", "irq10"]);
    }
}
