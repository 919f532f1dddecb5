# The Python-side hot paths, timed from inside: `python_calls.py MODE DEPTH N` prints nanoseconds.
#   alloc  N allocations that reach malloc (bytearray(1000)) at stack depth DEPTH
#   calls  N Python calls and returns at depth DEPTH (the profile hook's push/pop)
#   small  N small objects (pymalloc) at depth DEPTH
import sys
import time


def at_depth(depth, work):
    if depth <= 1:
        return work()
    return at_depth(depth - 1, work)


def leaf():
    return None


def main(mode, depth, n):
    def alloc():
        for _ in range(n):
            bytearray(1000)

    def calls():
        for _ in range(n):
            leaf()

    def small():
        for i in range(n):
            (i, i)

    work = {"alloc": alloc, "calls": calls, "small": small}[mode]
    result = []

    def timed():
        start = time.perf_counter_ns()
        work()
        result.append(time.perf_counter_ns() - start)

    at_depth(depth, timed)
    print(result[0])


main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
