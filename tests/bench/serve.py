"""Helper for tests/bench/serve.sh: the test zones, the query file, the DoH request body,
latency percentiles from dnsperf's per-query lines, and the final table, ratios and plot.

    serve.py zone small|big ORIGIN FILE   write the ~1,000-record or the 100k-record zone
    serve.py queries ORIGIN FILE          write the dnsperf query file (the query mix)
    serve.py wire NAME TYPE FILE          write one DNS query in wire form (DoH POST body)
    serve.py latency FILE                 print "p50_ms p99_ms answered" from `dnsperf -v`
    serve.py report RESULTS OUTDIR PNG    table + ratios to stdout, OUTDIR/serve.{txt,csv,json}, PNG

Standard library only, except the plot (matplotlib, Debian's python3-matplotlib).
"""

import csv
import json
import random
import statistics
import struct
import sys
from pathlib import Path

# The small zone, by kind of name. Counts make about 1,000 records; the query mix below
# asks for each kind, plus names that do not exist (NXDOMAIN) and types a name lacks (NODATA).
HOSTS = 400  # hostN A (the first AAAA_HOSTS also AAAA)
AAAA_HOSTS = 200
TXTS = 150  # txtN TXT
MAILS = 50  # mN MX 10 mailN, mailN A
ALIASES = 150  # aliasN CNAME hostN

QUERIES = 20_000
# (weight, kind): what share of the query file each kind of question is.
MIX = [
    (30, "host-a"),
    (15, "host-aaaa"),
    (10, "txt"),
    (10, "mx"),
    (5, "mail-a"),
    (10, "alias"),
    (10, "nxdomain"),
    (10, "nodata"),
]


def soa(origin):
    return (
        f"$ORIGIN {origin}\n$TTL 300\n"
        f"@ IN SOA ns1.{origin} hostmaster.{origin} 1 3600 600 86400 300\n"
        f"@ IN NS ns1.{origin}\n"
        # A documentation address: nobody ever sends anything to it.
        "ns1 IN A 192.0.2.53\n"
    )


def small_zone(origin):
    lines = [soa(origin)]
    for i in range(HOSTS):
        lines.append(f"host{i} IN A 198.18.{i >> 8}.{i & 255}\n")
    for i in range(AAAA_HOSTS):
        lines.append(f"host{i} IN AAAA 2001:db8::{i:x}\n")
    for i in range(TXTS):
        lines.append(f'txt{i} IN TXT "v=spf1 ip4:198.18.{i}.0/24 -all" "bench record {i}"\n')
    for i in range(MAILS):
        lines.append(f"m{i} IN MX 10 mail{i}.{origin}\n")
        lines.append(f"mail{i} IN A 198.19.0.{i}\n")
    for i in range(ALIASES):
        lines.append(f"alias{i} IN CNAME host{i}.{origin}\n")
    return "".join(lines)


def big_zone(origin):
    # 100,000 A records in 198.18.0.0/15 (benchmarking addresses, RFC 2544).
    lines = [soa(origin)]
    for i in range(100_000):
        lines.append(f"h{i} IN A 198.{18 + (i >> 16)}.{(i >> 8) & 255}.{i & 255}\n")
    return "".join(lines)


def query_lines(origin):
    rng = random.Random(7)  # the same file every run, for every server
    kinds = [kind for weight, kind in MIX for _ in range(weight)]
    out = []
    for _ in range(QUERIES):
        kind = rng.choice(kinds)
        if kind == "host-a":
            out.append(f"host{rng.randrange(HOSTS)}.{origin} A")
        elif kind == "host-aaaa":
            out.append(f"host{rng.randrange(AAAA_HOSTS)}.{origin} AAAA")
        elif kind == "txt":
            out.append(f"txt{rng.randrange(TXTS)}.{origin} TXT")
        elif kind == "mx":
            out.append(f"m{rng.randrange(MAILS)}.{origin} MX")
        elif kind == "mail-a":
            out.append(f"mail{rng.randrange(MAILS)}.{origin} A")
        elif kind == "alias":
            out.append(f"alias{rng.randrange(ALIASES)}.{origin} A")
        elif kind == "nxdomain":
            out.append(f"nx{rng.randrange(100_000)}.{origin} A")
        else:  # NODATA: the name exists, the type does not
            out.append(f"host{rng.randrange(HOSTS)}.{origin} MX")
    return "\n".join(out) + "\n"


