//! Provides the functions the hooks forward to: the definitions the program would have called without
//! the tracer, i.e. the next ones after `libtracer.so` in the symbol lookup order (`dlsym(RTLD_NEXT)`:
//! jemalloc, tcmalloc or mimalloc when one is preloaded after the tracer, glibc's otherwise). The
//! tracer's own memory always comes from glibc (`GLIBC_*`), so it never enters the program's
//! allocator or its statistics.
//!
//! Each function sits in a [`Slot`]: the hook loads it and calls it, with no branch. Until the lookup
//! has run, a slot holds a stub that runs it (on the first allocation of the process, whoever makes
//! it) and then calls what it found; what the lookup itself allocates (`dlsym` may) comes from the
//! bootstrap arena (`arena`). When the next definition is glibc's, the slot holds glibc's function;
//! otherwise a shim that marks the thread as inside the allocator (`GUARD_ALLOCATOR`) around the
//! call, so that the mappings an allocator makes for its own heap are not taken for the program's
//! (glibc's are internal calls, never seen). `mmap` & co start as system calls, and stay so unless
//! another library defines them after us (tcmalloc does).
//!
//! [`bypass`] checks the other direction at start-up: whether the process's `malloc` & co are ours at
//! all, or another definition comes first (a library preloaded before us, or linked into the program).

use std::ffi::CStr;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicPtr, Ordering};

use libc::{c_int, c_void, off_t, size_t};

use crate::tls::{self, GuardAs, GUARD_ALLOCATOR, GUARD_RESOLVING};
use crate::{arena, lookup};

pub type Malloc = unsafe extern "C" fn(size_t) -> *mut c_void;
pub type Calloc = unsafe extern "C" fn(size_t, size_t) -> *mut c_void;
pub type Realloc = unsafe extern "C" fn(*mut c_void, size_t) -> *mut c_void;
pub type Free = unsafe extern "C" fn(*mut c_void);
/// `memalign` and `aligned_alloc`: (alignment, size).
pub type Memalign = unsafe extern "C" fn(size_t, size_t) -> *mut c_void;
pub type PosixMemalign = unsafe extern "C" fn(*mut *mut c_void, size_t, size_t) -> c_int;
pub type Mmap =
    unsafe extern "C" fn(*mut c_void, size_t, c_int, c_int, c_int, off_t) -> *mut c_void;
pub type Munmap = unsafe extern "C" fn(*mut c_void, size_t) -> c_int;
pub type Mremap =
    unsafe extern "C" fn(*mut c_void, size_t, size_t, c_int, *mut c_void) -> *mut c_void;

/// A function of type `F` that the lookup can replace: a load and an indirect call.
pub struct Slot<F> {
    ptr: AtomicPtr<()>,
    _type: PhantomData<F>,
}

impl<F: Copy> Slot<F> {
    /// `f` must be a function of type `F` (written `f as F as *mut ()` so the compiler checks it).
    const fn new(f: *mut ()) -> Slot<F> {
        Slot {
            ptr: AtomicPtr::new(f),
            _type: PhantomData,
        }
    }

    #[inline(always)]
    pub fn get(&self) -> F {
        const { assert!(std::mem::size_of::<F>() == std::mem::size_of::<*mut ()>()) };
        // SAFETY: a slot only ever holds functions of type F (`new`, and `set` whose callers pass a
        // function of F's C signature). Acquire pairs with `set`: the shim a slot points to finds
        // its own slot filled (a plain load on x86_64).
        unsafe { std::mem::transmute_copy(&self.ptr.load(Ordering::Acquire)) }
    }

    /// `f` must be a function of type `F`: one of ours cast as in `new`, or a C library's
    /// definition of the function this slot is for.
    fn set(&self, f: *mut ()) {
        self.ptr.store(f, Ordering::Release);
    }
}

extern "C" {
    fn __libc_malloc(size: size_t) -> *mut c_void;
    fn __libc_calloc(n: size_t, size: size_t) -> *mut c_void;
    fn __libc_realloc(ptr: *mut c_void, size: size_t) -> *mut c_void;
    fn __libc_free(ptr: *mut c_void);
    fn __libc_memalign(align: size_t, size: size_t) -> *mut c_void;
    fn __libc_valloc(size: size_t) -> *mut c_void;
    fn __libc_pvalloc(size: size_t) -> *mut c_void;
}

