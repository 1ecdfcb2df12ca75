//! A fake host for the integration tests: a directory tree shaped like /proc, /sys and /etc
//! of a 4-CPU machine with one NIC and one NVMe drive. Plain files cannot reproduce every
//! kernel behaviour (a sysfs choice file reads back as `a [b] c`), so the tests compare what
//! `petrel-tuner plan` reports, which is what an operator sees.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_petrel-tuner");

pub const PROFILE: &str = r#"name = "test-4core"

[cores]
housekeeping = "0"
isolated = "1-3"

[sysctl]
"kernel.io_uring_disabled" = 0
"kernel.nmi_watchdog" = 0
"net.core.busy_poll" = 50
"net.ipv4.tcp_rmem" = "4096 1048576 16777216"
"vm.swappiness" = 0

[irq]

[cpu]
governor = "performance"
idle_max_latency_us = 1

[memory]
transparent_hugepages = "never"
ksm = false

[block]
nvme_scheduler = "none"

[workqueue]
housekeeping_only = true

[cmdline]
isolation = true
extra = ["nosoftlockup"]
grub_dropin = "/etc/default/grub.d/60-petrel-tuner.cfg"
"#;

pub struct FakeHost {
    pub dir: tempfile::TempDir,
}

impl FakeHost {
    pub fn new() -> Self {
        let host = Self { dir: tempfile::tempdir().expect("temporary directory") };
        let files: &[(&str, &str)] = &[
            ("proc/cmdline", "BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet\n"),
            ("proc/sys/kernel/io_uring_disabled", "0\n"),
            ("proc/sys/kernel/nmi_watchdog", "1\n"),
            ("proc/sys/net/core/busy_poll", "0\n"),
            ("proc/sys/net/ipv4/tcp_rmem", "4096\t131072\t6291456\n"),
            ("proc/sys/vm/swappiness", "60\n"),
            ("proc/irq/default_smp_affinity", "f\n"),
            ("proc/irq/40/smp_affinity_list", "0-3\n"),
            ("proc/irq/41/smp_affinity_list", "0-3\n"),
            ("proc/irq/50/smp_affinity_list", "2\n"),
            ("proc/irq/50/effective_affinity_list", "2\n"),
            ("sys/devices/system/cpu/online", "0-3\n"),
            ("sys/devices/system/cpu/possible", "0-3\n"),
            ("sys/devices/system/cpu/isolated", "\n"),
            ("sys/devices/system/node/node0/cpulist", "0-3\n"),
            ("sys/class/net/eth0/device/msi_irqs/40", "msix\n"),
            ("sys/class/net/eth0/device/msi_irqs/41", "msix\n"),
            ("sys/class/net/eth0/queues/rx-0/rps_cpus", "0\n"),
            ("sys/class/net/eth0/queues/tx-0/xps_cpus", "0\n"),
            ("sys/class/net/lo/queues/rx-0/rps_cpus", "0\n"),
            ("sys/block/nvme0n1/queue/scheduler", "[mq-deadline] none\n"),
            ("sys/block/vda/queue/scheduler", "[mq-deadline] none\n"),
            ("sys/class/nvme/nvme0/device/msi_irqs/50", "msix\n"),
            ("sys/kernel/mm/transparent_hugepage/enabled", "always [madvise] never\n"),
            ("sys/kernel/mm/ksm/run", "1\n"),
            ("sys/devices/virtual/workqueue/cpumask", "f\n"),
            ("etc/default/irqbalance", "#IRQBALANCE_ONESHOT=\nENABLED=1\n"),
            ("etc/default/grub", "GRUB_CMDLINE_LINUX=\"\"\n"),
        ];
        for (path, content) in files {
            host.write(path, content);
        }
        for cpu in 0..4 {
            let base = format!("sys/devices/system/cpu/cpu{cpu}");
            host.write(&format!("{base}/cpufreq/scaling_governor"), "powersave\n");
            host.write(&format!("{base}/cpufreq/scaling_available_governors"), "performance powersave\n");
            for (state, name, latency_us) in [(0, "POLL", 0), (1, "C1", 2), (2, "C6", 100)] {
                let dir = format!("{base}/cpuidle/state{state}");
                host.write(&format!("{dir}/name"), &format!("{name}\n"));
                host.write(&format!("{dir}/latency"), &format!("{latency_us}\n"));
                host.write(&format!("{dir}/disable"), "0\n");
            }
        }
        host.write("etc/petrel/tuner.toml", PROFILE);
        host
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, relative: &str) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn write(&self, relative: &str, content: &str) {
        let path = self.path(relative);
        fs::create_dir_all(path.parent().expect("has a parent")).expect("create dirs");
        fs::write(&path, content).expect("write fake knob");
    }

    pub fn read(&self, relative: &str) -> String {
        fs::read_to_string(self.path(relative)).unwrap_or_else(|e| panic!("read {relative}: {e}"))
    }

    /// Runs the real binary against this tree.
    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run petrel-tuner")
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command.arg("--root").arg(self.root()).args(args);
        command
    }

    /// `plan --format json` as (key, current, action) triples: what the host looks like.
    pub fn plan(&self, extra: &[&str]) -> Vec<(String, Option<String>, String)> {
        let mut args = vec!["plan", "--format", "json"];
        args.extend_from_slice(extra);
        let out = self.run(&args);
        assert_eq!(code(&out), 0, "plan failed: {}", text(&out));
        let json: serde_json::Value = serde_json::from_slice(&out.stdout).expect("plan JSON");
        json["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| {
                (
                    i["key"].as_str().expect("key").to_string(),
                    i["current"].as_str().map(str::to_string),
                    i["action"].as_str().expect("action").to_string(),
                )
            })
            .collect()
    }

    /// The plan without the NVMe scheduler: a plain file cannot play the kernel's
    /// `[chosen] other` list once a bare name was written back to it, so tests check that
    /// file's content directly.
    pub fn plan_outside_choice_files(&self) -> Vec<(String, Option<String>, String)> {
        without_choice_files(self.plan(&[]))
    }

    pub fn state_file(&self) -> PathBuf {
        self.path("var/lib/petrel/tuner/state.json")
    }
}

pub fn without_choice_files(
    plan: Vec<(String, Option<String>, String)>,
) -> Vec<(String, Option<String>, String)> {
    plan.into_iter().filter(|(key, _, _)| !key.starts_with("nvme:")).collect()
}

pub fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

pub fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}
