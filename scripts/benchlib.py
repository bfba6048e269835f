#!/usr/bin/env python3
"""Runs commands against each other and reports wall time and peak RSS (from wait4's rusage).

usage: benchlib.py RUNS -- NAME CMD... [--- NAME CMD...]

Each command first runs once untimed (binary and page cache warm, CPU clock up). Then the timed
runs are interleaved (A B A B ...), so a slow spell of a shared machine falls on every command
alike rather than on whichever ran during it. Prints one line per command:
name, best seconds, median seconds, peak RSS MiB (max over the timed runs).
"""
import os, statistics, subprocess, sys, time


def run_once(cmd):
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    dt = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"command failed: {' '.join(cmd)}")
    return dt, ru.ru_maxrss / 1024.0  # ru_maxrss is KiB on Linux


def main():
    runs = int(sys.argv[1])
    if runs < 1 or sys.argv[2] != "--":
        sys.exit(__doc__)
    groups, cur = [], []
    for a in sys.argv[3:]:
        if a == "---":
            groups.append(cur)
            cur = []
        else:
            cur.append(a)
    groups.append(cur)
    for g in groups:
        run_once(g[1:])
    times = [[] for _ in groups]
    peaks = [0.0 for _ in groups]
    for _ in range(runs):
        for i, g in enumerate(groups):
            dt, rss = run_once(g[1:])
            times[i].append(dt)
            peaks[i] = max(peaks[i], rss)
    for g, t, m in zip(groups, times, peaks):
        print(f"{g[0]}\t{min(t):.4f}\t{statistics.median(t):.4f}\t{m:.1f}")


main()
