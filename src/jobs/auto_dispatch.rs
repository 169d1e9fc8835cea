//! Files and dispatches routed reports of categories whose policy allows it
//! (DESIGN §3: the default for app reports with a photo and a matching rule), as
//! the system actor, through the same workflow as an operator. Safe with several
//! instances: the version check lets one of them win each step.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tracing::Instrument;

use super::Pass;
use crate::domain::case::{Action, CaseState, Refusal};
use crate::metrics::Metrics;
use crate::store::StoreError;
use crate::workflow::{Workflow, WorkflowError};

const BATCH: i64 = 100;

/// How long a report whose dispatch failed waits before the next try. Its
/// cause (a calendar not yet loaded, a rule naming a unit gone) is fixed by a
/// person, seldom within minutes; an operator can dispatch it meanwhile.
pub const RETRY_AFTER: chrono::Duration = chrono::Duration::minutes(15);

/// One pass over the waiting reports; returns how many were dispatched, or a
/// database error: listing them, setting failures aside, or dispatching one of
/// them (the others were still tried). Each is logged here. A report refused
/// for a reason of its own is set aside, which is no error of the pass.
pub async fn run_once(
    workflow: &Workflow,
    repo: &dyn crate::store::Repository,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    // The reference data this pass counts deadlines and checks units with.
    let seen_version = workflow.deadlines().version();
    let ids = repo
        .auto_dispatch_candidates(now, BATCH)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "cannot list reports waiting for dispatch"))?;
    let mut dispatched = 0;
    let mut failed: Vec<(uuid::Uuid, WorkflowError)> = Vec::new();
    let mut database_error = None;
    for id in ids {
        match file_and_dispatch(workflow, id, now).await {
            Ok(true) => dispatched += 1,
            Ok(false) => {}
            // Another instance got there first.
            Err(WorkflowError::Refused(Refusal::StaleVersion)) => {}
            // A busy or unreachable database: the next pass tries again.
            Err(WorkflowError::Store(e)) => {
                tracing::warn!(case = %id, error = %e, "automatic dispatch failed");
                database_error.get_or_insert(e);
            }
            Err(e) => {
                tracing::debug!(case = %id, error = %e, "automatic dispatch failed");
                failed.push((id, e));
            }
        }
    }
    if let Some((first, error)) = failed.first() {
        // Set aside, so they neither hold back the reports behind them nor are
        // tried (and logged) again on every pass.
        let ids: Vec<uuid::Uuid> = failed.iter().map(|(id, _)| *id).collect();
        match repo
            .defer_auto_dispatch(&ids, now + RETRY_AFTER, seen_version)
            .await
        {
            Ok(set_aside) => tracing::warn!(
                count = failed.len(),
                set_aside,
                first_case = %first,
                first_error = %error,
                retry_minutes = RETRY_AFTER.num_minutes(),
                "reports could not be dispatched automatically; they wait in the queue for an \
                 operator (those still submitted are tried again later, or after the next change \
                 to reference data)"
            ),
            Err(e) => {
                tracing::error!(
                    count = failed.len(),
                    first_case = %first,
                    first_error = %error,
                    error = %e,
                    "reports could not be dispatched automatically, nor set aside: they wait in \
                     the queue for an operator and are tried again at the next pass"
                );
                database_error.get_or_insert(e);
            }
        }
    }
    database_error.map_or(Ok(dispatched), Err)
}

async fn file_and_dispatch(
    workflow: &Workflow,
    id: uuid::Uuid,
    now: DateTime<Utc>,
) -> Result<bool, WorkflowError> {
    let Some(submitted) = workflow.open(id).await? else {
        return Ok(false);
    };
    let case = submitted.case();
    if case.state != CaseState::Submitted || !case.policy.auto_dispatch {
        return Ok(false);
    }
    let Some(lead_unit) = case.routed_lead.clone() else {
        return Ok(false);
    };
    workflow.act_as_system(submitted, Action::File, now).await?;
    let Some(filed) = workflow.open(id).await? else {
        return Ok(false);
    };
    let dispatch = Action::Dispatch {
        lead_unit,
        co_units: filed.case().routed_co_units.clone(),
    };
    workflow.act_as_system(filed, dispatch, now).await?;
    Ok(true)
}

/// Runs a pass when `wake` is notified (a report was just stored here) and every
/// `interval` (reports stored by other instances, or before a restart).
pub fn spawn(
    workflow: Arc<Workflow>,
    repo: Arc<dyn crate::store::Repository>,
    wake: Arc<Notify>,
    interval: Duration,
    metrics: Arc<Metrics>,
) {
    metrics.job_started("auto_dispatch");
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = wake.notified() => {}
            }
            let span = tracing::debug_span!("job", name = "auto_dispatch");
            let dispatched = run_once(&workflow, repo.as_ref(), crate::state::now())
                .instrument(span)
                .await;
            // Errors were logged by the pass, with what failed.
            if let Ok(count @ 1..) = dispatched {
                tracing::debug!(count, "reports dispatched automatically");
            }
            super::record(&metrics, "auto_dispatch", Pass::of(&dispatched));
        }
    });
}
