//! A Debian 12 root filesystem booted with systemd-nspawn, as /work/shared/guide/system-tests.md
//! describes: the rootfs is built once with debootstrap and cached as a tarball under target/,
//! each session unpacks a fresh copy, boots it detached (setsid, --keep-unit, private network),
//! runs commands in it with nsenter into its PID 1, and always powers it off, also when a
//! scenario fails (Drop).

use crate::util::{output, run, Result};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::thread::sleep;
use std::time::Duration;

const SUITE: &str = "bookworm";
/// What the scenarios use inside: systemd itself, dbus for systemctl, procps (pgrep, sysctl),
/// iproute2, python3 (the trading client), rpm (installing the .rpm packages), python3-apt
/// (Ansible's apt and dpkg_selections modules on the playbooks' hosts).
const INCLUDE: &[&str] = &[
    "systemd",
    "systemd-sysv",
    "dbus",
    "libpam-systemd",
    "iproute2",
    "procps",
    "python3",
    "rpm",
    "python3-apt",
];
const WORK_DIR: &str = "target/systest";
/// Polling bounds: the container's PID 1 appears within a second and boots in about one; these
/// bounds only stop a hung boot from hanging the test run.
const POLL_INTERVAL: Duration = Duration::from_millis(250);
const POLLS_FOR_PID1: u32 = 240;
const POLLS_FOR_BOOT: u32 = 480;
const POLLS_FOR_EXIT: u32 = 120;

/// The cached root filesystem tarball, built with debootstrap when missing.
pub fn rootfs_tarball() -> Result<PathBuf> {
    let key = format!("{SUITE}-minbase-{}", INCLUDE.join("+"));
    let tarball = Path::new(WORK_DIR).join(format!("rootfs-{key}.tar"));
    if tarball.exists() {
        return Ok(tarball);
    }
    let mirror = mirror();
    let build = Path::new(WORK_DIR).join("debootstrap");
    if build.exists() {
        fs::remove_dir_all(&build).map_err(|e| format!("cannot remove {}: {e}", build.display()))?;
    }
    fs::create_dir_all(&build).map_err(|e| format!("cannot create {}: {e}", build.display()))?;
    let include = format!("--include={}", INCLUDE.join(","));
    run(
        "debootstrap Debian 12 rootfs (once; cached)",
        "debootstrap",
        &["--variant=minbase", &include, SUITE, path_str(&build)?, &mirror],
        &[],
        None,
    )?;
    let partial = tarball.with_extension("tar.partial");
    run(
        "cache rootfs",
        "tar",
        &["-C", path_str(&build)?, "--numeric-owner", "-cf", path_str(&partial)?, "."],
        &[],
        None,
    )?;
    fs::rename(&partial, &tarball).map_err(|e| format!("cannot rename {}: {e}", partial.display()))?;
    fs::remove_dir_all(&build).map_err(|e| format!("cannot remove {}: {e}", build.display()))?;
    Ok(tarball)
}

/// PETREL_DEBIAN_MIRROR, else the first Debian URI configured on this host, else deb.debian.org.
fn mirror() -> String {
    if let Ok(mirror) = std::env::var("PETREL_DEBIAN_MIRROR") {
        return mirror;
    }
    let sources = fs::read_dir("/etc/apt/sources.list.d")
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .chain([PathBuf::from("/etc/apt/sources.list")]);
    for path in sources {
        let Ok(text) = fs::read_to_string(&path) else { continue };
        for line in text.lines() {
            let line = line.trim();
            let uri = line.strip_prefix("URIs:").map(str::trim).or_else(|| {
                line.strip_prefix("deb ")
                    .and_then(|rest| rest.split_whitespace().find(|w| w.starts_with("http")))
            });
            if let Some(uri) = uri {
                if uri.contains("debian") && !uri.contains("security") {
                    return uri.split_whitespace().next().unwrap_or(uri).to_string();
                }
            }
        }
    }
    "http://deb.debian.org/debian".to_string()
}

fn path_str(path: &Path) -> Result<&str> {
    path.to_str().ok_or_else(|| format!("path is not UTF-8: {}", path.display()))
}

