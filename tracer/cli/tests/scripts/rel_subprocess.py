# Children through subprocess (vfork/exec), os.system (fork/exec of a shell) and os.fork + os.execv.
# Each child allocates a 5 MiB block ([4 MiB, 8 MiB)) and says whether LD_PRELOAD reached it.
import os
import subprocess
import sys

CHILD = "import os; b = bytearray(5 << 20); print('child', len(b), 'LD_PRELOAD' in os.environ)"
out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True)
print("subprocess:", out.stdout.strip())
sys.stdout.flush()
status = os.system(f'{sys.executable} -c "{CHILD}"')
print("os.system:", status)
sys.stdout.flush()
pid = os.fork()
if pid == 0:
    os.execv(sys.executable, [sys.executable, "-c", CHILD])
_, status = os.waitpid(pid, 0)
print("fork+exec:", os.waitstatus_to_exitcode(status))
