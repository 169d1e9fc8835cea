//! Deletes sign-in records nobody can use any more: expired one-time codes,
//! expired refresh tokens, and request counts of past windows. Without
//! it those tables only grow (a code that is never entered stays forever). Safe
//! with several instances: each deletion only removes rows already past use.

use std::sync::Arc;
use std::time::Duration;

use super::Pass;
use crate::metrics::Metrics;
use crate::store::Repository;

/// Request counts are kept this long: the longest window counted (a phone's
/// day, from the city's midnight) and a margin, so a clock slightly behind on
/// another instance still finds its window.
const KEPT_FOR: chrono::Duration = chrono::Duration::hours(25);

pub fn spawn(repo: Arc<dyn Repository>, interval: Duration, metrics: Arc<Metrics>) {
    super::every("sign_in_purge", interval, metrics, move || {
        let repo = repo.clone();
        async move {
            let now = crate::state::now();
            let purged = repo.purge_sign_in_records(now, now - KEPT_FOR).await;
            match &purged {
                Ok(0) => {}
                Ok(rows) => tracing::info!(rows, "purged expired sign-in records"),
                Err(e) => tracing::error!(error = %e, "purging sign-in records failed"),
            }
            Pass::of(&purged)
        }
    });
}