/// A booted container. Dropping it powers it off (and kills the nspawn process this harness
/// started if the container does not stop).
pub struct Container {
    name: String,
    rootfs: PathBuf,
    nspawn: Child,
    pid1: u32,
    log: PathBuf,
}

impl Container {
    /// Unpacks a fresh rootfs from `tarball` and boots it.
    pub fn boot(name: &str, tarball: &Path) -> Result<Container> {
        Container::boot_with(name, tarball, &[])
    }

    /// As [`Container::boot`], with more systemd-nspawn options (e.g. `--bind-ro=`).
    pub fn boot_with(name: &str, tarball: &Path, nspawn_args: &[String]) -> Result<Container> {
        Container::boot_on(name, tarball, nspawn_args, None)
    }

    /// As [`Container::boot_with`], its network a port of `bridge` in the network namespace
    /// `netns` (/run/netns/NAME) instead of a private network of its own: containers on one
    /// bridge reach each other, and nothing else (system-tests.md, "Two or more booted hosts").
    pub fn boot_on_bridge(
        name: &str,
        tarball: &Path,
        nspawn_args: &[String],
        netns: &str,
        bridge: &str,
    ) -> Result<Container> {
        Container::boot_on(name, tarball, nspawn_args, Some((netns, bridge)))
    }

    fn boot_on(
        name: &str,
        tarball: &Path,
        nspawn_args: &[String],
        bridge: Option<(&str, &str)>,
    ) -> Result<Container> {
        let dir = Path::new(WORK_DIR).join("run").join(name);
        if dir.exists() {
            fs::remove_dir_all(&dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
        }
        let rootfs = dir.join("rootfs");
        fs::create_dir_all(&rootfs).map_err(|e| format!("cannot create {}: {e}", rootfs.display()))?;
        run(
            "unpack rootfs",
            "tar",
            &["-C", path_str(&rootfs)?, "--numeric-owner", "-xpf", path_str(tarball)?],
            &[],
            None,
        )?;
        let log = dir.join("nspawn.log");
        let log_file = fs::File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let log_err = log_file.try_clone().map_err(|e| format!("cannot open {}: {e}", log.display()))?;
        println!("\n==> boot container {name} (systemd-nspawn, log {})", log.display());
        // setsid: detached from the test's terminal; it execs nspawn in place, so the child's
        // pid is nspawn's. --private-network: net.* sysctls writable, nothing reaches the host.
        // nsenter, not `ip netns exec`: that remounts /sys, and nspawn then cannot tell which
        // cgroup hierarchy is in use.
        let mut command = Command::new("setsid");
        let network = match bridge {
            None => "--private-network".to_string(),
            Some((netns, bridge)) => {
                command.args(["nsenter", &format!("--net=/run/netns/{netns}")]);
                format!("--network-bridge={bridge}")
            }
        };
        let nspawn = command
            .args(["systemd-nspawn", "-D", path_str(&rootfs)?, "-b", "--register=no", "--keep-unit"])
            .args(["--console=passive", "-M", name, &network, "--capability=CAP_IPC_LOCK"])
            .args(nspawn_args)
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err)
            .spawn()
            .map_err(|e| format!("cannot start systemd-nspawn: {e}"))?;
        let mut container = Container { name: name.to_string(), rootfs, nspawn, pid1: 0, log };
        container.pid1 = container.wait_for_pid1()?;
        container.wait_for_boot()?;
        Ok(container)
    }

    /// The container's PID 1, as the host sees it (what `nsenter -t` and Ansible's nsenter
    /// connection enter).
    pub fn pid1(&self) -> u32 {
        self.pid1
    }

