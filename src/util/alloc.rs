//! Process-wide allocator settings, applied once by `main` before any thread starts.
//!
//! glibc's malloc raises its mmap threshold each time a large mmapped block is freed (up to
//! 32 MiB), after which multi-megabyte buffers come from the heap. The Parquet writer keeps
//! a row group as compressed pages that were allocated at their uncompressed size and shrunk
//! in place, so long-lived small pages end up between freed holes that later large buffers
//! cannot reuse. Measured on 5 GB of Synthea NDJSON → Parquet: peak RSS 234 MiB with the
//! dynamic threshold (559 MiB before chunk buffers and column buffers were reused), 152 MiB
//! with the threshold fixed at 128 KiB, and no slower (docs/benchmarks.md). Fixing it also
//! makes peak RSS independent of the input size, which the streaming design promises.

/// Fixes glibc's mmap threshold at its documented default (128 KiB), which turns off the
/// dynamic adjustment: large buffers are mmapped and returned to the OS when freed.
/// Does nothing with other C libraries.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes allocator parameters; it is called once from `main`
    // before other threads exist, and an unsupported value merely returns 0.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}
