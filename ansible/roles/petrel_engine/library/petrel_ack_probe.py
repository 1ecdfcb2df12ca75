#!/usr/bin/python3
# Copyright: Petrel developers
# Apache-2.0
"""Ansible module: measure how long a pair of engines answered no order (switchover, rollout)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: petrel_ack_probe
short_description: Send orders to a petrel-engine pair and report the longest time without an answer
description:
  - Logs in over SoupBinTCP 3.0 to whichever of C(gateways) accepts the login (the standby of a
    pair answers Login Rejected, session not available, and the probe tries the next address),
    asks OUCH 5.0 Account Query for the next UserRefNum, then sends an Enter Order every
    C(interval_ms) and records when each is answered (Order Accepted or Order Rejected).
  - The order is one the user's risk profile refuses (C(qty) above its max_order_qty), so the
    probe never trades; a refusal travels the same path as an acceptance (sequenced, journaled,
    and released only once durable on both hosts of the pair).
  - When the connection ends it logs in again, to either host, with the sequence number of the
    next message it expects, so that it reads every answer exactly once, also those released
    while it was away.
  - Runs until C(stop_file) exists (or C(max_duration_s)), meant to be started with C(async) and
    collected with C(async_status). Python standard library only.
options:
  gateways:
    description: Each host's gateway, ADDRESS:PORT.
    type: list
    elements: str
    required: true
  username:
    description: SoupBinTCP user (1 to 6 characters), an account of its own.
    type: str
    required: true
  password:
    description: The user's password.
    type: str
    required: true
  symbol:
    description: The instrument of the probe's orders.
    type: str
    required: true
  price:
    description: The orders' price in OUCH units (1/10000).
    type: int
    required: true
  qty:
    description: The orders' quantity; the user's risk profile must refuse it.
    type: int
    default: 1000000
  interval_ms:
    description: Milliseconds between orders.
    type: int
    default: 20
  stop_file:
    description: The probe stops once this file exists.
    type: path
    required: true
  max_duration_s:
    description: The probe stops after this long in any case.
    type: int
    default: 900
author: Petrel developers
"""

RETURN = r"""
longest_gap_ms:
  description: The longest time between two consecutive answers, in milliseconds.
  type: float
  returned: always
gap_from:
  description: When that gap began (the answer before it), ISO 8601 UTC.
  type: str
  returned: always
gap_to:
  description: When it ended (the first answer after it), ISO 8601 UTC.
  type: str
  returned: always
sent:
  description: Orders sent.
  type: int
  returned: always
answered:
  description: Orders answered (each exactly once).
  type: int
  returned: always
accepted:
  description: Orders the engine accepted (0 unless the risk profile let the probe's order through).
  type: int
  returned: always
gaps:
  description: Every gap between two answers longer than 10 intervals, in order, each with ms, from, to.
  type: list
  returned: always
logins:
  description: Each accepted login to another host than the one before, as "ISO-TIME ADDRESS" (at most 100).
  type: list
  returned: always
logins_total:
  description: Every accepted login.
  type: int
  returned: always
"""

import os
import select
import socket
import struct
import time
from datetime import datetime, timezone

from ansible.module_utils.basic import AnsibleModule

MAX_PACKET_BYTES = 65535
HEARTBEAT_S = 1.0
CONNECT_TIMEOUT_S = 1.0
# OUCH 5.0 Enter Order after its type byte (big-endian): UserRefNum, Side, Quantity, Symbol,
# Price, Time In Force, Display, Capacity, Intermarket Sweep, Cross Type, ClOrdID, appendage length.
ENTER = struct.Struct(">IcI8sQccccc14sH")
# Outbound: Order Accepted and Order Rejected both start with Timestamp, UserRefNum.
TIMESTAMP_AND_REF = struct.Struct(">QI")
ACCOUNT_QUERY_RESPONSE = struct.Struct(">QI")


class Lost(Exception):
    """The connection ended; the probe logs in again."""


def iso(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).isoformat(timespec="milliseconds")


def packet(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">H", len(payload) + 1) + kind + payload


