//! CPU time of the calling thread (`CLOCK_THREAD_CPUTIME_ID`) or of the whole process
//! (`CLOCK_PROCESS_CPUTIME_ID`), through rustix's safe wrapper, shared by the benchmarks
//! (`#[path]`-included): on a shared or busy machine wall time also counts the waits for a
//! CPU, CPU time does not.

/// Nanoseconds of CPU the calling thread has used.
pub fn thread_cpu_ns() -> u64 {
    cpu_ns(rustix::time::ClockId::ThreadCPUTime)
}

/// Nanoseconds of CPU every thread of the process has used.
#[allow(dead_code)] // not every bench that includes this file reads the process clock
pub fn process_cpu_ns() -> u64 {
    cpu_ns(rustix::time::ClockId::ProcessCPUTime)
}

fn cpu_ns(clock: rustix::time::ClockId) -> u64 {
    let t = rustix::time::clock_gettime(clock);
    u64::try_from(t.tv_sec).unwrap_or(0) * 1_000_000_000 + u64::try_from(t.tv_nsec).unwrap_or(0)
}
