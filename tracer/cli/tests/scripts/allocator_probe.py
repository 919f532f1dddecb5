"""Allocates 100 bytearrays of 100 kB in `allocate` and asks the allocator the process runs on about
their buffers, through ctypes. Prints one line, as tests/programs/allocator_probe.c does:
allocator=jemalloc|tcmalloc|mimalloc|glibc owned=K/100 usable_agree=K/100 allocated=BYTES"""
import ctypes


def allocate():
    blocks = []
    for _ in range(100):
        block = bytearray(100_000)
        blocks.append(block)
    return blocks


blocks = allocate()
process = ctypes.CDLL(None)
buffers = [ctypes.addressof((ctypes.c_char * len(b)).from_buffer(b)) for b in blocks]


def function(name, restype, *argtypes):
    try:
        f = getattr(process, name)
    except AttributeError:
        return None
    f.restype, f.argtypes = restype, argtypes
    return f


usable_size = function("malloc_usable_size", ctypes.c_size_t, ctypes.c_void_p)
owned = agree = allocated = 0
name = "glibc"
if mallctl := function("mallctl", ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p,
                       ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t):
    name = "jemalloc"
    sallocx = function("sallocx", ctypes.c_size_t, ctypes.c_void_p, ctypes.c_int)
    epoch = ctypes.c_uint64(1)
    length = ctypes.c_size_t(8)
    mallctl(b"epoch", ctypes.byref(epoch), ctypes.byref(length), ctypes.byref(epoch), 8)
    value = ctypes.c_size_t()
    length = ctypes.c_size_t(ctypes.sizeof(value))
    if mallctl(b"stats.allocated", ctypes.byref(value), ctypes.byref(length), None, 0) == 0:
        allocated = value.value
    for address in buffers:
        ptr = ctypes.c_void_p(address)
        arena = ctypes.c_uint()
        length = ctypes.c_size_t(ctypes.sizeof(arena))
        if mallctl(b"arenas.lookup", ctypes.byref(arena), ctypes.byref(length),
                   ctypes.byref(ptr), ctypes.sizeof(ptr)) == 0:
            owned += 1
            agree += sallocx(address, 0) == usable_size(address)
elif ownership := function("MallocExtension_GetOwnership", ctypes.c_int, ctypes.c_void_p):
    name = "tcmalloc"
    size = function("tc_malloc_size", ctypes.c_size_t, ctypes.c_void_p)
    prop = function("MallocExtension_GetNumericProperty", ctypes.c_int, ctypes.c_char_p,
                    ctypes.c_void_p)
    value = ctypes.c_size_t()
    if prop(b"generic.current_allocated_bytes", ctypes.byref(value)):
        allocated = value.value
    for address in buffers:
        owned += ownership(address) == 1  # kOwned
        agree += size(address) == usable_size(address)
elif function("mi_version", ctypes.c_int):
    name = "mimalloc"
    in_heap = function("mi_is_in_heap_region", ctypes.c_bool, ctypes.c_void_p)
    size = function("mi_usable_size", ctypes.c_size_t, ctypes.c_void_p)
    for address in buffers:
        owned += bool(in_heap(address))
        agree += size(address) == usable_size(address)
print(f"allocator={name} owned={owned}/{len(buffers)} usable_agree={agree}/{len(buffers)} "
      f"allocated={allocated}")