class Connection:
    def __init__(self, address: str, sock: socket.socket):
        self.address = address
        self.sock = sock
        self.buf = b""
        self.last_sent = time.monotonic()

    def send(self, kind: bytes, payload: bytes = b"") -> None:
        try:
            self.sock.sendall(packet(kind, payload))
        except OSError as e:
            raise Lost(f"{self.address}: {e}") from e
        self.last_sent = time.monotonic()

    def packets(self, wait_s: float):
        """Yields (type, payload) of the packets that arrive within wait_s."""
        readable, _, _ = select.select([self.sock], [], [], max(wait_s, 0.0))
        if readable:
            try:
                chunk = self.sock.recv(65536)
            except OSError as e:
                raise Lost(f"{self.address}: {e}") from e
            if not chunk:
                raise Lost(f"{self.address} closed the connection")
            self.buf += chunk
        while len(self.buf) >= 2:
            (length,) = struct.unpack(">H", self.buf[:2])
            if length == 0 or length > MAX_PACKET_BYTES:
                raise ValueError(f"{self.address}: packet length {length}: not SoupBinTCP")
            if len(self.buf) < 2 + length:
                break
            body, self.buf = self.buf[2 : 2 + length], self.buf[2 + length :]
            yield body[:1], body[1:]

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def read_one(conn: Connection, timeout_s: float) -> tuple[bytes, bytes]:
    """The next packet other than a server heartbeat."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for kind, payload in conn.packets(deadline - time.monotonic()):
            if kind != b"H":
                return kind, payload
    raise Lost(f"{conn.address}: no answer within {timeout_s} s")


def log_in(address: str, user: str, password: str, sequence: int):
    """A logged-in connection and the next sequence number, or None (refused, unreachable)."""
    host, _, port = address.rpartition(":")
    try:
        sock = socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S)
    except OSError:
        return None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = Connection(address, sock)
    request = user.encode().ljust(6) + password.encode().ljust(10) + b" " * 10 + str(sequence).encode().rjust(20)
    try:
        conn.send(b"L", request)
        kind, payload = read_one(conn, 5.0)
    except (Lost, ValueError):
        conn.close()
        return None
    if kind != b"A" or len(payload) != 30:
        conn.close()
        return None
    return conn, int(payload[10:30])


def probe(p: dict) -> dict:
    started = time.monotonic()
    interval = p["interval_ms"] / 1000.0
    symbol = p["symbol"].encode().ljust(8)
    sent_at: dict[int, float] = {}
    answers: list[float] = []
    accepted = 0
    logins: list[str] = []
    logins_total = 0
    next_ref = None
    next_seq = 0  # 0: new messages only, on the first login
    which = 0
    conn = None
    while not os.path.exists(p["stop_file"]) and time.monotonic() - started < p["max_duration_s"]:
        if conn is None:
            address = p["gateways"][which % len(p["gateways"])]
            which += 1
            got = log_in(address, p["username"], p["password"], next_seq)
            if got is None:
                time.sleep(interval)
                continue
            conn, next_seq = got
            logins_total += 1
            # Bounded: a login to the same host as the last one is counted, not listed.
            if not logins or not logins[-1].endswith(f" {address}"):
                logins.append(f"{iso(time.time())} {address}")
            if next_ref is None:
                conn.send(b"U", b"Q")
            next_send = time.monotonic()
        try:
            now = time.monotonic()
            if next_ref is not None and now >= next_send:
                ref = next_ref
                next_ref += 1
                conn.send(b"U", b"O" + ENTER.pack(ref, b"B", p["qty"], symbol, p["price"], b"0", b"Y", b"A", b"N", b"N",
                                                  f"PROBE{ref}".encode()[:14].ljust(14), 0))
                sent_at[ref] = time.time()
                next_send = now + interval
            elif now - conn.last_sent >= HEARTBEAT_S:
                conn.send(b"R")
            for kind, payload in conn.packets(min(interval, 0.05)):
                if kind == b"Z":
                    raise Lost(f"{conn.address}: End of Session")
                if kind != b"S":
                    continue
                next_seq += 1
                message = payload[:1]
                if message == b"Q" and next_ref is None:
                    next_ref = ACCOUNT_QUERY_RESPONSE.unpack_from(payload, 1)[1]
                elif message in (b"A", b"J"):
                    ref = TIMESTAMP_AND_REF.unpack_from(payload, 1)[1]
                    if sent_at.pop(ref, None) is not None:
                        answers.append(time.time())
                        accepted += message == b"A"
        except Lost:
            conn.close()
            conn = None
    if conn is not None:
        try:
            conn.send(b"O")
        except Lost:
            pass
        conn.close()
    gaps = [(b - a, a, b) for a, b in zip(answers, answers[1:])]
    longest = max(gaps, default=(0.0, 0.0, 0.0))
    return {
        "longest_gap_ms": round(longest[0] * 1000.0, 1),
        "gap_from": iso(longest[1]) if gaps else "",
        "gap_to": iso(longest[2]) if gaps else "",
        "sent": len(answers) + len(sent_at),
        "answered": len(answers),
                "accepted": accepted,
        "gaps": [
            {"ms": round(g * 1000.0, 1), "from": iso(a), "to": iso(b)} for g, a, b in gaps if g > 10 * interval
        ],
        "logins": logins[:100],
        "logins_total": logins_total,
    }


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "gateways": {"type": "list", "elements": "str", "required": True},
            "username": {"type": "str", "required": True},
            "password": {"type": "str", "required": True, "no_log": True},
            "symbol": {"type": "str", "required": True},
            "price": {"type": "int", "required": True},
            "qty": {"type": "int", "default": 1000000},
            "interval_ms": {"type": "int", "default": 20},
            "stop_file": {"type": "path", "required": True},
            "max_duration_s": {"type": "int", "default": 900},
        },
        supports_check_mode=False,
    )
    p = module.params
    if not p["gateways"] or any(":" not in g for g in p["gateways"]):
        module.fail_json(msg=f"gateways must be ADDRESS:PORT entries, got {p['gateways']!r}")
    if not 1 <= len(p["username"]) <= 6 or len(p["password"]) > 10 or len(p["symbol"]) > 8:
        module.fail_json(msg="username 1 to 6 characters, password at most 10, symbol at most 8 (OUCH fields)")
    if p["interval_ms"] < 1 or p["qty"] < 1 or p["price"] < 1:
        module.fail_json(msg="interval_ms, qty and price must be positive")
    try:
        result = probe(p)
    except ValueError as e:
        module.fail_json(msg=f"probe: {e}")
    if result["answered"] == 0:
        module.fail_json(msg=f"the probe got no answer to any of its {result['sent']} orders", **result)
    module.exit_json(changed=False, **result)


if __name__ == "__main__":
    main()
