//! Emits the deadline events clocks owe — 预警 `deadline_warning`, 超期
//! `deadline_overdue` and its `escalated` record — each exactly once.
//!
//! A sweep claims due clocks in batches; each batch records its events, outbox
//! rows and the clocks' next checks in one transaction, so a crash mid-sweep
//! loses nothing (the clocks stay due) and duplicates nothing (what committed is
//! no longer due). On PostgreSQL concurrent sweepers skip each other's locked
//! rows; on SQLite one instance at a time holds a lease.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Pass;
use crate::metrics::Metrics;
use crate::store::{Repository, StoreError, SweepReport};

const LEASE: &str = "deadline_sweeper";

/// Sweeps until no due clock is left; `None` when another instance holds the
/// lease, so this one had nothing to do.
pub async fn sweep_once(
    repo: &dyn Repository,
    holder: &str,
    now: DateTime<Utc>,
    batch: i64,
    lease_ttl: chrono::Duration,
) -> Result<Option<SweepReport>, StoreError> {
    let mut total = SweepReport::default();
    if !repo.take_job_lease(LEASE, holder, now, lease_ttl).await? {
        return Ok(None);
    }
    loop {
        let report = repo.sweep_clocks(now, batch).await?;
        total.clocks += report.clocks;
        total.warnings += report.warnings;
        total.overdue += report.overdue;
        if report.clocks < batch as usize {
            return Ok(Some(total));
        }
    }
}

/// Runs [`sweep_once`] every `interval` until the process stops.
pub fn spawn(
    repo: Arc<dyn Repository>,
    holder: String,
    interval: Duration,
    batch: i64,
    metrics: Arc<Metrics>,
) {
    // A lease outlives a few missed ticks, so a live holder keeps it, and
    // expires soon enough that another instance takes over after a crash.
    let lease_ttl = chrono::Duration::from_std(interval * 4)
        .unwrap_or(chrono::Duration::minutes(2))
        .max(chrono::Duration::seconds(10));
    super::every("deadline_sweeper", interval, metrics, move || {
        let (repo, holder) = (repo.clone(), holder.clone());
        async move {
            let swept = sweep_once(
                repo.as_ref(),
                &holder,
                crate::state::now(),
                batch,
                lease_ttl,
            )
            .await;
            match swept {
                // The lease holder's own passes say whether sweeping works.
                Ok(None) => Pass::Skipped,
                Ok(Some(report)) => {
                    if !report.is_empty() {
                        tracing::info!(
                            clocks = report.clocks,
                            warnings = report.warnings,
                            overdue = report.overdue,
                            "deadline sweep"
                        );
                    }
                    Pass::Succeeded
                }
                Err(e) => {
                    tracing::error!(error = %e, "deadline sweep failed; retrying next tick");
                    Pass::Failed
                }
            }
        }
    });
}
