#!/usr/bin/env python3
"""Slow clients: holds many idle TCP connections and TLS connections that stop half-way
through their ClientHello, from many loopback source addresses, and re-opens each one as
soon as the server closes it. Loopback only; bounded by --seconds.

  slow_clients.py --tcp 127.0.0.1:5300 --tls 127.0.0.1:8530 --tls 127.0.0.1:4430 \
      --sources 200 --connections 6000 --seconds 30

Connections are spread evenly over the targets and over source addresses 127.77.X.Y
(--sources of them). --rate caps how many connections are opened per second (0: as fast
as the server closes them). On a host whose firewall tracks connections (Docker turns
netfilter's conntrack on), every connection holds a conntrack entry for up to two minutes
after it closes; an uncapped run opens several hundred thousand in 30 s, fills the table
(nf_conntrack_max, 262,144 here) and the kernel then drops every new SYN, the probes'
included: the run would measure the host's firewall, not the server. Prints one line every 5 s and a summary at the end: connections
opened in all, open at the end, closed by the server, failed to connect.
"""
import argparse
import errno
import ipaddress
import resource
import selectors
import socket
import sys
import time

# A TLS record header announcing a 512-byte handshake message, then the first bytes of a
# ClientHello: the server must wait for the rest, which never comes.
HALF_HELLO = bytes([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03]) + bytes(40)


def address(text):
    host, port = text.rsplit(":", 1)
    ipaddress.ip_address(host)
    if not host.startswith("127.") and host != "::1":
        raise argparse.ArgumentTypeError(f"{text}: loopback addresses only")
    return host, int(port)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tcp", type=address, action="append", default=[])
    parser.add_argument("--tls", type=address, action="append", default=[])
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--connections", type=int, default=6000)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--rate", type=float, default=0,
                        help="connections opened per second at most (0: no cap)")
    args = parser.parse_args()
    targets = [(t, False) for t in args.tcp] + [(t, True) for t in args.tls]
    if not targets:
        parser.error("name at least one --tcp or --tls target")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < args.connections + 100:
        sys.exit(f"slow_clients: the open-file limit {hard} is below {args.connections} connections")
    sources = [f"127.77.{1 + i // 250}.{1 + i % 250}" for i in range(args.sources)]
    Attack(targets, sources, args.connections, args.rate).run(args.seconds)


class Attack:
    def __init__(self, targets, sources, connections, rate):
        self.targets = targets
        self.rate = rate
        self.sources = sources
        self.wanted = connections
        self.selector = selectors.DefaultSelector()
        self.open = {}
        self.opened = self.closed = self.failed = 0
        self.next_slot = 0

    def connect(self, slot):
        (host, port), tls = self.targets[slot % len(self.targets)]
        source = self.sources[slot % len(self.sources)]
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.bind((source, 0))
            err = sock.connect_ex((host, port))
        except OSError:
            sock.close()
            self.failed += 1
            return False
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            self.failed += 1
            return False
        self.selector.register(sock, selectors.EVENT_WRITE, (slot, tls, False))
        self.open[sock] = slot
        self.opened += 1
        return True

    def drop(self, sock):
        self.selector.unregister(sock)
        del self.open[sock]
        sock.close()

    def event(self, key, mask):
        sock = key.fileobj
        slot, tls, connected = key.data
        if not connected:
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                self.drop(sock)
                self.failed += 1
                return
            if tls:
                try:
                    sock.send(HALF_HELLO)
                except OSError:
                    pass
            self.selector.modify(sock, selectors.EVENT_READ, (slot, tls, True))
            return
        try:
            data = sock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.drop(sock)
            self.closed += 1

    def run(self, seconds):
        start = time.monotonic()
        report = start + 5
        while time.monotonic() - start < seconds:
            # Top up towards the wanted count, a few hundred at a time so events are served,
            # and no more than --rate allows since the start.
            budget = 300
            if self.rate > 0:
                allowed = int(self.rate * (time.monotonic() - start)) + self.wanted
                budget = max(0, min(budget, allowed - self.opened))
            while len(self.open) < self.wanted and budget > 0:
                self.connect(self.next_slot)
                self.next_slot += 1
                budget -= 1
            for key, mask in self.selector.select(timeout=0.05):
                self.event(key, mask)
            now = time.monotonic()
            if now >= report:
                self.line(now - start)
                report += 5
        self.line(time.monotonic() - start)
        print(f"slow_clients: done opened={self.opened} open={len(self.open)} "
              f"closed_by_server={self.closed} failed={self.failed}", flush=True)

    def line(self, elapsed):
        print(f"slow_clients: {elapsed:5.1f}s open={len(self.open)} opened={self.opened} "
              f"closed_by_server={self.closed} failed={self.failed}", flush=True)


if __name__ == "__main__":
    main()
