//! The profile: what a host of one role should look like, read from TOML.
//!
//! Unknown keys are errors (with line and column) because a misspelt knob that is silently
//! ignored is a host that is silently untuned.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use toml::Spanned;

use crate::cpuset::CpuSet;
use crate::error::{Error, Result};

pub const DEFAULT_PROFILE_PATH: &str = "/etc/petrel/tuner.toml";
pub const DEFAULT_GRUB_DROPIN: &str = "/etc/default/grub.d/60-petrel-tuner.cfg";
pub const DEFAULT_IRQBALANCE_CONFIG: &str = "/etc/default/irqbalance";

/// Profiles compiled into the binary; the same files ship in `tuner/profiles/`.
pub const BUILTIN: &[(&str, &str)] = &[
    ("latency-performance", include_str!("../profiles/latency-performance.toml")),
    ("trading-16core", include_str!("../profiles/trading-16core.toml")),
];

/// Item-key prefixes a `required` entry may name (see the plan's item keys).
const REQUIRABLE_PREFIXES: &[&str] = &[
    "sysctl",
    "irq",
    "irqbalance",
    "governor",
    "cpuidle",
    "thp",
    "ksm",
    "nvme",
    "workqueue",
    "cmdline",
    "grub",
];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    #[serde(default)]
    description: String,
    cores: Option<RawCores>,
    #[serde(default)]
    sysctl: BTreeMap<String, Spanned<SysctlValue>>,
    irq: Option<Irq>,
    cpu: Option<CpuTuning>,
    memory: Option<Memory>,
    block: Option<Block>,
    workqueue: Option<Workqueue>,
    cmdline: Option<KernelCmdline>,
    #[serde(default)]
    required: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCores {
    housekeeping: Spanned<String>,
    isolated: Spanned<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum SysctlValue {
    Integer(i64),
    Text(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Irq {
    /// Move NIC IRQs onto the housekeeping CPUs.
    #[serde(default = "yes")]
    pub nic: bool,
    /// Point `/proc/irq/default_smp_affinity` (IRQs registered later) at housekeeping CPUs.
    #[serde(default = "yes")]
    pub default_affinity: bool,
    /// Write `IRQBALANCE_BANNED_CPULIST=<isolated>` into the irqbalance config.
    #[serde(default = "yes")]
    pub irqbalance_banned: bool,
    #[serde(default = "default_irqbalance_config")]
    pub irqbalance_config: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CpuTuning {
    /// cpufreq governor for the tuned CPUs.
    pub governor: Option<String>,
    /// Disable every cpuidle state whose exit latency exceeds this on the tuned CPUs.
    pub idle_max_latency_us: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Memory {
    /// `always`, `madvise` or `never`.
    pub transparent_hugepages: Option<String>,
    pub ksm: Option<bool>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Block {
    pub nvme_scheduler: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workqueue {
    /// Keep unbound kernel workqueues on the housekeeping CPUs.
    pub housekeeping_only: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KernelCmdline {
    /// Check isolcpus=managed_irq,domain, nohz_full, rcu_nocbs (isolated CPUs),
    /// irqaffinity (housekeeping CPUs) and skew_tick=1.
    #[serde(default)]
    pub isolation: bool,
    /// Further parameters, `name=value` or a bare `name`.
    #[serde(default)]
    pub extra: Vec<String>,
    /// Where `apply` writes the GRUB drop-in; no drop-in is written when absent.
    pub grub_dropin: Option<String>,
}

fn yes() -> bool {
    true
}

fn default_irqbalance_config() -> String {
    DEFAULT_IRQBALANCE_CONFIG.to_string()
}

/// A parsed and self-consistent profile; [`Profile::check_host`] checks it against a host.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub description: String,
    /// Where it came from: a path or `built-in <name>`.
    pub origin: String,
    pub cores: Option<Cores>,
    /// Sorted by key: `apply` changes them in this order, the same on every run.
    pub sysctl: BTreeMap<String, String>,
    pub irq: Option<Irq>,
    pub cpu: Option<CpuTuning>,
    pub memory: Option<Memory>,
    pub block: Option<Block>,
    pub workqueue: Option<Workqueue>,
    pub cmdline: Option<KernelCmdline>,
    pub required: Vec<String>,
    source: String,
    cores_spans: Option<(std::ops::Range<usize>, std::ops::Range<usize>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cores {
    pub housekeeping: CpuSet,
    pub isolated: CpuSet,
}

impl Profile {
    /// `spec` is a built-in profile name or a path to a TOML file.
    pub fn load(spec: &str) -> Result<Self> {
        if let Some((name, text)) = BUILTIN.iter().find(|(name, _)| *name == spec) {
            return Self::parse(text, &format!("built-in {name}"));
        }
        let looks_like_path = spec.contains('/') || spec.ends_with(".toml");
        if !looks_like_path && !Path::new(spec).exists() {
            return Err(Error::UnknownProfile { name: spec.to_string(), builtins: builtin_names() });
        }
        let text = std::fs::read_to_string(spec).map_err(|e| Error::io(spec, e))?;
        Self::parse(&text, spec)
    }

    pub fn parse(text: &str, origin: &str) -> Result<Self> {
        let raw: RawProfile = toml::from_str(text)
            .map_err(|e| Error::ProfileSyntax { origin: origin.to_string(), message: e.to_string() })?;
        let at = |span: std::ops::Range<usize>, message: String| Error::Profile {
            origin: origin.to_string(),
            message: format!("{}: {message}", line_column(text, span.start)),
        };

        let mut cores = None;
        let mut cores_spans = None;
        if let Some(raw_cores) = &raw.cores {
            let parse = |field: &Spanned<String>, name: &str| {
                CpuSet::parse_list(field.get_ref())
                    .map_err(|e| at(field.span(), format!("cores.{name}: {e}")))
            };
            let housekeeping = parse(&raw_cores.housekeeping, "housekeeping")?;
            let isolated = parse(&raw_cores.isolated, "isolated")?;
            if housekeeping.is_empty() {
                return Err(at(
                    raw_cores.housekeeping.span(),
                    "cores.housekeeping is empty: the kernel and IRQs need at least one CPU".to_string(),
                ));
            }
            let shared = housekeeping.intersection(&isolated);
            if !shared.is_empty() {
                return Err(at(
                    raw_cores.isolated.span(),
                    format!("cores.isolated shares cpus {shared} with cores.housekeeping; the two must be disjoint"),
                ));
            }
            cores = Some(Cores { housekeeping, isolated });
            cores_spans = Some((raw_cores.housekeeping.span(), raw_cores.isolated.span()));
        }

        let mut sysctl = BTreeMap::new();
        for (key, value) in &raw.sysctl {
            let key_ok = !key.is_empty()
                && !key.starts_with('.')
                && !key.contains("..")
                && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if !key_ok {
                return Err(at(
                    value.span(),
                    format!("sysctl key `{key}` is not a dotted sysctl name like `vm.swappiness`"),
                ));
            }
            let text_value = match value.get_ref() {
                SysctlValue::Integer(n) => n.to_string(),
                SysctlValue::Text(s) => normalise_whitespace(s),
            };
            if text_value.is_empty() {
                return Err(at(value.span(), format!("sysctl `{key}` has an empty value")));
            }
            sysctl.insert(key.clone(), text_value);
        }

        if let Some(memory) = &raw.memory {
            if let Some(thp) = &memory.transparent_hugepages {
                if !matches!(thp.as_str(), "always" | "madvise" | "never") {
                    return Err(Error::Profile {
                        origin: origin.to_string(),
                        message: format!(
                            "memory.transparent_hugepages = `{thp}`: expected always, madvise or never"
                        ),
                    });
                }
            }
        }
        for (field, word) in [
            ("cpu.governor", raw.cpu.as_ref().and_then(|c| c.governor.as_ref())),
            ("block.nvme_scheduler", raw.block.as_ref().and_then(|b| b.nvme_scheduler.as_ref())),
        ] {
            if let Some(word) = word {
                if word.is_empty() || !word.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                {
                    return Err(Error::Profile {
                        origin: origin.to_string(),
                        message: format!("{field} = `{word}` is not a single word"),
                    });
                }
            }
        }
        if let Some(cmdline) = &raw.cmdline {
            if cmdline.isolation && cores.is_none() {
                return Err(Error::Profile {
                    origin: origin.to_string(),
                    message: "cmdline.isolation needs a [cores] table naming the isolated CPUs".to_string(),
                });
            }
            for param in &cmdline.extra {
                if param.is_empty() || param.chars().any(|c| c.is_whitespace() || c == '"' || c == '\\') {
                    return Err(Error::Profile {
                        origin: origin.to_string(),
                        message: format!("cmdline.extra entry `{param}` must be one word without quotes"),
                    });
                }
            }
        }
        let mut required = Vec::new();
        for entry in &raw.required {
            let key = entry.get_ref();
            let prefix = key.split(':').next().unwrap_or_default();
            if !REQUIRABLE_PREFIXES.contains(&prefix) {
                return Err(at(
                    entry.span(),
                    format!(
                        "required entry `{key}` names no item; item keys start with one of {}",
                        REQUIRABLE_PREFIXES.join(", ")
                    ),
                ));
            }
            if let Some(name) = key.strip_prefix("sysctl:") {
                if !sysctl.contains_key(name) {
                    return Err(at(
                        entry.span(),
                        format!("required entry `{key}`: `{name}` is not in the [sysctl] table"),
                    ));
                }
            }
            required.push(key.clone());
        }

        Ok(Profile {
            name: raw.name,
            description: raw.description,
            origin: origin.to_string(),
            cores,
            sysctl,
            irq: raw.irq,
            cpu: raw.cpu,
            memory: raw.memory,
            block: raw.block,
            workqueue: raw.workqueue,
            cmdline: raw.cmdline,
            required,
            source: text.to_string(),
            cores_spans,
        })
    }

    /// Refuses CPU sets the host does not have online, naming them and what the host has.
    pub fn check_host(&self, online: &CpuSet) -> Result<()> {
        let (Some(cores), Some((hk_span, iso_span))) = (&self.cores, &self.cores_spans) else {
            return Ok(());
        };
        for (name, set, span) in
            [("housekeeping", &cores.housekeeping, hk_span), ("isolated", &cores.isolated, iso_span)]
        {
            let missing = set.difference(online);
            if !missing.is_empty() {
                let what = if missing.len() == 1 { "cpu" } else { "cpus" };
                return Err(Error::Profile {
                    origin: self.origin.clone(),
                    message: format!(
                        "{}: cores.{name}: {what} {missing} not online: host has cpus {online}",
                        line_column(&self.source, span.start)
                    ),
                });
            }
        }
        Ok(())
    }

    /// Whether a missing knob for this item key is an error rather than a skip.
    pub fn is_required(&self, key: &str) -> bool {
        self.required
            .iter()
            .any(|r| key == r || key.strip_prefix(r.as_str()).is_some_and(|rest| rest.starts_with(':')))
    }

    /// The CPUs per-CPU knobs (governor, cpuidle) apply to: the isolated CPUs, or every online
    /// CPU when the profile isolates none (as tuned's latency-performance does).
    pub fn tuned_cpus(&self, online: &CpuSet) -> CpuSet {
        match &self.cores {
            Some(cores) if !cores.isolated.is_empty() => cores.isolated.clone(),
            _ => online.clone(),
        }
    }
}

pub fn builtin_names() -> String {
    BUILTIN.iter().map(|(name, _)| *name).collect::<Vec<_>>().join(", ")
}

/// Multi-value sysctls (`tcp_rmem`) print tab-separated but are written space-separated;
/// comparing after this makes `4096\t131072` equal `4096 131072`.
pub fn normalise_whitespace(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn line_column(text: &str, offset: usize) -> String {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    format!("line {line}, column {column}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtins_parse_and_trading_profile_splits_16_cores() {
        for (name, text) in BUILTIN {
            let profile = Profile::parse(text, name).unwrap();
            assert_eq!(&profile.name, name);
        }
        let trading = Profile::load("trading-16core").unwrap();
        let cores = trading.cores.as_ref().unwrap();
        assert_eq!(cores.housekeeping.to_list(), "0-1");
        assert_eq!(cores.isolated.to_list(), "2-15");
        assert_eq!(trading.sysctl["kernel.io_uring_disabled"], "0");
    }

    #[test]
    fn unknown_key_is_an_error_with_line_and_column() {
        let err =
            Profile::parse("name = \"x\"\n[memory]\nthp = \"never\"\n", "t.toml").unwrap_err().to_string();
        assert!(err.contains("line 3, column 1"), "{err}");
        assert!(err.contains("unknown field `thp`"), "{err}");
    }

    #[test]
    fn cpus_not_online_are_refused_naming_what_the_host_has() {
        let profile = Profile::load("trading-16core").unwrap();
        let err = profile.check_host(&CpuSet::parse_list("0-1").unwrap()).unwrap_err().to_string();
        assert!(err.contains("cores.isolated: cpus 2-15 not online: host has cpus 0-1"), "{err}");
        assert!(err.contains("line "), "{err}");
        let one_short =
            Profile::parse("name = \"x\"\n[cores]\nhousekeeping = \"0\"\nisolated = \"1,15\"\n", "t.toml")
                .unwrap();
        let err = one_short.check_host(&CpuSet::parse_list("0-1").unwrap()).unwrap_err().to_string();
        assert!(err.contains("cpu 15 not online: host has cpus 0-1"), "{err}");
        assert!(err.contains("line 4, column 12"), "{err}");
    }

    #[test]
    fn overlapping_cores_and_bad_values_are_refused() {
        let overlap = "name = \"x\"\n[cores]\nhousekeeping = \"0-1\"\nisolated = \"1-3\"\n";
        let err = Profile::parse(overlap, "t").unwrap_err().to_string();
        assert!(err.contains("shares cpus 1"), "{err}");
        let bad_thp = "name = \"x\"\n[memory]\ntransparent_hugepages = \"sometimes\"\n";
        assert!(Profile::parse(bad_thp, "t").is_err());
        let bad_required = "name = \"x\"\nrequired = [\"sysctl:vm.nothing\"]\n";
        let err = Profile::parse(bad_required, "t").unwrap_err().to_string();
        assert!(err.contains("not in the [sysctl] table"), "{err}");
    }

    #[test]
    fn sysctl_values_accept_integers_and_normalise_whitespace() {
        let text = "name = \"x\"\n[sysctl]\n\"vm.swappiness\" = 10\n\"net.ipv4.tcp_rmem\" = \"4096\t 87380   6291456\"\n";
        let profile = Profile::parse(text, "t").unwrap();
        assert_eq!(profile.sysctl["vm.swappiness"], "10");
        assert_eq!(profile.sysctl["net.ipv4.tcp_rmem"], "4096 87380 6291456");
    }

    #[test]
    fn required_matches_whole_key_segments() {
        let text = "name = \"x\"\nrequired = [\"governor\"]\n";
        let profile = Profile::parse(text, "t").unwrap();
        assert!(profile.is_required("governor:cpu3"));
        assert!(!profile.is_required("governors:cpu3"));
        assert!(!profile.is_required("cpuidle:cpu3:state2"));
    }

    #[test]
    fn unknown_builtin_name_lists_the_builtins() {
        let err = Profile::load("fastest").unwrap_err().to_string();
        assert!(err.contains("latency-performance, trading-16core"), "{err}");
    }
}
