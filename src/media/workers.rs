//! The threads photos are processed on: one long-lived worker per processing slot,
//! each a single-thread rayon pool, handed to one photo at a time.
//!
//! jpeg-decoder hands its inverse DCT and colour conversion to rayon in small
//! tasks. Called from an ordinary thread (tokio's blocking pool), every one of
//! those tasks crossed to rayon's global pool while the caller slept; with a photo
//! per core in flight that cross-thread traffic cost ~10 % of the throughput. On a
//! worker of its own, a photo's tasks go to that worker's queue and it runs them
//! itself. One shared pool would do that too, but a worker waiting for a stolen
//! task there picks up whatever else is queued, a whole new photo included, and
//! the photo it was working on then waits for that one too (p99 +25 %).
//! The threads also live as long as the service, so the per-thread scratch
//! buffers in `raster` stay mapped between uploads, where the blocking pool let
//! idle threads, and their buffers, go after 10 s.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

/// A job panicked (a decoder bug on some input); the worker itself carries on.
#[derive(thiserror::Error, Debug)]
#[error("photo processing panicked: {0}")]
pub struct JobPanicked(String);

pub struct PhotoWorkers {
    shared: Arc<Shared>,
    count: usize,
}

struct Shared {
    idle: Mutex<Vec<Arc<rayon::ThreadPool>>>,
    /// One permit per idle worker, so whoever holds a permit finds one.
    free: Arc<Semaphore>,
}

impl Shared {
    fn idle(&self) -> MutexGuard<'_, Vec<Arc<rayon::ThreadPool>>> {
        // The lock only guards a push or a pop, which cannot panic half-way.
        self.idle.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl PhotoWorkers {
    /// Starts `count` worker threads (at least one).
    pub fn new(count: usize) -> std::io::Result<PhotoWorkers> {
        let count = count.max(1);
        let idle = (0..count)
            .map(|i| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(1)
                    .thread_name(move |_| format!("photo-worker-{i}"))
                    .build()
                    .map(Arc::new)
                    .map_err(std::io::Error::other)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let shared = Shared {
            idle: Mutex::new(idle),
            free: Arc::new(Semaphore::new(count)),
        };
        Ok(PhotoWorkers {
            shared: Arc::new(shared),
            count,
        })
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// Waits until a worker is free and reserves it; photos queue here, in
    /// arrival order, rather than inside the workers.
    pub async fn acquire(&self) -> PhotoWorker {
        // The semaphore is never closed, so acquiring cannot fail.
        let permit = self.shared.free.clone().acquire_owned().await.ok();
        let pool = self.shared.idle().pop();
        PhotoWorker {
            shared: self.shared.clone(),
            pool,
            _permit: permit,
        }
    }
}

/// A reserved worker. It goes back to the idle list when its job is done, even if
/// whoever was waiting for the result has gone, so no worker is ever given two
/// photos at once.
pub struct PhotoWorker {
    shared: Arc<Shared>,
    pool: Option<Arc<rayon::ThreadPool>>,
    // Released after `Drop::drop` has put the pool back.
    _permit: Option<OwnedSemaphorePermit>,
}

impl PhotoWorker {
    /// Runs `job` on this worker and waits for it without blocking the caller's
    /// async runtime.
    pub async fn run<T, F>(self, job: F) -> Result<T, JobPanicked>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let (done, outcome) = oneshot::channel();
        let pool = self.pool.clone();
        let task = move || {
            // rayon aborts the process on a panic that escapes a spawned job.
            let result = catch_unwind(AssertUnwindSafe(job)).map_err(|payload| {
                let message = payload
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| payload.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "no message".to_owned());
                JobPanicked(message)
            });
            // Free the worker before answering, so the next photo finds it.
            drop(self);
            // The request may have gone away meanwhile; nobody is left to tell.
            let _ = done.send(result);
        };
        match pool {
            Some(pool) => pool.spawn(task),
            None => {
                tracing::error!("no idle photo worker behind a permit; using rayon's global pool");
                rayon::spawn(task);
            }
        }
        outcome
            .await
            .unwrap_or_else(|_| Err(JobPanicked("the job was dropped unrun".to_owned())))
    }
}

impl Drop for PhotoWorker {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            self.shared.idle().push(pool);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_job_runs_on_a_named_worker_and_returns_its_result() {
        let workers = PhotoWorkers::new(2).expect("workers start");
        assert_eq!(workers.count(), 2);
        let name = workers
            .acquire()
            .await
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
    async fn a_panicking_job_is_reported_and_the_worker_carries_on() {
        let workers = PhotoWorkers::new(1).expect("workers start");
        let err = workers
            .acquire()
            .await
            .run(|| -> u32 { panic!("corrupt input {}", 7) })
            .await
            .expect_err("the panic is reported");
        assert!(err.to_string().contains("corrupt input 7"), "{err}");
        let answer = workers.acquire().await.run(|| 41 + 1).await;
        assert_eq!(answer.expect("the worker still works"), 42);
    }

    #[tokio::test]
    async fn each_reserved_worker_is_a_different_thread_and_comes_back() {
        let workers = PhotoWorkers::new(2).expect("workers start");
        let name = || std::thread::current().name().map(str::to_owned);
        let (first, second) = (workers.acquire().await, workers.acquire().await);
        let (a, b) = tokio::join!(first.run(name), second.run(name));
        assert_ne!(a.expect("job runs"), b.expect("job runs"));
        // Both were returned: two more reservations do not wait.
        let again = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            (workers.acquire().await, workers.acquire().await)
        });
        assert!(again.await.is_ok(), "a worker was not given back");
    }

    #[tokio::test]
    async fn a_worker_stays_reserved_until_its_job_ends_even_if_nobody_waits() {
        use std::time::Duration;
        let workers = PhotoWorkers::new(1).expect("workers start");
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let running = workers.acquire().await.run(move || hold.recv().is_ok());
        // The request goes away while its photo is still being processed.
        let abandoned = tokio::time::timeout(Duration::from_millis(50), running).await;
        assert!(abandoned.is_err(), "the job should still be running");
        let next = tokio::time::timeout(Duration::from_millis(100), workers.acquire()).await;
        assert!(next.is_err(), "a busy worker was handed out again");
        release.send(()).expect("the job is waiting");
        let next = tokio::time::timeout(Duration::from_secs(5), workers.acquire()).await;
        assert!(next.is_ok(), "the worker did not come back after its job");
    }

    #[test]
    fn zero_workers_means_one() {
        assert_eq!(PhotoWorkers::new(0).expect("workers start").count(), 1);
    }
}
