//! Sans-I/O server side of one SoupBinTCP session: login state, protocol violations and the
//! heartbeat timers, driven by a monotonic `now_ns` the caller supplies. The gateway owns the
//! socket, the clock and the journal; this type only decides.

use crate::soupbin::{ClientPacket, LoginRequest};

/// Timer settings for one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTimers {
    /// Send a Server Heartbeat when nothing was sent for this long (the spec says 1 s).
    pub heartbeat_interval_ns: u64,
    /// Drop a logged-in client that sent nothing for this long (the spec suggests 15 s).
    pub idle_timeout_ns: u64,
    /// Drop a connection that has not sent a Login Request within this long of connecting;
    /// the spec leaves this open, a bound is needed so idle sockets cannot pile up.
    pub login_timeout_ns: u64,
}

impl Default for SessionTimers {
    fn default() -> Self {
        Self {
            heartbeat_interval_ns: 1_000_000_000,
            idle_timeout_ns: 15_000_000_000,
            login_timeout_ns: 5_000_000_000,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionState {
    /// Connected, no Login Request seen yet.
    AwaitingLogin,
    /// A Login Request was handed to the caller, who has not yet accepted or rejected it.
    LoginPending,
    LoggedIn,
    /// The session is over; the caller closes the socket.
    Closed(CloseReason),
}

/// Why a session ended; the caller counts these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    LoggedOut,
    LoginRejected,
    LoginTimeout,
    IdleTimeout,
    Violation(Violation),
    EndOfSession,
}

/// Client behaviour the protocol forbids. The spec's answer to all of them is to drop the
/// connection; the caller counts them per kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Violation {
    #[error("packet other than Login Request before login")]
    DataBeforeLogin,
    #[error("second Login Request on a logged-in session")]
    SecondLogin,
    #[error("packet sent while the previous Login Request is still being decided")]
    PacketDuringLogin,
    #[error("packet received on a closed session")]
    AfterClose,
}

/// What a received packet means to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEvent<'a> {
    /// Authenticate, then call [`ServerSession::accept`] or [`ServerSession::reject`].
    LoginRequested(LoginRequest),
    /// Unsequenced data from a logged-in client: an OUCH inbound message.
    Data(&'a [u8]),
    /// Debug text: log it, nothing else.
    Debug(&'a [u8]),
    /// A Client Heartbeat; nothing to do beyond the bookkeeping already done.
    Heartbeat,
    /// Logout Request: the session is now closed.
    LoggedOut,
}

/// What the timers want the caller to do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerAction {
    Nothing,
    SendHeartbeat,
    /// The session is now closed for this reason; close the socket.
    Disconnect(CloseReason),
}

#[derive(Debug, Clone)]
pub struct ServerSession {
    timers: SessionTimers,
    state: SessionState,
    connected_ns: u64,
    last_rx_ns: u64,
    last_tx_ns: u64,
}

impl ServerSession {
    pub fn new(timers: SessionTimers, now_ns: u64) -> Self {
        assert!(timers.heartbeat_interval_ns > 0, "heartbeat interval must be positive");
        assert!(
            timers.idle_timeout_ns > timers.heartbeat_interval_ns,
            "idle timeout must exceed the heartbeat interval or healthy clients get dropped"
        );
        Self {
            timers,
            state: SessionState::AwaitingLogin,
            connected_ns: now_ns,
            last_rx_ns: now_ns,
            last_tx_ns: now_ns,
        }
    }

    pub fn state(&self) -> SessionState {
        self.state
    }

    pub fn is_logged_in(&self) -> bool {
        self.state == SessionState::LoggedIn
    }

