"""A MoldUDP64 listener that rebuilds the book from Petrel's ITCH feed with itchfeed, a
TotalView-ITCH 5.0 parser this project did not write (PyPI `itchfeed`, module `itch`).

Usage: itch_listener.py REQUEST_HOST REQUEST_PORT DROP_RATE SEED [GROUP:PORT]
Prints its UDP port on the first line. With GROUP:PORT it joins that multicast group on
127.0.0.1 (multicast on loopback) instead of taking a unicast port. Reads commands on stdin:
  report N   when every message 1..N has been applied (gaps filled through the
             retransmission server), print the book and the counters as one JSON line
  quit       exit
Live packets carrying messages are dropped at random with probability DROP_RATE (seeded);
retransmitted ones (from the request server's address) never are. A sequence number seen twice must carry the
same bytes: a reused number is an error (exit 3).
"""

import json
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

    def apply(self, m):
        t = m.message_type
        if t in (b"A", b"F"):
            self.orders[m.order_reference_number] = [
                m.buy_sell_indicator.decode(), m.price, m.shares, m.stock_locate]
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
    print(sock.getsockname()[1], flush=True)
    parser = MessageParser()
    book = Book()
    bbo = []  # best bid and ask after each message that changed them
    seen = {}
    pending = {}
    expected, high = 1, 0
    session = None
    counts = {"dropped": 0, "requests": 0, "retransmitted": 0, "heartbeats": 0,
              "end_of_session": 0, "packets": 0, "types": {}}
    report_at = None
    last_request = 0.0
    while True:
        readable, _, _ = select.select([sock, sys.stdin], [], [], 0.02)
        if sys.stdin in readable:
            line = sys.stdin.readline().split()
            if not line or line[0] == "quit":
                return
            if line[0] == "report":
                report_at = int(line[1])
        if sock in readable:
            data, source = sock.recvfrom(65536)
            from_server = source == request_addr
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
                best = (bids[0][:2] if bids else None, asks[0][:2] if asks else None)
                if not bbo or bbo[-1] != best:
                    bbo.append(best)
                expected += 1
        target = max(high, report_at or 0)
        now = time.monotonic()
        if session is not None and expected <= target and now - last_request > 0.05:
            want = min(target - expected + 1, 1000)
            sock.sendto(session + struct.pack(">QH", expected, want), request_addr)
            counts["requests"] += 1
            last_request = now
        if report_at is not None and expected > report_at:
            print(json.dumps({"next": expected, "bids": book.levels("B"), "asks": book.levels("S"),
                              "bbo": bbo, "counts": counts}), flush=True)
            report_at = None


if __name__ == "__main__":
    main()
