#!/usr/bin/env python3
"""Propagation probe for tests/bench/propagation.sh (Python 3 standard library only).

Sends the trigger itself (SIGHUP to a PID), so the start time is taken right before the
signal, then polls every target in parallel until each one shows the new state, and prints
one line:

    t0=<epoch s> total_ms=<ms> first_ms=<ms> probes=<sent after t0> each=<ip>:<ms>,...

`tls`: a target shows the new state when a new TLS connection presents a leaf whose SHA-256
is --sha256. By default the probe sends a TLS 1.2 ClientHello (SNI --name) and reads the
leaf from the server's first flight, in clear in TLS 1.2, then drops the connection: the
server has done its whole first flight (ECDHE key, signature with the leaf's key) but the
probe does no cryptography, so it stays cheap with many targets on few cores. --full makes
every probe a complete TLS 1.3 handshake verified against --ca for --name instead (the
benchmark runs one such pass after every timed run, outside the timing).
`dns`: when a UDP query for --qname TXT is answered NOERROR, authoritative, with --token in
the answer's TXT data.

After a target has shown the new state it is no longer polled. --floor: no trigger; every
target is expected to show the new state already, and the time to see all of them is the
probe's own latency floor. Exit status 1 (with a message naming the laggards) when --timeout
seconds pass first.
"""

import argparse
import asyncio
import hashlib
import os
import signal
import socket
import ssl
import struct
import sys
import time


def parse_args():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["tls", "dns"])
    p.add_argument("targets", nargs="+", help="IP:PORT")
    p.add_argument("--hup", type=int, help="PID to send SIGHUP to at t0")
    p.add_argument("--floor", action="store_true", help="no trigger: measure the probe itself")
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--interval-ms", type=float, default=2.0, help="pause after a miss")
    p.add_argument("--full", action="store_true", help="tls: complete, verified handshakes")
    p.add_argument("--ca")
    p.add_argument("--name")
    p.add_argument("--sha256")
    p.add_argument("--qname")
    p.add_argument("--token")
    return p.parse_args()


def split(target):
    host, port = target.rsplit(":", 1)
    return host, int(port)


async def tls_once(host, port, ctx, name, want):
    """True when a new handshake presents the wanted leaf; False otherwise (errors too)."""
    writer = None
    try:
        _, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=ctx, server_hostname=name), 1.0
        )
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        return der is not None and hashlib.sha256(der).hexdigest() == want
    except (OSError, ssl.SSLError, asyncio.TimeoutError):
        return False
    finally:
        if writer is not None:
            writer.transport.abort()


def client_hello(name):
    """A TLS 1.2 ClientHello for ECDSA P-256 servers (what certzone's leaves are)."""

    def ext(kind, body):
        return struct.pack(">HH", kind, len(body)) + body

    host = name.encode()
    sni = struct.pack(">HBH", len(host) + 3, 0, len(host)) + host
    groups = struct.pack(">HHH", 4, 0x001D, 0x0017)  # x25519, secp256r1
    sigalgs = struct.pack(">HHHH", 6, 0x0403, 0x0804, 0x0401)
    exts = (
        ext(0x0000, sni)
        + ext(0x000A, groups)
        + ext(0x000B, b"\x01\x00")  # ec_point_formats: uncompressed
        + ext(0x000D, sigalgs)
        + ext(0x0017, b"")  # extended_master_secret
        + ext(0xFF01, b"\x00")  # renegotiation_info
    )
    suites = struct.pack(">HHHH", 6, 0xC02B, 0xC02C, 0xCCA9)
    body = b"\x03\x03" + os.urandom(32) + b"\x00" + suites + b"\x01\x00"
    body += struct.pack(">H", len(exts)) + exts
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack(">H", len(handshake)) + handshake


async def peek_leaf(host, port, hello):
    """The SHA-256 (hex) of the leaf in the server's TLS 1.2 Certificate message, or None."""
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 1.0)
        writer.write(hello)
        hs = b""
        while True:
            head = await asyncio.wait_for(reader.readexactly(5), 1.0)
            rtype, _, length = struct.unpack(">BHH", head)
            body = await asyncio.wait_for(reader.readexactly(length), 1.0)
            if rtype != 22:  # not handshake (an alert): no certificate
                return None
            hs += body
            while len(hs) >= 4:
                mlen = int.from_bytes(hs[1:4], "big")
                if len(hs) < 4 + mlen:
                    break
                if hs[0] == 11:  # Certificate: list length, then length + DER each
                    clen = int.from_bytes(hs[7:10], "big")
                    return hashlib.sha256(hs[10 : 10 + clen]).hexdigest()
                hs = hs[4 + mlen :]
    except (OSError, asyncio.IncompleteReadError, asyncio.TimeoutError):
        return None
    finally:
        if writer is not None:
            writer.transport.abort()


