//! Deletes sign-in records nobody can use any more: expired one-time codes,
//! expired refresh tokens, and per-client request counts of past minutes. Without
//! it those tables only grow (a code that is never entered stays forever). Safe
//! with several instances: each deletion only removes rows already past use.

use std::sync::Arc;
use std::time::Duration;

use crate::auth::otp::RequestWindow;
use crate::store::Repository;

/// Counts of windows this much older than the current one are kept a while, so
/// a clock slightly behind on another instance still finds its window.
const WINDOW_GRACE: chrono::Duration = chrono::Duration::minutes(5);

pub fn spawn(repo: Arc<dyn Repository>, interval: Duration) {
    super::every("sign_in_purge", interval, move || {
        let repo = repo.clone();
        async move {
            let now = crate::state::now();
            match repo
                .purge_sign_in_records(now, RequestWindow::containing(now).start - WINDOW_GRACE)
                .await
            {
                Ok(0) => {}
                Ok(rows) => tracing::info!(rows, "purged expired sign-in records"),
                Err(e) => tracing::error!(error = %e, "purging sign-in records failed"),
            }
        }
    });
}
