"""Times the malloc(64)/free pair under two builds of libtracer.so, interleaved: each round runs every
case once (untraced, each library not recording and recording), the order reversed every other round,
so that the machine's drift falls on all alike; prints min and median ns per pair.

    python3 benches/scripts/interleaved_hook_pair.py NEW.so OLD.so [ROUNDS]

Needs `cc`; builds benches/programs/malloc_loop.c into a temporary directory."""
import os
import statistics
import subprocess
import sys
import tempfile

new, old = sys.argv[1], sys.argv[2]
rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 100
PAIRS = 2_000_000
work = tempfile.mkdtemp()
program = os.path.join(work, "malloc_loop")
source = os.path.join(os.path.dirname(__file__), "..", "programs", "malloc_loop.c")
subprocess.run(["cc", "-O2", "-fno-builtin", "-o", program, source], check=True)


def ns_per_pair(lib, recording):
    env = dict(os.environ)
    capture = os.path.join(work, "capture.bin")
    if lib:
        env["LD_PRELOAD"] = lib
    if recording:
        env["TRACER_OUTPUT"] = capture
    out = subprocess.run([program, "time", str(PAIRS)], env=env, capture_output=True,
                         text=True, check=True).stdout
    if recording:
        os.remove(capture)
    return int(out) / PAIRS


cases = [("untraced", None, False), ("not recording, old", old, False),
         ("not recording, new", new, False), ("recording, old", old, True),
         ("recording, new", new, True)]
times = {name: [] for name, _, _ in cases}
for i in range(rounds):
    for name, lib, recording in cases if i % 2 == 0 else cases[::-1]:
        times[name].append(ns_per_pair(lib, recording))
for name, values in times.items():
    print(f"{name:20} min {min(values):6.2f}  median {statistics.median(values):6.2f} ns/pair")
for what in ("not recording", "recording"):
    a, b = times[f"{what}, new"], times[f"{what}, old"]
    print(f"{what}: new/old median {statistics.median(a) / statistics.median(b):.3f}")
