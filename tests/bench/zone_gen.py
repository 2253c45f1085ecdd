#!/usr/bin/env python3
"""Writes a zone of exactly RECORDS records (the SOA counted) for ORIGIN, the same bytes for
the same arguments: an SOA, two NS, then names h0, h1, ... each with one record, in the mix
a large hosting zone has (A 60%, AAAA 20%, TXT 10%, MX 5%, CNAME 5%).

  zone_gen.py ORIGIN RECORDS SERIAL > zone
"""
import sys


def main():
    origin, count, serial = sys.argv[1].rstrip(".") + ".", int(sys.argv[2]), int(sys.argv[3])
    out = sys.stdout
    out.write(f"$ORIGIN {origin}\n$TTL 3600\n")
    out.write(f"@ IN SOA ns1 hostmaster {serial} 3600 600 604800 300\n")
    out.write("@ IN NS ns1\n@ IN NS ns2\nns1 IN A 127.0.0.1\nns2 IN A 127.0.0.2\n")
    lines = []
    for i in range(count - 5):
        kind = i % 20
        if kind < 12:
            lines.append(f"h{i} IN A 10.{(i >> 16) & 255}.{(i >> 8) & 255}.{i & 255}\n")
        elif kind < 16:
            lines.append(f"h{i} IN AAAA 2001:db8::{(i >> 16) & 0xffff:x}:{i & 0xffff:x}\n")
        elif kind < 18:
            lines.append(f'h{i} IN TXT "v=spf1 ip4:10.{i & 255}.0.0/16 -all"\n')
        elif kind < 19:
            lines.append(f"h{i} IN MX 10 mail{i % 50}\n")
        else:
            lines.append(f"h{i} IN CNAME h{i - 1}\n")
        if len(lines) >= 10000:
            out.write("".join(lines))
            lines.clear()
    out.write("".join(lines))


if __name__ == "__main__":
    main()
