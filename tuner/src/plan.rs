//! The planner: for each item of a profile, the host's current value, the wanted value and
//! what `apply` would do. Reads only.

use serde::{Deserialize, Serialize};

use crate::cpuset::CpuSet;
use crate::error::{Error, Result};
use crate::facts;
use crate::host::{Cmdline, Host};
use crate::profile::{normalise_whitespace, Profile};

/// What `--only` selects. `net` is the `net.*` part of `sysctl`: those are the knobs a network
/// namespace has its own copy of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    Net,
    Sysctl,
    Irq,
    Cpu,
    Mm,
    Block,
    Workqueue,
    Cmdline,
}

impl Category {
    pub const ALL: [Category; 8] = [
        Category::Net,
        Category::Sysctl,
        Category::Irq,
        Category::Cpu,
        Category::Mm,
        Category::Block,
        Category::Workqueue,
        Category::Cmdline,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Category::Net => "net",
            Category::Sysctl => "sysctl",
            Category::Irq => "irq",
            Category::Cpu => "cpu",
            Category::Mm => "mm",
            Category::Block => "block",
            Category::Workqueue => "workqueue",
            Category::Cmdline => "cmdline",
        }
    }

    /// Parses `--only net,irq`.
    pub fn parse_list(text: &str) -> Result<Vec<Category>> {
        text.split(',')
            .map(str::trim)
            .filter(|w| !w.is_empty())
            .map(|word| {
                Category::ALL.into_iter().find(|c| c.name() == word).ok_or_else(|| {
                    Error::Usage(format!(
                        "--only: unknown category `{word}`; expected some of {}",
                        Category::ALL.map(Category::name).join(", ")
                    ))
                })
            })
            .collect()
    }
}

/// Which categories a run covers; empty means all.
#[derive(Debug, Clone, Default)]
pub struct Selection(Vec<Category>);

impl Selection {
    pub fn all() -> Self {
        Self(Vec::new())
    }

    pub fn only(categories: Vec<Category>) -> Self {
        Self(categories)
    }

    pub fn includes(&self, category: Category) -> bool {
        self.0.is_empty()
            || self.0.contains(&category)
            || (category == Category::Net && self.0.contains(&Category::Sysctl))
    }
}

/// How a knob's text compares with the wanted value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Compare {
    /// Words compared after collapsing whitespace (`4096\t87380` equals `4096 87380`).
    Text,
    /// One word chosen from a list, the choice in brackets: `always madvise [never]`.
    Selected,
    CpuList,
    CpuMask,
    /// `isolcpus=` flags (in any order) and a CPU list.
    Isolcpus,
}

impl Compare {
    /// The value in a canonical form for comparing and showing.
    pub fn canonical(self, raw: &str) -> std::result::Result<String, crate::cpuset::CpuSetError> {
        Ok(match self {
            Compare::Text => normalise_whitespace(raw),
            Compare::Selected => selected_word(raw),
            Compare::CpuList => CpuSet::parse_list(raw)?.to_list(),
            Compare::CpuMask => CpuSet::parse_mask(raw)?.to_list(),
            Compare::Isolcpus => {
                let mut flags = Vec::new();
                let mut cpus = Vec::new();
                for part in raw.trim().split(',') {
                    if part.starts_with(|c: char| c.is_ascii_digit()) {
                        cpus.push(part);
                    } else {
                        flags.push(part);
                    }
                }
                flags.sort_unstable();
                let cpus = CpuSet::parse_list(&cpus.join(","))?.to_list();
                flags.push(&cpus);
                flags.join(",")
            }
        })
    }

    /// The text that, written back, restores what was read.
    fn restore_form(self, raw: &str) -> String {
        match self {
            Compare::Selected => selected_word(raw),
            _ => raw.trim_end_matches('\n').to_string(),
        }
    }
}

