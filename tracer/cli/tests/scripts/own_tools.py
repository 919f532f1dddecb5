# Runs one real profiling tool (cprofile, pyinstrument, coverage, line_profiler) over a workload, prints
# what the tool found, then carries on: the 5 MiB block must be attributed later < outer < <module>.
import sys

TOOL = sys.argv[1]


def work(n):
    total = 0
    for i in range(n):
        total += len(str(i))
    return total


def spin(seconds):
    import time

    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        work(200)


if TOOL == "cprofile":
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    profiler.enable()
    work(2000)
    [work(10) for _ in range(50)]
    profiler.disable()
    stats = pstats.Stats(profiler).stats
    # (function, calls) for this file's functions: the same traced and untraced.
    print(sorted((f[2], s[1]) for f, s in stats.items() if f[0] == __file__))
elif TOOL == "pyinstrument":
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.001)
    profiler.start()
    spin(0.3)
    profiler.stop()
    text = profiler.output_text()
    # A sampling profiler: which functions it saw, not how often.
    print("spin" in text, "work" in text)
elif TOOL == "coverage":
    import coverage

    cov = coverage.Coverage(data_file=None, include=[__file__])
    cov.start()
    work(10)
    cov.stop()
    print(sorted(cov.get_data().lines(__file__)))
elif TOOL == "line_profiler":
    from line_profiler import LineProfiler

    profiler = LineProfiler(work)
    profiler.enable_by_count()
    work(100)
    profiler.disable_by_count()
    for (_, _, name), timings in profiler.get_stats().timings.items():
        print(name, [(line, hits) for line, hits, _ in timings])
else:
    sys.exit(f"unknown tool {TOOL}")


def later():
    return bytearray(5 * 1024 * 1024)


def outer():
    return later()


keep = outer()
print("done", sys.getprofile())
