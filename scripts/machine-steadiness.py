#!/usr/bin/env python3
"""How steady is this machine's CPU? Runs the same fixed loop on every CPU at once for a while and
prints, per CPU, the spread of its speed over short windows, and how much the CPUs' speeds move
together. An A/A run cannot be tighter than this: a benchmark process lasts about one window.

    python3 scripts/machine-steadiness.py [--seconds 20] [--window 0.25]
"""

import argparse
import multiprocessing
import os
import statistics
import time


def probe(cpu, seconds, queue):
    os.sched_setaffinity(0, {cpu})
    samples = []
    end = time.time() + seconds
    while time.time() < end:
        start = time.perf_counter()
        total = 0
        for i in range(50_000):
            total += i * i
        samples.append((start, time.perf_counter() - start))
    queue.put((cpu, samples))


def windows(samples, width):
    """Mean loop time per window of `width` seconds (the last, partial one dropped)."""
    t0 = samples[0][0]
    by_window = {}
    for t, d in samples:
        by_window.setdefault(int((t - t0) / width), []).append(d)
    keys = sorted(by_window)[:-1]
    return {k: statistics.fmean(by_window[k]) for k in keys}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--window", type=float, default=0.25)
    args = parser.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    queue = multiprocessing.Queue()
    procs = [multiprocessing.Process(target=probe, args=(c, args.seconds, queue)) for c in cpus]
    for p in procs:
        p.start()
    results = dict(queue.get() for _ in procs)
    for p in procs:
        p.join()
    per_cpu = {}
    for cpu in cpus:
        w = windows(results[cpu], args.window)
        median = statistics.median(w.values())
        speeds = sorted(v / median for v in w.values())
        q = statistics.quantiles(speeds, n=10)
        per_cpu[cpu] = w
        print(
            f"cpu {cpu}: {len(w)} windows of {args.window:g} s, loop time / median: "
            f"10% {q[0]:.2f}, 90% {q[-1]:.2f}, min {speeds[0]:.2f}, max {speeds[-1]:.2f}"
        )
    if len(cpus) >= 2:
        a, b = per_cpu[cpus[0]], per_cpu[cpus[1]]
        keys = sorted(set(a) & set(b))
        r = statistics.correlation([a[k] for k in keys], [b[k] for k in keys])
        print(f"correlation of cpu {cpus[0]} and cpu {cpus[1]} over the windows: {r:.2f}")


if __name__ == "__main__":
    main()