fn selected_word(raw: &str) -> String {
    match (raw.find('['), raw.find(']')) {
        (Some(open), Some(close)) if open < close => raw[open + 1..close].to_string(),
        _ => raw.trim().to_string(),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A procfs/sysfs file, set with one write.
    Knob { path: String, compare: Compare },
    /// A configuration file, replaced atomically; `content` is the whole wanted file.
    File { path: String, content: String },
    /// A kernel command-line parameter: only a reboot changes it.
    Cmdline,
    /// Shown, never changed (managed IRQs, absent devices).
    Report,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    Set,
    AlreadySet,
    Skip {
        reason: String,
    },
    NeedsReboot,
    /// A knob the profile marks required is missing: the host cannot satisfy the profile.
    Unavailable {
        reason: String,
    },
}

impl Action {
    pub fn label(&self) -> &'static str {
        match self {
            Action::Set => "set",
            Action::AlreadySet => "already set",
            Action::Skip { .. } => "skip",
            Action::NeedsReboot => "needs reboot",
            Action::Unavailable { .. } => "unavailable",
        }
    }

    /// True when the host differs from the profile here.
    pub fn is_drift(&self) -> bool {
        matches!(self, Action::Set | Action::NeedsReboot | Action::Unavailable { .. })
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedItem {
    pub key: String,
    pub category: Category,
    /// Canonical current value; `None` when the knob does not exist.
    pub current: Option<String>,
    pub wanted: String,
    #[serde(flatten)]
    pub action: Action,
    #[serde(skip)]
    pub target: Target,
    /// What restores the value read (`None` inside: the file did not exist).
    #[serde(skip)]
    pub original: Option<Option<String>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    pub profile: String,
    pub items: Vec<PlannedItem>,
}

impl Plan {
    pub fn drift(&self) -> impl Iterator<Item = &PlannedItem> {
        self.items.iter().filter(|i| i.action.is_drift())
    }

    pub fn changes(&self) -> impl Iterator<Item = &PlannedItem> {
        self.items.iter().filter(|i| i.action == Action::Set)
    }

    pub fn reboot_pending(&self) -> bool {
        self.items.iter().any(|i| i.action == Action::NeedsReboot)
    }

    /// The current value of every knob, for `facts`.
    pub fn knob_values(&self) -> Vec<facts::KnobValue> {
        self.items
            .iter()
            .filter(|i| !matches!(i.target, Target::Report))
            .map(|i| facts::KnobValue { key: i.key.clone(), current: i.current.clone() })
            .collect()
    }
}

struct Builder<'a> {
    profile: &'a Profile,
    host: &'a Host,
    selection: &'a Selection,
    items: Vec<PlannedItem>,
}

impl Builder<'_> {
    fn skip(&mut self, key: String, category: Category, wanted: String, reason: String) {
        let action = if self.profile.is_required(&key) {
            Action::Unavailable { reason }
        } else {
            Action::Skip { reason }
        };
        self.items.push(PlannedItem {
            key,
            category,
            current: None,
            wanted,
            action,
            target: Target::Report,
            original: None,
        });
    }

    /// A knob wanted at `write` (shown as its canonical form).
    fn knob(
        &mut self,
        key: String,
        category: Category,
        path: String,
        compare: Compare,
        write: String,
    ) -> Result<()> {
        let wanted = compare
            .canonical(&write)
            .map_err(|source| Error::HostValue { path: path.clone().into(), source })?;
        let Some(raw) = self.host.read(&path)? else {
            let reason = format!("{path} does not exist on this host");
            self.skip(key, category, wanted, reason);
            return Ok(());
        };
        let current = compare
            .canonical(&raw)
            .map_err(|source| Error::HostValue { path: self.host.path(&path), source })?;
        let action = if current == wanted { Action::AlreadySet } else { Action::Set };
        self.items.push(PlannedItem {
            key,
            category,
            current: Some(current),
            wanted,
            action,
            original: Some(Some(compare.restore_form(&raw))),
            target: Target::Knob { path, compare },
        });
        Ok(())
    }

    fn build(mut self) -> Result<Vec<PlannedItem>> {
        let profile = self.profile;
        let online = self.host.online_cpus()?;
        profile.check_host(&online)?;
        let cores = profile.cores.clone();
        let no_cores = "the profile has no [cores] table".to_string();

        for (name, value) in &profile.sysctl {
            let category = if name.starts_with("net.") { Category::Net } else { Category::Sysctl };
            if self.selection.includes(category) {
                let path = format!("/proc/sys/{}", name.replace('.', "/"));
                self.knob(format!("sysctl:{name}"), category, path, Compare::Text, value.clone())?;
            }
        }

        if let (Some(irq), true) = (&profile.irq, self.selection.includes(Category::Irq)) {
            let irq = irq.clone();
            match &cores {
                None => self.skip("irq".into(), Category::Irq, String::new(), no_cores.clone()),
                Some(cores) => {
                    let hk = &cores.housekeeping;
                    if irq.default_affinity {
                        self.knob(
                            "irq:default_smp_affinity".into(),
                            Category::Irq,
                            "/proc/irq/default_smp_affinity".into(),
                            Compare::CpuMask,
                            hk.to_mask(),
                        )?;
                    }
                    if irq.nic {
                        for nic in facts::nics(self.host)? {
                            for line in &nic.irqs {
                                self.knob(
                                    format!("irq:{}:{}", line.irq, nic.name),
                                    Category::Irq,
                                    format!("/proc/irq/{}/smp_affinity_list", line.irq),
                                    Compare::CpuList,
                                    hk.to_list(),
                                )?;
                            }
                        }
                    }
                    for dev in facts::nvme_devices(self.host)? {
                        for line in &dev.irqs {
                            self.managed_irq(&dev.name, line, hk);
                        }
                    }
                    if irq.irqbalance_banned {
                        self.irqbalance(&irq.irqbalance_config, &cores.isolated)?;
                    }
                }
            }
        }

        if let (Some(cpu), true) = (&profile.cpu, self.selection.includes(Category::Cpu)) {
            let cpu = cpu.clone();
            for n in profile.tuned_cpus(&online).iter() {
                let base = format!("/sys/devices/system/cpu/cpu{n}");
                if let Some(governor) = &cpu.governor {
                    self.governor(n, &base, governor)?;
                }
                if let Some(max_latency_us) = cpu.idle_max_latency_us {
                    self.cpuidle(n, &base, max_latency_us)?;
                }
            }
        }

        if let (Some(memory), true) = (&profile.memory, self.selection.includes(Category::Mm)) {
            if let Some(thp) = &memory.transparent_hugepages {
                self.knob(
                    "thp".into(),
                    Category::Mm,
                    "/sys/kernel/mm/transparent_hugepage/enabled".into(),
                    Compare::Selected,
                    thp.clone(),
                )?;
            }
            if let Some(ksm) = memory.ksm {
                self.knob(
                    "ksm".into(),
                    Category::Mm,
                    "/sys/kernel/mm/ksm/run".into(),
                    Compare::Text,
                    if ksm { "1" } else { "0" }.into(),
                )?;
            }
        }

        if let (Some(block), true) = (&profile.block, self.selection.includes(Category::Block)) {
            if let Some(scheduler) = &block.nvme_scheduler {
                self.nvme_scheduler(scheduler)?;
            }
        }

        if let (Some(wq), true) = (&profile.workqueue, self.selection.includes(Category::Workqueue)) {
            if wq.housekeeping_only {
                match &cores {
                    None => {
                        self.skip("workqueue:cpumask".into(), Category::Workqueue, String::new(), no_cores)
                    }
                    Some(cores) => self.knob(
                        "workqueue:cpumask".into(),
                        Category::Workqueue,
                        "/sys/devices/virtual/workqueue/cpumask".into(),
                        Compare::CpuMask,
                        cores.housekeeping.to_mask(),
                    )?,
                }
            }
        }

        if self.selection.includes(Category::Cmdline) {
            self.cmdline()?;
        }
        Ok(self.items)
    }

    fn managed_irq(&mut self, device: &str, line: &facts::Irq, housekeeping: &CpuSet) {
        let effective = line
            .effective_affinity
            .as_deref()
            .or(line.affinity.as_deref())
            .and_then(|text| CpuSet::parse_list(text).ok());
        let action = match &effective {
            Some(set) if set.difference(housekeeping).is_empty() => Action::AlreadySet,
            _ => Action::Skip {
                reason: "managed IRQ: the kernel places it; only isolcpus=managed_irq keeps it off the isolated CPUs".into(),
            },
        };
        self.items.push(PlannedItem {
            key: format!("irq:{}:{device}", line.irq),
            category: Category::Irq,
            current: effective.map(|s| s.to_list()),
            wanted: housekeeping.to_list(),
            action,
            target: Target::Report,
            original: None,
        });
    }

    fn irqbalance(&mut self, config: &str, isolated: &CpuSet) -> Result<()> {
        const VAR: &str = "IRQBALANCE_BANNED_CPULIST";
        let key = format!("irqbalance:{VAR}");
        if isolated.is_empty() {
            self.skip(key, Category::Irq, String::new(), "no isolated CPUs to ban".into());
            return Ok(());
        }
        let Some(content) = self.host.read(config)? else {
            let reason = format!("irqbalance is not installed ({config} does not exist)");
            self.skip(key, Category::Irq, isolated.to_list(), reason);
            return Ok(());
        };
        let current = env_value(&content, VAR);
        let matches =
            current.as_deref().and_then(|v| CpuSet::parse_list(v).ok()).is_some_and(|set| &set == isolated);
        self.items.push(PlannedItem {
            key,
            category: Category::Irq,
            current: current.clone(),
            wanted: isolated.to_list(),
            action: if matches { Action::AlreadySet } else { Action::Set },
            target: Target::File {
                path: config.to_string(),
                content: set_env_value(&content, VAR, &isolated.to_list()),
            },
            original: Some(Some(content)),
        });
        Ok(())
    }

    fn governor(&mut self, cpu: u32, base: &str, governor: &str) -> Result<()> {
        let key = format!("governor:cpu{cpu}");
        if let Some(available) = self.host.read(&format!("{base}/cpufreq/scaling_available_governors"))? {
            if !available.split_whitespace().any(|g| g == governor) {
                let reason = format!(
                    "cpu{cpu} does not offer governor {governor} (it offers: {})",
                    normalise_whitespace(&available)
                );
                self.skip(key, Category::Cpu, governor.to_string(), reason);
                return Ok(());
            }
        }
        let path = format!("{base}/cpufreq/scaling_governor");
        if !self.host.exists(&path) {
            let reason = format!("no cpufreq on cpu{cpu} (usual in a VM or with BIOS-controlled P-states)");
            self.skip(key, Category::Cpu, governor.to_string(), reason);
            return Ok(());
        }
        self.knob(key, Category::Cpu, path, Compare::Text, governor.to_string())
    }

    fn cpuidle(&mut self, cpu: u32, base: &str, max_latency_us: u32) -> Result<()> {
        let states: Vec<String> = self
            .host
            .list_dir(&format!("{base}/cpuidle"))?
            .into_iter()
            .filter(|s| s.starts_with("state"))
            .collect();
        if states.is_empty() {
            let reason = format!("cpu{cpu} has no cpuidle states");
            self.skip(format!("cpuidle:cpu{cpu}"), Category::Cpu, String::new(), reason);
            return Ok(());
        }
        for state in states {
            let dir = format!("{base}/cpuidle/{state}");
            let latency_path = format!("{dir}/latency");
            let Some(latency) = self.host.read(&latency_path)? else {
                continue;
            };
            let latency_us: u64 = latency.trim().parse().map_err(|_| {
                Error::io(
                    self.host.path(&latency_path),
                    std::io::Error::other(format!("`{}` is not a latency in us", latency.trim())),
                )
            })?;
            if latency_us > u64::from(max_latency_us) {
                let name =
                    self.host.read(&format!("{dir}/name"))?.map(|n| n.trim().to_string()).unwrap_or_default();
                let key = format!("cpuidle:cpu{cpu}:{state}:{name}");
                self.knob(key, Category::Cpu, format!("{dir}/disable"), Compare::Text, "1".into())?;
            }
        }
        Ok(())
    }

    fn nvme_scheduler(&mut self, scheduler: &str) -> Result<()> {
        let devices = facts::nvme_devices(self.host)?;
        if devices.is_empty() {
            self.skip("nvme".into(), Category::Block, scheduler.to_string(), "no NVMe devices".into());
        }
        for dev in devices {
            let key = format!("nvme:{}:scheduler", dev.name);
            let offered = dev
                .scheduler
                .as_deref()
                .is_some_and(|list| list.split_whitespace().any(|s| s.trim_matches(['[', ']']) == scheduler));
            if !offered {
                let reason = format!(
                    "{} does not offer scheduler {scheduler} (it offers: {})",
                    dev.name,
                    dev.scheduler.as_deref().unwrap_or("nothing")
                );
                self.skip(key, Category::Block, scheduler.to_string(), reason);
                continue;
            }
            let path = format!("/sys/block/{}/queue/scheduler", dev.name);
            self.knob(key, Category::Block, path, Compare::Selected, scheduler.to_string())?;
        }
        Ok(())
    }

    fn cmdline(&mut self) -> Result<()> {
        let Some(spec) = self.profile.cmdline.clone() else {
            return Ok(());
        };
        let running = self.host.cmdline()?;
        let mut wanted: Vec<(String, String, Compare)> = Vec::new();
        if let (true, Some(cores)) = (spec.isolation, &self.profile.cores) {
            if cores.isolated.is_empty() {
                self.skip(
                    "cmdline:isolation".into(),
                    Category::Cmdline,
                    String::new(),
                    "no isolated CPUs".into(),
                );
            } else {
                let iso = cores.isolated.to_list();
                wanted.push(("isolcpus".into(), format!("managed_irq,domain,{iso}"), Compare::Isolcpus));
                wanted.push(("nohz_full".into(), iso.clone(), Compare::CpuList));
                wanted.push(("rcu_nocbs".into(), iso, Compare::CpuList));
                wanted.push(("irqaffinity".into(), cores.housekeeping.to_list(), Compare::CpuList));
                wanted.push(("skew_tick".into(), "1".into(), Compare::Text));
            }
        }
        for param in &spec.extra {
            let (name, value) = param.split_once('=').unwrap_or((param, ""));
            wanted.push((name.to_string(), value.to_string(), Compare::Text));
        }
        for (name, value, compare) in &wanted {
            self.cmdline_param(&running, name, value, *compare);
        }
        if let (Some(dropin), false) = (&spec.grub_dropin, wanted.is_empty()) {
            let words: Vec<String> = wanted.iter().map(|(n, v, _)| param_text(n, v)).collect();
            self.grub_dropin(dropin, &words.join(" "))?;
        }
        Ok(())
    }

    fn cmdline_param(&mut self, running: &Cmdline, name: &str, value: &str, compare: Compare) {
        let current = running.get(name);
        let matches = current.is_some_and(|cur| match (compare.canonical(cur), compare.canonical(value)) {
            (Ok(a), Ok(b)) => a == b,
            _ => false,
        });
        self.items.push(PlannedItem {
            key: format!("cmdline:{name}"),
            category: Category::Cmdline,
            current: current.map(|v| param_text(name, v)),
            wanted: param_text(name, value),
            action: if matches { Action::AlreadySet } else { Action::NeedsReboot },
            target: Target::Cmdline,
            original: None,
        });
    }

    fn grub_dropin(&mut self, path: &str, params: &str) -> Result<()> {
        let key = "grub:dropin".to_string();
        if !self.host.exists("/etc/default/grub") {
            let reason = "GRUB is not installed (no /etc/default/grub); set the kernel command line by hand"
                .to_string();
            self.skip(key, Category::Cmdline, params.to_string(), reason);
            return Ok(());
        }
        let content = format!(
            "# Written by petrel-tuner for profile {}; `petrel-tuner rollback` removes it.\n\
             GRUB_CMDLINE_LINUX=\"${{GRUB_CMDLINE_LINUX}} {params}\"\n",
            self.profile.name
        );
        let current = self.host.read(path)?;
        let action =
            if current.as_deref() == Some(content.as_str()) { Action::AlreadySet } else { Action::Set };
        self.items.push(PlannedItem {
            key,
            category: Category::Cmdline,
            current: Some(match &current {
                None => "(no drop-in)".to_string(),
                Some(c) if *c == content => params.to_string(),
                Some(_) => "(different drop-in)".to_string(),
            }),
            wanted: params.to_string(),
            action,
            target: Target::File { path: path.to_string(), content },
            original: Some(current),
        });
        Ok(())
    }
}

