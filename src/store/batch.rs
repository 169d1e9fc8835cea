//! Batching. Under load, writes queue for the database (with SQLite there is
//! one writer; with PostgreSQL every statement is a round trip and the commit an
//! fsync), so one task per kind of write takes whatever is queued — up to its
//! batch size — and stores it with one statement per table in one transaction.
//! A single item is simply a batch of one. Report intake and case actions each
//! have a batcher; so does the one read every report makes first (which of its
//! photos are still the reporter's), answered for the whole batch by one
//! statement.
//!
//! When something in a batch needs a per-item answer that set-based statements
//! cannot give (a photo taken by a concurrent request, an idempotency key that
//! raced, a reference that does not exist), or a statement of the batch fails, the
//! batch is rolled back and its items are retried one by one, so one bad item
//! never fails the others.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tracing::Instrument;

use super::workflow::{CaseChange, SaveOutcome};
use super::{
    CaseRecord, CreateReportError, IdempotencyClaim, NewReport, PhotoRecord, RenderReport,
    StoreError,
};
use uuid::Uuid;

/// What a batcher is called (its task, thread and log lines) and how many
/// items it takes at once.
#[derive(Clone, Copy)]
pub(super) struct BatchKind {
    pub name: &'static str,
    pub max_batch: usize,
}

/// Where a batcher's writer runs.
#[derive(Clone, Copy)]
pub(super) enum WriterRuns {
    /// On a thread of its own: the writer, which holds SQLite's one write
    /// connection from BEGIN to COMMIT, sends each statement as soon as the
    /// previous one answers instead of queueing behind request work on a shared
    /// runtime.
    OwnThread,
    /// On the caller's runtime, which network-backed pools need (their sockets
    /// belong to the runtime that opened them).
    OnRuntime,
}

/// Enough to amortise a commit; small enough to keep statements modest.
pub(super) const REPORT_INTAKE: BatchKind = BatchKind {
    name: "report_intake",
    max_batch: 64,
};

/// One report to store, with its tracking number already allocated.
#[derive(Clone)]
pub(super) struct PendingReport {
    pub report: NewReport,
    pub tracking_no: String,
    pub idempotency: Option<IdempotencyClaim>,
    pub render: RenderReport,
}

pub(super) type ReportIntake = Batcher<PendingReport, CaseRecord, CreateReportError>;

/// Case actions arrive one per request and each changes a handful of rows.
pub(super) const CASE_CHANGES: BatchKind = BatchKind {
    name: "case_changes",
    max_batch: 32,
};

pub(super) type CaseChanges = Batcher<CaseChange, SaveOutcome, StoreError>;

/// Every report first asks which of its photos are still the reporter's to
/// attach. On PostgreSQL that read, one more statement on one more backend per
/// report, cost about 40 % of intake throughput; queued like writes, one
/// statement answers all the lookups waiting.
pub(super) const PHOTO_LOOKUPS: BatchKind = BatchKind {
    name: "photo_lookups",
    max_batch: 64,
};

#[derive(Clone)]
pub(super) struct PhotoLookup {
    pub owner: Uuid,
    pub ids: Vec<Uuid>,
}

impl PhotoLookup {
    /// Of `photos` (the rows for every id of a batch), this lookup's answer.
    pub fn answer(&self, photos: &[PhotoRecord]) -> Vec<PhotoRecord> {
        photos
            .iter()
            .filter(|p| self.ids.contains(&p.id) && p.owner_id == self.owner && p.case_id.is_none())
            .cloned()
            .collect()
    }
}

pub(super) type PhotoLookups = Batcher<PhotoLookup, Vec<PhotoRecord>, StoreError>;

pub(super) enum BatchOutcome<R, E> {
    /// Committed (or refused): one result per item, in order.
    Done(Vec<Result<R, E>>),
    /// Rolled back; retry the items one at a time. Never returned for a batch of one.
    Split,
}

struct Job<T, R, E> {
    item: T,
    reply: oneshot::Sender<Result<R, E>>,
}

pub(super) struct Batcher<T, R, E> {
    name: &'static str,
    queue: mpsc::Sender<Job<T, R, E>>,
}

