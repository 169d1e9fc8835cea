//! Archives (归档) closed cases once their reopen window (重办) has passed, so
//! the closed set stays small and the record is frozen. As the system actor
//! through the workflow, which holds the rule; safe with several instances (the
//! version check lets one of them win each case).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Pass;
use crate::domain::case::{Action, CaseState, Refusal};
use crate::metrics::Metrics;
use crate::store::{Repository, StoreError};
use crate::workflow::{Workflow, WorkflowError};

const BATCH: i64 = 200;

/// One pass at `now`; returns how many cases were archived, or why the cases
/// to archive could not be listed. A case that fails on its own is logged and
/// left for the next pass.
pub async fn run_once(
    workflow: &Workflow,
    repo: &dyn Repository,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let closed_before = now - workflow.rules().reopen_window;
    let ids = repo.archive_candidates(closed_before, BATCH).await?;
    let mut archived = 0;
    for id in ids {
        match archive(workflow, id, now).await {
            Ok(true) => archived += 1,
            Ok(false) => {}
            // Another instance, or a reopen, got there first.
            Err(WorkflowError::Refused(Refusal::StaleVersion)) => {}
            Err(e) => tracing::warn!(case = %id, error = %e, "archiving failed"),
        }
    }
    Ok(archived)
}

async fn archive(
    workflow: &Workflow,
    id: uuid::Uuid,
    now: DateTime<Utc>,
) -> Result<bool, WorkflowError> {
    let Some(case) = workflow.case(id).await? else {
        return Ok(false);
    };
    if case.state != CaseState::Closed {
        return Ok(false);
    }
    workflow.act_as_system(&case, Action::Archive, now).await?;
    Ok(true)
}

pub fn spawn(
    workflow: Arc<Workflow>,
    repo: Arc<dyn Repository>,
    interval: Duration,
    metrics: Arc<Metrics>,
) {
    super::every("archive", interval, metrics, move || {
        let workflow = workflow.clone();
        let repo = repo.clone();
        async move {
            let archived = run_once(&workflow, repo.as_ref(), crate::state::now()).await;
            match &archived {
                Ok(0) => {}
                Ok(count) => tracing::info!(count, "closed cases archived"),
                Err(e) => tracing::error!(error = %e, "cannot list closed cases to archive"),
            }
            Pass::of(&archived)
        }
    });
}
