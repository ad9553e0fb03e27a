"""Turns bench/suite.sh's results.tsv into BENCHMARKS.md and a PNG plot of throughput.

The analysis of missed targets is hand-written in bench/suite-analysis.md and included as is,
so that regenerating the figures keeps it.
"""

import argparse
import csv
import datetime
import os
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COLUMNS = ["variant", "job", "tool", "target", "cache", "seconds", "source_bytes", "stored_bytes",
           "written_bytes", "tree_rss_kib", "own_rss_kib", "rc"]


def load(path):
    rows = []
    with open(path) as f:
        for rec in csv.reader(f, delimiter="\t"):
            if len(rec) != len(COLUMNS):
                continue
            r = dict(zip(COLUMNS, rec))
            for k in ["seconds"]:
                r[k] = float(r[k])
            for k in ["source_bytes", "stored_bytes", "written_bytes", "tree_rss_kib", "own_rss_kib", "rc"]:
                r[k] = int(float(r[k]))
            rows.append(r)
    return rows


def mb(b):
    return b / 1e6


def speed(r):
    return mb(r["source_bytes"]) / r["seconds"] if r["seconds"] > 0 else 0.0


def label(r):
    return r["tool"] if r["tool"] in ("seed 001", "physical") else f'{r["tool"]} ({r["target"]})'


def find(rows, **kw):
    for r in rows:
        if all(r[k] == v for k, v in kw.items()) and r["rc"] == 0:
            return r
    return None


