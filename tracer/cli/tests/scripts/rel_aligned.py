# Aligned allocations through ctypes, straight into libc: 100 each of posix_memalign (12345 bytes,
# 64-aligned), aligned_alloc (4096-aligned) and memalign (256-aligned); every address checked and freed.
import ctypes

libc = ctypes.CDLL(None)
libc.aligned_alloc.restype = ctypes.c_void_p
libc.aligned_alloc.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
libc.memalign.restype = ctypes.c_void_p
libc.memalign.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
libc.posix_memalign.argtypes = [ctypes.POINTER(ctypes.c_void_p), ctypes.c_size_t, ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]

bad = 0
blocks = []
for _ in range(100):
    p = ctypes.c_void_p()
    rc = libc.posix_memalign(ctypes.byref(p), 64, 12345)
    bad += rc != 0 or p.value % 64 != 0
    blocks.append(p.value)
    a = libc.aligned_alloc(4096, 8192)
    bad += a is None or a % 4096 != 0
    blocks.append(a)
    m = libc.memalign(256, 300)
    bad += m is None or m % 256 != 0
    blocks.append(m)
# An alignment that is not a power of two is refused, as glibc refuses it.
p = ctypes.c_void_p()
print("posix_memalign(24):", libc.posix_memalign(ctypes.byref(p), 24, 100))
for b in blocks:
    libc.free(b)
print("misaligned or failed:", bad)
