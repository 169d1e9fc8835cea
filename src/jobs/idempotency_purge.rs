//! Forgets idempotency keys a week old. Each keeps its report's first response,
//! so without this the table would grow by every keyed report for good. A phone
//! retries within minutes, or within days when it was offline; a key sent again
//! after a week files a new report. Safe with several instances: a deletion
//! removes only rows past their week.

use std::sync::Arc;
use std::time::Duration;

use super::Pass;
use crate::metrics::Metrics;
use crate::store::Repository;

/// How long a report's key keeps answering retries with its first response.
pub const KEPT_FOR: chrono::Duration = chrono::Duration::days(7);

pub fn spawn(repo: Arc<dyn Repository>, interval: Duration, metrics: Arc<Metrics>) {
    super::every("idempotency_purge", interval, metrics, move || {
        let repo = repo.clone();
        async move {
            let purged = repo
                .purge_idempotency_keys(crate::state::now() - KEPT_FOR)
                .await;
            match &purged {
                Ok(0) => {}
                Ok(rows) => tracing::info!(rows, "forgot idempotency keys a week old"),
                Err(e) => tracing::error!(error = %e, "forgetting old idempotency keys failed"),
            }
            Pass::of(&purged)
        }
    });
}
