#!/usr/bin/env python3
"""bench/report.py DIR: the benchmark's write-up from DIR/runs.tsv and DIR/meta.txt (bench/run.sh).

Writes DIR/RESULTS.md (machine, method, a summary per forwarder with min-max ranges over the
runs, every run) and DIR/bench.png (gnuplot; left out with a note if gnuplot is missing).
Reads only what run.sh wrote; never measures anything itself. Python 3 standard library only.
"""
import csv
import os
import shutil
import subprocess
import sys
import tempfile

COLUMNS = ["round", "forwarder", "workload", "seconds", "qps", "sent", "completed", "lost",
           "errors", "p50_ms", "p99_ms", "max_ms", "cpu_us_per_q", "vmhwm_mb", "threads",
           "wan53", "ended"]
ORDER = ["plain", "dotproxy-redirect", "dotproxy-tproxy", "dotproxy-nfqueue", "dotproxy-nocache",
         "unbound", "unbound-nocache", "dnsdist", "dnsdist-nocache", "stubby"]


def num(v):
    """A float from a TSV cell, None for '-' or anything else that is not a number."""
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def rng(vals, fmt):
    """'lo-hi' (or one value) of the numbers in vals, each formatted by fmt; '-' if none."""
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    lo, hi = fmt(min(vals)), fmt(max(vals))
    return lo if lo == hi else f"{lo}-{hi}"


def fmt_qps(vals):
    vals = [v for v in vals if v is not None]
    if not vals:
        return "-"
    if max(vals) >= 10000:
        return rng([v / 1000 for v in vals], lambda x: f"{x:.0f}") + "k"
    if max(vals) >= 1000:
        return rng([v / 1000 for v in vals], lambda x: f"{x:.1f}") + "k"
    return rng(vals, lambda x: f"{x:.0f}")


def fmt_small(x):
    """Latency in ms or CPU in us: two significant digits where it matters."""
    if x < 1:
        return f"{x:.2f}"
    if x < 10:
        return f"{x:.1f}"
    return f"{x:.0f}"


