//! CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`, through rustix's safe
//! wrapper), shared by the benchmarks (`#[path]`-included): on a shared or busy machine wall
//! time also counts the waits for a CPU, thread CPU time does not.

/// Nanoseconds of CPU the calling thread has used.
pub fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec).unwrap_or(0)
}
