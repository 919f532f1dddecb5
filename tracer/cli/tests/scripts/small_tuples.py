# 100 000 small tuples built in k(): pymalloc blocks, never malloc.
def k():
    return [(i, i + 1) for i in range(100_000)]


data = k()
print(len(data))