def read(outdir):
    with open(os.path.join(outdir, "runs.tsv"), newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    if rows and list(rows[0].keys()) != COLUMNS:
        sys.exit(f"report: {outdir}/runs.tsv: unexpected columns {list(rows[0].keys())}")
    meta = {}
    path = os.path.join(outdir, "meta.txt")
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                k, _, v = line.rstrip("\n").partition("\t")
                if k == "warning":
                    meta.setdefault("warnings", []).append(v)
                else:
                    meta[k] = v
    return rows, meta


def forwarders(rows):
    seen = [r["forwarder"] for r in rows]
    return [f for f in ORDER if f in seen] + sorted({f for f in seen if f not in ORDER})


def pick(rows, fwd, wl, col):
    return [num(r[col]) for r in rows if r["forwarder"] == fwd and r["workload"] == wl]


def summary(rows):
    head = ["forwarder", "runs", "miss qps", "miss CPU us/q", "hit qps", "hit CPU us/q",
            "paced p50 ms", "paced p99 ms", "paced CPU us/q", "max ms (all)", "VmHWM MB (all)", "lost",
            "errors",
            "plaintext pkts"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for fwd in forwarders(rows):
        mine = [r for r in rows if r["forwarder"] == fwd]
        rounds = len({r["round"] for r in mine})
        lost = sum(int(num(r["lost"]) or 0) for r in mine)
        errors = sum(int(num(r["errors"]) or 0) for r in mine)
        wan = [num(r["wan53"]) for r in mine]
        wan_s = "-" if all(w is None for w in wan) else rng(wan, lambda x: f"{x:.0f}")
        out.append("| " + " | ".join([
            fwd, str(rounds),
            fmt_qps(pick(rows, fwd, "miss", "qps")),
            rng(pick(rows, fwd, "miss", "cpu_us_per_q"), fmt_small),
            fmt_qps(pick(rows, fwd, "hit", "qps")),
            rng(pick(rows, fwd, "hit", "cpu_us_per_q"), fmt_small),
            rng(pick(rows, fwd, "paced", "p50_ms"), fmt_small),
            rng(pick(rows, fwd, "paced", "p99_ms"), fmt_small),
            rng(pick(rows, fwd, "paced", "cpu_us_per_q"), fmt_small),
            rng([num(r["max_ms"]) for r in mine], fmt_small),
            rng([num(r["vmhwm_mb"]) for r in mine], lambda x: f"{x:.1f}"),
            str(lost), str(errors), wan_s]) + " |")
    return out


def all_runs(rows):
    out = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        out.append("| " + " | ".join(r[c] for c in COLUMNS) + " |")
    return out


def notes(rows, meta, outdir):
    """Anything a reader must know before trusting a number."""
    out = []
    for w in meta.get("warnings", []):
        out.append(f"- WARNING: {w}")
    for r in rows:
        where = f"round {r['round']} {r['forwarder']} {r['workload']}"
        if r["ended"] == "failed":
            out.append(f"- {where}: the forwarder did not start or answer (failures.log)")
        elif (num(r["completed"]) or 0) == 0:
            out.append(f"- {where}: nothing answered")
        if (num(r["errors"]) or 0) > 0:
            out.append(f"- {where}: {r['errors']} answers were not NOERROR")
        if r["workload"] != "hit" and r["ended"] == "end_of_file":
            out.append(f"- {where}: dnsperf ran out of names (end of file) before the time limit")
        if r["forwarder"] != "plain" and (num(r["wan53"]) or 0) > 0:
            out.append(f"- {where}: {r['wan53']} plaintext port-53 packets left the gateway")
    # run.sh's own notes: lost queries, and where UDP datagrams were dropped
    path = os.path.join(outdir, "notes.txt")
    if os.path.exists(path):
        with open(path) as f:
            out += [f"- {line.strip()}" for line in f if line.strip()]
    return out


def chart(rows, outdir):
    """bench.png: miss qps, CPU per query (miss, hit), paced latency, memory; None or why not."""
    gp = shutil.which("gnuplot")
    if not gp:
        return "gnuplot is not installed: no chart"
    fwds = [f for f in forwarders(rows) if any(r["ended"] != "failed" for r in rows if r["forwarder"] == f)]

    def stat(vals):
        vals = [v for v in vals if v is not None]
        if not vals:
            return ["?", "?", "?"]
        return [f"{sum(vals) / len(vals):.4g}", f"{min(vals):.4g}", f"{max(vals):.4g}"]

    with tempfile.TemporaryDirectory() as tmp:
        dat = os.path.join(tmp, "bench.dat")
        with open(dat, "w") as f:
            f.write("# forwarder missqps(k) mean min max, cpu miss, cpu hit, p50 paced, p99 paced, hwm miss\n")
            for fwd in fwds:
                cols = [fwd]
                cols += stat([v / 1000 if v is not None else None for v in pick(rows, fwd, "miss", "qps")])
                cols += stat(pick(rows, fwd, "miss", "cpu_us_per_q"))
                cols += stat(pick(rows, fwd, "hit", "cpu_us_per_q"))
                cols += stat(pick(rows, fwd, "paced", "p50_ms"))
                cols += stat(pick(rows, fwd, "paced", "p99_ms"))
                cols += stat(pick(rows, fwd, "miss", "vmhwm_mb"))
                f.write(" ".join(cols) + "\n")
        png = os.path.join(outdir, "bench.png")
        script = f"""
set terminal pngcairo size 1400,1000 font ",10"
set output "{png}"
set datafile missing "?"
set style data histogram
set style histogram errorbars gap 1.5 lw 1
set style fill solid 0.7 border -1
set boxwidth 0.9
set grid ytics
set xtics rotate by -30 nomirror
set yrange [0:*]
set key top right
set multiplot layout 2,2 title "dotproxy and other DoT forwarders (bars: mean of the runs, whiskers: min-max)"
set title "miss: thousands of queries per second"
plot "{dat}" using 2:3:4:xtic(1) title "miss qps (k)" lc rgb "#3b75af"
set title "CPU per answered query (microseconds, the forwarder's own)"
set key top left
plot "{dat}" using 5:6:7:xtic(1) title "miss" lc rgb "#3b75af", "" using 8:9:10 title "hit" lc rgb "#ef8636"
set title "paced 2000 qps: latency (ms, log scale)"
set logscale y
set yrange [0.01:*]
plot "{dat}" using 11:12:13:xtic(1) title "p50" lc rgb "#519e3e", "" using 14:15:16 title "p99" lc rgb "#c53a32"
unset logscale y
set yrange [0:*]
set key top right
set title "peak resident memory, VmHWM (MB), miss workload"
plot "{dat}" using 17:18:19:xtic(1) title "VmHWM" lc rgb "#8d69b8"
unset multiplot
"""
        r = subprocess.run([gp], input=script, text=True, capture_output=True, timeout=60)
        if r.returncode != 0 or not os.path.exists(png):
            return f"gnuplot failed: {r.stderr.strip()[:300]}"
    return None


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: report.py DIR")
    outdir = sys.argv[1]
    rows, meta = read(outdir)
    m = meta.get
    md = ["# dotproxy benchmark", "",
          f"{m('date', '?')}; `{m('command', '?')}`; {m('wall_seconds', '?')} s wall time.", "",
          "## Machine", "",
          f"- {m('nproc', '?')} CPUs ({m('cpu', '?')}), {m('memory', '?')}, {m('os', '?')}, {m('kernel', '?')}",
          f"- unbound {m('pkg_unbound', '?')}, dnsdist {m('pkg_dnsdist', '?')}, stubby {m('pkg_stubby', '?')}, "
          f"dnsperf {m('pkg_dnsperf', '?')}",
          f"- dotproxy {m('dotproxy_commit', '?')} (build/dotproxy sha256 {m('dotproxy_sha256', '?')}...)",
          f"- load average at start {m('loadavg_start', '?')}, at end {m('loadavg_end', '?')} "
          "(anything else running on the machine shows here: CPU per query is the figure that noise "
          "moves least)", "",
          "## Method", "",
          "Three network namespaces (tests/lab.sh): dnsperf in the client, one forwarder at a time in "
          "the gateway, the upstream in its own. "
          f"Upstream: {m('upstream', '?')}; every name under bench.test answers from one record "
          "(a redirect local-zone), so each query can have a name of its own. Every forwarder forwards "
          "over DNS-over-TLS to it, verifying the certificate (lab CA, name dot.dotproxy.test). "
          "dotproxy runs in each interception mode with dotproxy-rules (gateway scope): the client asks "
          "a decoy address and is intercepted. Unbound, dnsdist and stubby listen on the gateway's LAN "
          "address (configurations in bench/conf/). `plain` is dnsperf straight to the upstream over "
          "UDP: the ceiling of the lab itself.", "",
          f"Workloads ({m('durations', '?')}; dnsperf {m('dnsperf', '?')}): **miss** a name never asked "
          "before on every query; **hit** 100 names over and over, all cached before measuring (only "
          "forwarders with a cache); **paced** new names at a fixed light rate, for latency. Each "
          "forwarder starts afresh for every run (so VmHWM is that run's peak) and rounds alternate the "
          "forwarders. Latency percentiles come from dnsperf -v's per-query times (nearest rank), used in "
          "every workload alike (it costs dnsperf about 3% of its throughput). CPU per query is the "
          "forwarder process's utime+stime (all threads) over the dnsperf run divided by the answers it "
          "gave; it does not include the kernel's forwarding or the upstream. "
          + ("Nagle's algorithm is off (TCP_NODELAY, bench/nodelay.c preloaded) in Unbound, dnsdist and "
             "stubby and in the upstream Unbound, which do not set it on their TLS connections; dotproxy "
             "sets it itself." if m("nodelay") == "yes" else
             "Nagle's algorithm is left ON in Unbound, dnsdist, stubby and the upstream (BENCH_NODELAY=0): "
             "expect 40 ms stalls in the tails.")
          + " `plaintext pkts`: port-53 packets that left the gateway's WAN interface during the runs "
          "(0 means every query went upstream over TLS; the plain baseline is plaintext by design).", "",
          "## Summary (min-max over the runs)", ""]
    md += summary(rows)
    chart_err = chart(rows, outdir)
    md += ["", "![benchmark chart](bench.png)" if chart_err is None else f"(no chart: {chart_err})"]
    n = notes(rows, meta, outdir)
    md += ["", "## Notes", ""] + (n if n else ["- every run answered every query it sent, NOERROR."])
    md += ["", "## Every run", "", "Raw data: runs.tsv (the same columns).", ""]
    md += all_runs(rows)
    with open(os.path.join(outdir, "RESULTS.md"), "w") as f:
        f.write("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
