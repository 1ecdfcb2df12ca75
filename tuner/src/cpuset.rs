//! CPU sets in the two notations the kernel uses: lists (`0-3,8`, as in
//! `/sys/devices/system/cpu/online` and `smp_affinity_list`) and hex masks
//! (`ff,ffffffff`, as in `/proc/irq/default_smp_affinity` and the workqueue cpumask).

use std::collections::BTreeSet;
use std::fmt;

/// One past the highest CPU number accepted. The kernel's `CONFIG_NR_CPUS` tops out at 8192;
/// anything above is a typo, and the bound keeps a hostile `0-4294967295` from allocating.
pub const CPU_ID_LIMIT: u32 = 8192;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CpuSetError {
    #[error("`{text}` is not a CPU list: {why} (expected something like `0-3,8`)")]
    List { text: String, why: String },
    #[error("`{text}` is not a CPU mask: {why} (expected hex groups like `ff,ffffffff`)")]
    Mask { text: String, why: String },
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CpuSet(BTreeSet<u32>);

impl CpuSet {
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses a kernel CPU list; the empty string is the empty set (an idle `isolated` file).
    pub fn parse_list(text: &str) -> Result<Self, CpuSetError> {
        let fail = |why: String| CpuSetError::List { text: text.to_string(), why };
        let mut set = BTreeSet::new();
        for part in text.trim().split(',').map(str::trim).filter(|p| !p.is_empty()) {
            if part.contains(':') {
                return Err(fail(format!("the stride form `{part}` is not supported")));
            }
            let (first, last) = match part.split_once('-') {
                Some((a, b)) => (parse_cpu(a).map_err(&fail)?, parse_cpu(b).map_err(&fail)?),
                None => {
                    let cpu = parse_cpu(part).map_err(&fail)?;
                    (cpu, cpu)
                }
            };
            if first > last {
                return Err(fail(format!("range `{part}` runs backwards")));
            }
            set.extend(first..=last);
        }
        Ok(Self(set))
    }

    /// Parses a kernel hex mask: comma-separated 32-bit groups, most significant first.
    pub fn parse_mask(text: &str) -> Result<Self, CpuSetError> {
        let fail = |why: String| CpuSetError::Mask { text: text.to_string(), why };
        let groups: Vec<&str> = text.trim().split(',').collect();
        let group_limit = (CPU_ID_LIMIT / 32) as usize;
        if groups.len() > group_limit {
            return Err(fail(format!("more than {group_limit} groups")));
        }
        let mut set = BTreeSet::new();
        for (index_from_low, group) in groups.iter().rev().enumerate() {
            if group.is_empty() || group.len() > 8 {
                return Err(fail(format!("group `{group}` is not 1 to 8 hex digits")));
            }
            let bits =
                u32::from_str_radix(group, 16).map_err(|_| fail(format!("group `{group}` is not hex")))?;
            for bit in 0..32u32 {
                if bits & (1 << bit) != 0 {
                    set.insert(index_from_low as u32 * 32 + bit);
                }
            }
        }
        Ok(Self(set))
    }

    /// Kernel list notation with ranges collapsed: `{0,1,2,5}` is `0-2,5`.
    pub fn to_list(&self) -> String {
        let mut out = String::new();
        let mut iter = self.0.iter().copied().peekable();
        while let Some(first) = iter.next() {
            let mut last = first;
            while iter.peek() == Some(&(last + 1)) {
                last += 1;
                iter.next();
            }
            if !out.is_empty() {
                out.push(',');
            }
            if first == last {
                out.push_str(&first.to_string());
            } else {
                out.push_str(&format!("{first}-{last}"));
            }
        }
        out
    }

    /// Kernel mask notation, as short as the highest CPU needs; the kernel accepts any width.
    pub fn to_mask(&self) -> String {
        let Some(&highest) = self.0.iter().next_back() else {
            return "0".to_string();
        };
        let group_count = highest / 32 + 1;
        let mut groups = vec![0u32; group_count as usize];
        for &cpu in &self.0 {
            groups[(cpu / 32) as usize] |= 1 << (cpu % 32);
        }
        let mut out = String::new();
        for (i, bits) in groups.iter().rev().enumerate() {
            if i == 0 {
                out.push_str(&format!("{bits:x}"));
            } else {
                out.push_str(&format!(",{bits:08x}"));
            }
        }
        out
    }

    pub fn contains(&self, cpu: u32) -> bool {
        self.0.contains(&cpu)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.0.iter().copied()
    }

    pub fn intersection(&self, other: &CpuSet) -> CpuSet {
        Self(self.0.intersection(&other.0).copied().collect())
    }

    pub fn difference(&self, other: &CpuSet) -> CpuSet {
        Self(self.0.difference(&other.0).copied().collect())
    }
}

impl FromIterator<u32> for CpuSet {
    fn from_iter<I: IntoIterator<Item = u32>>(iter: I) -> Self {
        Self(iter.into_iter().collect())
    }
}

impl fmt::Display for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            f.write_str("(none)")
        } else {
            f.write_str(&self.to_list())
        }
    }
}

fn parse_cpu(text: &str) -> Result<u32, String> {
    let cpu: u32 = text.trim().parse().map_err(|_| format!("`{text}` is not a CPU number"))?;
    if cpu >= CPU_ID_LIMIT {
        return Err(format!("CPU {cpu} is above the kernel limit of {CPU_ID_LIMIT}"));
    }
    Ok(cpu)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_round_trips_and_collapses_ranges() {
        let set = CpuSet::parse_list("5, 0-2,3,9-10\n").unwrap();
        assert_eq!(set.to_list(), "0-3,5,9-10");
        assert_eq!(CpuSet::parse_list("").unwrap(), CpuSet::new());
    }

    #[test]
    fn list_rejects_garbage_with_its_text() {
        let err = CpuSet::parse_list("0-x").unwrap_err().to_string();
        assert!(err.contains("`0-x`"), "{err}");
        assert!(CpuSet::parse_list("3-1").is_err());
        assert!(CpuSet::parse_list("0-9000").is_err());
        assert!(CpuSet::parse_list("0-15:2/4").is_err());
    }

    #[test]
    fn mask_matches_kernel_notation() {
        let set = CpuSet::parse_mask("00000003").unwrap();
        assert_eq!(set.to_list(), "0-1");
        let wide = CpuSet::parse_mask("1,00000001").unwrap();
        assert_eq!(wide.to_list(), "0,32");
        assert_eq!(wide.to_mask(), "1,00000001");
        assert_eq!(CpuSet::parse_list("0-1").unwrap().to_mask(), "3");
        assert_eq!(CpuSet::new().to_mask(), "0");
        assert!(CpuSet::parse_mask("xyz").is_err());
        assert!(CpuSet::parse_mask("123456789").is_err());
    }

    /// Naive reference: every subset of 0..70 formed from a bit pattern survives both notations.
    #[test]
    fn both_notations_round_trip_against_a_bit_model() {
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..500 {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            let model: Vec<u32> = (0..70u32).filter(|i| (seed.rotate_left(*i) & 1) == 1).collect();
            let set: CpuSet = model.iter().copied().collect();
            assert_eq!(CpuSet::parse_list(&set.to_list()).unwrap(), set);
            assert_eq!(CpuSet::parse_mask(&set.to_mask()).unwrap(), set);
            assert_eq!(set.iter().collect::<Vec<_>>(), model);
        }
    }
}
