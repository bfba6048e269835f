#!/usr/bin/env python3
"""Runs commands and reports wall time and peak RSS (from wait4's rusage), best of N runs.

usage: benchlib.py RUNS -- NAME CMD... [--- NAME CMD...]
Prints one line per command: name, seconds (best), peak RSS MiB (max over runs).
"""
import os, subprocess, sys, time

def measure(cmd, runs):
    best, peak = None, 0
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        dt = time.perf_counter() - t0
        if os.waitstatus_to_exitcode(status) != 0:
            sys.exit(f"command failed: {' '.join(cmd)}")
        best = dt if best is None else min(best, dt)
        peak = max(peak, ru.ru_maxrss)  # KiB on Linux
    return best, peak / 1024.0

def main():
    runs = int(sys.argv[1])
    rest = sys.argv[3:]
    groups, cur = [], []
    for a in rest:
        if a == "---":
            groups.append(cur); cur = []
        else:
            cur.append(a)
    groups.append(cur)
    for g in groups:
        secs, mib = measure(g[1:], runs)
        print(f"{g[0]}\t{secs:.4f}\t{mib:.1f}")

main()
