//! petrel-tuner: makes a host fit for petrel-engine, proves it, and undoes it.
//!
//! The library holds the logic; the `petrel-tuner` binary parses arguments and wires it up.
//! - [`profile`]: the TOML profile model and the built-in profiles;
//! - [`host`]: the host seen through a root directory (`/`, or a fake tree in tests);
//! - [`facts`]: what the host is;
//! - [`plan`]: current value, wanted value and action for each item;
//! - [`apply`]: changes with a journaled undo state, and rollback;
//! - [`state`]: the durable undo journal and the run lock;
//! - [`report`]: text, JSON and node_exporter textfile output.
//!
//! Typical use, as the binary does it:
//! ```no_run
//! use petrel_tuner::{apply, host::Host, plan, profile::Profile, state::StateStore};
//! let host = Host::new("/");
//! let store = StateStore::new(petrel_tuner::state::DEFAULT_STATE_DIR);
//! let profile = Profile::load("trading-16core")?;
//! let _lock = store.lock()?;
//! let plan = plan::plan(&profile, &host, &plan::Selection::all())?;
//! let outcome = apply::apply(&host, &store, &plan)?;
//! # Ok::<(), petrel_tuner::error::Error>(())
//! ```

pub mod apply;
pub mod cpuset;
pub mod engine_pinning;
pub mod error;
pub mod facts;
pub mod host;
pub mod plan;
pub mod profile;
pub mod report;
pub mod state;

use error::{Error, Result};
use host::Host;

/// Changing the live host needs root; a fake tree needs only write access to it, which is what
/// lets the tests run unprivileged.
pub fn require_root(host: &Host, command: &str) -> Result<()> {
    if host.is_live() && !nix::unistd::geteuid().is_root() {
        return Err(Error::NotRoot { command: command.to_string() });
    }
    Ok(())
}
