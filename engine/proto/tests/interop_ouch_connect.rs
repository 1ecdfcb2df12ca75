//! Interoperability with an OUCH 5.0 / SoupBinTCP client this project did not write:
//! `ouch-connect` 5.0.1 from PyPI (softstream-link, Rust `ouch_model` + pyo3). A loopback
//! server built from this crate's framer, session machine and codecs accepts its login and
//! its Unsequenced Data, and sends a Sequenced Data System Event the client must parse.
//! At the OUCH level the two disagree on the Symbol width (see the end of the test).
//!
//! Needs python3 >= 3.11 with network access to PyPI on first run: the test installs
//! `ouch-connect==5.0.1 links_connect==0.1.2` into a venv under the cargo target dir and fails
//! with a clear message if it cannot.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use petrel_proto::ouch::*;
use petrel_proto::session::{ServerSession, SessionEvent, SessionTimers};
use petrel_proto::soupbin::{
    encode_packet_with, next_client_packet, packet_type, FrameLimits, LoginAccepted, ServerPacket,
};
use petrel_proto::Alpha;

fn venv_python() -> PathBuf {
    let venv = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("ouch-connect-venv");
    let python = venv.join("bin/python");
    let ready = venv.join(".installed-5.0.1");
    if !ready.exists() {
        let status = Command::new("python3").args(["-m", "venv"]).arg(&venv).status();
        assert!(
            matches!(status, Ok(s) if s.success()),
            "cannot create a venv with `python3 -m venv` (install python3 >= 3.11 and python3-venv): {status:?}"
        );
        let status = Command::new(&python)
            .args(["-m", "pip", "install", "-q", "ouch-connect==5.0.1", "links_connect==0.1.2"])
            .status();
        assert!(
            matches!(status, Ok(s) if s.success()),
            "pip could not install ouch-connect==5.0.1 links_connect==0.1.2 from PyPI: {status:?}"
        );
        std::fs::write(&ready, b"").unwrap();
    }
    python
}

#[test]
fn ouch_connect_client_interoperates_at_soupbintcp_and_differs_on_ouch_symbol_width() {
    let python = venv_python();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/ouch_connect_client.py");
    let child = Command::new(python)
        .arg(script)
        .arg(addr.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();

    let (mut sock, _) = listener.accept().unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut session = ServerSession::new(SessionTimers::default(), 0);
    let mut rx = vec![0u8; 4096];
    let mut filled = 0usize;
    let mut tx = [0u8; 256];
    let mut entered = None;
    // Bounded: the client sends a login, an order and perhaps heartbeats.
    'read: for _ in 0..64 {
        let n = sock.read(&mut rx[filled..]).unwrap();
        assert!(n > 0, "client closed before sending an Enter Order");
        filled += n;
        let mut used_total = 0;
        while let Some((packet, used)) =
            next_client_packet(&rx[used_total..filled], FrameLimits::CLIENT_DEFAULT).unwrap()
        {
            used_total += used;
            match session.on_packet(1, packet).unwrap() {
                SessionEvent::LoginRequested(login) => {
                    // ouch-connect right-justifies alpha login fields (spec: left-justified),
                    // so credentials must be compared trimmed on both sides.
                    assert_eq!(login.username.trimmed(), "USER01");
                    assert_eq!(login.password.trimmed(), "pw");
                    assert_eq!(login.requested_session.trimmed(), "S1");
                    session.accept(1);
                    let accepted =
                        LoginAccepted { session: Alpha::new("s", "S1").unwrap(), sequence_number: 1 };
                    let n = ServerPacket::LoginAccepted(accepted).encode(&mut tx).unwrap();
                    sock.write_all(&tx[..n]).unwrap();
                }
                SessionEvent::Data(payload) => {
                    entered = Some(payload.to_vec());
                    let event = Outbound::SystemEvent(SystemEvent {
                        timestamp_ns: 34_200_000_000_000,
                        event_code: EventCode::StartOfDay,
                    });
                    let n = encode_packet_with(&mut tx, packet_type::SEQUENCED_DATA, |b| event.encode(b))
                        .unwrap();
                    sock.write_all(&tx[..n]).unwrap();
                    break 'read;
                }
                SessionEvent::Heartbeat | SessionEvent::Debug(_) => {}
                SessionEvent::LoggedOut => panic!("client logged out early"),
            }
        }
        rx.copy_within(used_total..filled, 0);
        filled -= used_total;
    }
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "ouch-connect client failed: {}\nstdout: {stdout}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );

    // SoupBinTCP interoperates: login (with the client's right-justified alpha fields), an
    // Unsequenced Data packet in, a Sequenced Data packet out that the client decoded.
    for needle in ["\"SystemEvent\"", "\"timestamp\":34200000000000", "\"event_code\":\"START_OF_DAY\""] {
        assert!(stdout.contains(needle), "{needle} missing from client's parse: {stdout}");
    }

    // OUCH does not: ouch-connect 5.0.1 writes Symbol as 9 bytes where the spec has 8 (see
    // SPEC-NOTES.md). The strict decoder must refuse that with a typed error rather than
    // misread every field after the symbol. If this starts decoding, one side changed layout.
    let payload = entered.expect("client sent no Unsequenced Data");
    assert_eq!(payload.len(), 60, "ouch-connect Enter Order: {payload:02x?}");
    assert_eq!(&payload[10..19], b"AAPL     ", "9-byte symbol");
    assert_eq!(
        Inbound::decode(&payload),
        Err(DecodeError::AppendageLength { msg: "Enter Order", declared_bytes: 0x2000, actual_bytes: 13 })
    );
}
