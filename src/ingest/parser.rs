//! Parsing of API ingestion bodies (`POST /api/v1/predictions`) on a thread of its own at
//! the lowest scheduling priority: the handler awaits the answer without occupying a
//! runtime worker, and under load the proxy's workers win the CPU. Jobs wait in a bounded
//! queue; past it the API answers 503.

use std::sync::mpsc as std_mpsc;

use tokio::sync::oneshot;

/// Jobs waiting for the parser thread at most.
pub const MAX_PENDING_JOBS: usize = 8;

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A handle on the parser thread.
#[derive(Debug, Clone)]
pub struct Parser {
    tx: std_mpsc::SyncSender<Job>,
}

/// The parser's queue is full, or the thread has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the ingestion parser is busy")]
pub struct Busy;

impl Parser {
    /// Starts the parser thread at the lowest priority; it ends when the last handle is
    /// dropped.
    pub fn start() -> std::io::Result<Parser> {
        Parser::start_thread("mlmon-ingest-parser", true, MAX_PENDING_JOBS)
    }

    /// Starts a thread named `name` that runs jobs the same way (at most `pending` waiting;
    /// past that [`Busy`]): at the lowest priority
    /// when `lowest`, else at the process's own, but in both cases with the background
    /// threads' short pauses (`background::pause`) between units of work. The admin API's
    /// reports and the periodic refresh run on one at the normal priority (`mlmon-reports`),
    /// so a status page and the gauges stay current while the analysis is busy, without
    /// holding a runtime worker.
    pub fn start_thread(name: &str, lowest: bool, pending: usize) -> std::io::Result<Parser> {
        let (tx, rx) = std_mpsc::sync_channel::<Job>(pending);
        let thread = name.to_string();
        std::thread::Builder::new()
            .name(thread.clone())
            .spawn(move || {
                if lowest {
                    crate::background::lower_current_thread_priority(&thread);
                } else {
                    crate::background::enable();
                }
                while let Ok(job) = rx.recv() {
                    job();
                }
            })?;
        Ok(Parser { tx })
    }

    /// Runs `f` on the parser thread and waits for its result without blocking the caller's
    /// runtime worker. [`Busy`] when [`MAX_PENDING_JOBS`] are already waiting.
    pub async fn run<T, F>(&self, f: F) -> Result<T, Busy>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (done, result) = oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = done.send(f());
        });
        self.tx.try_send(job).map_err(|_| Busy)?;
        result.await.map_err(|_| Busy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_jobs_off_the_runtime_and_refuses_past_the_bound() {
        let p = Parser::start().unwrap();
        assert_eq!(p.run(|| 2 + 2).await, Ok(4));
        // Block the thread, fill the queue: the next job is refused at once.
        let (release, wait) = std_mpsc::channel::<()>();
        let p2 = p.clone();
        let blocker = tokio::spawn(async move {
            p2.run(move || {
                let _ = wait.recv();
            })
            .await
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut queued = Vec::new();
        for _ in 0..MAX_PENDING_JOBS {
            let p = p.clone();
            queued.push(tokio::spawn(async move { p.run(|| 1).await }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(p.run(|| 1).await, Err(Busy));
        release.send(()).unwrap();
        assert_eq!(blocker.await.unwrap(), Ok(()));
        for q in queued {
            assert_eq!(q.await.unwrap(), Ok(1));
        }
    }
}
