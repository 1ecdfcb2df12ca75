"""A MoldUDP64 listener that rebuilds the book from Petrel's ITCH feed with itchfeed, a
TotalView-ITCH 5.0 parser this project did not write (PyPI `itchfeed`, module `itch`).

Usage: itch_listener.py REQUEST_HOST REQUEST_PORT DROP_RATE SEED [GROUP:PORT]
Prints its UDP port on the first line. With GROUP:PORT it joins that multicast group on
127.0.0.1 (multicast on loopback) instead of taking a unicast port. Reads commands on stdin:
  report N   when every message 1..N has been applied (gaps filled through the
             retransmission server), print the book and the counters as one JSON line
  join H P   (with ITCH_LATE_JOIN=1, which ignores the feed until then) take the book from
             the snapshot service at H:P over SoupBinTCP, then apply the live feed from the
             sequence number its End of Snapshot names
  eos        print the counters as one JSON line once End of Session has been received
  quit       exit
Live packets carrying messages are dropped at random with probability DROP_RATE (seeded);
retransmitted ones (from the request server's address) never are. A sequence number seen twice must carry the
same bytes: a reused number is an error (exit 3).
"""

import json
import os
import random
import select
import socket
import struct
import sys
import time

from itch.parser import MessageParser


class Book:
    def __init__(self):
        self.orders = {}  # order reference -> [side, price, shares, locate]
        self.mpids = set()  # attributions seen on Add Order with MPID Attribution

    def apply(self, m):
        t = m.message_type
        if t in (b"A", b"F"):
            self.orders[m.order_reference_number] = [
                m.buy_sell_indicator.decode(), m.price, m.shares, m.stock_locate]
            if t == b"F":
                self.mpids.add(m.attribution.decode().strip())
        elif t in (b"E", b"C"):
            self.reduce(m.order_reference_number, m.executed_shares)
        elif t == b"X":
            self.reduce(m.order_reference_number, m.cancelled_shares)
        elif t == b"D":
            del self.orders[m.order_reference_number]
        elif t == b"U":
            side, _, _, locate = self.orders.pop(m.order_reference_number)
            self.orders[m.new_order_reference_number] = [side, m.price, m.shares, locate]

    def reduce(self, ref, shares):
        order = self.orders[ref]
        order[2] -= shares
        if order[2] < 0:
            raise SystemExit(f"order {ref} reduced below zero")
        if order[2] == 0:
            del self.orders[ref]

    def levels(self, side):
        agg = {}
        for s, price, shares, _ in self.orders.values():
            if s == side:
                size, count = agg.get(price, (0, 0))
                agg[price] = (size + shares, count + 1)
        return sorted(([p, s, c] for p, (s, c) in agg.items()), reverse=(side == "B"))


