# A Python workload for measuring the reader: under `tracer run --trace-python-allocators` it makes
# about 10^8 allocation events (pymalloc and malloc) from a few dozen Python stacks, with a live set
# of some 100 000 objects that keeps changing (a bounded cache of lists and strings).
import sys

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 4_000_000


def make_entry(i):
    return [i, str(i), (i, i + 1)]


def churn(cache, i):
    cache[i % 100_000] = make_entry(i)
    if i % 7 == 0:
        cache.pop((i * 31) % 100_000, None)


def grow(blocks, i):
    if i % 1000 == 0:
        blocks.append(bytearray(4096 + i % 4096))
        if len(blocks) > 500:
            del blocks[:250]


def main():
    cache = {}
    blocks = []
    for i in range(ROUNDS):
        churn(cache, i)
        grow(blocks, i)
    print(len(cache), len(blocks))


main()
