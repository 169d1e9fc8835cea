//! Files and dispatches routed reports of categories whose policy allows it
//! (DESIGN §3: the default for app reports with a photo and a matching rule), as
//! the system actor, through the same workflow as an operator. Safe with several
//! instances: the version check lets one of them win each step.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tracing::Instrument;

use crate::domain::case::{Action, CaseState, Refusal};
use crate::workflow::{Workflow, WorkflowError};

const BATCH: i64 = 100;

/// One pass over the waiting reports; returns how many were dispatched.
pub async fn run_once(workflow: &Workflow, repo: &dyn crate::store::Repository) -> usize {
    let ids = match repo.auto_dispatch_candidates(BATCH).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::error!(error = %e, "cannot list reports waiting for dispatch");
            return 0;
        }
    };
    let mut dispatched = 0;
    for id in ids {
        match file_and_dispatch(workflow, id).await {
            Ok(true) => dispatched += 1,
            Ok(false) => {}
            // Another instance got there first.
            Err(WorkflowError::Refused(Refusal::StaleVersion)) => {}
            Err(e) => {
                tracing::warn!(case = %id, error = %e, "automatic dispatch failed; the case waits for an operator")
            }
        }
    }
    dispatched
}

async fn file_and_dispatch(workflow: &Workflow, id: uuid::Uuid) -> Result<bool, WorkflowError> {
    let Some(case) = workflow.case(id).await? else {
        return Ok(false);
    };
    if case.state != CaseState::Submitted || !case.policy.auto_dispatch {
        return Ok(false);
    }
    let Some(lead_unit) = case.routed_lead.clone() else {
        return Ok(false);
    };
    workflow
        .act_as_system(&case, Action::File, crate::state::now())
        .await?;
    let Some(filed) = workflow.case(id).await? else {
        return Ok(false);
    };
    let dispatch = Action::Dispatch {
        lead_unit,
        co_units: filed.routed_co_units.clone(),
    };
    workflow
        .act_as_system(&filed, dispatch, crate::state::now())
        .await?;
    Ok(true)
}

/// Runs a pass when `wake` is notified (a report was just stored here) and every
/// `interval` (reports stored by other instances, or before a restart).
pub fn spawn(
    workflow: Arc<Workflow>,
    repo: Arc<dyn crate::store::Repository>,
    wake: Arc<Notify>,
    interval: Duration,
) {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = wake.notified() => {}
            }
            let span = tracing::debug_span!("job", name = "auto_dispatch");
            let count = run_once(&workflow, repo.as_ref()).instrument(span).await;
            if count > 0 {
                tracing::debug!(count, "reports dispatched automatically");
            }
        }
    });
}
