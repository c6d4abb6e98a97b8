#!/usr/bin/env python3
"""Interleaved timing: run each command once per round, N rounds after W warm-ups.
Usage: interleave.py RUNS WARMUP NAME=CMD [NAME=CMD ...]   (CMD run by sh -c, output discarded)
Prints a Markdown table: median wall, min-max, median user+sys CPU."""
import subprocess, sys, time, resource, statistics
runs, warm = int(sys.argv[1]), int(sys.argv[2])
cmds = [a.split('=', 1) for a in sys.argv[3:]]
res = {n: ([], []) for n, _ in cmds}
def once(c):
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(c, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t1 = time.perf_counter()
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode not in (0, 1):
        sys.exit(f"{c}: exit {p.returncode}")
    return t1 - t0, (r1.ru_utime - r0.ru_utime) + (r1.ru_stime - r0.ru_stime)
for i in range(warm + runs):
    for n, c in cmds:
        w, cpu = once(c)
        if i >= warm:
            res[n][0].append(w); res[n][1].append(cpu)
with open('/proc/loadavg') as f: load = ' '.join(f.read().split()[:3])
print(f"| command | runs | median wall (s) | min–max (s) | median CPU user+sys (s) |")
print("| --- | ---: | ---: | --- | ---: |")
for n, _ in cmds:
    w, c = res[n]
    print(f"| {n} | {len(w)} | {statistics.median(w):.3f} | {min(w):.3f}–{max(w):.3f} | {statistics.median(c):.3f} |")
print(f"\nload average after: {load}")
