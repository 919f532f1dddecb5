# threading.setprofile: the program's function runs in the threads it starts (and threading.getprofile
# says so), while the 5 MiB block a thread allocates is attributed later < outer < run.
import sys
import threading

events = []


def prof(frame, event, arg):
    if event in ("call", "return"):
        events.append((event, frame.f_code.co_name))


def later():
    return bytearray(5 * 1024 * 1024)


def outer():
    return later()


keep = []


class Worker(threading.Thread):
    def run(self):
        keep.append(outer())


threading.setprofile(prof)
print(threading.getprofile() is prof)
t = Worker()
t.start()
t.join()
threading.setprofile(None)
print([e for e in events if e[1] in ("run", "outer", "later")], threading.getprofile(), sys.getprofile())
