//! How the process gets and gives back memory. The large buffers the service allocates (Argon2id's
//! 19 MiB per hash, S3 parts of 5+ MiB) must go back to the OS when freed, or the peak resident
//! size grows far past what the concurrency limits (`limits`) allow: glibc's malloc raises its
//! mmap threshold after the first large free, and from then on keeps those buffers in its
//! per-thread arenas, fragmented. Measured: 64 concurrent registrations at PASSWORD_HASH_
//! CONCURRENCY=2 peaked at 730 MiB with the default and 68 MiB with a fixed 1 MiB threshold
//! (tests/limits.rs states the bound).

/// Allocations from this size on are mapped on their own and unmapped when freed.
const MMAP_THRESHOLD_BYTES: i32 = 1024 * 1024;

/// Fixes glibc's mmap threshold (turning off its dynamic raise). Call once, first thing in
/// `main`. A no-op elsewhere than Linux/glibc.
pub fn return_large_buffers_to_the_os() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets an allocator tunable; it is called before any other thread
        // starts allocating.
        let done = unsafe { libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES) };
        if done != 1 {
            eprintln!(
                "data-processor: could not set the malloc mmap threshold; memory peaks may be higher"
            );
        }
    }
}
