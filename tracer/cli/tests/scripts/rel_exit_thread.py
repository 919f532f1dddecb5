# Leaves from a thread: `os_exit` calls os._exit(3) in a thread while the main thread allocates;
# `sys_exit` calls sys.exit(9) in a thread (which ends only that thread), then the main thread
# leaves with sys.exit(4). Each thread first makes a 3 MiB block ([2 MiB, 4 MiB)).
import os
import sys
import threading

how = sys.argv[1]
keep = []


def leave():
    keep.append(bytearray(3 << 20))
    print("thread leaving", flush=True)
    if how == "os_exit":
        os._exit(3)
    sys.exit(9)


t = threading.Thread(target=leave)
t.start()
if how == "os_exit":
    while True:
        keep.append([str(i) for i in range(100)])
        del keep[1:]
t.join()
print("main leaving", flush=True)
sys.exit(4)
