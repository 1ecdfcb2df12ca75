//! What the host is: topology, isolation, devices and their IRQs, and the state of the
//! knobs a profile can name. Read-only.

use serde::Serialize;

use crate::cpuset::CpuSet;
use crate::error::Result;
use crate::host::Host;

#[derive(Debug, Clone, Serialize)]
pub struct Facts {
    pub kernel_release: Option<String>,
    pub cmdline: String,
    pub cpus_online: String,
    pub cpus_possible: Option<String>,
    pub numa_nodes: Vec<NumaNode>,
    /// `/sys/devices/system/cpu/smt/control`: on, off, forceoff, notsupported, notimplemented.
    pub smt_control: Option<String>,
    pub cpus_isolated: Option<String>,
    pub cpus_nohz_full: Option<String>,
    /// From the command line: the kernel exposes no sysfs file for it.
    pub cpus_rcu_nocbs: Option<String>,
    pub nics: Vec<Nic>,
    pub nvme: Vec<NvmeDevice>,
    /// Governor name and the CPUs that use it; empty without cpufreq.
    pub governors: Vec<(String, String)>,
    pub transparent_hugepages: Option<String>,
    pub ksm_run: Option<String>,
    pub io_uring_disabled: Option<String>,
    pub irq_default_smp_affinity: Option<String>,
    pub workqueue_cpumask: Option<String>,
    /// Current value of every knob the profile names (filled in when a profile is given).
    pub knobs: Vec<KnobValue>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KnobValue {
    pub key: String,
    pub current: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NumaNode {
    pub node: u32,
    pub cpus: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Nic {
    pub name: String,
    pub driver: Option<String>,
    pub rx_queues: usize,
    pub tx_queues: usize,
    pub irqs: Vec<Irq>,
}

#[derive(Debug, Clone, Serialize)]
pub struct NvmeDevice {
    /// Block device (`nvme0n1`).
    pub name: String,
    pub scheduler: Option<String>,
    /// The controller's IRQs; the kernel manages their affinity.
    pub irqs: Vec<Irq>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Irq {
    pub irq: u32,
    pub affinity: Option<String>,
    pub effective_affinity: Option<String>,
}

pub fn gather(host: &Host) -> Result<Facts> {
    let cmdline_text = host.read("/proc/cmdline")?.unwrap_or_default();
    let cmdline = crate::host::Cmdline::parse(&cmdline_text);
    let mut numa_nodes = Vec::new();
    for name in host.list_dir("/sys/devices/system/node")? {
        let Some(node) = name.strip_prefix("node").and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some(cpus) = host.read(&format!("/sys/devices/system/node/{name}/cpulist"))? {
            numa_nodes.push(NumaNode { node, cpus: cpus.trim().to_string() });
        }
    }
    let online = host.online_cpus()?;
    let mut governors: Vec<(String, CpuSet)> = Vec::new();
    for cpu in online.iter() {
        let path = format!("/sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor");
        if let Some(governor) = host.read(&path)? {
            let governor = governor.trim().to_string();
            match governors.iter_mut().find(|(g, _)| *g == governor) {
                Some((_, set)) => *set = set.iter().chain([cpu]).collect(),
                None => governors.push((governor, [cpu].into_iter().collect())),
            }
        }
    }
    let trimmed = |v: Option<String>| v.map(|s| s.trim().to_string());
    Ok(Facts {
        kernel_release: trimmed(host.read("/proc/sys/kernel/osrelease")?),
        cmdline: cmdline_text.trim().to_string(),
        cpus_online: online.to_list(),
        cpus_possible: trimmed(host.read("/sys/devices/system/cpu/possible")?),
        numa_nodes,
        smt_control: trimmed(host.read("/sys/devices/system/cpu/smt/control")?),
        cpus_isolated: trimmed(host.read("/sys/devices/system/cpu/isolated")?),
        cpus_nohz_full: trimmed(host.read("/sys/devices/system/cpu/nohz_full")?),
        cpus_rcu_nocbs: cmdline.get("rcu_nocbs").map(str::to_string),
        nics: nics(host)?,
        nvme: nvme_devices(host)?,
        governors: governors.into_iter().map(|(g, set)| (g, set.to_list())).collect(),
        transparent_hugepages: trimmed(host.read("/sys/kernel/mm/transparent_hugepage/enabled")?),
        ksm_run: trimmed(host.read("/sys/kernel/mm/ksm/run")?),
        io_uring_disabled: trimmed(host.read("/proc/sys/kernel/io_uring_disabled")?),
        irq_default_smp_affinity: trimmed(host.read("/proc/irq/default_smp_affinity")?),
        workqueue_cpumask: trimmed(host.read("/sys/devices/virtual/workqueue/cpumask")?),
        knobs: Vec::new(),
    })
}

/// Physical NICs: interfaces with a backing device (lo, bridges, veths have none).
pub fn nics(host: &Host) -> Result<Vec<Nic>> {
    let mut out = Vec::new();
    for name in host.list_dir("/sys/class/net")? {
        let device = format!("/sys/class/net/{name}/device");
        if !host.exists(&device) {
            continue;
        }
        let queues = host.list_dir(&format!("/sys/class/net/{name}/queues"))?;
        let driver = std::fs::read_link(host.path(&format!("{device}/driver")))
            .ok()
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
        out.push(Nic {
            irqs: device_irqs(host, &device)?,
            rx_queues: queues.iter().filter(|q| q.starts_with("rx-")).count(),
            tx_queues: queues.iter().filter(|q| q.starts_with("tx-")).count(),
            driver,
            name,
        });
    }
    Ok(out)
}

pub fn nvme_devices(host: &Host) -> Result<Vec<NvmeDevice>> {
    let mut out = Vec::new();
    for name in host.list_dir("/sys/block")? {
        let Some(rest) = name.strip_prefix("nvme") else {
            continue;
        };
        // nvme0n1 belongs to controller nvme0.
        let controller_number: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let device = format!("/sys/class/nvme/nvme{controller_number}/device");
        out.push(NvmeDevice {
            scheduler: host
                .read(&format!("/sys/block/{name}/queue/scheduler"))?
                .map(|s| s.trim().to_string()),
            irqs: device_irqs(host, &device)?,
            name,
        });
    }
    Ok(out)
}

/// MSI/MSI-X vectors of a device, or its legacy line. A virtio NIC's `device` is the virtio
/// device, whose PCI parent holds the vectors, hence the second place to look.
fn device_irqs(host: &Host, device: &str) -> Result<Vec<Irq>> {
    let mut numbers: Vec<u32> = Vec::new();
    for dir in [format!("{device}/msi_irqs"), format!("{device}/../msi_irqs")] {
        numbers = host.list_dir(&dir)?.iter().filter_map(|n| n.parse().ok()).collect();
        if !numbers.is_empty() {
            break;
        }
    }
    if numbers.is_empty() {
        if let Some(line) = host.read(&format!("{device}/irq"))? {
            if let Ok(irq) = line.trim().parse::<u32>() {
                if irq != 0 {
                    numbers.push(irq);
                }
            }
        }
    }
    numbers.sort_unstable();
    let mut irqs = Vec::new();
    for irq in numbers {
        let read = |file: &str| -> Result<Option<String>> {
            Ok(host.read(&format!("/proc/irq/{irq}/{file}"))?.map(|s| s.trim().to_string()))
        };
        irqs.push(Irq {
            irq,
            affinity: read("smp_affinity_list")?,
            effective_affinity: read("effective_affinity_list")?,
        });
    }
    Ok(irqs)
}

pub fn render_text(facts: &Facts) -> String {
    let mut out = String::new();
    let or_absent = |v: &Option<String>| v.clone().unwrap_or_else(|| "(absent)".to_string());
    let mut line = |k: &str, v: String| out.push_str(&format!("{k:<34} {v}\n"));
    line("kernel", or_absent(&facts.kernel_release));
    line("cmdline", facts.cmdline.clone());
    line("cpus online", facts.cpus_online.clone());
    line("cpus possible", or_absent(&facts.cpus_possible));
    for node in &facts.numa_nodes {
        line(&format!("numa node {}", node.node), node.cpus.clone());
    }
    line("smt control", or_absent(&facts.smt_control));
    line("cpus isolated", or_absent(&facts.cpus_isolated));
    line("cpus nohz_full", or_absent(&facts.cpus_nohz_full));
    line("cpus rcu_nocbs", or_absent(&facts.cpus_rcu_nocbs));
    if facts.governors.is_empty() {
        line("governor", "(no cpufreq)".to_string());
    }
    for (governor, cpus) in &facts.governors {
        line("governor", format!("{governor} on cpus {cpus}"));
    }
    line("transparent hugepages", or_absent(&facts.transparent_hugepages));
    line("ksm run", or_absent(&facts.ksm_run));
    line("io_uring_disabled", or_absent(&facts.io_uring_disabled));
    line("irq default affinity", or_absent(&facts.irq_default_smp_affinity));
    line("workqueue cpumask", or_absent(&facts.workqueue_cpumask));
    let irq_text = |irqs: &[Irq]| {
        irqs.iter()
            .map(|i| {
                format!(
                    "{}->{}",
                    i.irq,
                    i.effective_affinity.clone().or_else(|| i.affinity.clone()).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    for nic in &facts.nics {
        line(
            &format!("nic {}", nic.name),
            format!(
                "driver {} rx {} tx {} irqs [{}]",
                nic.driver.as_deref().unwrap_or("?"),
                nic.rx_queues,
                nic.tx_queues,
                irq_text(&nic.irqs)
            ),
        );
    }
    for dev in &facts.nvme {
        line(
            &format!("nvme {}", dev.name),
            format!("scheduler {} irqs [{}]", dev.scheduler.as_deref().unwrap_or("?"), irq_text(&dev.irqs)),
        );
    }
    for knob in &facts.knobs {
        line(&knob.key, or_absent(&knob.current));
    }
    out
}