def dns_query(qid, qname):
    out = struct.pack(">HHHHHH", qid, 0, 1, 0, 0, 0)
    for label in qname.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00" + struct.pack(">HH", 16, 1)  # TXT IN


class DnsProbe(asyncio.DatagramProtocol):
    def __init__(self):
        self.waiter = None

    def datagram_received(self, data, addr):
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(data)


async def dns_loop(host, port, qname, token, interval, deadline, tries=None):
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        DnsProbe, remote_addr=(host, port), family=socket.AF_INET
    )
    try:
        qid = 0
        while time.time() < deadline and (tries is None or qid < tries):
            qid = (qid + 1) & 0xFFFF
            PROBES[0] += 1
            proto.waiter = loop.create_future()
            transport.sendto(dns_query(qid, qname))
            try:
                data = await asyncio.wait_for(proto.waiter, 0.2)
            except asyncio.TimeoutError:
                continue
            if len(data) >= 12:
                rid, flags, _, ancount = struct.unpack(">HHHH", data[:8])
                if rid == qid and flags & 0x000F == 0 and flags & 0x0400 and ancount > 0:
                    if token in data[12:]:
                        return time.time()
            await asyncio.sleep(interval)
        return None
    finally:
        transport.close()


PROBES = [0]


async def tls_loop(host, port, ctx, name, want, interval, deadline):
    """ctx None: TLS 1.2 peeks; else complete handshakes verified with ctx."""
    hello = client_hello(name)
    while time.time() < deadline:
        PROBES[0] += 1
        if ctx is None:
            ok = await peek_leaf(host, port, hello) == want
        else:
            ok = await tls_once(host, port, ctx, name, want)
        if ok:
            return time.time()
        await asyncio.sleep(interval)
    return None


async def warm(a, targets, ctx, want):
    """One untimed probe of every target: code paths and connections warm before t0."""
    if a.mode == "tls":
        hello = client_hello(a.name)
        if ctx is None:
            await asyncio.gather(*[peek_leaf(h, p, hello) for h, p in targets])
        else:
            await asyncio.gather(*[tls_once(h, p, ctx, a.name, want) for h, p in targets])
    else:
        await asyncio.gather(
            *[dns_loop(h, p, a.qname, b"\x00never", 0, time.time() + 1, tries=1) for h, p in targets]
        )


async def main():
    a = parse_args()
    interval = a.interval_ms / 1000.0
    if a.mode == "tls":
        if not (a.name and a.sha256) or (a.full and not a.ca):
            sys.exit("propagation_probe: tls needs --name and --sha256 (and --ca with --full)")
        ctx = ssl.create_default_context(cafile=a.ca) if a.full else None
        want = a.sha256.lower().replace(":", "")
    else:
        if not (a.qname and a.token):
            sys.exit("propagation_probe: dns needs --qname and --token")
        token = a.token.encode()
        ctx = want = None
    targets = [split(t) for t in a.targets]
    await warm(a, targets, ctx, want)

    PROBES[0] = 0
    t0 = time.time()
    deadline = t0 + a.timeout
    if not a.floor:
        if a.hup is None:
            sys.exit("propagation_probe: --hup PID or --floor")
        os.kill(a.hup, signal.SIGHUP)
    if a.mode == "tls":
        loops = [tls_loop(h, p, ctx, a.name, want, interval, deadline) for h, p in targets]
    else:
        loops = [dns_loop(h, p, a.qname, token, interval, deadline) for h, p in targets]
    seen = await asyncio.gather(*loops)

    late = [f"{h}:{p}" for (h, p), t in zip(targets, seen) if t is None]
    if late:
        what = "the new leaf over TLS" if a.mode == "tls" else f"{a.qname} TXT {a.token}"
        print(
            f"propagation_probe: timed out after {a.timeout:g}s waiting for {what} from "
            f"{len(late)} of {len(targets)}: {' '.join(late)}",
            file=sys.stderr,
        )
        sys.exit(1)
    ms = [(t - t0) * 1000 for t in seen]
    each = ",".join(f"{h}:{m:.1f}" for (h, _), m in zip(targets, ms))
    print(f"t0={t0:.6f} total_ms={max(ms):.1f} first_ms={min(ms):.1f} probes={PROBES[0]} each={each}")


if __name__ == "__main__":
    asyncio.run(main())
