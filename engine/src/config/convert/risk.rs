//! `[risk_profiles.NAME]`: each profile's limits in the core's units (price units for notionals,
//! ns for the rate window), with `"unlimited"` as the core's unlimited value.

use std::collections::BTreeMap;

use petrel_core::RiskLimits;

use crate::config::locate::Seg::Key as K;
use crate::config::locate::{Locator, Seg};
use crate::config::raw::RawRiskProfile;
use crate::config::units::{Limit, Money};
use crate::config::ConfigFileError;

/// The profiles by name, for accounts to refer to.
pub(super) fn risk_profiles<'a>(
    raw: &'a BTreeMap<String, RawRiskProfile>,
    loc: &Locator,
) -> Result<BTreeMap<&'a str, RiskLimits>, ConfigFileError> {
    let mut profiles: BTreeMap<&str, RiskLimits> = BTreeMap::new();
    for (name, p) in raw {
        profiles.insert(name.as_str(), risk_limits(name, p, loc)?);
    }
    Ok(profiles)
}

fn at<'a>(name: &'a str, key: &'static str) -> [Seg<'a>; 3] {
    [K("risk_profiles"), K(name), K(key)]
}

fn risk_limits(name: &str, p: &RawRiskProfile, loc: &Locator) -> Result<RiskLimits, ConfigFileError> {
    let (max_orders_per_window, rate_window_ns) = rate_limit(name, p, loc)?;
    let max_position = match p.max_position {
        Limit::Unlimited => RiskLimits::UNLIMITED.max_position,
        Limit::Value(v) if v <= i64::MAX as u64 => v,
        Limit::Value(v) => {
            return Err(
                loc.error(&at(name, "max_position"), format!("max_position = {v} must be at most 2^63-1"))
            )
        }
    };
    Ok(RiskLimits {
        max_order_qty: match p.max_order_qty {
            Limit::Unlimited => RiskLimits::UNLIMITED.max_order_qty,
            Limit::Value(v) => v,
        },
        max_order_notional: match p.max_order_notional {
            Limit::Unlimited => RiskLimits::UNLIMITED.max_order_notional,
            Limit::Value(Money(v)) => v,
        },
        price_collar_bps: match p.price_collar_bps {
            Limit::Unlimited => 0,
            Limit::Value(0) => {
                return Err(loc.error(
                    &at(name, "price_collar_bps"),
                    "a collar of 0 bps would refuse every priced order; write \"unlimited\" for no collar",
                ))
            }
            Limit::Value(v) => v,
        },
        max_open_orders: match p.max_open_orders {
            Limit::Unlimited => RiskLimits::UNLIMITED.max_open_orders,
            Limit::Value(v) => v,
        },
        max_position,
        max_orders_per_window,
        rate_window_ns,
    })
}

/// `max_orders_per_window` and `rate_window_ms` (converted to ns): both or neither.
fn rate_limit(name: &str, p: &RawRiskProfile, loc: &Locator) -> Result<(u32, u64), ConfigFileError> {
    match (p.max_orders_per_window, p.rate_window_ms) {
        (Limit::Unlimited, None) => Ok((0, RiskLimits::UNLIMITED.rate_window_ns)),
        (Limit::Unlimited, Some(_)) => Err(loc.error(
            &at(name, "rate_window_ms"),
            "rate_window_ms has no effect while max_orders_per_window = \"unlimited\"; remove one of them",
        )),
        (Limit::Value(0), _) => Err(loc.error(
            &at(name, "max_orders_per_window"),
            "max_orders_per_window = 0 would refuse every order; write \"unlimited\" for no rate limit",
        )),
        (Limit::Value(_), None) => Err(loc.error(
            &at(name, "max_orders_per_window"),
            "max_orders_per_window needs rate_window_ms (the window length, ms)",
        )),
        (Limit::Value(n), Some(ms)) => match ms.checked_mul(1_000_000) {
            Some(ns) if ms > 0 => Ok((n, ns)),
            _ => Err(loc.error(
                &at(name, "rate_window_ms"),
                format!("rate_window_ms = {ms} must be between 1 and 2^44"),
            )),
        },
    }
}