    /// Feeds one received packet. On `Err` the session is closed with that violation.
    pub fn on_packet<'a>(
        &mut self,
        now_ns: u64,
        packet: ClientPacket<'a>,
    ) -> Result<SessionEvent<'a>, Violation> {
        self.last_rx_ns = self.last_rx_ns.max(now_ns);
        let event = match (self.state, packet) {
            (SessionState::Closed(_), _) => return Err(Violation::AfterClose),
            // Debug packets are harmless in any open state; the spec lets either side send one.
            (_, ClientPacket::Debug(text)) => SessionEvent::Debug(text),
            (SessionState::AwaitingLogin, ClientPacket::LoginRequest(login)) => {
                self.state = SessionState::LoginPending;
                SessionEvent::LoginRequested(login)
            }
            (SessionState::AwaitingLogin, _) => return self.violate(Violation::DataBeforeLogin),
            (SessionState::LoginPending, _) => return self.violate(Violation::PacketDuringLogin),
            (SessionState::LoggedIn, ClientPacket::LoginRequest(_)) => {
                return self.violate(Violation::SecondLogin)
            }
            (SessionState::LoggedIn, ClientPacket::UnsequencedData(data)) => SessionEvent::Data(data),
            (SessionState::LoggedIn, ClientPacket::ClientHeartbeat) => SessionEvent::Heartbeat,
            (SessionState::LoggedIn, ClientPacket::LogoutRequest) => {
                self.state = SessionState::Closed(CloseReason::LoggedOut);
                SessionEvent::LoggedOut
            }
        };
        Ok(event)
    }

    fn violate<T>(&mut self, violation: Violation) -> Result<T, Violation> {
        self.state = SessionState::Closed(CloseReason::Violation(violation));
        Err(violation)
    }

    /// The caller accepted the pending login and is about to send Login Accepted.
    pub fn accept(&mut self, now_ns: u64) {
        assert_eq!(self.state, SessionState::LoginPending, "accept without a pending login");
        self.state = SessionState::LoggedIn;
        self.last_rx_ns = self.last_rx_ns.max(now_ns);
    }

    /// The caller rejected the pending login and is about to send Login Rejected and close.
    pub fn reject(&mut self) {
        assert_eq!(self.state, SessionState::LoginPending, "reject without a pending login");
        self.state = SessionState::Closed(CloseReason::LoginRejected);
    }

    /// The caller sent End of Session; nothing more may be sent.
    pub fn end_of_session(&mut self) {
        self.state = SessionState::Closed(CloseReason::EndOfSession);
    }

    /// Records that bytes were written to the client (resets the heartbeat timer).
    pub fn on_sent(&mut self, now_ns: u64) {
        self.last_tx_ns = self.last_tx_ns.max(now_ns);
    }

    /// Checks the timers. Call at least every heartbeat interval.
    pub fn poll(&mut self, now_ns: u64) -> TimerAction {
        match self.state {
            SessionState::Closed(_) => TimerAction::Nothing,
            SessionState::AwaitingLogin | SessionState::LoginPending => {
                if now_ns.saturating_sub(self.connected_ns) >= self.timers.login_timeout_ns {
                    self.state = SessionState::Closed(CloseReason::LoginTimeout);
                    TimerAction::Disconnect(CloseReason::LoginTimeout)
                } else {
                    TimerAction::Nothing
                }
            }
            SessionState::LoggedIn => {
                if now_ns.saturating_sub(self.last_rx_ns) >= self.timers.idle_timeout_ns {
                    self.state = SessionState::Closed(CloseReason::IdleTimeout);
                    TimerAction::Disconnect(CloseReason::IdleTimeout)
                } else if now_ns.saturating_sub(self.last_tx_ns) >= self.timers.heartbeat_interval_ns {
                    TimerAction::SendHeartbeat
                } else {
                    TimerAction::Nothing
                }
            }
        }
    }

    /// Earliest `now_ns` at which [`Self::poll`] may act, so an event loop can sleep until then.
    pub fn next_deadline_ns(&self) -> Option<u64> {
        match self.state {
            SessionState::Closed(_) => None,
            SessionState::AwaitingLogin | SessionState::LoginPending => {
                Some(self.connected_ns.saturating_add(self.timers.login_timeout_ns))
            }
            SessionState::LoggedIn => Some(
                self.last_rx_ns
                    .saturating_add(self.timers.idle_timeout_ns)
                    .min(self.last_tx_ns.saturating_add(self.timers.heartbeat_interval_ns)),
            ),
        }
    }
}

/// The first sequence number to send after a login, given the client's request and the next
/// number the server will generate (`next_to_generate`, so `next_to_generate - 1` messages
/// exist). 0 means "start with new messages". A request beyond what exists starts with new
/// messages too: the spec does not say, and replaying nothing is the only safe reading.
pub fn resolve_start_sequence(requested: u64, next_to_generate: u64) -> u64 {
    assert!(next_to_generate >= 1, "sequence numbers start at 1");
    if requested == 0 || requested > next_to_generate {
        next_to_generate
    } else {
        requested
    }
}
