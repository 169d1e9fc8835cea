//! The threads photos are processed on: a dedicated rayon pool, one thread per
//! processing slot.
//!
//! jpeg-decoder hands its inverse DCT and colour conversion to rayon in small
//! tasks. Called from an ordinary thread (tokio's blocking pool), every one of
//! those tasks crosses to rayon's global pool and the caller sleeps until they
//! are done; with a photo per core in flight that cross-thread traffic cost ~10 %
//! of the throughput. Run on a worker of this pool, a decode pushes its tasks to
//! its own queue and mostly runs them itself, and another worker steals them only
//! when it has no photo of its own. The threads also live as long as the service,
//! so the per-thread scratch buffers in `raster` stay mapped between uploads,
//! where the blocking pool let idle threads, and their buffers, go after 10 s.

use std::panic::{AssertUnwindSafe, catch_unwind};

use tokio::sync::oneshot;

/// A job panicked (a decoder bug on some input); the pool itself carries on.
#[derive(thiserror::Error, Debug)]
#[error("photo processing panicked: {0}")]
pub struct JobPanicked(String);

pub struct PhotoWorkers {
    pool: rayon::ThreadPool,
}

impl PhotoWorkers {
    pub fn new(threads: usize) -> std::io::Result<PhotoWorkers> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("photo-worker-{i}"))
            .build()
            .map_err(std::io::Error::other)?;
        Ok(PhotoWorkers { pool })
    }

    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Runs `job` on the pool and waits for it without blocking the caller's
    /// async runtime. Callers bound how many jobs they hand over at once: the pool
    /// queues without limit.
    pub async fn run<T, F>(&self, job: F) -> Result<T, JobPanicked>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (done, outcome) = oneshot::channel();
        self.pool.spawn(move || {
            // rayon aborts the process on a panic that escapes a spawned job.
            let result = catch_unwind(AssertUnwindSafe(job)).map_err(|payload| {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".to_owned());
                JobPanicked(message)
            });
            // The request may have gone away meanwhile; nobody is left to tell.
            let _ = done.send(result);
        });
        outcome
            .await
            .unwrap_or_else(|_| Err(JobPanicked("the job was dropped unrun".to_owned())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_runs_on_a_named_worker_and_returns_its_result() {
        let workers = PhotoWorkers::new(2).expect("pool starts");
        assert_eq!(workers.threads(), 2);
        let name = workers
            .run(|| std::thread::current().name().map(str::to_owned))
            .await
            .expect("job runs");
        assert!(
            name.as_deref()
                .is_some_and(|n| n.starts_with("photo-worker-")),
            "ran on {name:?}"
        );
    }

    #[tokio::test]
    async fn a_panicking_job_is_reported_and_the_pool_carries_on() {
        let workers = PhotoWorkers::new(1).expect("pool starts");
        let err = workers
            .run(|| -> u32 { panic!("corrupt input {}", 7) })
            .await
            .expect_err("the panic is reported");
        assert!(err.to_string().contains("corrupt input 7"), "{err}");
        assert_eq!(workers.run(|| 41 + 1).await.expect("pool still works"), 42);
    }

    #[test]
    fn zero_threads_means_one() {
        assert_eq!(PhotoWorkers::new(0).expect("pool starts").threads(), 1);
    }
}
