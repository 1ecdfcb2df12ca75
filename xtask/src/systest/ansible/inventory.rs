//! Bad inventory values stop site.yml before any host changes, with a message naming the
//! variable. Each bad value is set on one host only (an extra inventory file of host
//! variables): the other hosts must not change either.

use super::fleet::Fleet;
use super::host::{fingerprint, Fingerprint};
use crate::util::Result;

struct BadValue {
    what: &'static str,
    host: &'static str,
    /// Host variables, as YAML under the host.
    vars: &'static str,
    /// What the failure must say.
    says: &'static str,
}

const BAD_VALUES: &[BadValue] = &[
    BadValue {
        what: "an unknown tuner profile",
        host: "petrel-3",
        vars: "petrel_tuner_profile: ultra-low-latency\n",
        says: "value of petrel_tuner_profile must be one of",
    },
    BadValue {
        what: "overlapping CPU sets",
        host: "petrel-2",
        vars: "petrel_tuner_housekeeping_cpus: \"0-1\"\npetrel_tuner_isolated_cpus: \"1\"\n",
        says: "petrel_tuner_housekeeping_cpus (0-1) and petrel_tuner_isolated_cpus (1) on petrel-2 overlap in CPUs 1",
    },
    BadValue {
        what: "a float price",
        host: "petrel-3",
        vars: "petrel_engine_instruments:\n\
               \x20 - {symbol: AAPL, tick_size: \"0.01\", lot_size: 1, price_band_min: \"0.01\", price_band_max: \"5000.00\", reference_price: 585.30}\n\
               \x20 - {symbol: MSFT, tick_size: \"0.01\", lot_size: 1, price_band_min: \"0.01\", price_band_max: \"2000.00\", reference_price: \"30.00\"}\n",
        says: "petrel_engine_instruments[0].reference_price (AAPL) is 585.3 (float)",
    },
    BadValue {
        what: "a missing vault secret (a new user without a hash)",
        host: "petrel-1",
        vars: "petrel_engine_accounts:\n\
               \x20 - {name: acme-agency, firm: ACME, stp: cancel-newest, risk_profile: agency}\n\
               \x20 - {name: mmco-mm1, firm: MMCO, stp: cancel-oldest, risk_profile: market_maker}\n\
               \x20 - {name: ops-probe, firm: OPS, stp: cancel-newest, risk_profile: probe}\n\
               \x20 - {name: carol-agency, firm: ACME, stp: cancel-newest, risk_profile: agency}\n\
               petrel_engine_users:\n\
               \x20 - {name: ALICE, account: acme-agency, cancel_on_disconnect: false}\n\
               \x20 - {name: BOB, account: mmco-mm1, cancel_on_disconnect: false}\n\
               \x20 - {name: PROBE, account: ops-probe}\n\
               \x20 - {name: CAROL, account: carol-agency}\n",
        says: "petrel_engine_password_hashes (kept in ansible-vault) has no argon2 hash for CAROL",
    },
];

pub fn bad_values_stop_before_any_change(fleet: &Fleet) -> Result {
    let before: Vec<Fingerprint> = fleet.hosts.iter().map(fingerprint).collect::<Result<_>>()?;
    for (i, bad) in BAD_VALUES.iter().enumerate() {
        let mut yaml =
            format!("all:\n  children:\n    petrel_engines:\n      hosts:\n        {}:\n", bad.host);
        for line in bad.vars.lines() {
            yaml.push_str(&format!("          {line}\n"));
        }
        let extra = fleet.extra_inventory(&format!("bad-{i}.yml"), &yaml)?;
        let run = fleet.playbook("site.yml", &["-i", &extra])?;
        run.expect_failure_saying(&format!("site.yml with {}", bad.what), bad.says)?;
        for h in &fleet.hosts {
            if run.recap_of(h.name)?.changed != 0 {
                return Err(format!(
                    "site.yml with {}: {} changed (log {})",
                    bad.what,
                    h.name,
                    run.log.display()
                ));
            }
        }
    }
    for (h, before) in fleet.hosts.iter().zip(&before) {
        let after = fingerprint(h)?;
        if &after != before {
            return Err(format!(
                "{} changed under a bad inventory: before {before:?}, after {after:?}",
                h.name
            ));
        }
    }
    Ok(())
}