// What the hooks call.
pub static MALLOC: Slot<Malloc> = Slot::new(stub_malloc as Malloc as *mut ());
pub static CALLOC: Slot<Calloc> = Slot::new(stub_calloc as Calloc as *mut ());
pub static REALLOC: Slot<Realloc> = Slot::new(stub_realloc as Realloc as *mut ());
pub static FREE: Slot<Free> = Slot::new(stub_free as Free as *mut ());
pub static MEMALIGN: Slot<Memalign> = Slot::new(stub_memalign as Memalign as *mut ());
pub static ALIGNED_ALLOC: Slot<Memalign> = Slot::new(stub_aligned_alloc as Memalign as *mut ());
pub static POSIX_MEMALIGN: Slot<PosixMemalign> =
    Slot::new(stub_posix_memalign as PosixMemalign as *mut ());
pub static VALLOC: Slot<Malloc> = Slot::new(stub_valloc as Malloc as *mut ());
pub static PVALLOC: Slot<Malloc> = Slot::new(stub_pvalloc as Malloc as *mut ());
pub static MMAP: Slot<Mmap> = Slot::new(syscall_mmap as Mmap as *mut ());
pub static MUNMAP: Slot<Munmap> = Slot::new(syscall_munmap as Munmap as *mut ());
pub static MREMAP: Slot<Mremap> = Slot::new(syscall_mremap as Mremap as *mut ());

// The next allocator's own functions when it is not glibc's (the shims call them). They start as
// the stubs too, so that no order of loads can ever call an empty slot.
static FOREIGN_MALLOC: Slot<Malloc> = Slot::new(stub_malloc as Malloc as *mut ());
static FOREIGN_CALLOC: Slot<Calloc> = Slot::new(stub_calloc as Calloc as *mut ());
static FOREIGN_REALLOC: Slot<Realloc> = Slot::new(stub_realloc as Realloc as *mut ());
static FOREIGN_FREE: Slot<Free> = Slot::new(stub_free as Free as *mut ());
static FOREIGN_MEMALIGN: Slot<Memalign> = Slot::new(stub_memalign as Memalign as *mut ());
static FOREIGN_ALIGNED_ALLOC: Slot<Memalign> = Slot::new(stub_aligned_alloc as Memalign as *mut ());
static FOREIGN_POSIX_MEMALIGN: Slot<PosixMemalign> =
    Slot::new(stub_posix_memalign as PosixMemalign as *mut ());
static FOREIGN_VALLOC: Slot<Malloc> = Slot::new(stub_valloc as Malloc as *mut ());
static FOREIGN_PVALLOC: Slot<Malloc> = Slot::new(stub_pvalloc as Malloc as *mut ());

// glibc's allocator, for the tracer's own memory (`libc_alloc`).
pub static GLIBC_MALLOC: Slot<Malloc> = Slot::new(stub_glibc_malloc as Malloc as *mut ());
pub static GLIBC_CALLOC: Slot<Calloc> = Slot::new(stub_glibc_calloc as Calloc as *mut ());
pub static GLIBC_REALLOC: Slot<Realloc> = Slot::new(stub_glibc_realloc as Realloc as *mut ());
pub static GLIBC_FREE: Slot<Free> = Slot::new(stub_glibc_free as Free as *mut ());
pub static GLIBC_MEMALIGN: Slot<Memalign> = Slot::new(stub_glibc_memalign as Memalign as *mut ());

static RESOLVED: AtomicBool = AtomicBool::new(false);

/// Runs the lookup if no thread has finished it yet. Threads racing here each run it and store the
/// same results; a thread already inside it (an allocation made by `dlsym`) returns at once.
pub fn resolve() {
    if !RESOLVED.load(Ordering::Acquire) && tls::guard() != GUARD_RESOLVING {
        resolve_now();
    }
}

