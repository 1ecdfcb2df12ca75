//! `petrel-engine run`: the daemon's life from configuration to exit.
//!
//! Order of start-up (each step's failure ends the process with a message naming what and
//! where): configuration, users file, journal recovery (snapshot + tail), the sequenced core,
//! the gateway's listener. Only then is the engine ready. SIGTERM and SIGINT drain: the
//! listener stops, queued commands are sequenced and made durable, sessions get End of Session.
//! SIGHUP reloads risk limits (as sequenced commands, so a replay applies them at the same
//! point) and the users file; an invalid new file leaves the running configuration in place.

use crate::config::{Config, GatewayBackend};
use crate::gateway::{epoll::EpollTransport, uring::UringTransport, Gateway, GatewaySettings, Transport};
use crate::port::{GatewayPort, InboundCommand, SingleThreadRuntime};
use crate::sequencer::{Sequencer, SystemClock};
use crate::users::Users;
use petrel_core::{AccountId, Command};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

static STOP: AtomicBool = AtomicBool::new(false);
static RELOAD: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop(_: nix::libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

extern "C" fn on_reload(_: nix::libc::c_int) {
    RELOAD.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() -> Result<(), String> {
    use nix::sys::signal::{sigaction, SaFlags, SigAction, SigHandler, SigSet, Signal};
    let stop = SigAction::new(SigHandler::Handler(on_stop), SaFlags::SA_RESTART, SigSet::empty());
    let reload = SigAction::new(SigHandler::Handler(on_reload), SaFlags::SA_RESTART, SigSet::empty());
    // SAFETY: the handlers only store to atomics, which is async-signal-safe.
    unsafe {
        for signal in [Signal::SIGTERM, Signal::SIGINT] {
            sigaction(signal, &stop).map_err(|e| format!("cannot handle {signal}: {e}"))?;
        }
        sigaction(Signal::SIGHUP, &reload).map_err(|e| format!("cannot handle SIGHUP: {e}"))?;
    }
    Ok(())
}

/// Why `run` ended without serving.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(String),
    #[error("{0}")]
    Start(String),
    #[error("{0}")]
    Runtime(String),
}

impl DaemonError {
    pub fn exit_code(&self) -> u8 {
        match self {
            DaemonError::Config(_) => 2,
            DaemonError::Start(_) | DaemonError::Runtime(_) => 1,
        }
    }
}

pub fn run(config_path: &Path) -> Result<(), DaemonError> {
    let config = Config::load(config_path).map_err(|e| DaemonError::Config(e.to_string()))?;
    let users =
        Users::load(&config.gateway.users_file, &config).map_err(|e| DaemonError::Config(e.to_string()))?;
    if users.is_empty() {
        tracing::warn!(file = %config.gateway.users_file.display(), "the users file defines no users: nobody can log in");
    }
    install_signal_handlers().map_err(DaemonError::Start)?;
    tracing::info!(config = %config_path.display(), "{}", config.summary());
    let started = Instant::now();
    let mut last_progress = Instant::now();
    let recovered = crate::recovery::recover(&config, &mut |done, total| {
        if last_progress.elapsed() > Duration::from_secs(1) || done == total {
            last_progress = Instant::now();
            tracing::info!("replaying journal: {done} of {total}");
        }
    })
    .map_err(|e| DaemonError::Start(e.to_string()))?;
    let report = &recovered.report;
    tracing::info!(
        replayed = report.replayed_records,
        last_sequence = report.last_sequence,
        snapshot = ?report.snapshot.as_ref().map(|s| s.0),
        elapsed_ms = started.elapsed().as_millis() as u64,
        state_hash = %recovered.engine.state_hash(),
        "journal recovered"
    );
    let durable = recovered.writer.durable_sequence();
    let port = GatewayPort::new(1 << 16, 1 << 18, durable);
    let sequencer = Sequencer::new(recovered.engine, recovered.writer, SystemClock)
        .with_snapshots(config.snapshots.clone(), config.journal.clone());
    let runtime = SingleThreadRuntime::start(sequencer, port.clone());
    let users = Arc::new(RwLock::new(Arc::new(users)));
    let (addr_tx, addr_rx) = crossbeam::channel::bounded::<Result<(SocketAddr, &'static str), String>>(1);
    let gateway_config = config.clone();
    let gateway_users = users.clone();
    let gateway_port = port.clone();
    let gateway = std::thread::Builder::new()
        .name("petrel-gateway".into())
        .spawn(move || -> Result<(), String> {
            let settings = GatewaySettings::from_config(&gateway_config);
            let serve = |mut gateway: Gateway<Box<dyn Transport>>| -> Result<(), String> {
                let _ = addr_tx.send(Ok((gateway.local_addr(), gateway.transport_name())));
                gateway.run(&STOP).map_err(|e| e.to_string())
            };
            let transport = match bind(&gateway_config) {
                Ok(t) => t,
                Err(e) => {
                    let _ = addr_tx.send(Err(e.clone()));
                    return Err(e);
                }
            };
            match Gateway::new(transport, gateway_port, &gateway_config, gateway_users, settings) {
                Ok(gateway) => serve(gateway),
                Err(e) => {
                    let _ = addr_tx.send(Err(e.to_string()));
                    Err(e.to_string())
                }
            }
        })
        .map_err(|e| DaemonError::Start(format!("cannot start the gateway thread: {e}")))?;
    let (addr, backend) = match addr_rx.recv() {
        Ok(Ok(bound)) => bound,
        Ok(Err(e)) => return Err(DaemonError::Start(e)),
        Err(_) => return Err(DaemonError::Start("the gateway thread ended during start-up".into())),
    };
    tracing::info!(%addr, backend, "ready: gateway listening");
    // The control loop: signals now; status and watchdog come with systemd integration.
    let mut current = config;
    while !STOP.load(Ordering::SeqCst) {
        if RELOAD.swap(false, Ordering::SeqCst) {
            match reload(config_path, &current, &users, &port) {
                Ok(next) => current = next,
                Err(e) => tracing::error!("reload failed, the running configuration stays in force: {e}"),
            }
        }
        if gateway.is_finished() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    tracing::info!("stopping: draining sessions and the journal");
    STOP.store(true, Ordering::SeqCst);
    let gateway_result =
        gateway.join().map_err(|_| DaemonError::Runtime("the gateway thread panicked".into()))?;
    runtime.shutdown().map_err(DaemonError::Runtime)?;
    gateway_result.map_err(DaemonError::Runtime)?;
    tracing::info!("stopped");
    Ok(())
}

fn bind(config: &Config) -> Result<Box<dyn Transport>, String> {
    let g = &config.gateway;
    let read_buffer_bytes = 64 * 1024;
    let epoll = || {
        EpollTransport::bind(g.listen, g.max_sessions, read_buffer_bytes)
            .map(|t| Box::new(t) as Box<dyn Transport>)
            .map_err(|e| format!("cannot listen on {} with epoll: {e}", g.listen))
    };
    match g.backend {
        GatewayBackend::Epoll => epoll(),
        GatewayBackend::IoUring => UringTransport::bind(g.listen, g.max_sessions, read_buffer_bytes)
            .map(|t| Box::new(t) as Box<dyn Transport>)
            .map_err(|e| {
                format!("cannot listen on {} with io_uring (gateway.backend = \"io_uring\"): {e}", g.listen)
            }),
        GatewayBackend::Auto => match UringTransport::bind(g.listen, g.max_sessions, read_buffer_bytes) {
            Ok(t) => Ok(Box::new(t)),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                Err(format!("cannot listen on {}: {e}", g.listen))
            }
            Err(e) => {
                tracing::warn!("io_uring is unavailable ({e}); the gateway uses epoll");
                epoll()
            }
        },
    }
}

/// SIGHUP: re-read the configuration and the users file; apply changed risk limits as
/// sequenced commands and swap the users atomically. Nothing else may change at run time.
fn reload(
    path: &Path,
    current: &Config,
    users: &Arc<RwLock<Arc<Users>>>,
    port: &GatewayPort,
) -> Result<Config, String> {
    let next = Config::load(path).map_err(|e| e.to_string())?;
    if next.engine.instruments != current.engine.instruments || next.accounts.len() != current.accounts.len()
    {
        return Err("instruments and accounts cannot change while running (restart to apply)".into());
    }
    let next_users = Users::load(&next.gateway.users_file, &next).map_err(|e| e.to_string())?;
    let mut changed = 0;
    for (i, (old, new)) in current.engine.accounts.iter().zip(&next.engine.accounts).enumerate() {
        if old.limits != new.limits {
            let mut command = InboundCommand {
                conn: u32::MAX,
                command: Command::SetRiskLimits { account: AccountId(i as u32), limits: new.limits },
            };
            while let Err(back) = port.inbound.push(command) {
                command = back;
                std::thread::sleep(Duration::from_micros(100));
            }
            changed += 1;
        }
    }
    *users.write().expect("users lock") = Arc::new(next_users);
    tracing::info!(risk_limits_changed = changed, "reloaded configuration and users");
    Ok(next)
}
