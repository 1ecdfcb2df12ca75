//! The control plane's sections: `[admin]` (the endpoint that can engage kill switches) and
//! `[log]`.

use crate::config::locate::Locator;
use crate::config::locate::Seg::Key as K;
use crate::config::raw::{RawAdmin, RawLog};
use crate::config::{AdminConfig, ConfigFileError, LogConfig};

pub(super) fn admin(raw: RawAdmin, loc: &Locator) -> Result<AdminConfig, ConfigFileError> {
    if !raw.listen.ip().is_loopback() && !raw.allow_non_loopback {
        return Err(loc.error(
            &[K("admin"), K("listen")],
            format!(
                "admin.listen = {} is not a loopback address: the admin endpoint can engage kill switches; \
                 set admin.allow_non_loopback = true if it really must be reachable from the network",
                raw.listen
            ),
        ));
    }
    Ok(AdminConfig { listen: raw.listen })
}

pub(super) fn log(raw: RawLog, loc: &Locator) -> Result<LogConfig, ConfigFileError> {
    if let Err(e) = tracing_subscriber::EnvFilter::try_new(&raw.filter) {
        return Err(loc.error(&[K("log"), K("filter")], format!("invalid log filter {:?}: {e}", raw.filter)));
    }
    Ok(LogConfig { filter: raw.filter })
}
