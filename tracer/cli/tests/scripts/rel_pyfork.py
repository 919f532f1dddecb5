# os.fork in a Python program whose threads are allocating: the child makes a 6 MiB block
# ([4 MiB, 8 MiB)), starts a thread of its own and leaves with os._exit(5); the parent makes a
# 3 MiB block ([2 MiB, 4 MiB)) and reports the child's exit code.
import os
import sys
import threading
import warnings

# 3.12+ warns that forking a threaded process may deadlock (with the pid in the message, which would
# differ between the traced and the untraced run): that risk is what this test is about.
warnings.filterwarnings("ignore", category=DeprecationWarning)

stop = threading.Event()


def churn():
    while not stop.is_set():
        [str(i) * 3 for i in range(200)]


threads = [threading.Thread(target=churn) for _ in range(3)]
for t in threads:
    t.start()
sys.stdout.flush()
pid = os.fork()
if pid == 0:
    block = bytearray(6 << 20)
    t = threading.Thread(target=lambda: [bytes(1000) for _ in range(100)])
    t.start()
    t.join()
    print("child", len(block), flush=True)
    os._exit(5)
_, status = os.waitpid(pid, 0)
stop.set()
for t in threads:
    t.join()
block = bytearray(3 << 20)
print("parent", len(block), "child exit", os.waitstatus_to_exitcode(status))
