//! Report intake batches writes. Under load, reports queue for the database (with
//! SQLite there is one writer; with PostgreSQL every statement is a round trip
//! and the commit an fsync), so one task takes whatever is queued — up to
//! `MAX_BATCH` reports — and writes them with one statement per table in one
//! transaction. A single report is simply a batch of one.
//!
//! When something in a batch needs a per-report answer that set-based statements
//! cannot give (a photo taken by a concurrent request, an idempotency key that
//! raced), the batch is rolled back and its reports are retried one by one.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::{CaseRecord, CreateReportError, IdempotencyClaim, NewReport, RenderReport, StoreError};

/// Enough to amortise a commit; small enough to keep statements modest.
const MAX_BATCH: usize = 64;

/// One report to store, with its tracking number already allocated.
#[derive(Clone)]
pub(super) struct PendingReport {
    pub report: NewReport,
    pub tracking_no: String,
    pub idempotency: Option<IdempotencyClaim>,
    pub render: RenderReport,
}

pub(super) enum BatchOutcome {
    /// Committed (or refused): one result per report, in order.
    Done(Vec<Result<CaseRecord, CreateReportError>>),
    /// Rolled back; retry the reports one at a time. Never returned for a batch of one.
    Split,
}

struct Job {
    pending: PendingReport,
    reply: oneshot::Sender<Result<CaseRecord, CreateReportError>>,
}

pub(super) struct Intake {
    queue: mpsc::Sender<Job>,
}

impl Intake {
    /// Starts the writer task; `write` stores one batch. With `own_thread` the
    /// writer gets a thread of its own (see below); otherwise it runs on the
    /// caller's runtime, which network-backed pools need (their sockets belong
    /// to the runtime that opened them).
    pub(super) fn start<W, Fut>(write: W, own_thread: bool) -> Intake
    where
        W: Fn(Arc<Vec<PendingReport>>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<BatchOutcome, StoreError>> + Send + 'static,
    {
        let (queue, mut jobs) = mpsc::channel::<Job>(4 * MAX_BATCH);
        // On its own thread the writer, which holds SQLite's one write connection
        // from BEGIN to COMMIT, sends each statement as soon as the previous one
        // answers instead of queueing behind request work on a shared runtime.
        let writer = async move {
            while let Some(first) = jobs.recv().await {
                let mut batch = vec![first];
                while batch.len() < MAX_BATCH {
                    match jobs.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                let span =
                    tracing::debug_span!("job", name = "report_intake", reports = batch.len());
                write_batch(&write, batch).instrument(span).await;
            }
        };
        if !own_thread {
            tokio::spawn(writer);
            return Intake { queue };
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        match runtime {
            Ok(runtime) => {
                let spawned = std::thread::Builder::new()
                    .name("report-intake".into())
                    .spawn(move || runtime.block_on(writer));
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "cannot start the report intake thread");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot start the report intake runtime"),
        }
        Intake { queue }
    }

    pub(super) async fn submit(
        &self,
        pending: PendingReport,
    ) -> Result<CaseRecord, CreateReportError> {
        let (reply, answer) = oneshot::channel();
        let stopped =
            || CreateReportError::Store(StoreError::Unavailable("report intake stopped".into()));
        self.queue
            .send(Job { pending, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn write_batch<W, Fut>(write: &W, batch: Vec<Job>)
where
    W: Fn(Arc<Vec<PendingReport>>) -> Fut,
    Fut: Future<Output = Result<BatchOutcome, StoreError>>,
{
    let (pending, replies): (Vec<_>, Vec<_>) = batch
        .into_iter()
        .map(|job| (job.pending, job.reply))
        .unzip();
    let pending = Arc::new(pending);
    match write(pending.clone()).await {
        Ok(BatchOutcome::Done(results)) => {
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
        Ok(BatchOutcome::Split) => {
            for (report, reply) in Arc::unwrap_or_clone(pending).into_iter().zip(replies) {
                let result = match write(Arc::new(vec![report])).await {
                    Ok(BatchOutcome::Done(mut results)) => results.pop().unwrap_or_else(|| {
                        Err(CreateReportError::Store(StoreError::Corrupt(
                            "empty batch result".into(),
                        )))
                    }),
                    Ok(BatchOutcome::Split) => Err(CreateReportError::Store(StoreError::Corrupt(
                        "a single report cannot split".into(),
                    ))),
                    Err(e) => Err(CreateReportError::Store(e)),
                };
                let _ = reply.send(result);
            }
        }
        Err(e) => {
            tracing::error!(error = %e, "writing a batch of reports failed");
            let message = e.to_string();
            for reply in replies {
                let _ = reply.send(Err(CreateReportError::Store(StoreError::Unavailable(
                    message.clone(),
                ))));
            }
        }
    }
}