def table(rows, variant):
    out = ["| job | tool | target | cache | seconds | MB/s | peak RSS, own (MB) | peak RSS, tree (MB) | bytes stored | bytes written | ok |",
           "|---|---|---|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if r["variant"] != variant:
            continue
        ok = "yes" if r["rc"] == 0 else (f'timed out' if r["rc"] == 124 else f'**failed (exit {r["rc"]})**')
        own = f'{r["own_rss_kib"] * 1024 / 1e6:.0f}' if r["own_rss_kib"] else "-"
        tree = f'{r["tree_rss_kib"] * 1024 / 1e6:.0f}' if r["tree_rss_kib"] else "-"
        stored = f'{r["stored_bytes"]:,}' if r["tool"] != "physical" and not r["job"].startswith("restore") else "-"
        written = f'{r["written_bytes"]:,}' if r["written_bytes"] else "-"
        out.append(f'| {r["job"]} | {r["tool"]} | {r["target"]} | {r["cache"]} | {r["seconds"]:.1f} | {speed(r):.0f} | '
                   f'{own} | {tree} | {stored} | {written} | {ok} |')
    return "\n".join(out)


def ratios(rows):
    """Speed ratios cassette ÷ other (> 1: cassette faster), per job, target and cache."""
    out = ["| variant | job | cache | target | cassette s | vs seed 001 (`cp -a`) | vs medusa |",
           "|---|---|---|---|---:|---:|---:|"]
    keys = []
    for r in rows:
        if r["tool"] == "cassette" and r["rc"] == 0:
            keys.append((r["variant"], r["job"], r["cache"], r["target"], r["seconds"]))
    for variant, job, cache, target, secs in keys:
        seed = find(rows, variant=variant, job=job, cache=cache, tool="seed 001")
        med = find(rows, variant=variant, job=job, cache=cache, tool="medusa", target=target)
        s = f'{seed["seconds"] / secs:.2f}×' if seed else "-"
        m = f'{med["seconds"] / secs:.2f}×' if med else "-"
        out.append(f"| {variant} | {job} | {cache} | {target} | {secs:.1f} | {s} | {m} |")
    return "\n".join(out)


def targets(rows):
    lines = []

    def verdict(ok):
        return "**met**" if ok else "**missed**"

    for target in ("local", "s3"):
        c = find(rows, variant="main", job="full backup", cache="cold", tool="cassette", target=target)
        seed = find(rows, variant="main", job="full backup", cache="cold", tool="seed 001")
        med = find(rows, variant="main", job="full backup", cache="cold", tool="medusa", target=target)
        if c and seed:
            x = seed["seconds"] / c["seconds"]
            lines.append(f"- Full backup to {target}, cold: {x:.2f}× `cp -a` (seed 001's whole method) — target ≥ 0.9×: {verdict(x >= 0.9)}")
        if c and med:
            x = med["seconds"] / c["seconds"]
            lines.append(f"- Full backup to {target}, cold: {x:.2f}× cassandra-medusa — target ≥ 3×: {verdict(x >= 3)}")
        none = find(rows, variant="main", job="backup, no change", cache="cold", tool="cassette", target=target)
        if c and none:
            x = none["seconds"] / c["seconds"]
            lines.append(f"- No-change backup to {target}: {100 * x:.1f} % of a full one ({none['seconds']:.1f} s) — target < 5 %: {verdict(x < 0.05)}")
        cw = find(rows, variant="main", job="full backup", cache="warm", tool="cassette", target=target)
        nw = find(rows, variant="main", job="backup, no change", cache="warm", tool="cassette", target=target)
        if cw and nw:
            x = nw["seconds"] / cw["seconds"]
            lines.append(f"- No-change backup to {target}, warm: {100 * x:.1f} % of a warm full one ({nw['seconds']:.1f} s) — target < 5 %: {verdict(x < 0.05)}")
    for job in ("restore one table", "restore whole node"):
        seed = find(rows, variant="main", job=job, cache="cold", tool="seed 001")
        seed_failed = any(r["variant"] == "main" and r["job"] == job and r["tool"] == "seed 001" and r["rc"] != 0 for r in rows)
        for target in ("local", "s3"):
            c = find(rows, variant="main", job=job, cache="cold", tool="cassette", target=target)
            med = find(rows, variant="main", job=job, cache="cold", tool="medusa", target=target)
            name = job[0].upper() + job[1:]
            if c and seed:
                x = seed["seconds"] / c["seconds"]
                lines.append(f"- {name} from {target}: {x:.2f}× seed 001's method — target ≥ 0.9×: {verdict(x >= 0.9)}")
            elif c and seed_failed and target == "local":
                lines.append(f"- {name}: seed 001's method **failed** on this data set (see below), so there is no time to compare; cassette's took {c['seconds']:.1f} s and brought every row back")
            if c and med:
                lines.append(f"- {name} from {target}: {med['seconds'] / c['seconds']:.2f}× cassandra-medusa")
    own = [r["own_rss_kib"] for r in rows if r["tool"] == "cassette" and r["rc"] == 0]
    if own:
        for target in ("local", "s3"):
            own = [r["own_rss_kib"] for r in rows if r["tool"] == "cassette" and r["target"] == target and r["rc"] == 0]
            if own:
                m = max(own) * 1024 / 1e6
                lines.append(f"- cassette's peak memory, largest of its runs to/from {target}: {m:.0f} MB — target < 100 MB: {verdict(m < 100)}")
    return "\n".join(lines)


def plot(rows, path):
    variants = [v for v in ("main", "small") if any(r["variant"] == v for r in rows)]
    fig, axes = plt.subplots(len(variants), 1, figsize=(13, 5.5 * len(variants)), squeeze=False)
    for ax, variant in zip(axes[:, 0], variants):
        vr = [r for r in rows if r["variant"] == variant and r["rc"] == 0 and r["tool"] != "physical"]
        jobs = []
        for r in vr:
            j = r["job"] + ("" if r["cache"] in ("cold", "-") else f' ({r["cache"]})')
            if j not in jobs:
                jobs.append(j)
        tools = []
        for r in vr:
            if label(r) not in tools:
                tools.append(label(r))
        data = defaultdict(dict)
        for r in vr:
            j = r["job"] + ("" if r["cache"] in ("cold", "-") else f' ({r["cache"]})')
            data[label(r)][j] = speed(r)
        width = 0.8 / max(1, len(tools))
        for i, t in enumerate(tools):
            xs = [k + i * width for k in range(len(jobs))]
            ax.bar(xs, [data[t].get(j, 0) for j in jobs], width, label=t)
        for r in rows:
            if r["variant"] == variant and r["tool"] == "physical":
                ax.axhline(speed(r), linestyle="--", linewidth=1,
                           color="black" if "read" in r["job"] else "grey", label=f'{r["job"]} ({speed(r):.0f} MB/s)')
        ax.set_xticks([k + 0.4 - width / 2 for k in range(len(jobs))])
        ax.set_xticklabels(jobs, rotation=15, ha="right")
        ax.set_ylabel("MB/s of the data set (higher is better)")
        ax.set_yscale("log")
        ax.set_title(f"{variant} data set: throughput per tool and job")
        ax.legend(fontsize=8, ncol=3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    p = argparse.ArgumentParser()
    for a in ["results", "commands", "notes", "main", "small", "machine", "git", "cassandra", "medusa", "out", "plot"]:
        p.add_argument("--" + a, default="")
    a = p.parse_args()
    rows = load(a.results)
    plot(rows, a.plot)
    here = os.path.dirname(os.path.abspath(__file__))
    analysis = os.path.join(here, "suite-analysis.md")
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    parts = [
        "# Benchmarks: cassette against seed 001's scripts and cassandra-medusa",
        "",
        "Regenerate everything on this page (figures, table, plot) with one command:",
        "",
        "```\nbash bench/suite.sh\n```",
        "",
        f"- Run: {now}, git {a.git}, Cassandra {a.cassandra}, cassandra-medusa {a.medusa or '(not run)'}.",
        f"- Machine: {a.machine}.",
        f"- Main data set: {a.main}.",
        f"- Small-files data set: {a.small or '(not run)'}.",
        "- Cold: the page cache dropped (`sync; echo 3 > /proc/sys/vm/drop_caches`) just before the run. "
        "Warm: the data set had just been read.",
        "- MB = 10^6 bytes. MB/s is the data set's bytes (the live SSTables of the keyspaces backed up, or of the table restored) over the wall time.",
        "- Peak RSS, own: the largest VmHWM among the tool's own processes, sampled every 50 ms, JVMs "
        "(nodetool) excluded. Tree: `/usr/bin/time -v`'s maximum, which includes nodetool's JVM.",
        "- Bytes stored: growth of the target (backup directory, the S3 server's directory, or the data directory for restores). "
        "Bytes written: the processes' own block writes (`/usr/bin/time -v` file system outputs × 512; the S3 server's writes are its own).",
        "",
        "![throughput per tool and job](bench/throughput.png)",
        "",
        "## Targets",
        "",
        targets(rows),
        "",
        "## Ratios (cassette ÷ other, as speed: above 1, cassette is faster)",
        "",
        ratios(rows),
        "",
        "## Every run, main data set",
        "",
        table(rows, "main"),
        "",
    ]
    if any(r["variant"] == "small" for r in rows):
        parts += ["## Every run, small-files data set", "", table(rows, "small"), ""]
    if os.path.exists(analysis):
        parts += [open(analysis).read().strip(), ""]
    parts += ["## Checks and notes of the run", "", open(a.notes).read().strip() or "(none)", "",
              "## Exact commands", "", open(a.commands).read().strip(), ""]
    with open(a.out, "w") as f:
        f.write("\n".join(parts))


if __name__ == "__main__":
    main()
