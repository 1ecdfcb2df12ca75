//! Real-kernel test of the global knobs (/proc/irq, THP, global sysctls, workqueue cpumask):
//! a Debian 12 VM booted with QEMU under software emulation runs
//! `petrel-tuner verify; apply; verify; apply; rollback; verify` as its init and powers off;
//! the results come back over the serial console. Nothing on the machine running the test is
//! tuned.
//!
//! Slow (minutes: about 100 s to debootstrap the first time, then about a minute to boot),
//! so it is ignored by default. Run it, as root, with
//!     cargo test -p petrel-tuner --test vm -- --ignored
//! Needs the Debian packages debootstrap, qemu-system-x86 and e2fsprogs, and a Debian mirror
//! (PETREL_DEBIAN_MIRROR, default http://deb.debian.org/debian). The root filesystem is cached
//! under target/tmp/tuner-vm/, keyed by its package list.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SUITE: &str = "bookworm";
const PACKAGES: &str = "linux-image-amd64,initramfs-tools";
/// A hang guard for a VM that never powers off, not a performance threshold.
const VM_HANG_GUARD: Duration = Duration::from_secs(900);
/// Bound on the console output kept; a normal run prints a few KiB.
const CONSOLE_LIMIT_BYTES: u64 = 16 * 1024 * 1024;

const PROFILE: &str = r#"name = "vm-global"

[cores]
housekeeping = "0"
isolated = "1"

[sysctl]
"vm.swappiness" = 1
"vm.stat_interval" = 7
"kernel.io_uring_disabled" = 0

[irq]

[cpu]
governor = "performance"

[memory]
transparent_hugepages = "never"
ksm = false

[workqueue]
housekeeping_only = true
"#;

const INIT: &str = r#"#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
B=/petrel/petrel-tuner
rm -rf /petrel/state
run() { "$B" --profile /petrel/profile.toml --state-dir /petrel/state "$@"; echo "PETREL-RC $* $?"; }
show() {
  echo "PETREL-VAL $1 thp $(cat /sys/kernel/mm/transparent_hugepage/enabled)"
  echo "PETREL-VAL $1 irq_default $(cat /proc/irq/default_smp_affinity)"
  echo "PETREL-VAL $1 workqueue $(cat /sys/devices/virtual/workqueue/cpumask)"
  echo "PETREL-VAL $1 swappiness $(cat /proc/sys/vm/swappiness)"
  echo "PETREL-VAL $1 stat_interval $(cat /proc/sys/vm/stat_interval)"
}
echo PETREL-BEGIN
"$B" --profile /petrel/profile.toml facts
show before
run verify
run apply
show applied
run verify
run apply
run rollback
show rolled_back
run verify
echo PETREL-END
sync
echo o > /proc/sysrq-trigger
sleep 30
"#;

fn require_tool(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).exists()))
        .unwrap_or(false)
        || Path::new("/usr/sbin").join(tool).exists();
    assert!(found, "{tool} not found: apt-get install -y {package}");
}

fn run(command: &mut Command) {
    let status = command.status().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(status.success(), "{command:?} failed: {status}");
}

/// The Debian root filesystem with a kernel, built once per package list.
fn cached_rootfs() -> PathBuf {
    let key = format!("{SUITE}-minbase-{}", PACKAGES.replace(',', "+"));
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("tuner-vm").join(key);
    let rootfs = dir.join("rootfs");
    if dir.join("complete").exists() {
        return rootfs;
    }
    let mirror =
        std::env::var("PETREL_DEBIAN_MIRROR").unwrap_or_else(|_| "http://deb.debian.org/debian".to_string());
    let partial = dir.join("rootfs.partial");
    let _ = std::fs::remove_dir_all(&partial);
    std::fs::create_dir_all(&dir).expect("cache dir");
    run(Command::new("debootstrap")
        .args(["--variant=minbase", &format!("--include={PACKAGES}"), SUITE])
        .arg(&partial)
        .arg(&mirror));
    let _ = std::fs::remove_dir_all(&rootfs);
    std::fs::rename(&partial, &rootfs).expect("publish rootfs");
    std::fs::write(dir.join("complete"), PACKAGES).expect("mark complete");
    rootfs
}