#[cold]
#[inline(never)]
fn resolve_now() {
    let _resolving = GuardAs::set(GUARD_RESOLVING);
    let libc = libc_base();
    // SAFETY: each call names a C function and gives the slots, shim and fallback of its type.
    unsafe {
        forward(
            &MALLOC,
            &FOREIGN_MALLOC,
            c"malloc",
            libc,
            shim_malloc as Malloc as _,
            __libc_malloc as Malloc as _,
        );
        forward(
            &CALLOC,
            &FOREIGN_CALLOC,
            c"calloc",
            libc,
            shim_calloc as Calloc as _,
            __libc_calloc as Calloc as _,
        );
        forward(
            &REALLOC,
            &FOREIGN_REALLOC,
            c"realloc",
            libc,
            shim_realloc as Realloc as _,
            __libc_realloc as Realloc as _,
        );
        forward(
            &FREE,
            &FOREIGN_FREE,
            c"free",
            libc,
            shim_free as Free as _,
            __libc_free as Free as _,
        );
        forward(
            &MEMALIGN,
            &FOREIGN_MEMALIGN,
            c"memalign",
            libc,
            shim_memalign as Memalign as _,
            __libc_memalign as Memalign as _,
        );
        forward(
            &ALIGNED_ALLOC,
            &FOREIGN_ALIGNED_ALLOC,
            c"aligned_alloc",
            libc,
            shim_aligned_alloc as Memalign as _,
            __libc_memalign as Memalign as _,
        );
        forward(
            &POSIX_MEMALIGN,
            &FOREIGN_POSIX_MEMALIGN,
            c"posix_memalign",
            libc,
            shim_posix_memalign as PosixMemalign as _,
            fallback_posix_memalign as PosixMemalign as _,
        );
        forward(
            &VALLOC,
            &FOREIGN_VALLOC,
            c"valloc",
            libc,
            shim_valloc as Malloc as _,
            __libc_valloc as Malloc as _,
        );
        forward(
            &PVALLOC,
            &FOREIGN_PVALLOC,
            c"pvalloc",
            libc,
            shim_pvalloc as Malloc as _,
            __libc_pvalloc as Malloc as _,
        );
        forward_mapping(&MMAP, c"mmap", libc);
        forward_mapping(&MUNMAP, c"munmap", libc);
        forward_mapping(&MREMAP, c"mremap", libc);
        GLIBC_MALLOC.set(glibc_or(libc, c"malloc", __libc_malloc as Malloc as _));
        GLIBC_CALLOC.set(glibc_or(libc, c"calloc", __libc_calloc as Calloc as _));
        GLIBC_REALLOC.set(glibc_or(libc, c"realloc", __libc_realloc as Realloc as _));
        GLIBC_FREE.set(glibc_or(libc, c"free", __libc_free as Free as _));
        GLIBC_MEMALIGN.set(glibc_or(
            libc,
            c"memalign",
            __libc_memalign as Memalign as _,
        ));
    }
    RESOLVED.store(true, Ordering::Release);
}

/// Where glibc is loaded: the base of the object defining `gnu_get_libc_version`, which only glibc
/// defines (null if that fails: then `__libc_*` are used).
fn libc_base() -> *mut c_void {
    object_base(libc::gnu_get_libc_version as *mut c_void)
}

fn object_base(f: *mut c_void) -> *mut c_void {
    let mut info = std::mem::MaybeUninit::<libc::Dl_info>::uninit();
    // SAFETY: a valid out-pointer; dladdr fills it when it returns non-zero.
    unsafe {
        if libc::dladdr(f, info.as_mut_ptr()) == 0 {
            return std::ptr::null_mut();
        }
        info.assume_init().dli_fbase
    }
}

/// glibc's definition of `name` (of symbol version `version`), or null. A lookup by version skips the
/// unversioned definitions of jemalloc & co; the result is checked to be in glibc all the same.
/// (`dlsym` on glibc's link map is no way: a map loaded as a dependency has no search list.)
///
/// # Safety
/// `libc` is null or glibc's base (`libc_base`); `name` and `version` name a function of glibc's.
unsafe fn glibc(libc: *mut c_void, name: &CStr, version: &CStr) -> *mut () {
    // SAFETY: NUL-terminated names; what `dlvsym` returns is only compared, never called here.
    unsafe {
        if libc.is_null() {
            return std::ptr::null_mut();
        }
        let f = libc::dlvsym(libc::RTLD_NEXT, name.as_ptr(), version.as_ptr());
        if f.is_null() || object_base(f) != libc {
            return std::ptr::null_mut();
        }
        f.cast()
    }
}

