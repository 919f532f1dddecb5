# f -> g -> h, where h makes a 10 MiB bytearray.
def h():
    return bytearray(10 * 1024 * 1024)


def g():
    return h()


def f():
    return g()


data = f()
print(len(data))
