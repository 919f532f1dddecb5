# Closes every descriptor from 3 up (as daemons and subprocess children do), then allocates 5 MiB.
import os

os.closerange(3, 1 << 20)


def after():
    return bytearray(5 << 20)


keep = after()
print("closed, then", len(keep))
