//! Background threads (the ingestion parser and the analysis worker at the lowest priority;
//! the refresh and the admin API's reports at the normal one): a pause at short intervals
//! that hands the CPU over.
//!
//! A low priority alone does not keep them off the proxy's latency. On the 2-core VMs this
//! project is tested on (Linux 6.18, `HZ=250`), a thread that wakes up (a proxy worker with
//! a request to forward) can wait for a CPU-bound thread of the lowest priority until the
//! next scheduler tick: a busy loop at `SCHED_IDLE` in another process raised the proxied
//! p99 of `tests/isolation.rs`'s client from 1.8 ms to 5–5.9 ms, and the ingestion of
//! 4 × 10 000 records by 3 ms, whether the background threads ran at nice 19 or at
//! `SCHED_IDLE`. A thread that yields often does not: the same busy loop calling
//! `sched_yield` every 100 µs raised that p99 to 2.7 ms, every 20 µs not measurably. So the
//! background threads call [`pause`] between small units of work (one analysis of one
//! exchange, one record of a body, one feature of a drift report), and after every
//! [`SLICE`] of computing it yields the CPU: a system call of about 1 µs per 50 µs of work,
//! and 1.3 k more instructions per analysed 8×10 exchange (0.6 %, callgrind).

use std::cell::Cell;
use std::time::{Duration, Instant};

/// How long a background thread computes before it offers the CPU to waiting threads.
pub const SLICE: Duration = Duration::from_micros(50);

thread_local! {
    /// When this thread last yielded; `None` on threads that did not [`enable`] pauses
    /// (runtime workers, tests, the offline command), where [`pause`] does nothing.
    static SINCE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// Makes [`pause`] yield on the calling thread from now on.
pub fn enable() {
    SINCE.with(|s| s.set(Some(Instant::now())));
}

/// Whether [`pause`] yields on the calling thread.
pub fn enabled() -> bool {
    SINCE.with(|s| s.get().is_some())
}

/// Called between units of background work: yields the CPU when the calling thread has
/// computed for [`SLICE`] since it last did (a no-op unless [`enable`]d).
#[inline]
pub fn pause() {
    SINCE.with(|s| {
        if let Some(since) = s.get() {
            if since.elapsed() >= SLICE {
                std::thread::yield_now();
                s.set(Some(Instant::now()));
            }
        }
    })
}

/// Gives the calling thread the lowest CPU priority of a normal thread (nice 19) and makes
/// its [`pause`]s yield: the threads that parse ingestion bodies and run the analyses call
/// it first. Under overload they fall behind (the queue then drops, counted) instead of
/// taking CPU from the proxy. Not `SCHED_IDLE`: it made no difference to the proxy's
/// latency on the test VMs (the pauses do), and its share of a CPU contended by other
/// processes (weight 3 against nice 19's 15) starved the analysis in a loaded test run.
/// Lowering a thread's priority needs no privilege; a failure is logged and the thread runs
/// as it is.
pub fn lower_current_thread_priority(thread: &str) {
    enable();
    if let Err(e) =
        thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
    {
        tracing::debug!(thread, error = ?e, "could not lower the thread's priority");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_only_on_threads_that_enabled_them() {
        std::thread::spawn(|| {
            assert!(!enabled());
            pause();
            assert!(!enabled(), "pause does not enable itself");
            enable();
            assert!(enabled());
            let before = SINCE.with(|s| s.get());
            pause();
            // Within the slice nothing changes ...
            let t = Instant::now();
            while t.elapsed() < SLICE * 2 {}
            pause();
            // ... after it, the thread yielded and starts a new slice.
            assert!(SINCE.with(|s| s.get()) > before);
        })
        .join()
        .unwrap();
    }
}
