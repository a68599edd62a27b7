//! The reference runtime: load a GGUF, evaluate it, generate text.

pub mod bench;
pub mod forward;
pub mod generate;
pub mod model;
pub mod ops;
pub mod sampler;

/// Runs a runtime command (run, bench, perplexity, compare, imatrix, plan --measure), set up
/// for the forward pass's pattern of work:
///
/// - On a thread of rayon's pool. A forward pass makes a few hundred small parallel calls per
///   generated token. Made from outside the pool, each call hands its work to the pool and
///   sleeps until woken again (about 12 µs a call on 2 cores, measured). Made from a pool
///   thread, the caller starts on its own share at once.
/// - With freed memory kept for reuse (glibc only). Each layer allocates and frees buffers of
///   megabytes; glibc returns such blocks to the kernel, so the next layer page-faults and the
///   kernel zeroes the pages again: 330 thousand page faults in two 512-token prompts of
///   TinyLlama, about half of all. Raising the mmap and trim thresholds keeps them in the heap.
pub fn run_command<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets allocator parameters, from this thread, before the command runs.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
    }
    rayon::scope(|_| f())
}