/// # Safety
/// As [`glibc`]; `fallback` is a function of the same C signature as glibc's `name`.
unsafe fn glibc_or(libc: *mut c_void, name: &CStr, fallback: *mut ()) -> *mut () {
    // SAFETY: the contract is glibc's.
    unsafe {
        let f = glibc(libc, name, GLIBC_2_2_5);
        if f.is_null() {
            fallback
        } else {
            f
        }
    }
}

/// The symbol version of glibc's allocator functions on x86_64 (`aligned_alloc` came in 2.16).
const GLIBC_2_2_5: &CStr = c"GLIBC_2.2.5";
const GLIBC_2_16: &CStr = c"GLIBC_2.16";

/// Points `slot` at the next definition of `name`: glibc's directly, another allocator's through
/// `shim` (which calls `foreign`).
///
/// # Safety
/// `slot` and `foreign` are for the C function `name`; `shim` is the shim of that signature that
/// calls `foreign`, `fallback` a function of that signature; `libc` as for [`glibc`].
unsafe fn forward<F: Copy>(
    slot: &Slot<F>,
    foreign: &Slot<F>,
    name: &CStr,
    libc: *mut c_void,
    shim: *mut (),
    fallback: *mut (),
) {
    // SAFETY: the contract: each slot gets a function of its type (the next definition of `name`,
    // glibc's, `shim` or `fallback`).
    unsafe {
        let next: *mut () = libc::dlsym(libc::RTLD_NEXT, name.as_ptr()).cast();
        let version = if name == c"aligned_alloc" {
            GLIBC_2_16
        } else {
            GLIBC_2_2_5
        };
        let glibc = glibc(libc, name, version);
        if next.is_null() || next == glibc {
            slot.set(if glibc.is_null() { fallback } else { glibc });
        } else {
            foreign.set(next);
            slot.set(shim);
        }
    }
}

/// Points `slot` at the next definition of `name` unless it is glibc's (whose wrapper is the system
/// call the slot already makes).
///
/// # Safety
/// `slot` is for the C function `name`; `libc` as for [`glibc`].
unsafe fn forward_mapping<F: Copy>(slot: &Slot<F>, name: &CStr, libc: *mut c_void) {
    // SAFETY: the contract: the slot gets the next definition of `name`, of its type.
    unsafe {
        let next: *mut () = libc::dlsym(libc::RTLD_NEXT, name.as_ptr()).cast();
        if !next.is_null() && next != glibc(libc, name, GLIBC_2_2_5) {
            slot.set(next);
        }
    }
}

// The stubs: before the lookup, run it; inside it, serve from the arena.

/// # Safety
/// As C's `malloc`: the stub is what the slot holds until the lookup has run.
unsafe extern "C" fn stub_malloc(size: size_t) -> *mut c_void {
    // SAFETY: after the lookup the slot holds a function of its type; the contract is malloc's.
    unsafe {
        if tls::guard() == GUARD_RESOLVING {
            return arena::allocate(size, 1);
        }
        resolve();
        MALLOC.get()(size)
    }
}

/// # Safety
/// As C's `calloc`: the stub is what the slot holds until the lookup has run.
unsafe extern "C" fn stub_calloc(n: size_t, size: size_t) -> *mut c_void {
    // SAFETY: after the lookup the slot holds a function of its type; the contract is calloc's.
    unsafe {
        if tls::guard() == GUARD_RESOLVING {
            return n
                .checked_mul(size)
                .map_or(std::ptr::null_mut(), |total| arena::allocate(total, 1));
        }
        resolve();
        CALLOC.get()(n, size)
    }
}

/// # Safety
/// As C's `realloc`: the stub is what the slot holds until the lookup has run (`ptr` as for the hook).
unsafe extern "C" fn stub_realloc(ptr: *mut c_void, size: size_t) -> *mut c_void {
    if tls::guard() == GUARD_RESOLVING {
        let new = arena::allocate(size, 1);
        if !new.is_null() && arena::owns(ptr) {
            // SAFETY: `ptr` is an arena block, whose size the arena knows; `new` is a fresh block
            // of at least `size` bytes.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    ptr as *const u8,
                    new as *mut u8,
                    arena::size_of(ptr).min(size),
                )
            };
        }
        return new;
    }
    resolve();
    // SAFETY: after the lookup the slot holds a function of its type; the contract is realloc's.
    unsafe { REALLOC.get()(ptr, size) }
}

