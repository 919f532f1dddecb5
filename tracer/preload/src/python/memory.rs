//! Provides [`Memory`], how the Python side reads the interpreter's memory: [`Direct`] (plain loads,
//! on the hot path) and [`Checked`] (`process_vm_readv`, which fails instead of faulting: the start-up
//! self-check of a layout).

/// Reads of the interpreter's memory.
pub trait Memory {
    fn word(&self, addr: usize) -> Option<usize>;
    fn byte(&self, addr: usize) -> Option<u8>;
    fn int(&self, addr: usize) -> Option<i32>;
    /// `len` bytes from `addr`.
    fn bytes(&self, addr: usize, len: usize) -> Option<Vec<u8>> {
        (addr..addr + len).map(|a| self.byte(a)).collect()
    }
}

/// Plain loads, for addresses the layout guarantees.
pub struct Direct;

impl Memory for Direct {
    #[inline(always)]
    fn word(&self, addr: usize) -> Option<usize> {
        // SAFETY: callers pass addresses of fields of live CPython objects of this thread (the
        // layout was verified at start-up by `Checked`).
        Some(unsafe { (addr as *const usize).read() })
    }
    #[inline(always)]
    fn byte(&self, addr: usize) -> Option<u8> {
        // SAFETY: as in `word`.
        Some(unsafe { (addr as *const u8).read() })
    }
    #[inline(always)]
    fn int(&self, addr: usize) -> Option<i32> {
        // SAFETY: as in `word`.
        Some(unsafe { (addr as *const i32).read() })
    }
    fn bytes(&self, addr: usize, len: usize) -> Option<Vec<u8>> {
        // SAFETY: as in `word`: the inline data of a live str or bytes object, `len` within its size.
        Some(unsafe { std::slice::from_raw_parts(addr as *const u8, len) }.to_vec())
    }
}

/// Loads through `process_vm_readv` on our own process: an unmapped address is an error, not a crash.
pub struct Checked;

impl Checked {
    fn read_into(&self, addr: usize, buf: &mut [u8]) -> Option<()> {
        let local = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let remote = libc::iovec {
            iov_base: addr as *mut libc::c_void,
            iov_len: buf.len(),
        };
        // SAFETY: `local` describes `buf`; the kernel checks `remote` and fails on a bad address.
        let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
        (n == buf.len() as isize).then_some(())
    }

    fn read<const N: usize>(&self, addr: usize) -> Option<[u8; N]> {
        let mut buf = [0u8; N];
        self.read_into(addr, &mut buf)?;
        Some(buf)
    }
}

impl Memory for Checked {
    fn word(&self, addr: usize) -> Option<usize> {
        self.read::<8>(addr).map(usize::from_ne_bytes)
    }
    fn byte(&self, addr: usize) -> Option<u8> {
        self.read::<1>(addr).map(|b| b[0])
    }
    fn int(&self, addr: usize) -> Option<i32> {
        self.read::<4>(addr).map(i32::from_ne_bytes)
    }
    fn bytes(&self, addr: usize, len: usize) -> Option<Vec<u8>> {
        let mut buf = vec![0u8; len];
        if len > 0 {
            self.read_into(addr, &mut buf)?;
        }
        Some(buf)
    }
}
