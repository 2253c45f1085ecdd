#!/usr/bin/env python3
"""Waits until SERVER answers ZONE's SOA with SERIAL over UDP, asking every 5 ms (50 ms per
try at most); prints the milliseconds since it started. Exits 1 after --timeout seconds,
naming what it waited for, or as soon as --pid is gone. --since counts from an earlier
moment (the caller's clock when it started the server), so Python's own start is inside.

  wait_soa.py SERVER_IP PORT ZONE SERIAL [--timeout S] [--pid PID] [--since EPOCH]
"""
import argparse
import os
import random
import socket
import struct
import sys
import time


def soa_query(zone, qid):
    name = b"".join(bytes([len(l)]) + l.encode() for l in zone.rstrip(".").split(".") if l) + b"\0"
    return struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0) + name + struct.pack(">HH", 6, 1)


def skip_name(message, at):
    """The offset just past the (possibly compressed) name at `at`."""
    while True:
        b = message[at]
        if b & 0xC0 == 0xC0:
            return at + 2
        if b == 0:
            return at + 1
        at += 1 + b


def serial_of(reply, qid):
    if len(reply) < 12 or struct.unpack(">H", reply[:2])[0] != qid:
        return None
    ancount = struct.unpack(">H", reply[6:8])[0]
    if reply[3] & 0xF != 0 or ancount == 0:
        return None
    at = 12
    while reply[at] != 0:  # the question's name, never compressed
        at += 1 + reply[at]
    at += 5
    # the answer: a name, type, class, ttl, rdlength, then SOA rdata: mname, rname, serial
    at = skip_name(reply, at) + 10
    at = skip_name(reply, skip_name(reply, at))
    return struct.unpack(">I", reply[at:at + 4])[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("server")
    p.add_argument("port", type=int)
    p.add_argument("zone")
    p.add_argument("serial", type=int)
    p.add_argument("--timeout", type=float, default=120)
    p.add_argument("--pid", type=int)
    p.add_argument("--since", type=float, help="epoch seconds to count from (default: now)")
    a = p.parse_args()
    if not a.server.startswith("127."):
        sys.exit("wait_soa: loopback addresses only")
    start = time.monotonic()
    since = a.since if a.since is not None else time.time()
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.settimeout(0.05)
    while time.monotonic() - start < a.timeout:
        if a.pid and not os.path.exists(f"/proc/{a.pid}"):
            sys.exit(f"wait_soa: process {a.pid} exited before {a.server}:{a.port} served {a.zone} serial {a.serial}")
        qid = random.randrange(65536)
        try:
            sock.sendto(soa_query(a.zone, qid), (a.server, a.port))
            # Read until this query's answer or the 50 ms are up: a late answer to an
            # earlier query must not leave every later read one answer behind.
            deadline = time.monotonic() + 0.05
            while time.monotonic() < deadline:
                reply = sock.recv(4096)
                if serial_of(reply, qid) == a.serial:
                    print(f"{(time.time() - since) * 1000:.1f}")
                    return
                if reply[:2] == struct.pack(">H", qid):
                    break
        except (socket.timeout, ConnectionRefusedError, IndexError, struct.error):
            pass
        time.sleep(0.005)
    sys.exit(f"wait_soa: {a.server}:{a.port} did not serve {a.zone} serial {a.serial} within {a.timeout} s")


if __name__ == "__main__":
    main()
