//! The auth thread: password checks (argon2, slow by design) run here, never on the gateway
//! thread. Requests and results travel on bounded channels; a full request channel refuses the
//! login rather than queueing without bound (a login storm).

use super::settings::GatewayError;
use super::transport::ConnId;
use crate::port::Doorbell;
use crate::users::Users;
use crossbeam::channel::{Receiver, Sender};
use petrel_core::AccountId;
use std::sync::{Arc, RwLock};

/// Logins waiting to be checked, and results waiting for the gateway.
const AUTH_QUEUE: usize = 64;

struct AuthRequest {
    conn: ConnId,
    generation: u32,
    username: String,
    password: String,
}

/// A checked login. `generation` tells a result for a connection slot that was reused since.
pub(super) struct AuthResult {
    pub(super) conn: ConnId,
    pub(super) generation: u32,
    /// `None`: unknown user or wrong password.
    pub(super) account: Option<AccountId>,
}

/// The gateway's end of the auth thread.
pub(super) struct Auth {
    requests: Sender<AuthRequest>,
    results: Receiver<AuthResult>,
}

impl Auth {
    /// Starts the thread; it rings `bell` after each result so a parked gateway wakes.
    pub(super) fn start(users: Arc<RwLock<Arc<Users>>>, bell: Arc<Doorbell>) -> Result<Auth, GatewayError> {
        let (requests, request_rx) = crossbeam::channel::bounded::<AuthRequest>(AUTH_QUEUE);
        let (result_tx, results) = crossbeam::channel::bounded::<AuthResult>(AUTH_QUEUE);
        std::thread::Builder::new()
            .name("petrel-auth".into())
            .spawn(move || {
                // Ends when the gateway drops its sender.
                for request in request_rx {
                    let users = users.read().expect("users lock").clone();
                    let account = users
                        .get(&request.username)
                        .filter(|u| u.verify_password(&request.password))
                        .map(|u| u.account);
                    let result = AuthResult { conn: request.conn, generation: request.generation, account };
                    if result_tx.send(result).is_err() {
                        return;
                    }
                    bell.ring();
                }
            })
            .map_err(GatewayError::Io)?;
        Ok(Auth { requests, results })
    }

    /// Queues a login check. `false`: too many logins are waiting (refuse this one).
    pub(super) fn request(&self, conn: ConnId, generation: u32, username: &str, password: &str) -> bool {
        let request =
            AuthRequest { conn, generation, username: username.to_string(), password: password.to_string() };
        self.requests.try_send(request).is_ok()
    }

    pub(super) fn next_result(&self) -> Option<AuthResult> {
        self.results.try_recv().ok()
    }

    pub(super) fn has_results(&self) -> bool {
        !self.results.is_empty()
    }
}
