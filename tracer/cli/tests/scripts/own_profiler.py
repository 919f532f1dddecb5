# A program that profiles itself for a moment (as cProfile, pyinstrument, line_profiler and coverage do)
# and then carries on: its 5 MiB block must still be attributed later < outer < <module>.
import sys

events = []


def prof(frame, event, arg):
    events.append((event, arg.__name__ if event.startswith("c_") else frame.f_code.co_name))


def f():
    return [bytes(10) for _ in range(10)]


sys.setprofile(prof)
for _ in range(10):
    f()
sys.setprofile(None)


def later():
    return bytearray(5 * 1024 * 1024)


def outer():
    return later()


keep = outer()
print(len(events), events, sys.getprofile())
