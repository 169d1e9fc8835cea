//! Deletes sign-in records nobody can use any more: expired one-time codes,
//! expired refresh tokens, and per-client request counts of past minutes. Without
//! it those tables only grow (a code that is never entered stays forever). Safe
//! with several instances: each deletion only removes rows already past use.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::otp::RequestWindow;
use crate::store::Repository;

/// Counts are kept from the start of the current day's window (the longest one
/// counted, per phone), and this much before it, so a clock slightly behind on
/// another instance still finds its window.
const WINDOW_GRACE: chrono::Duration = chrono::Duration::minutes(5);

pub fn spawn(repo: Arc<dyn Repository>, interval: Duration) {
    super::every("sign_in_purge", interval, move || {
        let repo = repo.clone();
        async move {
            let now = crate::state::now();
            match repo
                .purge_sign_in_records(now, RequestWindow::day_containing(now).start - WINDOW_GRACE)
                .await
            {
                Ok(0) => {}
                Ok(rows) => tracing::info!(rows, "purged expired sign-in records"),
                Err(e) => tracing::error!(error = %e, "purging sign-in records failed"),
            }
        }
    });
}
