//! Keeps this instance's routing table and deadline book in step with changes
//! made by other instances: both follow the store's reference version, polled
//! every `routing.refresh_secs`. A failed rebuild keeps the previous one.

use std::sync::Arc;
use std::time::Duration;

use crate::deadlines::LiveDeadlines;
use crate::routing::LiveRouting;
use crate::store::Repository;

pub fn spawn(
    repo: Arc<dyn Repository>,
    routing: Arc<LiveRouting>,
    deadlines: Arc<LiveDeadlines>,
    interval: Duration,
) {
    super::every("reference_refresh", interval, move || {
        let (repo, routing, deadlines) = (repo.clone(), routing.clone(), deadlines.clone());
        async move {
            match routing.refresh(repo.as_ref()).await {
                Ok(true) => tracing::info!(version = routing.version(), "routing table rebuilt"),
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "routing table refresh failed; keeping the previous table")
                }
            }
            match deadlines.refresh(repo.as_ref()).await {
                Ok(true) => tracing::info!(version = deadlines.version(), "deadline book rebuilt"),
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(error = %e, "deadline book refresh failed; keeping the previous book")
                }
            }
        }
    });
}
