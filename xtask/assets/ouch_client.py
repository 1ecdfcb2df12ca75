"""A small SoupBinTCP 3.0 / OUCH 5.0 client for the system tests, driven line by line.

It runs inside the booted test container (Python standard library only: the rootfs has
python3 and nothing else) and is written from the wire formats, independently of the engine's
own codecs, so that a shared misreading of the specification does not go unnoticed.

Usage: python3 -u ouch_client.py HOST:PORT

Commands on stdin, one per line; each gets exactly one answer line on stdout:

    login USER PASSWORD SEQUENCE      -> login-accepted session=S sequence=N | login-rejected reason=C
    enter REF SIDE QTY SYMBOL PRICE TIF  (PRICE in 1/10000, TIF 0 day or 3 IOC) -> sent ref=REF
    next                              -> the next sequenced message, e.g.
                                         seq=3 accepted ref=1 side=B qty=100 symbol=AAPL price=5853300 order_ref=7
                                         seq=4 rejected ref=2 reason=19
                                         seq=5 executed ref=1 qty=40 price=5853300 liquidity=A match=3
                                         seq=6 canceled ref=1 qty=60 reason=I
                                         seq=1 system-event code=S
                                      | end-of-session | closed | timeout
    logout                            -> closed (after the server closes the connection)

While logged in a thread sends a client heartbeat every second, so that a session left idle
between commands (while the harness reloads or stops the engine) is not dropped by the server.
Every wait is bounded by the socket timeout: the harness never waits on a silent client.
"""

import socket
import struct
import sys
import threading
import time

TIMEOUT_S = 10.0
HEARTBEAT_S = 1.0
# SoupBinTCP lengths are u16; nothing the engine sends comes near this.
MAX_PACKET_BYTES = 65535

# OUCH 5.0 outbound layouts after the 1-byte type (big-endian).
ACCEPTED = struct.Struct(">QIcI8sQccQcccc14sH")  # ... ClOrdID, appendage length
REJECTED = struct.Struct(">QIH14s")
EXECUTED = struct.Struct(">QIIQcQH")
CANCELED = struct.Struct(">QIIc")
SYSTEM_EVENT = struct.Struct(">Qc")
ENTER = struct.Struct(">cIcI8sQccccc14sH")


class Closed(Exception):
    pass


class Session:
    def __init__(self, addr):
        host, port = addr.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=TIMEOUT_S)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.send_lock = threading.Lock()
        self.logged_in = threading.Event()
        self.stop = threading.Event()
        self.next_seq = 0
        threading.Thread(target=self.heartbeats, daemon=True).start()

    def send(self, packet_type, payload=b""):
        packet = struct.pack(">H", len(payload) + 1) + packet_type + payload
        with self.send_lock:
            self.sock.sendall(packet)

    def heartbeats(self):
        while not self.stop.wait(HEARTBEAT_S):
            if self.logged_in.is_set():
                try:
                    self.send(b"R")
                except OSError:
                    return

    def packet(self):
        """The next packet (type, payload) other than a server heartbeat, within TIMEOUT_S:
        heartbeats alone do not extend the wait."""
        deadline = time.monotonic() + TIMEOUT_S
        while True:
            while len(self.buf) < 2 or len(self.buf) < 2 + struct.unpack(">H", self.buf[:2])[0]:
                left_s = deadline - time.monotonic()
                if left_s <= 0:
                    raise socket.timeout()
                self.sock.settimeout(left_s)
                try:
                    chunk = self.sock.recv(4096)
                except ConnectionResetError:
                    raise Closed()
                if not chunk:
                    raise Closed()
                self.buf += chunk
            length = struct.unpack(">H", self.buf[:2])[0]
            if length == 0 or length > MAX_PACKET_BYTES:
                raise ValueError(f"bad SoupBinTCP length {length}")
            body, self.buf = self.buf[2 : 2 + length], self.buf[2 + length :]
            if body[:1] != b"H":
                return body[:1], body[1:]

    def login(self, user, password, sequence):
        payload = user.encode().ljust(6) + password.encode().ljust(10) + b" " * 10
        self.send(b"L", payload + str(sequence).encode().rjust(20))
        kind, body = self.packet()
        if kind == b"A":
            session = body[:10].decode().strip()
            self.next_seq = int(body[10:30])
            self.logged_in.set()
            return f"login-accepted session={session} sequence={self.next_seq}"
        if kind == b"J":
            return f"login-rejected reason={body[:1].decode()}"
        raise ValueError(f"unexpected answer to login: {kind!r} {body!r}")

    def enter(self, ref, side, qty, symbol, price, tif):
        message = ENTER.pack(
            b"O", int(ref), side.encode(), int(qty), symbol.encode().ljust(8), int(price),
            tif.encode(), b"Y", b"A", b"N", b"N", f"ST{ref}".encode().ljust(14), 0,
        )
        self.send(b"U", message)
        return f"sent ref={ref}"

    def next(self):
        kind, body = self.packet()
        if kind == b"Z":
            return "end-of-session"
        if kind != b"S":
            return f"soupbin type={kind.decode(errors='replace')}"
        seq = self.next_seq
        self.next_seq += 1
        return f"seq={seq} {ouch(body)}"

    def logout(self):
        self.logged_in.clear()
        self.send(b"O")
        try:
            while True:
                self.packet()
        except Closed:
            return "closed"


def text(raw):
    return raw.decode("ascii", errors="replace").strip()


def ouch(message):
    kind, body = message[:1], message[1:]
    if kind == b"A":
        (_, ref, side, qty, symbol, price, _, _, order_ref, *_) = ACCEPTED.unpack_from(body)
        return (f"accepted ref={ref} side={text(side)} qty={qty} symbol={text(symbol)} "
                f"price={price} order_ref={order_ref}")
    if kind == b"J":
        (_, ref, reason, _) = REJECTED.unpack_from(body)
        return f"rejected ref={ref} reason={reason}"
    if kind == b"E":
        (_, ref, qty, price, liquidity, match, _) = EXECUTED.unpack_from(body)
        return f"executed ref={ref} qty={qty} price={price} liquidity={text(liquidity)} match={match}"
    if kind == b"C":
        (_, ref, qty, reason) = CANCELED.unpack_from(body)
        return f"canceled ref={ref} qty={qty} reason={text(reason)}"
    if kind == b"S":
        (_, code) = SYSTEM_EVENT.unpack_from(body)
        return f"system-event code={text(code)}"
    return f"other type={text(kind)}"


def answer(line):
    print(line, flush=True)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: ouch_client.py HOST:PORT")
    session = Session(sys.argv[1])
    for line in sys.stdin:
        words = line.split()
        if not words:
            continue
        command, args = words[0], words[1:]
        try:
            if command == "login" and len(args) == 3:
                answer(session.login(*args))
            elif command == "enter" and len(args) == 6:
                answer(session.enter(*args))
            elif command == "next" and not args:
                answer(session.next())
            elif command == "logout" and not args:
                answer(session.logout())
                break
            else:
                answer(f"error unknown command or arguments: {line.strip()!r}")
        except Closed:
            answer("closed")
        except socket.timeout:
            answer("timeout")
        except ValueError as e:
            # A malformed packet or number: say what, and stop (the stream is out of step).
            answer(f"error {e}")
            sys.exit(1)
    session.stop.set()


if __name__ == "__main__":
    main()
