//! Background work that runs inside every API instance.

pub mod archive;
pub mod auto_dispatch;
pub mod deadline_sweeper;
pub mod photo_cleanup;
pub mod reference_refresh;
pub mod sign_in_purge;

use std::future::Future;
use std::time::Duration;

use tracing::Instrument;

/// Runs `pass` every `interval` until the process stops, each pass in a `job`
/// span named `name`. A pass that overruns delays the next tick instead of
/// bunching the missed ones.
pub(crate) fn every<F, Fut>(name: &'static str, interval: Duration, mut pass: F)
where
    F: FnMut() -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            pass().instrument(tracing::info_span!("job", name)).await;
        }
    });
}
