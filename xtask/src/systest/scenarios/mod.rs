//! The system test scenarios, one file per area. Each states a behaviour an operator relies on
//! and fails with what it saw. They run in order inside one container; a later one builds on the
//! state an earlier one left (the tuner installed, then the engine, then upgraded, then purged).

mod checks;
mod fixture;
mod install;
mod notify;
mod purge;
mod query;
mod reload;
mod rpm;
mod stop_start;
mod trading;
mod tuner;
mod units;
mod upgrade;
mod watchdog;

pub use install::engine_deb_install;
pub use notify::{engine_journal_fields, engine_ready_and_status};
pub use purge::engine_purge_keeps_journal;
pub use reload::{engine_reload, reload_keeps_session};
pub use rpm::{rpm_install, rpm_metadata};
pub use stop_start::engine_stop_start;
pub use trading::client_trades;
pub use tuner::{tuner_deb_install, tuner_service_applies, tuner_verify_detects_drift};
pub use units::units_verify_and_security;
pub use upgrade::engine_upgrade;
pub use watchdog::{engine_watchdog_restart, orders_survive_watchdog};