/// # Safety
/// As C's `free`: the stub is what the slot holds until the lookup has run (`ptr` as for the hook).
unsafe extern "C" fn stub_free(ptr: *mut c_void) {
    // Inside the lookup, only arena blocks can exist (every earlier allocation ran the lookup first):
    // nothing to do.
    if tls::guard() == GUARD_RESOLVING {
        return;
    }
    resolve();
    // SAFETY: after the lookup the slot holds a function of its type; the contract is free's.
    unsafe { FREE.get()(ptr) }
}

/// # Safety
/// As C's `memalign`: the stub is what the slot holds until the lookup has run.
unsafe extern "C" fn stub_memalign(align: size_t, size: size_t) -> *mut c_void {
    if tls::guard() == GUARD_RESOLVING {
        return aligned_from_arena(align, size);
    }
    resolve();
    // SAFETY: after the lookup the slot holds a function of its type; the contract is memalign's.
    unsafe { MEMALIGN.get()(align, size) }
}

/// # Safety
/// As C's `aligned_alloc`: the stub is what the slot holds until the lookup has run.
unsafe extern "C" fn stub_aligned_alloc(align: size_t, size: size_t) -> *mut c_void {
    if tls::guard() == GUARD_RESOLVING {
        return aligned_from_arena(align, size);
    }
    resolve();
    // SAFETY: after the lookup the slot holds a function of its type; the contract is aligned_alloc's.
    unsafe { ALIGNED_ALLOC.get()(align, size) }
}

/// # Safety
/// As C's `posix_memalign`: the stub is what the slot holds until the lookup has run (`out` valid for a write).
unsafe extern "C" fn stub_posix_memalign(
    out: *mut *mut c_void,
    align: size_t,
    size: size_t,
) -> c_int {
    if tls::guard() == GUARD_RESOLVING {
        let ptr = aligned_from_arena(align, size);
        if ptr.is_null() {
            return libc::ENOMEM;
        }
        // SAFETY: `out` is valid for a write (the contract).
        unsafe { *out = ptr };
        return 0;
    }
    resolve();
    // SAFETY: after the lookup the slot holds a function of its type; the contract is posix_memalign's.
    unsafe { POSIX_MEMALIGN.get()(out, align, size) }
}

/// # Safety
/// As C's `valloc`: the stub is what the slot holds until the lookup has run.
unsafe extern "C" fn stub_valloc(size: size_t) -> *mut c_void {
    if tls::guard() == GUARD_RESOLVING {
        return arena::allocate(size, page_size());
    }
    resolve();
    // SAFETY: after the lookup the slot holds a function of its type; the contract is valloc's.
    unsafe { VALLOC.get()(size) }
}

/// # Safety
/// As C's `pvalloc`: the stub is what the slot holds until the lookup has run.
unsafe extern "C" fn stub_pvalloc(size: size_t) -> *mut c_void {
    if tls::guard() == GUARD_RESOLVING {
        let page = page_size();
        return size
            .checked_next_multiple_of(page)
            .map_or(std::ptr::null_mut(), |total| arena::allocate(total, page));
    }
    resolve();
    // SAFETY: after the lookup the slot holds a function of its type; the contract is pvalloc's.
    unsafe { PVALLOC.get()(size) }
}

fn aligned_from_arena(align: size_t, size: size_t) -> *mut c_void {
    if align.is_power_of_two() {
        arena::allocate(size, align)
    } else {
        std::ptr::null_mut()
    }
}

fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) as usize }
}

// The tracer's own allocator calls glibc's; the lookup never allocates through it, so these stubs
// only run it.

/// # Safety
/// As C's `malloc`, for blocks of glibc's (the tracer's own allocator calls it).
unsafe extern "C" fn stub_glibc_malloc(size: size_t) -> *mut c_void {
    // SAFETY: after the lookup the slot holds glibc's `malloc`; the contract is its own.
    unsafe {
        resolve();
        GLIBC_MALLOC.get()(size)
    }
}

