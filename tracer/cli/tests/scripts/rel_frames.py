# Allocations in every awkward place for the frame walk: interpreter start-up and finalization (atexit,
# module teardown), the garbage collector (__del__ of cyclic garbage), threads with no Python thread
# state (a C thread, argv[1] is the library), C code running without the GIL (zlib, hashlib, sleep),
# generator and coroutine switches, and deep recursion near the recursion limit.
import atexit
import ctypes
import gc
import hashlib
import sys
import threading
import time
import zlib

results = []


class Noisy:
    def __init__(self, n):
        self.me = self
        self.payload = [n] * 50

    def __del__(self):
        results.append(bytearray(3000 + len(self.payload)))


def in_gc():
    for i in range(300):
        Noisy(i)
    return gc.collect()


def no_gil(n):
    data = bytes(range(256)) * 4000
    for _ in range(n):
        z = zlib.compress(data, 6)
        hashlib.sha256(data).hexdigest()
        time.sleep(0.001)
        assert zlib.decompress(z) == data
    return len(z)


def c_thread():
    lib = ctypes.CDLL(sys.argv[1])
    lib.run_c_thread.restype = ctypes.c_long
    lib.run_c_thread.argtypes = [ctypes.c_long]
    return lib.run_c_thread(200)


def gen(n):
    for i in range(n):
        yield bytearray(100 + i % 50)


def generators():
    total = 0
    g2 = gen(2000)
    for b in gen(2000):
        total += len(b) + len(next(g2))
    return total


class Step:
    def __await__(self):
        return (yield bytearray(64))


async def inner(n):
    acc = []
    for i in range(n):
        acc.append(await Step())
        acc.append(str(i) * 3)
    return len(acc)


async def outer():
    return await inner(500) + await inner(500)


def coroutines():
    c = outer()
    value = None
    try:
        while True:
            c.send(value)
            value = [1, 2, 3]
    except StopIteration as e:
        return e.value


def deep(n):
    if n == 0:
        return len(bytearray(5000)) + len([object() for _ in range(10)])
    return deep(n - 1) + 0


def recursion():
    limit = sys.getrecursionlimit()
    got = deep(limit - 50)
    try:
        deep(limit + 10)
    except RecursionError:
        got += 1
    return got


def at_exit():
    results.append(bytearray(12345))
    print("atexit ran", flush=True)


class Teardown:
    def __del__(self):
        # Runs while the module is torn down at finalization.
        bytearray(4321)
        [str(i) for i in range(100)]


atexit.register(at_exit)
teardown = Teardown()

threads = [threading.Thread(target=no_gil, args=(5,)) for _ in range(3)]
for t in threads:
    t.start()
print("gc:", in_gc() >= 300)
print("c thread:", c_thread())
print("generators:", generators())
print("coroutines:", coroutines())
print("recursion:", recursion())
for t in threads:
    t.join()
print("no gil:", no_gil(2) > 0)