fn param_text(name: &str, value: &str) -> String {
    if value.is_empty() {
        name.to_string()
    } else {
        format!("{name}={value}")
    }
}

/// The value of `VAR=value` in a shell environment file (last assignment wins).
fn env_value(content: &str, var: &str) -> Option<String> {
    content
        .lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix(var)?.strip_prefix('='))
        .map(|v| v.trim().trim_matches(['"', '\'']).to_string())
}

/// Replaces every assignment of `var` (commented-out ones stay) or appends one.
fn set_env_value(content: &str, var: &str, value: &str) -> String {
    let assignment = format!("{var}=\"{value}\"");
    let mut replaced = false;
    let mut out = String::new();
    for line in content.lines() {
        if line.trim().strip_prefix(var).is_some_and(|rest| rest.starts_with('=')) {
            if !replaced {
                out.push_str(&assignment);
                out.push('\n');
                replaced = true;
            }
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !replaced {
        out.push_str("# Set by petrel-tuner: keep IRQs off the engine's isolated CPUs.\n");
        out.push_str(&assignment);
        out.push('\n');
    }
    out
}

/// Plans `profile` on `host` for the selected categories. Changes nothing.
pub fn plan(profile: &Profile, host: &Host, selection: &Selection) -> Result<Plan> {
    let items = Builder { profile, host, selection, items: Vec::new() }.build()?;
    Ok(Plan { profile: profile.name.clone(), items })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_forms_compare_what_the_kernel_means() {
        assert_eq!(Compare::Text.canonical("4096\t87380\t6291456\n").unwrap(), "4096 87380 6291456");
        assert_eq!(Compare::Selected.canonical("always [madvise] never\n").unwrap(), "madvise");
        assert_eq!(Compare::CpuMask.canonical("00000000,0000000c\n").unwrap(), "2-3");
        assert_eq!(
            Compare::Isolcpus.canonical("domain,managed_irq,2-3,4").unwrap(),
            Compare::Isolcpus.canonical("managed_irq,domain,2-4").unwrap()
        );
    }

    #[test]
    fn env_file_edit_replaces_or_appends_and_keeps_comments() {
        let original = "#IRQBALANCE_BANNED_CPULIST=\nENABLED=1\nIRQBALANCE_BANNED_CPULIST=3\n";
        let edited = set_env_value(original, "IRQBALANCE_BANNED_CPULIST", "2-15");
        assert_eq!(edited, "#IRQBALANCE_BANNED_CPULIST=\nENABLED=1\nIRQBALANCE_BANNED_CPULIST=\"2-15\"\n");
        assert_eq!(env_value(&edited, "IRQBALANCE_BANNED_CPULIST").as_deref(), Some("2-15"));
        let appended = set_env_value("ENABLED=1", "IRQBALANCE_BANNED_CPULIST", "1");
        assert!(appended.ends_with("IRQBALANCE_BANNED_CPULIST=\"1\"\n"), "{appended}");
        assert_eq!(env_value("#IRQBALANCE_BANNED_CPULIST=1\n", "IRQBALANCE_BANNED_CPULIST"), None);
    }

    #[test]
    fn only_sysctl_includes_net_but_not_the_reverse() {
        let sysctl = Selection::only(vec![Category::Sysctl]);
        assert!(sysctl.includes(Category::Net));
        let net = Selection::only(vec![Category::Net]);
        assert!(!net.includes(Category::Sysctl));
        assert!(Category::parse_list("net,bogus").is_err());
    }
}
