# p() calls the C library's malloc through ctypes. CDLL(None) looks malloc up in the global scope,
# where the preloaded tracer's comes first (CDLL("libc.so.6").malloc would find glibc's own copy,
# which no LD_PRELOAD library can interpose).
import ctypes

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]


def p():
    return libc.malloc(1 << 20)


block = p()
print(hex(block))
