# A thread started after tracing began allocates 2 MiB in worker().
import threading


def worker():
    return bytearray(2 * 1024 * 1024)


t = threading.Thread(target=worker)
t.start()
t.join()
print("ok")
