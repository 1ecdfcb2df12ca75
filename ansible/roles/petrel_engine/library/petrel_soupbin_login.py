#!/usr/bin/python3
# Copyright: Petrel developers
# Apache-2.0
"""Ansible module: log in to a SoupBinTCP 3.0 server and log out again (the health gate)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: petrel_soupbin_login
short_description: Log in to petrel-engine's OUCH port over SoupBinTCP 3.0, then log out
description:
  - Connects to the gateway, sends a SoupBinTCP Login Request asking for new messages only
    (sequence 0), and succeeds on Login Accepted; Login Rejected, a closed connection or a
    timeout fail with what was seen. Then sends a Logout Request and waits for the close.
  - Runs on the managed host (Python standard library only). Changes nothing.
options:
  host:
    description: Address of the gateway.
    type: str
    default: 127.0.0.1
  port:
    description: Port of the gateway.
    type: int
    required: true
  username:
    description: SoupBinTCP user name (1 to 6 characters).
    type: str
    required: true
  password:
    description: The user's password (up to 10 characters).
    type: str
    required: true
  timeout_s:
    description: Bound on the connection and on each read, in seconds.
    type: float
    default: 10
  expect:
    description:
      - C(accepted) (a primary or a single engine) succeeds on Login Accepted.
      - C(standby) (the standby of a pair) succeeds on Login Rejected with reason C(S), session
        not available, which tells a client to try the other host; anything else fails.
    type: str
    choices: [accepted, standby]
    default: accepted

author: Petrel developers
"""

EXAMPLES = r"""
- name: Log in as the monitoring user
  petrel_soupbin_login:
    port: 15000
    username: PROBE
    password: "{{ vault_probe_password }}"
"""

RETURN = r"""
rejected:
  description: The reject reason code, when expect is standby.
  type: str
  returned: success and expect is standby
session:
  description: The session name the server accepted the login into.
  type: str
  returned: success
sequence:
  description: The next sequence number the server would send.
  type: int
  returned: success
"""

import socket
import struct

from ansible.module_utils.basic import AnsibleModule

# SoupBinTCP 3.0 packet types (the specification's names).
LOGIN_REQUEST = b"L"
LOGOUT_REQUEST = b"O"
LOGIN_ACCEPTED = b"A"
LOGIN_REJECTED = b"J"
SERVER_HEARTBEAT = b"H"
REJECT_REASONS = {b"A": "not authorized (user name or password)", b"S": "session not available"}
# A login answer is a few dozen bytes; anything near this is not SoupBinTCP.
MAX_PACKET_BYTES = 65535
# Server heartbeats the server may send before its answer.
MAX_HEARTBEATS = 16


def packet(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">H", len(payload) + 1) + kind + payload


def read_exact(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        data += chunk
    return data


def read_packet(sock: socket.socket) -> tuple[bytes, bytes]:
    (length,) = struct.unpack(">H", read_exact(sock, 2))
    if length == 0 or length > MAX_PACKET_BYTES:
        raise ValueError(f"packet length {length}")
    body = read_exact(sock, length)
    return body[:1], body[1:]


def login(host: str, port: int, username: str, password: str, timeout_s: float, expect: str) -> dict:
    request = (
        username.encode("ascii").ljust(6)
        + password.encode("ascii").ljust(10)
        + b" " * 10  # any session
        + b"0".rjust(20)  # new messages only
    )
    with socket.create_connection((host, port), timeout=timeout_s) as sock:
        sock.sendall(packet(LOGIN_REQUEST, request))
        for _ in range(MAX_HEARTBEATS):
            kind, payload = read_packet(sock)
            if kind != SERVER_HEARTBEAT:
                break
        else:
            raise ValueError("only heartbeats, no answer to the login")
        if kind == LOGIN_REJECTED:
            if expect == "standby" and payload[:1] == b"S":
                return {"rejected": "S"}
            reason = REJECT_REASONS.get(payload[:1], repr(payload[:1]))
            raise PermissionError(f"Login Rejected: {reason}")
        if expect == "standby":
            sock.sendall(packet(LOGOUT_REQUEST))
            raise PermissionError("a standby accepted the login (want Login Rejected, session not available)")
        if kind != LOGIN_ACCEPTED or len(payload) != 30:
            raise ValueError(f"unexpected answer to the login: type {kind!r}, {len(payload)} bytes")
        session = payload[:10].decode("ascii").strip()
        sequence = int(payload[10:].decode("ascii").strip())
        sock.sendall(packet(LOGOUT_REQUEST))
        # The server ends the session by closing; what it sends before is not our business.
        try:
            while sock.recv(4096):
                pass
        except OSError:
            pass
        return {"session": session, "sequence": sequence}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "host": {"type": "str", "default": "127.0.0.1"},
            "port": {"type": "int", "required": True},
            "username": {"type": "str", "required": True},
            "password": {"type": "str", "required": True, "no_log": True},
            "timeout_s": {"type": "float", "default": 10.0},
            "expect": {"type": "str", "choices": ["accepted", "standby"], "default": "accepted"},
        },
        supports_check_mode=True,
    )
    p = module.params
    if not 1 <= len(p["username"]) <= 6 or len(p["password"]) > 10:
        module.fail_json(msg="username must be 1 to 6 characters and password at most 10 (SoupBinTCP fields)")
    where = f"{p['host']}:{p['port']}"
    try:
        answer = login(p["host"], p["port"], p["username"], p["password"], p["timeout_s"], p["expect"])
    except (OSError, ValueError, ConnectionError) as e:
        module.fail_json(msg=f"SoupBinTCP login as {p['username']} at {where} failed: {e}")
    module.exit_json(changed=False, **answer)


if __name__ == "__main__":
    main()
