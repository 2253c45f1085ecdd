#!/usr/bin/env python3
"""Draws the scale curves as one SVG, with no plotting library: propagation time against the
number of workers (target/bench/propagation.txt, from propagation.sh) and primary load time
and memory against zone size (target/bench/zonesize.txt, from zonesize.sh), each system a
line, both axes logarithmic.

  plot_scale.py [PROPAGATION_TXT] [ZONESIZE_TXT] [OUT_SVG]   # defaults: target/bench/..., docs/scale.svg
"""
import math
import os
import sys

COLOURS = {"certzone": "#d62728", "bind": "#1f77b4", "knot": "#2ca02c", "knotknot": "#9467bd"}
LABELS = {"certzone": "certzone", "bind": "BIND -> BIND", "knot": "BIND -> Knot",
          "knotknot": "Knot -> Knot"}
W, H, PAD = 460, 320, 56


def number(text):
    try:
        return float(text)
    except ValueError:
        return None


def propagation(path):
    """{system: [(N, median ms)]} from the summary table (the one headed `N certzone ...`)."""
    series, columns = {}, None
    for line in open(path):
        words = line.split()
        if words[:2] == ["N", "certzone"]:
            columns = words[1:5]
            continue
        if columns and words and number(words[0]) is not None and len(words) >= 5:
            for system, value in zip(columns, words[1:5]):
                if number(value) is not None:
                    series.setdefault(system, []).append((number(words[0]), number(value)))
    return series


def zonesize(path, column):
    """{system: [(records, value)]} from the first table; column 2 is load ms, 3 RSS MB."""
    series = {}
    for line in open(path):
        words = line.split()
        if len(words) >= 8 and number(words[0]) is not None and number(words[column]) is not None:
            series.setdefault(words[1], []).append((number(words[0]), number(words[column])))
        if not words and series:
            break
    return series


def panel(x0, title, xlabel, ylabel, series):
    """One log-log chart at horizontal offset x0, as SVG elements."""
    points = [p for line in series.values() for p in line if p[0] > 0 and p[1] > 0]
    if not points:
        return [f'<text x="{x0 + PAD}" y="{H / 2}">no data for {title}</text>']
    lx = [math.log10(p[0]) for p in points]
    ly = [math.log10(p[1]) for p in points]
    xmin, xmax = math.floor(min(lx)), math.ceil(max(lx))
    ymin, ymax = math.floor(min(ly)), math.ceil(max(ly))
    xmax, ymax = max(xmax, xmin + 1), max(ymax, ymin + 1)

    def at(x, y):
        px = x0 + PAD + (math.log10(x) - xmin) / (xmax - xmin) * (W - 1.5 * PAD)
        py = H - PAD - (math.log10(y) - ymin) / (ymax - ymin) * (H - 1.6 * PAD)
        return px, py

    out = [f'<text x="{x0 + W / 2}" y="18" text-anchor="middle" font-weight="bold">{title}</text>']
    left, bottom = x0 + PAD, H - PAD
    out.append(f'<line x1="{left}" y1="{bottom}" x2="{x0 + W - PAD / 2}" y2="{bottom}" stroke="black"/>')
    out.append(f'<line x1="{left}" y1="{bottom}" x2="{left}" y2="{0.6 * PAD}" stroke="black"/>')
    for e in range(xmin, xmax + 1):
        px, _ = at(10 ** e, 10 ** ymin)
        out.append(f'<text x="{px}" y="{bottom + 16}" text-anchor="middle">{10 ** e:g}</text>')
    for e in range(ymin, ymax + 1):
        _, py = at(10 ** xmin, 10 ** e)
        out.append(f'<line x1="{left}" y1="{py}" x2="{x0 + W - PAD / 2}" y2="{py}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 6}" y="{py + 4}" text-anchor="end">{10 ** e:g}</text>')
    out.append(f'<text x="{x0 + W / 2}" y="{H - 12}" text-anchor="middle">{xlabel}</text>')
    out.append(f'<text x="{x0 + 14}" y="{H / 2}" transform="rotate(-90 {x0 + 14} {H / 2})" '
               f'text-anchor="middle">{ylabel}</text>')
    for i, (system, line) in enumerate(sorted(series.items())):
        colour = COLOURS.get(system, "#555")
        xy = [at(x, y) for x, y in sorted(line) if x > 0 and y > 0]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in xy)
        out.append(f'<polyline fill="none" stroke="{colour}" stroke-width="2" points="{path}"/>')
        out += [f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>' for px, py in xy]
        out.append(f'<text x="{left + 10}" y="{0.6 * PAD + 14 * (i + 1)}" fill="{colour}">'
                   f'{LABELS.get(system, system)}</text>')
    return out


def main():
    bench = os.path.join(os.path.dirname(__file__), "..", "..", "target", "bench")
    prop = sys.argv[1] if len(sys.argv) > 1 else os.path.join(bench, "propagation.txt")
    size = sys.argv[2] if len(sys.argv) > 2 else os.path.join(bench, "zonesize.txt")
    out = sys.argv[3] if len(sys.argv) > 3 else os.path.join(os.path.dirname(__file__), "..", "..",
                                                               "docs", "scale.svg")
    body = panel(0, "Renewal / change to every worker", "workers (N)", "median ms",
                 propagation(prop))
    body += panel(W, "Primary load time", "records", "ms", zonesize(size, 2))
    body += panel(2 * W, "Primary RSS after load", "records", "MB", zonesize(size, 3))
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{3 * W}" height="{H}" '
           f'font-family="sans-serif" font-size="11">\n<rect width="100%" height="100%" fill="white"/>\n'
           + "\n".join(body) + "\n</svg>\n")
    with open(out, "w") as f:
        f.write(svg)
    print(f"plot: {out}")


if __name__ == "__main__":
    main()
