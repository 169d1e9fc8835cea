//! Keeps this instance's routing table and deadline book in step with changes
//! made by other instances: both follow the store's reference version, polled
//! every `routing.refresh_secs`. A failed rebuild keeps the previous one.

use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use crate::deadlines::LiveDeadlines;
use crate::routing::LiveRouting;
use crate::store::Repository;

pub fn spawn(
    repo: Arc<dyn Repository>,
    routing: Arc<LiveRouting>,
    deadlines: Arc<LiveDeadlines>,
    interval: Duration,
) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let span = tracing::debug_span!("job", name = "reference_refresh");
            async {
                match routing.refresh(repo.as_ref()).await {
                    Ok(true) => tracing::info!(version = routing.version(), "routing table rebuilt"),
                    Ok(false) => {}
                    Err(e) => tracing::error!(error = %e, "routing table refresh failed; keeping the previous table"),
                }
                match deadlines.refresh(repo.as_ref()).await {
                    Ok(true) => tracing::info!(version = deadlines.version(), "deadline book rebuilt"),
                    Ok(false) => {}
                    Err(e) => tracing::error!(error = %e, "deadline book refresh failed; keeping the previous book"),
                }
            }
            .instrument(span)
            .await;
        }
    });
}
