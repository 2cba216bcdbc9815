//! Keeps freed memory in the process instead of handing it back to the kernel at once.
//!
//! Every frame allocates and frees images, renders and point buffers of a few hundred kilobytes
//! to a few megabytes. With glibc's defaults, blocks that size are mapped fresh and unmapped on
//! free (or trimmed off the heap), so every frame page-faults and zeroes them again: about
//! 175,000 page faults in 40 frames of the embedded replay. With larger mmap and trim thresholds
//! the heap keeps them for reuse: about 45,000, for about 4 % more peak memory. (The usual
//! real-time Linux advice, which also avoids page faults on the odometry path of the node.)

/// Applies the thresholds (glibc only; other C libraries keep their defaults, and so does a
/// user who sets glibc's malloc tunables in `GLIBC_TUNABLES`).
pub fn keep_freed_memory() {
    let user_tuned = std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("glibc.malloc."));
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if !user_tuned {
        // glibc's <malloc.h>.
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        // Allocations under 32 MiB (glibc's largest threshold) come from the heap, and the
        // heap's top is returned to the kernel only beyond 512 MiB free.
        // SAFETY: mallopt only changes allocator parameters; called before other threads start.
        let ok = unsafe {
            mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1 && mallopt(M_TRIM_THRESHOLD, 512 << 20) == 1
        };
        if !ok {
            tracing::debug!("mallopt refused the allocator thresholds; glibc defaults kept");
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    let _ = user_tuned;
}