/// # Safety
/// As C's `calloc`, for blocks of glibc's (the tracer's own allocator calls it).
unsafe extern "C" fn stub_glibc_calloc(n: size_t, size: size_t) -> *mut c_void {
    // SAFETY: after the lookup the slot holds glibc's `calloc`; the contract is its own.
    unsafe {
        resolve();
        GLIBC_CALLOC.get()(n, size)
    }
}

/// # Safety
/// As C's `realloc`, for blocks of glibc's (the tracer's own allocator calls it).
unsafe extern "C" fn stub_glibc_realloc(ptr: *mut c_void, size: size_t) -> *mut c_void {
    // SAFETY: after the lookup the slot holds glibc's `realloc`; the contract is its own.
    unsafe {
        resolve();
        GLIBC_REALLOC.get()(ptr, size)
    }
}

/// # Safety
/// As C's `free`, for blocks of glibc's (the tracer's own allocator calls it).
unsafe extern "C" fn stub_glibc_free(ptr: *mut c_void) {
    // SAFETY: after the lookup the slot holds glibc's `free`; the contract is its own.
    unsafe {
        resolve();
        GLIBC_FREE.get()(ptr)
    }
}

/// # Safety
/// As C's `memalign`, for blocks of glibc's (the tracer's own allocator calls it).
unsafe extern "C" fn stub_glibc_memalign(align: size_t, size: size_t) -> *mut c_void {
    // SAFETY: after the lookup the slot holds glibc's `memalign`; the contract is its own.
    unsafe {
        resolve();
        GLIBC_MEMALIGN.get()(align, size)
    }
}

/// Used only if glibc's `posix_memalign` cannot be found: what the tracer did before it forwarded.
///
/// # Safety
/// As C's `posix_memalign`: `out` is valid for a write.
unsafe extern "C" fn fallback_posix_memalign(
    out: *mut *mut c_void,
    align: size_t,
    size: size_t,
) -> c_int {
    if !align.is_power_of_two() || !align.is_multiple_of(std::mem::size_of::<*mut c_void>()) {
        return libc::EINVAL;
    }
    // SAFETY: glibc's memalign takes any size, and the alignment is a power of two.
    let ptr = unsafe { __libc_memalign(align, size) };
    if ptr.is_null() {
        return libc::ENOMEM;
    }
    // SAFETY: `out` is valid for a write (the contract).
    unsafe { *out = ptr };
    0
}

/// Defines `$name`, which calls `$foreign` with the thread marked as inside the program's allocator.
macro_rules! in_allocator {
    ($name:ident, $foreign:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty) => {
        /// # Safety
        /// As the C function it stands for, whose next definition it calls.
        unsafe extern "C" fn $name($($arg: $ty),*) -> $ret {
            let _inside = GuardAs::set(GUARD_ALLOCATOR);
            // SAFETY: the slot holds the next definition, of this signature; the arguments are the
            // caller's, under its contract.
            unsafe { $foreign.get()($($arg),*) }
        }
    };
}

in_allocator!(shim_malloc, FOREIGN_MALLOC, (size: size_t) -> *mut c_void);
in_allocator!(shim_calloc, FOREIGN_CALLOC, (n: size_t, size: size_t) -> *mut c_void);
in_allocator!(shim_realloc, FOREIGN_REALLOC, (ptr: *mut c_void, size: size_t) -> *mut c_void);
in_allocator!(shim_free, FOREIGN_FREE, (ptr: *mut c_void) -> ());
in_allocator!(shim_memalign, FOREIGN_MEMALIGN, (align: size_t, size: size_t) -> *mut c_void);
in_allocator!(shim_aligned_alloc, FOREIGN_ALIGNED_ALLOC, (align: size_t, size: size_t) -> *mut c_void);
in_allocator!(shim_posix_memalign, FOREIGN_POSIX_MEMALIGN, (out: *mut *mut c_void, align: size_t, size: size_t) -> c_int);
in_allocator!(shim_valloc, FOREIGN_VALLOC, (size: size_t) -> *mut c_void);
in_allocator!(shim_pvalloc, FOREIGN_PVALLOC, (size: size_t) -> *mut c_void);

// glibc's mmap wrappers do nothing more than the system call on x86_64, and these need no lookup.