fn only_file_starting(dir: &Path, prefix: &str) -> PathBuf {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .expect("boot dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.file_name().is_some_and(|n| n.to_string_lossy().starts_with(prefix)))
        .collect();
    found.sort();
    found.pop().unwrap_or_else(|| panic!("no {prefix}* in {}", dir.display()))
}

#[test]
#[ignore = "boots a VM under QEMU (minutes); run with -- --ignored as root"]
fn global_knobs_apply_verify_and_roll_back_in_a_booted_vm() {
    assert!(
        nix::unistd::geteuid().is_root(),
        "the VM test needs root (debootstrap and mkfs.ext4 -d keep file ownership)"
    );
    require_tool("debootstrap", "debootstrap");
    require_tool("qemu-system-x86_64", "qemu-system-x86");
    require_tool("mkfs.ext4", "e2fsprogs");
    let started = Instant::now();
    let rootfs = cached_rootfs();
    let rootfs_ready_s = started.elapsed().as_secs();

    let petrel = rootfs.join("petrel");
    std::fs::create_dir_all(&petrel).expect("petrel dir");
    std::fs::copy(env!("CARGO_BIN_EXE_petrel-tuner"), petrel.join("petrel-tuner")).expect("copy binary");
    std::fs::write(petrel.join("profile.toml"), PROFILE).expect("profile");
    std::fs::write(petrel.join("init.sh"), INIT).expect("init");
    std::fs::set_permissions(petrel.join("init.sh"), std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("make init executable");

    let work = tempfile::tempdir().expect("temp dir");
    let disk = work.path().join("disk.img");
    run(Command::new("mkfs.ext4").args(["-q", "-F", "-d"]).arg(&rootfs).arg(&disk).arg("3G"));

    let boot = rootfs.join("boot");
    let mut qemu = Command::new("qemu-system-x86_64")
        .args(["-accel", "tcg", "-cpu", "max", "-m", "1024", "-smp", "2"])
        .arg("-kernel")
        .arg(only_file_starting(&boot, "vmlinuz-"))
        .arg("-initrd")
        .arg(only_file_starting(&boot, "initrd.img-"))
        .args(["-append", "root=/dev/vda rw console=ttyS0 init=/petrel/init.sh panic=-1"])
        .arg("-drive")
        .arg(format!("file={},if=virtio,format=raw", disk.display()))
        .args(["-nographic", "-no-reboot", "-nic", "none"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start qemu-system-x86_64");
    let stdout = qemu.stdout.take().expect("piped stdout");
    let reader = std::thread::spawn(move || {
        let mut console = Vec::new();
        let _ = stdout.take(CONSOLE_LIMIT_BYTES).read_to_end(&mut console);
        String::from_utf8_lossy(&console).replace('\r', "")
    });
    let boot_started = Instant::now();
    loop {
        if qemu.try_wait().expect("wait qemu").is_some() {
            break;
        }
        if boot_started.elapsed() > VM_HANG_GUARD {
            let _ = qemu.kill();
            let _ = qemu.wait();
            panic!("the VM did not power off within {VM_HANG_GUARD:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let console = reader.join().expect("console reader");
    let vm_s = boot_started.elapsed().as_secs();
    eprintln!("rootfs ready after {rootfs_ready_s} s, VM run {vm_s} s");
    for line in console.lines().filter(|l| l.contains("PETREL-")) {
        eprintln!("{line}");
    }

    assert!(console.contains("PETREL-END"), "the VM did not finish its script:\n{console}");
    let rc = |step: &str| -> Vec<String> {
        console
            .lines()
            .filter_map(|l| l.trim().strip_prefix("PETREL-RC "))
            .filter(|l| l.rsplit_once(' ').is_some_and(|(s, _)| s == step))
            .map(|l| l.rsplit_once(' ').expect("has code").1.to_string())
            .collect()
    };
    assert_eq!(rc("verify"), ["1", "0", "1"], "verify before, after apply, after rollback:\n{console}");
    assert_eq!(rc("apply"), ["0", "0"], "apply, then apply again:\n{console}");
    assert_eq!(rc("rollback"), ["0"], "{console}");
    assert!(console.contains("changed 0,"), "second apply changed nothing:\n{console}");

    let value = |phase: &str, name: &str| -> String {
        let prefix = format!("PETREL-VAL {phase} {name} ");
        console
            .lines()
            .find_map(|l| l.trim().strip_prefix(prefix.as_str()).map(str::to_string))
            .unwrap_or_else(|| panic!("no {phase} {name} in:\n{console}"))
    };
    assert_eq!(value("applied", "thp"), "always madvise [never]", "{console}");
    assert_eq!(value("applied", "irq_default"), "1", "{console}");
    assert_eq!(value("applied", "workqueue"), "1", "{console}");
    assert_eq!(value("applied", "swappiness"), "1", "{console}");
    assert_eq!(value("applied", "stat_interval"), "7", "{console}");
    for name in ["thp", "irq_default", "workqueue", "swappiness", "stat_interval"] {
        assert_eq!(value("rolled_back", name), value("before", name), "{name}:\n{console}");
    }
}