impl<T, R, E> Batcher<T, R, E>
where
    T: Clone + Send + Sync + 'static,
    R: Send + 'static,
    E: From<StoreError> + Send + 'static,
{
    /// Starts the writer of `kind`; `write(context, batch)` stores one batch.
    pub(super) fn start<C, Fut>(
        kind: BatchKind,
        context: C,
        write: fn(C, Arc<Vec<T>>) -> Fut,
        runs: WriterRuns,
    ) -> Self
    where
        C: Clone + Send + Sync + 'static,
        Fut: Future<Output = Result<BatchOutcome<R, E>, StoreError>> + Send + 'static,
    {
        let BatchKind { name, max_batch } = kind;
        let write = move |batch| write(context.clone(), batch);
        let (queue, mut jobs) = mpsc::channel::<Job<T, R, E>>(4 * max_batch);
        let writer = async move {
            while let Some(first) = jobs.recv().await {
                let mut batch = vec![first];
                while batch.len() < max_batch {
                    match jobs.try_recv() {
                        Ok(job) => batch.push(job),
                        Err(_) => break,
                    }
                }
                let span = tracing::debug_span!("job", name, items = batch.len());
                write_batch(&write, batch).instrument(span).await;
            }
        };
        if let WriterRuns::OnRuntime = runs {
            tokio::spawn(writer);
            return Self { name, queue };
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        match runtime {
            Ok(runtime) => {
                let spawned = std::thread::Builder::new()
                    .name(name.replace('_', "-"))
                    .spawn(move || runtime.block_on(writer));
                if let Err(e) = spawned {
                    tracing::error!(error = %e, name, "cannot start a batch writer thread");
                }
            }
            Err(e) => tracing::error!(error = %e, name, "cannot start a batch writer runtime"),
        }
        Self { name, queue }
    }

    pub(super) async fn submit(&self, item: T) -> Result<R, E> {
        let (reply, answer) = oneshot::channel();
        let stopped = || E::from(StoreError::Unavailable(format!("{} stopped", self.name)));
        self.queue
            .send(Job { item, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

async fn write_batch<T, R, E, W, Fut>(write: &W, batch: Vec<Job<T, R, E>>)
where
    T: Clone,
    E: From<StoreError>,
    W: Fn(Arc<Vec<T>>) -> Fut,
    Fut: Future<Output = Result<BatchOutcome<R, E>, StoreError>>,
{
    let (items, replies): (Vec<_>, Vec<_>) =
        batch.into_iter().map(|job| (job.item, job.reply)).unzip();
    let items = Arc::new(items);
    match write(items.clone()).await {
        Ok(BatchOutcome::Done(results)) => {
            for (reply, result) in replies.into_iter().zip(results) {
                let _ = reply.send(result);
            }
        }
        Ok(BatchOutcome::Split) => write_one_by_one(write, items, replies).await,
        // One item the database refuses must not fail the rest: each item gets
        // its own attempt (and its own error).
        Err(e) if items.len() > 1 => {
            tracing::warn!(error = %e, items = items.len(), "a batch failed; writing its items one by one");
            write_one_by_one(write, items, replies).await;
        }
        // A batch of one: its error is the item's answer, as it is for an item
        // written on its own after a split.
        Err(e) => {
            if let Some(reply) = replies.into_iter().next() {
                let _ = reply.send(Err(e.into()));
            }
        }
    }
}

async fn write_one_by_one<T, R, E, W, Fut>(
    write: &W,
    items: Arc<Vec<T>>,
    replies: Vec<oneshot::Sender<Result<R, E>>>,
) where
    T: Clone,
    E: From<StoreError>,
    W: Fn(Arc<Vec<T>>) -> Fut,
    Fut: Future<Output = Result<BatchOutcome<R, E>, StoreError>>,
{
    for (item, reply) in Arc::unwrap_or_clone(items).into_iter().zip(replies) {
        let result = match write(Arc::new(vec![item])).await {
            Ok(BatchOutcome::Done(mut results)) => results
                .pop()
                .unwrap_or_else(|| Err(StoreError::Corrupt("empty batch result".into()).into())),
            Ok(BatchOutcome::Split) => {
                Err(StoreError::Corrupt("a batch of one cannot split".into()).into())
            }
            Err(e) => Err(e.into()),
        };
        let _ = reply.send(result);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Stores numbers; refuses any batch that holds a zero, as a database refuses
    /// a statement with one bad row.
    async fn store(
        _: (),
        batch: Arc<Vec<u32>>,
    ) -> Result<BatchOutcome<u32, StoreError>, StoreError> {
        if batch.contains(&0) {
            return Err(StoreError::Unavailable("zero refused".into()));
        }
        Ok(BatchOutcome::Done(
            batch.iter().map(|n| Ok(n * 10)).collect(),
        ))
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_failing_item_fails_alone() {
        let batcher: Batcher<u32, u32, StoreError> = Batcher::start(
            BatchKind {
                name: "test",
                max_batch: 8,
            },
            (),
            store,
            WriterRuns::OnRuntime,
        );
        // On one thread the writer runs only once all three are queued: one batch.
        let (a, zero, b) = tokio::join!(batcher.submit(1), batcher.submit(0), batcher.submit(2));
        assert_eq!(a.ok(), Some(10));
        assert!(zero.is_err());
        assert_eq!(b.ok(), Some(20));
    }
}

#[cfg(test)]
mod photo_lookup_tests {
    use super::*;
    use crate::store::StoredImage;

    fn photo(owner: Uuid, case_id: Option<Uuid>) -> PhotoRecord {
        let image = || StoredImage {
            key: "photos/test.jpg".into(),
            width: 1,
            height: 1,
            etag: "e".into(),
        };
        PhotoRecord {
            id: Uuid::now_v7(),
            owner_id: owner,
            case_id,
            source_type: "image/jpeg".into(),
            width: 1,
            height: 1,
            taken_at: None,
            gps: None,
            sha256: "0".repeat(64),
            phash: "0".repeat(16),
            byte_size: 1,
            display: image(),
            thumbnail: image(),
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_lookup_answers_only_its_own_unattached_photos_of_a_shared_read() {
        let (me, other) = (Uuid::now_v7(), Uuid::now_v7());
        let mine = photo(me, None);
        let attached = photo(me, Some(Uuid::now_v7()));
        let theirs = photo(other, None);
        let not_asked = photo(me, None);
        // One read for two lookups returns the rows of both.
        let rows = [mine.clone(), attached.clone(), theirs.clone(), not_asked];
        let lookup = PhotoLookup {
            owner: me,
            ids: vec![mine.id, attached.id, theirs.id],
        };
        assert_eq!(lookup.answer(&rows), vec![mine]);
        let theirs_lookup = PhotoLookup {
            owner: other,
            ids: vec![theirs.id, attached.id],
        };
        assert_eq!(theirs_lookup.answer(&rows), vec![theirs]);
    }
}
