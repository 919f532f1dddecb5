# Everything that moves frames in odd ways: generators, asyncio tasks, exceptions unwinding through
# five frames, deep recursion, class bodies, comprehensions and lambdas. Run with --stack-source check:
# every allocation's walked stack is compared with the profiled one.
import asyncio


def gen(n):
    for i in range(n):
        yield bytearray(100 + i)


def thrower(depth):
    if depth == 0:
        raise ValueError("x" * 1000)
    return thrower(depth - 1)


def recurse(n):
    if n == 0:
        return [bytearray(10) for _ in range(3)]
    return recurse(n - 1)


class Body:
    data = [bytearray(50) for _ in range(10)]


async def task(i):
    await asyncio.sleep(0)
    return bytearray(1000 * i)


async def main():
    return await asyncio.gather(*(task(i) for i in range(5)))


out = list(gen(50))
for _ in range(20):
    try:
        thrower(5)
    except ValueError:
        pass
recurse(1000 - 50)
squares = {k: (lambda v: [v] * 10)(k) for k in range(200)}
asyncio.run(main())
print("ok")
