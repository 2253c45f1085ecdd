#!/usr/bin/env python3
"""Times one AXFR over TCP without decoding records: sends the (optionally TSIG-less) AXFR
query and reads length-prefixed messages until the answer counts add up to the number of
records the caller says the zone holds (SOA twice), so the client's own cost stays far below
the server's. Prints: ms=... messages=... bytes=...

  axfr_count.py SERVER_IP PORT ZONE RECORDS [--key NAME:BASE64SECRET] [--timeout S]

With --key the query is TSIG-signed (RFC 8945, hmac-sha256); the answers' TSIGs are not
checked (this measures speed, not trust).
"""
import argparse
import base64
import hashlib
import hmac
import random
import socket
import struct
import sys
import time


def wire_name(name):
    return b"".join(bytes([len(l)]) + l.lower().encode() for l in name.rstrip(".").split(".") if l) + b"\0"


def query(zone, key):
    qid = random.randrange(65536)
    body = wire_name(zone) + struct.pack(">HH", 252, 1)
    if key is None:
        return struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + body
    name, secret = key.split(":", 1)
    unsigned = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + body
    alg = wire_name("hmac-sha256")
    now = int(time.time())
    signed_time = struct.pack(">HIH", now >> 32, now & 0xFFFFFFFF, 300)
    variables = wire_name(name) + struct.pack(">HI", 255, 0) + alg + signed_time + struct.pack(">HH", 0, 0)
    mac = hmac.new(base64.b64decode(secret), unsigned + variables, hashlib.sha256).digest()
    rdata = alg + signed_time + struct.pack(">H", len(mac)) + mac + struct.pack(">HHH", qid, 0, 0)
    tsig = wire_name(name) + struct.pack(">HHIH", 250, 255, 0, len(rdata)) + rdata
    return struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 1) + body + tsig


def read_exact(sock, n):
    out = bytearray()
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise EOFError("connection closed before the transfer ended")
        out += chunk
    return bytes(out)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("server")
    p.add_argument("port", type=int)
    p.add_argument("zone")
    p.add_argument("records", type=int, help="records in the zone, its SOA counted once")
    p.add_argument("--key", help="NAME:BASE64SECRET, hmac-sha256")
    p.add_argument("--timeout", type=float, default=60)
    a = p.parse_args()
    if not a.server.startswith("127."):
        sys.exit("axfr_count: loopback addresses only")
    msg = query(a.zone, a.key)
    start = time.monotonic()
    sock = socket.create_connection((a.server, a.port), timeout=a.timeout)
    sock.sendall(struct.pack(">H", len(msg)) + msg)
    want, seen, messages, total = a.records + 1, 0, 0, 0
    while seen < want:
        (length,) = struct.unpack(">H", read_exact(sock, 2))
        body = read_exact(sock, length)
        rcode = body[3] & 0xF
        if rcode != 0:
            sys.exit(f"axfr_count: rcode {rcode} from {a.server}:{a.port}")
        seen += struct.unpack(">H", body[6:8])[0]
        messages += 1
        total += length + 2
    ms = (time.monotonic() - start) * 1000
    sock.close()
    print(f"ms={ms:.1f} messages={messages} bytes={total} records={seen}")


if __name__ == "__main__":
    main()
