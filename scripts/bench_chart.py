#!/usr/bin/env python3
"""Turns the bench logs of scripts/run_benchmarks.sh into results.tsv and a grouped bar chart
(chart.svg: ops/sec per workload, one bar per engine, each workload scaled to its fastest
engine). A workload run in several rounds counts with its median; results.tsv also gives the
lowest and highest. figures.tsv has, per group of workloads, the median (lowest-highest) of
the figures each run prints after its workloads: amplification, peak memory, the longest
write and the settle time. Standard library only."""
import re
import sys
from pathlib import Path

LINE = re.compile(r"^(\w+)\s*:\s*([\d.]+) micros/op (\d+) ops/sec")
COLORS = {"alluvium": "#1f77b4", "rocksdb": "#d62728", "fjall": "#2ca02c"}


def parse(path):
    """Workload -> the ops/sec of each round, in order."""
    results, label = {}, ""
    for line in path.read_text().splitlines():
        if line.startswith("== "):
            label = line.split()[2]
        m = LINE.match(line)
        if m and m.group(1) != "waitforcompaction":
            name = m.group(1) if label != "overwrite5x" else "overwrite5x"
            results.setdefault(name, []).append(int(m.group(3)))
    return results


GROUP_FIGURES = {
    "write amplification": re.compile(r"^user bytes written: .* write amplification: ([\d.]+)"),
    "net write amplification": re.compile(r"net write amplification: ([\d.]+)"),
    "space amplification": re.compile(r"space amplification: ([\d.]+)"),
    "peak resident KiB": re.compile(r"^peak resident memory: (\d+) KiB"),
    "peak anonymous KiB": re.compile(r"^peak anonymous memory: (\d+) KiB"),
    "longest write us": re.compile(r"latency us .* max ([\d.]+)"),
    "p99.9 write us": re.compile(r"latency us .* p99\.9 ([\d.]+)"),
    "settle us": re.compile(r"^waitforcompaction :\s*([\d.]+) micros/op"),
}


def parse_groups(path):
    """(group, figure) -> the value of each round: memory, amplification, stalls."""
    results, label = {}, ""
    for line in path.read_text().splitlines():
        if line.startswith("== "):
            label = line.split()[2]
        for name, pattern in GROUP_FIGURES.items():
            m = pattern.search(line)
            if m:
                results.setdefault((label, name), []).append(float(m.group(1)))
    return results


def median(values):
    s = sorted(values)
    mid = len(s) // 2
    return s[mid] if len(s) % 2 else (s[mid - 1] + s[mid]) // 2


def svg(table, engines):
    workloads = [w for w in dict.fromkeys(w for e in engines for w in table[e])]
    bar, gap, height, left = 14, 18, 220, 40
    group = bar * len(engines) + gap
    width = left + group * len(workloads) + 160
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 120}" '
           'font-family="sans-serif" font-size="11">',
           f'<text x="{left}" y="16" font-size="13">median ops/sec relative to the fastest engine '
           'per workload (higher is better)</text>']
    for i, w in enumerate(workloads):
        best = max(table[e].get(w, 0) for e in engines) or 1
        x0 = left + i * group
        for j, e in enumerate(engines):
            v = table[e].get(w, 0)
            h = height * v / best
            x = x0 + j * bar
            out.append(f'<rect x="{x}" y="{30 + height - h:.1f}" width="{bar - 2}" height="{h:.1f}" '
                       f'fill="{COLORS.get(e, "#888")}"><title>{e} {w}: {v} ops/sec</title></rect>')
        out.append(f'<text transform="translate({x0 + 4},{height + 40}) rotate(45)">{w}</text>')
    for j, e in enumerate(engines):
        y = 40 + j * 16
        out.append(f'<rect x="{width - 140}" y="{y}" width="10" height="10" fill="{COLORS.get(e, "#888")}"/>'
                   f'<text x="{width - 125}" y="{y + 9}">{e}</text>')
    out.append("</svg>")
    return "\n".join(out)


def main():
    out, engines = Path(sys.argv[1]), sys.argv[2:]
    runs = {e: parse(out / f"{e}.txt") for e in engines}
    table = {e: {w: median(v) for w, v in runs[e].items()} for e in engines}
    rows = ["workload\t" + "\t".join(engines) + "\t" + "\t".join(f"{e} low-high" for e in engines)]
    for w in dict.fromkeys(w for e in engines for w in table[e]):
        medians = [str(table[e].get(w, "")) for e in engines]
        spans = [f"{min(runs[e][w])}-{max(runs[e][w])}" if w in runs[e] else "" for e in engines]
        rows.append(w + "\t" + "\t".join(medians) + "\t" + "\t".join(spans))
    (out / "results.tsv").write_text("\n".join(rows) + "\n")
    groups = {e: parse_groups(out / f"{e}.txt") for e in engines}
    keys = list(dict.fromkeys(k for e in engines for k in groups[e]))
    lines = ["group\tfigure\t" + "\t".join(engines)]
    for group, name in keys:
        cells = []
        for e in engines:
            v = groups[e].get((group, name))
            cells.append("" if not v else f"{sorted(v)[len(v) // 2]:g} ({min(v):g}-{max(v):g})")
        lines.append(f"{group}\t{name}\t" + "\t".join(cells))
    (out / "figures.tsv").write_text("\n".join(lines) + "\n")
    (out / "chart.svg").write_text(svg(table, engines))
    print("\n".join(rows))


if __name__ == "__main__":
    main()
