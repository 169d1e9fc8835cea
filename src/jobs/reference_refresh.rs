//! Keeps this instance's routing table and deadline book in step with changes
//! made by other instances: both follow the store's reference version, polled
//! every `routing.refresh_secs`. A failed rebuild keeps the previous one.

use std::sync::Arc;
use std::time::Duration;

use super::Pass;
use crate::deadlines::LiveDeadlines;
use crate::metrics::Metrics;
use crate::routing::LiveRouting;
use crate::store::Repository;

pub fn spawn(
    repo: Arc<dyn Repository>,
    routing: Arc<LiveRouting>,
    deadlines: Arc<LiveDeadlines>,
    interval: Duration,
    metrics: Arc<Metrics>,
) {
    super::every("reference_refresh", interval, metrics, move || {
        let (repo, routing, deadlines) = (repo.clone(), routing.clone(), deadlines.clone());
        async move {
            let routed = routing.refresh(repo.as_ref()).await;
            match &routed {
                Ok(true) => tracing::info!(version = routing.version(), "routing table rebuilt"),
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "routing table refresh failed; keeping the previous table")
                }
            }
            let booked = deadlines.refresh(repo.as_ref()).await;
            match &booked {
                Ok(true) => tracing::info!(version = deadlines.version(), "deadline book rebuilt"),
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "deadline book refresh failed; keeping the previous book")
                }
            }
            // An instance that keeps an old table or book is what the metric is for.
            if routed.is_ok() && booked.is_ok() {
                Pass::Succeeded
            } else {
                Pass::Failed
            }
        }
    });
}