    fn nspawn_log(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The container's PID 1 is nspawn's child.
    fn wait_for_pid1(&mut self) -> Result<u32> {
        let nspawn_pid = self.nspawn.id();
        let children = format!("/proc/{nspawn_pid}/task/{nspawn_pid}/children");
        for _ in 0..POLLS_FOR_PID1 {
            if let Ok(Some(status)) = self.nspawn.try_wait() {
                return Err(format!(
                    "systemd-nspawn exited ({status}) before booting:\n{}",
                    self.nspawn_log()
                ));
            }
            if let Some(pid) =
                fs::read_to_string(&children).ok().and_then(|s| s.split_whitespace().next()?.parse().ok())
            {
                return Ok(pid);
            }
            sleep(POLL_INTERVAL);
        }
        Err(format!("container {}: no PID 1 appeared under systemd-nspawn (pid {nspawn_pid})", self.name))
    }

    fn wait_for_boot(&mut self) -> Result {
        let mut last = String::new();
        for _ in 0..POLLS_FOR_BOOT {
            if let Ok(Some(status)) = self.nspawn.try_wait() {
                return Err(format!(
                    "systemd-nspawn exited ({status}) while booting:\n{}",
                    self.nspawn_log()
                ));
            }
            if let Ok(out) = self.exec(&["systemctl", "is-system-running"]) {
                last = String::from_utf8_lossy(&out.stdout).trim().to_string();
                if last == "running" || last == "degraded" {
                    println!("<== container {} booted: {last}", self.name);
                    return Ok(());
                }
            }
            sleep(POLL_INTERVAL);
        }
        Err(format!("container {} did not finish booting (last state: {last:?})", self.name))
    }

    /// Runs a command inside, with a clean environment; returns its output whatever its status.
    pub fn exec(&self, argv: &[&str]) -> Result<Output> {
        let pid1 = self.pid1.to_string();
        let mut args =
            vec!["-t", &pid1, "-a", "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"];
        args.push("DEBIAN_FRONTEND=noninteractive");
        args.extend(argv);
        output("nsenter", &args)
    }

    /// Starts a program inside with its stdin and stdout piped to this process; its stderr is
    /// this process's, so that what it says on failure lands in the test log.
    pub fn spawn(&self, argv: &[&str]) -> Result<Child> {
        Command::new("nsenter")
            .args(["-t", &self.pid1.to_string(), "-a", "env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin"])
            .arg("LANG=C.UTF-8")
            .args(argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start `{}` in container {}: {e}", argv.join(" "), self.name))
    }

    /// Runs a shell script inside; it must exit 0. Returns stdout and stderr together.
    pub fn sh(&self, script: &str) -> Result<String> {
        let out = self.exec(&["sh", "-ec", script])?;
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        if out.status.success() {
            Ok(text)
        } else {
            Err(format!(
                "in container {}: `{script}` failed ({}):\n{}",
                self.name,
                out.status,
                text.trim_end()
            ))
        }
    }

    /// Runs a shell script inside and returns (exit code, stdout and stderr together).
    pub fn sh_status(&self, script: &str) -> Result<(i32, String)> {
        let out = self.exec(&["sh", "-c", script])?;
        let text =
            format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        Ok((out.status.code().unwrap_or(-1), text))
    }

    /// Copies a host file to /root/NAME inside (the container's /tmp is its own tmpfs).
    pub fn copy_in(&self, file: &Path) -> Result<String> {
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .ok_or_else(|| format!("bad file name {}", file.display()))?;
        let target = self.rootfs.join("root").join(name);
        fs::copy(file, &target)
            .map_err(|e| format!("cannot copy {} into the container: {e}", file.display()))?;
        Ok(format!("/root/{name}"))
    }

    /// Saves the container's journal next to its rootfs, for the post-mortem of a failure.
    fn save_journal(&self) {
        if let Ok(out) = self.exec(&["journalctl", "-b", "--no-pager", "-o", "short-monotonic"]) {
            let path = self.log.with_file_name("journal.txt");
            if fs::write(&path, &out.stdout).is_ok() {
                println!("    container journal saved to {}", path.display());
            }
        }
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.save_journal();
        let _ = self.exec(&["systemctl", "poweroff"]);
        for _ in 0..POLLS_FOR_EXIT {
            if let Ok(Some(_)) = self.nspawn.try_wait() {
                println!("<== container {} powered off", self.name);
                return;
            }
            sleep(POLL_INTERVAL);
        }
        eprintln!("container {} did not power off; killing its systemd-nspawn", self.name);
        let _ = self.nspawn.kill();
        let _ = self.nspawn.wait();
    }
}
