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

/// One pass at `now`; returns how many cases were archived, or a database
/// error: listing the cases, or archiving one of them (the others were still
/// tried). Each is logged here. A case that fails on its own is logged and
/// left for the next pass.
pub async fn run_once(
    workflow: &Workflow,
    repo: &dyn Repository,
    now: DateTime<Utc>,
) -> Result<usize, StoreError> {
    let closed_before = now - workflow.rules().reopen_window;
    let ids = repo
        .archive_candidates(closed_before, BATCH)
        .await
        .inspect_err(|e| tracing::error!(error = %e, "cannot list closed cases to archive"))?;
    let mut archived = 0;
    let mut database_error = None;
    for id in ids {
        match archive(workflow, id, now).await {
            Ok(true) => archived += 1,
            Ok(false) => {}
            // Another instance, or a reopen, got there first.
            Err(WorkflowError::Refused(Refusal::StaleVersion)) => {}
            Err(e) => {
                tracing::warn!(case = %id, error = %e, "archiving failed");
                if let WorkflowError::Store(e) = e {
                    database_error.get_or_insert(e);
                }
            }
        }
    }
    database_error.map_or(Ok(archived), Err)
}

async fn archive(
    workflow: &Workflow,
    id: uuid::Uuid,
    now: DateTime<Utc>,
) -> Result<bool, WorkflowError> {
    let Some(session) = workflow.open(id).await? else {
        return Ok(false);
    };
    if session.case().state != CaseState::Closed {
        return Ok(false);
    }
    workflow
        .act_as_system(session, Action::Archive, now)
        .await?;
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
            // Errors were logged by the pass, with what failed.
            if let Ok(count @ 1..) = archived {
                tracing::info!(count, "closed cases archived");
            }
            Pass::of(&archived)
        }
    });
}