/// # Safety
/// As `mmap(2)`.
unsafe extern "C" fn syscall_mmap(
    addr: *mut c_void,
    len: size_t,
    prot: c_int,
    flags: c_int,
    fd: c_int,
    off: off_t,
) -> *mut c_void {
    // SAFETY: the system call with the caller's arguments (the contract is mmap's).
    unsafe { libc::syscall(libc::SYS_mmap, addr, len, prot, flags, fd, off) as *mut c_void }
}

/// # Safety
/// As `munmap(2)`.
unsafe extern "C" fn syscall_munmap(addr: *mut c_void, len: size_t) -> c_int {
    // SAFETY: the system call with the caller's arguments (the contract is munmap's).
    unsafe { libc::syscall(libc::SYS_munmap, addr, len) as c_int }
}

/// # Safety
/// As `mremap(2)`.
unsafe extern "C" fn syscall_mremap(
    old: *mut c_void,
    old_len: size_t,
    new_len: size_t,
    flags: c_int,
    new_addr: *mut c_void,
) -> *mut c_void {
    // SAFETY: the system call with the caller's arguments (the contract is mremap's).
    unsafe {
        libc::syscall(libc::SYS_mremap, old, old_len, new_len, flags, new_addr) as *mut c_void
    }
}

fn describe(owner: &Option<String>) -> String {
    match owner {
        Some(path) => path.clone(),
        None => "the program itself".into(),
    }
}

/// The names of our hooks that [`bypass`] checks.
const HOOKED: [&CStr; 11] = [
    c"malloc",
    c"free",
    c"calloc",
    c"realloc",
    c"posix_memalign",
    c"aligned_alloc",
    c"memalign",
    c"valloc",
    c"pvalloc",
    c"mmap",
    c"munmap",
];

/// An address inside this library, to tell its definitions from others' (the address of an exported
/// hook, taken in Rust, goes through the GOT and so is whatever the lookup found; a private
/// function's is not).
fn marker() -> usize {
    resolve_now as fn() as usize
}

/// The object a definition is in: a path, or `None` for the program itself.
fn owner(d: &lookup::Definition) -> Option<String> {
    (!d.path.is_empty()).then(|| d.path.clone())
}

/// Why the process's allocation functions are not our hooks, if some are not: one line naming
/// them and what defines them instead (`malloc, free resolve to /usr/lib/…/libjemalloc.so.2 (…); …`).
/// Reads the symbol lookup as the program's own calls see it: the first object in the lookup order
/// that defines each name (`lookup`; not `dlsym`, which for a non-PIE program returns the program's
/// own PLT entry).
pub fn bypass() -> Option<String> {
    let mut by_owner: Vec<(Option<String>, Vec<&str>)> = Vec::new();
    let ours = marker();
    for name in HOOKED {
        let Some(first) = lookup::definitions(name, ours).into_iter().next() else {
            continue;
        };
        if first.holds_marker {
            continue;
        }
        let who = owner(&first);
        let name = name.to_str().unwrap_or("?");
        match by_owner.iter_mut().find(|(o, _)| *o == who) {
            Some((_, names)) => names.push(name),
            None => by_owner.push((who, vec![name])),
        }
    }
    if by_owner.is_empty() {
        return None;
    }
    let parts: Vec<String> = by_owner
        .iter()
        .map(|(who, names)| {
            let verb = if names.len() == 1 {
                "resolves"
            } else {
                "resolve"
            };
            format!("{} {verb} to {}", names.join(", "), describe(who))
        })
        .collect();
    let statically = by_owner.iter().any(|(who, _)| who.is_none());
    let fix = if statically {
        "the program links its allocator in statically"
    } else {
        "loaded before libtracer.so: put libtracer.so first in LD_PRELOAD"
    };
    Some(format!(
        "{} ({fix}); those calls are not recorded",
        parts.join("; ")
    ))
}

/// The object whose `malloc` the program's calls end in: the next definition after our hook, or,
/// when the hooks are bypassed, the one that comes first.
pub fn program_allocator() -> String {
    let defs = lookup::definitions(c"malloc", marker());
    let used = match defs.first() {
        Some(first) if first.holds_marker => defs.get(1),
        first => first,
    };
    used.map_or_else(String::new, |d| describe(&owner(d)))
}
