//! `[[firms]]` and `[[accounts]]`: names, and the references from each account to its firm and
//! its risk profile.

use std::collections::BTreeMap;

use petrel_core::{AccountConfig, RiskLimits};

use super::list;
use crate::config::locate::Locator;
use crate::config::locate::Seg::{Index as I, Key as K};
use crate::config::raw::{RawAccount, RawFirm};
use crate::config::{AccountInfo, ConfigFileError};

/// Firm names, in file order; an account's `firm` indexes this.
pub(super) fn firms(raw: &[RawFirm], loc: &Locator) -> Result<Vec<String>, ConfigFileError> {
    let mut firms: Vec<String> = Vec::with_capacity(raw.len());
    for (i, firm) in raw.iter().enumerate() {
        let name_ok =
            (1..=4).contains(&firm.name.len()) && firm.name.bytes().all(|b| b.is_ascii_alphanumeric());
        if !name_ok {
            return Err(loc.error(
                &[K("firms"), I(i), K("name")],
                format!("firm name {:?} must be 1 to 4 letters or digits (it travels in OUCH's 4-byte Firm field)", firm.name),
            ));
        }
        if firms.contains(&firm.name) {
            return Err(
                loc.error(&[K("firms"), I(i), K("name")], format!("firm {:?} is defined twice", firm.name))
            );
        }
        firms.push(firm.name.clone());
    }
    Ok(firms)
}

/// The accounts for the core (indexed by `AccountId`, positionally) and their names.
pub(super) fn accounts(
    raw: &[RawAccount],
    firms: &[String],
    profiles: &BTreeMap<&str, RiskLimits>,
    loc: &Locator,
) -> Result<(Vec<AccountConfig>, Vec<AccountInfo>), ConfigFileError> {
    let mut accounts = Vec::with_capacity(raw.len());
    let mut account_infos: Vec<AccountInfo> = Vec::with_capacity(raw.len());
    for (i, acct) in raw.iter().enumerate() {
        let at = |key: &'static str| [K("accounts"), I(i), K(key)];
        let name_ok = (1..=32).contains(&acct.name.len())
            && acct.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            return Err(loc.error(
                &at("name"),
                format!("account name {:?} must be 1 to 32 of [A-Za-z0-9_-]", acct.name),
            ));
        }
        if account_infos.iter().any(|a| a.name == acct.name) {
            return Err(loc.error(&at("name"), format!("account {:?} is defined twice", acct.name)));
        }
        let Some(firm) = firms.iter().position(|f| *f == acct.firm) else {
            return Err(loc.error(
                &at("firm"),
                format!(
                    "firm {:?} is not defined; define it in a [[firms]] entry (defined: {})",
                    acct.firm,
                    list(firms)
                ),
            ));
        };
        let Some(limits) = profiles.get(acct.risk_profile.as_str()) else {
            let defined: Vec<String> = profiles.keys().map(|k| k.to_string()).collect();
            return Err(loc.error(
                &at("risk_profile"),
                format!(
                    "risk profile {:?} is not defined; define it as [risk_profiles.{}] (defined: {})",
                    acct.risk_profile,
                    acct.risk_profile,
                    list(&defined)
                ),
            ));
        };
        accounts.push(AccountConfig { firm: firm as u32, stp: acct.stp, limits: *limits });
        account_infos.push(AccountInfo {
            name: acct.name.clone(),
            firm: acct.firm.clone(),
            risk_profile: acct.risk_profile.clone(),
        });
    }
    Ok((accounts, account_infos))
}
