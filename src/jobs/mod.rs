//! Background work that runs inside every API instance.

pub mod archive;
pub mod auto_dispatch;
pub mod deadline_sweeper;
pub mod idempotency_purge;
pub mod photo_cleanup;
pub mod reference_refresh;
pub mod sign_in_purge;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use crate::metrics::Metrics;

/// How a job's pass went. The pass logs its own errors; this only feeds the
/// job metrics, so a job that keeps failing is seen without reading the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pass {
    Succeeded,
    Failed,
    /// Another instance holds the job's lease: nothing was tried here.
    Skipped,
}

impl Pass {
    fn outcome(self) -> &'static str {
        match self {
            Pass::Succeeded => "ok",
            Pass::Failed => "failed",
            Pass::Skipped => "skipped",
        }
    }

    /// `Failed` when `result` is an error (which the caller has logged).
    pub fn of<T, E>(result: &Result<T, E>) -> Pass {
        if result.is_ok() {
            Pass::Succeeded
        } else {
            Pass::Failed
        }
    }
}

/// Counts a finished pass of `name` in `metrics`; a successful one is also
/// its last success.
fn record(metrics: &Metrics, name: &str, pass: Pass) {
    metrics.count_job_pass(name, pass.outcome());
    if pass == Pass::Succeeded {
        metrics.job_succeeded(name, crate::state::now().timestamp());
    }
}

/// Runs `pass` every `interval` until the process stops, each pass in a `job`
/// span named `name` and counted in `metrics`. A pass that overruns delays the
/// next tick instead of bunching the missed ones.
pub(crate) fn every<F, Fut>(
    name: &'static str,
    interval: Duration,
    metrics: Arc<Metrics>,
    mut pass: F,
) where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = Pass> + Send + 'static,
{
    metrics.job_started(name);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let outcome = pass().instrument(tracing::info_span!("job", name)).await;
            record(&metrics, name, outcome);
        }
    });
}