def read_exactly(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise SystemExit("the snapshot service closed early")
        data += chunk
    return data


def take_snapshot(host, port, parser, book):
    """Logs in to the snapshot service, applies what it sends; returns End of Snapshot's
    sequence number and how many messages came."""
    conn = socket.create_connection((host, port))
    login = b"L" + b"LATE".ljust(6) + b"".ljust(10) + b"".ljust(10) + b"1".rjust(20)
    conn.sendall(struct.pack(">H", len(login)) + login)
    next_sequence, messages = None, 0
    while True:
        (length,) = struct.unpack(">H", read_exactly(conn, 2))
        packet = read_exactly(conn, length)
        kind, payload = packet[:1], packet[1:]
        if kind == b"Z":
            break
        if kind == b"S" and payload[:1] == b"G":
            next_sequence = int(payload[1:].decode().strip())
        elif kind == b"S":
            book.apply(parser.get_message_type(payload))
            messages += 1
    conn.close()
    if next_sequence is None:
        raise SystemExit("no End of Snapshot")
    return next_sequence, messages


def main():
    request_addr = (sys.argv[1], int(sys.argv[2]))
    drop_rate = float(sys.argv[3])
    rng = random.Random(int(sys.argv[4]))
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    if len(sys.argv) > 5:
        group, port = sys.argv[5].rsplit(":", 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((group, int(port)))
        mreq = socket.inet_aton(group) + socket.inet_aton("127.0.0.1")
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    else:
        sock.bind(("127.0.0.1", 0))
    # Retransmission requests leave from, and their answers come back to, a unicast socket
    # (a socket bound to a multicast group cannot receive a unicast answer).
    req_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    req_sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    parser = MessageParser()
    book = Book()
    bbo = {}  # sequence number -> best bid and ask after that message
    seen = {}
    pending = {}
    expected, high = 1, 0
    session = None
    counts = {"dropped": 0, "requests": 0, "retransmitted": 0, "heartbeats": 0,
              "end_of_session": 0, "packets": 0, "types": {}}
    report_at = None
    report_deadline = 0.0
    eos_wanted = False
    last_request = 0.0
    joined = os.environ.get("ITCH_LATE_JOIN") != "1"
    counts["snapshot_messages"] = 0
    while True:
        readable, _, _ = select.select([sock, req_sock, sys.stdin], [], [], 0.02)
        if sys.stdin in readable:
            line = sys.stdin.readline().split()
            if not line or line[0] == "quit":
                return
            if line[0] == "eos":
                eos_wanted = True
                report_deadline = time.monotonic() + 120
            if line[0] == "report":
                report_at = int(line[1])
                report_deadline = time.monotonic() + 120
            if line[0] == "join":
                expected, counts["snapshot_messages"] = take_snapshot(line[1], int(line[2]), parser, book)
                counts["snapshot_next"] = expected
                pending = {s: m for s, m in pending.items() if s >= expected}
                high = max(high, expected - 1)
                joined = True
        for ready in (s for s in (sock, req_sock) if s in readable):
            data, source = ready.recvfrom(65536)
            from_server = source == request_addr
            if not joined:
                continue
            session = data[:10]
            seq, count = struct.unpack(">QH", data[10:20])
            if not from_server and count not in (0, 0xFFFF) and rng.random() < drop_rate:
                counts["dropped"] += 1
                continue
            if count == 0:
                counts["heartbeats"] += 1
                high = max(high, seq - 1)
            elif count == 0xFFFF:
                counts["end_of_session"] += 1
                high = max(high, seq - 1)
            else:
                counts["packets"] += 1
                at = 20
                for i in range(count):
                    (length,) = struct.unpack(">H", data[at:at + 2])
                    message = data[at + 2:at + 2 + length]
                    at += 2 + length
                    s = seq + i
                    if s in seen:
                        if seen[s] != message:
                            print(f"sequence {s} reused for other bytes", file=sys.stderr)
                            sys.exit(3)
                        continue
                    if s < expected:
                        continue  # a late joiner's snapshot holds it
                    seen[s] = message
                    pending[s] = message
                    high = max(high, s)
                    if from_server:
                        counts["retransmitted"] += 1
                if at != len(data):
                    raise SystemExit(f"packet {seq}: {len(data) - at} bytes after {count} messages")
            while expected in pending:
                m = parser.get_message_type(pending.pop(expected))
                t = m.message_type.decode()
                counts["types"][t] = counts["types"].get(t, 0) + 1
                book.apply(m)
                bids, asks = book.levels("B"), book.levels("S")
                bbo[expected] = (bids[0][:2] if bids else None, asks[0][:2] if asks else None)
                expected += 1
        target = max(high, report_at or 0)
        now = time.monotonic()
        if session is not None and expected <= target and now - last_request > 0.05:
            want = min(target - expected + 1, 1000)
            req_sock.sendto(session + struct.pack(">QH", expected, want), request_addr)
            counts["requests"] += 1
            last_request = now
        if report_at is not None and expected <= report_at and time.monotonic() > report_deadline:
            # Fail the test rather than hang it; a passing run never waits this out.
            raise SystemExit(f"stuck at {expected} of {report_at}: {counts}")
        if eos_wanted and counts["end_of_session"] > 0:
            print(json.dumps({"next": expected, "counts": counts}), flush=True)
            eos_wanted = False
        if eos_wanted and time.monotonic() > report_deadline:
            raise SystemExit(f"no End of Session: {counts}")
        if report_at is not None and expected > report_at:
            print(json.dumps({"next": expected, "bids": book.levels("B"), "asks": book.levels("S"),
                              "bbo": {str(k): v for k, v in bbo.items()}, "counts": counts,
                              "mpids": sorted(book.mpids)}), flush=True)
            report_at = None


if __name__ == "__main__":
    main()