TYPES = {"A": 1, "NS": 2, "CNAME": 5, "SOA": 6, "MX": 15, "TXT": 16, "AAAA": 28}


def wire_query(name, rtype):
    # RFC 8484 asks for id 0 over DoH; RD clear (authoritative servers); no EDNS, like dnsperf.
    header = struct.pack("!HHHHHH", 0, 0, 1, 0, 0, 0)
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split("."))
    return header + qname + b"\0" + struct.pack("!HH", TYPES[rtype], 1)


def percentile(sorted_values, p):
    # Nearest rank: the smallest value with at least p% of the values at or below it.
    rank = max(1, -(-len(sorted_values) * p // 100))
    return sorted_values[int(rank) - 1]


def latency(path):
    # `dnsperf -v` prints one line per answered query: "> RCODE NAME TYPE SECONDS".
    values = []
    for line in Path(path).read_text(errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 5 and parts[0] == ">":
            try:
                values.append(float(parts[-1]))
            except ValueError:
                pass
    if not values:
        print("- - 0")
        return
    values.sort()
    print(f"{percentile(values, 50) * 1000:.3f} {percentile(values, 99) * 1000:.3f} {len(values)}")


# --- report ---------------------------------------------------------------------------------

SERVERS = ["certzone", "knot", "nsd", "bind", "hickory", "dnsdist"]
TRANSPORTS = ["udp", "tcp", "dot", "doh", "doh-get", "doh-post"]
# Higher is better for these; for the rest (latency, AXFR time) lower is.
HIGHER = {"qps", "q_per_cpu"}


def best(values, key):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return max(values) if key in HIGHER else min(values)


def num(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


def load_results(path):
    """RESULTS is tab-separated: kind, run, server, transport, then key=value fields."""
    rows = []
    for line in Path(path).read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        kind, run, server, transport, *fields = line.split("\t")
        row = {"kind": kind, "run": int(run), "server": server, "transport": transport}
        for field in fields:
            key, _, value = field.partition("=")
            row[key] = value
        rows.append(row)
    return rows


def summarize(rows):
    """Best of the runs per (server, transport) for throughput, per server for the rest."""
    load = {}
    for row in rows:
        if row["kind"] != "load":
            continue
        qps, cpu, answered = num(row.get("qps")), num(row.get("cpu_s")), num(row.get("answered"))
        # Shares over the measured time: dnsperf waits up to its timeout for late answers
        # after it, while the server sits idle.
        secs, gen = num(row.get("secs")), num(row.get("gen_cpu_s"))
        load.setdefault((row["server"], row["transport"]), []).append({
            "qps": qps,
            "q_per_cpu": answered / cpu if answered and cpu else None,
            "cpu_share": cpu / secs if cpu and secs else None,
            "gen_share": gen / secs if gen is not None and secs else None,
            "resp_bytes": num(row.get("resp_bytes")),
            "lost_pct": num(row.get("lost_pct")),
        })
    throughput = {}
    for key, runs in load.items():
        # The fastest run gives the CPU shares, sizes and losses shown beside it.
        fastest = max(runs, key=lambda r: r["qps"] or 0)
        throughput[key] = dict(fastest)
        throughput[key]["q_per_cpu"] = best([r["q_per_cpu"] for r in runs], "q_per_cpu")
        throughput[key]["runs"] = [{"qps": r["qps"], "q_per_cpu": r["q_per_cpu"]} for r in runs]
    per_server = {}
    for row in rows:
        s = per_server.setdefault(row["server"], {})
        if row["kind"] == "latency":
            s.setdefault("p50_ms", []).append(num(row.get("p50_ms")))
            s.setdefault("p99_ms", []).append(num(row.get("p99_ms")))
        elif row["kind"] == "rss":
            s.setdefault("rss_kb", []).append(num(row.get("hwm_kb")))
        elif row["kind"] == "axfr":
            s.setdefault("axfr_ms", []).append(num(row.get("ms")) if row.get("ok") == "1" else None)
        elif row["kind"] == "rss100k":
            s.setdefault("rss100k_loaded_kb", []).append(num(row.get("loaded_kb")))
            s.setdefault("rss100k_kb", []).append(num(row.get("hwm_kb")))
    summary = {}
    for server, metrics in per_server.items():
        summary[server] = {}
        for key, values in metrics.items():
            # Latency: the better run; RSS: the largest peak seen (a peak is a peak).
            if key.startswith("rss"):
                present = [v for v in values if v is not None]
                summary[server][key] = max(present) if present else None
            elif key == "axfr_ms":
                # dig counts in coarse steps and one transfer is short: the median of all.
                present = sorted(v for v in values if v is not None)
                summary[server][key] = (statistics.median(present)
                                        if present and len(present) == len(values) else None)
            else:
                summary[server][key] = best(values, key)
            summary[server][key + "_runs"] = values
    return throughput, summary


def fmt(value, unit=""):
    if value is None:
        return "-"
    if unit == "k":
        return f"{value / 1000:.1f}k"
    if unit == "mb":
        return f"{value / 1024:.1f}"
    if unit == "ms":
        return f"{value:.2f}" if value < 10 else f"{value:.0f}"
    if unit == "int":
        return f"{value:.0f}"
    if unit == "share":
        return f"{value:.1f}"
    return f"{value:.2f}"


def ratio(ours, theirs, higher_is_better=True):
    if ours is None or theirs is None or ours == 0 or theirs == 0:
        return None
    return ours / theirs if higher_is_better else theirs / ours


NAMES = {"bind": "BIND", "hickory": "hickory-dns"}
LABELS = {"udp": "UDP", "tcp": "TCP", "dot": "DoT", "doh": "DoH",
          "doh-get": "DoH GET\n(dnsperf)", "doh-post": "DoH POST\n(dnsperf)"}


def goals(throughput, summary):
    """Issue 7's targets as (text, ratio, met) with ratios read so that >= 1.0 means met."""
    t = lambda s, tr, k: (throughput.get((s, tr)) or {}).get(k)  # noqa: E731
    m = lambda s, k: (summary.get(s) or {}).get(k)  # noqa: E731
    out = []

    def add(text, r, need_above=False):
        met = None if r is None else (r > 1.0 if need_above else r >= 1.0)
        out.append((text, r, met))

    add("1. UDP queries per CPU-second vs Knot (>= 1.0x)",
        ratio(t("certzone", "udp", "q_per_cpu"), t("knot", "udp", "q_per_cpu")))
    add("1. UDP queries/s at saturation vs BIND (> 1.0x)",
        ratio(t("certzone", "udp", "qps"), t("bind", "udp", "qps")), True)
    for tr in ["tcp", "dot", "doh"]:
        for peer in ["bind", "hickory"]:
            add(f"2. {LABELS[tr]} queries/s vs {NAMES[peer]} (> 1.0x)",
                ratio(t("certzone", tr, "qps"), t(peer, tr, "qps")), True)
    add("2. DoH queries/s vs dnsdist (> 1.0x)",
        ratio(t("certzone", "doh", "qps"), t("dnsdist", "doh", "qps")), True)
    add("3. AXFR 100k records, Knot time / certzone time (>= 1.0x)",
        ratio(m("certzone", "axfr_ms"), m("knot", "axfr_ms"), higher_is_better=False))
    r = ratio(m("certzone", "rss_kb"), m("knot", "rss_kb"))
    out.append(("3. peak RSS, test zone, certzone / Knot (< 2.0x)", r,
                None if r is None else r < 2.0))
    r = ratio(m("certzone", "rss100k_kb"), m("bind", "rss100k_kb"))
    out.append(("3. peak RSS, 100k zone, certzone / BIND (<= 1.0x)", r,
                None if r is None else r <= 1.0))
    add("4. latency p99 at the fixed rate, BIND p99 / certzone p99 (>= 1.0x)",
        ratio(m("certzone", "p99_ms"), m("bind", "p99_ms"), higher_is_better=False))
    return out


def doh_goals(throughput):
    """Issue 12: dnsperf's DoH mode answers every query at a rate within 2x of h2load's."""
    t = lambda s, tr, k: (throughput.get((s, tr)) or {}).get(k)  # noqa: E731
    out = []
    for tr in ["doh-get", "doh-post"]:
        method = tr.split("-")[1].upper()
        r = ratio(t("certzone", tr, "qps"), t("certzone", "doh", "qps"))
        out.append((f"9. dnsperf -m doh {method} q/s / h2load q/s (>= 0.5x)", r,
                    None if r is None else r >= 0.5))
        lost = t("certzone", tr, "lost_pct")
        out.append((f"9. dnsperf -m doh {method}: queries lost (0 %)", lost,
                    None if lost is None else lost == 0))
        out.append((f"   beside BIND: certzone / BIND dnsperf {method} q/s", ratio(
            t("certzone", tr, "qps"), t("bind", tr, "qps")), None))
    return out


NOTES = {
    "nsd": "nsd: CPU and RSS summed over its processes (main, xfrd, one server child).",
    "dnsdist": "dnsdist: DoH front end to the Knot above (UDP); its CPU and RSS include that Knot's.",
    "hickory": "hickory: the stock binary run with --quiet (it logs every query otherwise).",
}


def report(results, outdir, png):
    meta_path = Path(results).with_suffix(".meta")
    meta = meta_path.read_text() if meta_path.exists() else ""
    rows = load_results(results)
    throughput, summary = summarize(rows)
    servers = [s for s in SERVERS if any(k[0] == s for k in throughput) or s in summary]
    lines = [meta.rstrip("\n"), ""] if meta else []
    lines.append("Throughput at saturation: queries/s (the best run), queries per server")
    lines.append("CPU-second (the best run), and in the fastest run the cores busy in the server")
    lines.append("and in the load generator (dnsperf or h2load), the mean response size and the")
    lines.append("queries lost (UDP):")
    lines.append(f"{'server':<10}{'transport':<10}{'q/s':>10}{'q/CPU-s':>10}{'server cpu':>12}"
                 f"{'generator':>11}{'resp B':>8}{'lost %':>8}")
    for tr in TRANSPORTS:
        for s in servers:
            cell = throughput.get((s, tr))
            if cell is None:
                continue
            lines.append(f"{s:<10}{tr:<10}{fmt(cell['qps'], 'k'):>10}"
                         f"{fmt(cell['q_per_cpu'], 'k'):>10}{fmt(cell['cpu_share']):>12}"
                         f"{fmt(cell['gen_share']):>11}{fmt(cell['resp_bytes'], 'int'):>8}"
                         f"{fmt(cell['lost_pct']):>8}")
    lines.append("")
    lines.append("Per server: latency at the fixed UDP rate (ms, the better run); peak RSS (MB,")
    lines.append("VmHWM, the largest seen) with the test zone after every load; AXFR of the")
    lines.append("100k-record zone (ms, dig's query time, median of every transfer); peak RSS with that zone")
    lines.append("once loaded and after the transfers:")
    lines.append(f"{'server':<10}{'p50 ms':>8}{'p99 ms':>8}{'RSS MB':>8}{'AXFR ms':>9}"
                 f"{'100k RSS MB':>13}{'after AXFR':>12}")
    for s in servers:
        m = summary.get(s, {})
        lines.append(f"{s:<10}{fmt(m.get('p50_ms'), 'ms'):>8}{fmt(m.get('p99_ms'), 'ms'):>8}"
                     f"{fmt(m.get('rss_kb'), 'mb'):>8}"
                     f"{fmt(m.get('axfr_ms'), 'int'):>9}"
                     f"{fmt(m.get('rss100k_loaded_kb'), 'mb'):>13}{fmt(m.get('rss100k_kb'), 'mb'):>12}")
    lines += [NOTES[s] for s in servers if s in NOTES]
    peers = [s for s in servers if s != "certzone"]
    if "certzone" in servers and peers:
        lines.append("")
        lines.append("Ratios certzone / peer (above 1.0x: certzone better; for p99 and AXFR the")
        lines.append("peer's time over certzone's; for RSS certzone's over the peer's, lower is better):")
        lines.append(f"{'':<20}" + "".join(f"{p:>10}" for p in peers))
        for tr in TRANSPORTS:
            for key, label in [("qps", "q/s"), ("q_per_cpu", "q/cpu-s")]:
                ours = throughput.get(("certzone", tr), {}).get(key)
                row = f"{tr + ' ' + label:<20}"
                for p in peers:
                    row += f"{fmt_ratio(ratio(ours, throughput.get((p, tr), {}).get(key))):>10}"
                lines.append(row)
        for key, label in [("p99_ms", "p99"), ("axfr_ms", "AXFR 100k"),
                           ("rss_kb", "RSS"), ("rss100k_kb", "RSS 100k")]:
            ours = summary.get("certzone", {}).get(key)
            row = f"{label:<20}"
            for p in peers:
                theirs = summary.get(p, {}).get(key)
                row += f"{fmt_ratio(ratio(ours, theirs, key.startswith('rss'))):>10}"
            lines.append(row)
        lines.append("")
        lines.append("Issue 7 targets (from this run):")
        for text, r, met in goals(throughput, summary):
            state = "not measured" if met is None else ("met" if met else "NOT met")
            lines.append(f"  {text:<68} {fmt_ratio(r):>7}  {state}")
        lines.append("")
        lines.append("Issue 12 targets (from this run):")
        for text, r, met in doh_goals(throughput):
            state = "" if met is None and text.startswith(" ") else (
                "not measured" if met is None else ("met" if met else "NOT met"))
            value = f"{r:.2f}%" if "lost" in text and r is not None else fmt_ratio(r)
            lines.append(f"  {text:<68} {value:>7}  {state}")
    text = "\n".join(lines) + "\n"
    print(text, end="")

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "serve.txt").write_text(text)
    with open(out / "serve.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["server", "transport", "metric", "value"])
        for (s, tr), cell in sorted(throughput.items()):
            for key in ["qps", "q_per_cpu", "cpu_share", "gen_share", "resp_bytes", "lost_pct"]:
                w.writerow([s, tr, key, cell.get(key)])
        for s, m in sorted(summary.items()):
            for key, value in m.items():
                if not key.endswith("_runs"):
                    w.writerow([s, "udp" if key.startswith("p") else "-", key, value])
    (out / "serve.json").write_text(json.dumps({
        "meta": meta.splitlines(),
        "throughput": {f"{s}/{tr}": cell for (s, tr), cell in sorted(throughput.items())},
        "per_server": summary,
        "goals": [{"goal": g, "ratio": r, "met": met}
                  for g, r, met in goals(throughput, summary) + doh_goals(throughput)],
        "raw": rows,
    }, indent=1) + "\n")
    plot(throughput, servers, meta, png)


def fmt_ratio(r):
    return f"{r:.2f}x" if r else "-"


COLORS = {"certzone": "#111111", "knot": "#1f77b4", "nsd": "#2ca02c", "bind": "#d62728",
          "hickory": "#ff7f0e", "dnsdist": "#9467bd"}


def plot(throughput, servers, meta, png):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("bench: no matplotlib (apt-get install python3-matplotlib): plot skipped",
              file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(12, 5), dpi=100)
    width = 0.84 / len(servers)
    top = max([(c.get("q_per_cpu") or 0) for c in throughput.values()] + [1])
    for i, s in enumerate(servers):
        xs = [x + (i - (len(servers) - 1) / 2) * width for x in range(len(TRANSPORTS))]
        values = [(throughput.get((s, tr)) or {}).get("q_per_cpu") for tr in TRANSPORTS]
        ax.bar(xs, [(v or 0) / 1000 for v in values], width * 0.92, label=s, color=COLORS.get(s))
        for x, v in zip(xs, values):
            label = f"{v / 1000:.0f}" if v else "n/a"
            ax.text(x, (v or 0) / 1000 + top / 1000 * 0.01, label, ha="center", va="bottom",
                    fontsize=7, rotation=90 if not v else 0, color="#555555" if not v else "black")
    ax.set_xticks(range(len(TRANSPORTS)), [LABELS[t] for t in TRANSPORTS])
    ax.set_ylabel("thousand queries per server CPU-second")
    ax.set_title("Queries answered per second of server CPU, at saturation (best run; higher is "
                 "better)\n" + "\n".join(meta.splitlines()[:2]), fontsize=8)
    ax.set_ylim(0, top / 1000 * 1.12)
    ax.legend(fontsize=8, ncols=len(servers), loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    note = ("UDP/TCP/DoT and DoH GET/POST (dnsperf): dnsperf with the query mix; DoH: h2load, "
            "POST of one query.")
    if "dnsdist" in servers:
        note += " dnsdist: DoH front end to Knot, the CPU of both."
    fig.text(0.01, 0.01, note, fontsize=7, color="#555555")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(png)
    print(f"plot: {png}")


def main(argv):
    if len(argv) >= 4 and argv[1] == "zone":
        text = small_zone(argv[3]) if argv[2] == "small" else big_zone(argv[3])
        Path(argv[4]).write_text(text)
    elif len(argv) == 4 and argv[1] == "queries":
        Path(argv[3]).write_text(query_lines(argv[2]))
    elif len(argv) == 5 and argv[1] == "wire":
        Path(argv[4]).write_bytes(wire_query(argv[2], argv[3]))
    elif len(argv) == 3 and argv[1] == "latency":
        latency(argv[2])
    elif len(argv) == 5 and argv[1] == "report":
        report(argv[2], argv[3], argv[4])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
