//! The server session machine: login gating, violations and heartbeat timers under a
//! caller-driven clock.

use petrel_proto::session::*;
use petrel_proto::soupbin::{ClientPacket, LoginRequest};
use petrel_proto::Alpha;

const S: u64 = 1_000_000_000;

fn login() -> ClientPacket<'static> {
    ClientPacket::LoginRequest(LoginRequest {
        username: Alpha::new("u", "USER01").unwrap(),
        password: Alpha::new("p", "pw").unwrap(),
        requested_session: Alpha::BLANK,
        requested_sequence_number: 1,
    })
}

fn logged_in() -> ServerSession {
    let mut s = ServerSession::new(SessionTimers::default(), 0);
    assert!(matches!(s.on_packet(0, login()), Ok(SessionEvent::LoginRequested(_))));
    s.accept(0);
    s
}

#[test]
fn data_before_login_is_a_violation_and_closes() {
    let mut s = ServerSession::new(SessionTimers::default(), 0);
    assert_eq!(s.on_packet(1, ClientPacket::UnsequencedData(b"Q")), Err(Violation::DataBeforeLogin));
    assert_eq!(s.state(), SessionState::Closed(CloseReason::Violation(Violation::DataBeforeLogin)));
    assert_eq!(s.on_packet(2, ClientPacket::ClientHeartbeat), Err(Violation::AfterClose));
}

#[test]
fn second_login_is_a_violation() {
    let mut s = logged_in();
    assert_eq!(s.on_packet(1, login()), Err(Violation::SecondLogin));
}

#[test]
fn packets_while_login_pending_are_refused() {
    let mut s = ServerSession::new(SessionTimers::default(), 0);
    s.on_packet(0, login()).unwrap();
    assert_eq!(s.on_packet(1, ClientPacket::UnsequencedData(b"Q")), Err(Violation::PacketDuringLogin));
}

#[test]
fn logged_in_session_passes_data_and_logs_out() {
    let mut s = logged_in();
    assert_eq!(s.on_packet(1, ClientPacket::UnsequencedData(b"Q")), Ok(SessionEvent::Data(b"Q")));
    assert_eq!(s.on_packet(2, ClientPacket::ClientHeartbeat), Ok(SessionEvent::Heartbeat));
    assert_eq!(s.on_packet(3, ClientPacket::LogoutRequest), Ok(SessionEvent::LoggedOut));
    assert_eq!(s.state(), SessionState::Closed(CloseReason::LoggedOut));
}

#[test]
fn rejected_login_closes() {
    let mut s = ServerSession::new(SessionTimers::default(), 0);
    s.on_packet(0, login()).unwrap();
    s.reject();
    assert_eq!(s.state(), SessionState::Closed(CloseReason::LoginRejected));
}

#[test]
fn login_timeout_disconnects_silent_connections() {
    let mut s = ServerSession::new(SessionTimers::default(), 10);
    assert_eq!(s.next_deadline_ns(), Some(10 + 5 * S));
    assert_eq!(s.poll(10 + 5 * S - 1), TimerAction::Nothing);
    assert_eq!(s.poll(10 + 5 * S), TimerAction::Disconnect(CloseReason::LoginTimeout));
}

#[test]
fn server_heartbeat_after_one_second_of_silence_and_idle_timeout_after_fifteen() {
    let mut s = logged_in();
    assert_eq!(s.poll(S - 1), TimerAction::Nothing);
    assert_eq!(s.poll(S), TimerAction::SendHeartbeat);
    s.on_sent(S);
    assert_eq!(s.poll(S + S / 2), TimerAction::Nothing);
    // The client keeps talking, so no idle timeout.
    s.on_packet(10 * S, ClientPacket::ClientHeartbeat).unwrap();
    s.on_sent(10 * S);
    assert_eq!(s.poll(24 * S), TimerAction::SendHeartbeat);
    s.on_sent(24 * S);
    assert_eq!(s.poll(25 * S), TimerAction::Disconnect(CloseReason::IdleTimeout));
    assert_eq!(s.poll(26 * S), TimerAction::Nothing);
}

#[test]
fn replay_start_sequence() {
    assert_eq!(resolve_start_sequence(0, 11), 11);
    assert_eq!(resolve_start_sequence(1, 11), 1);
    assert_eq!(resolve_start_sequence(11, 11), 11);
    assert_eq!(resolve_start_sequence(500, 11), 11);
}
