//! Production backend: one pool; PostgreSQL handles concurrent writers itself.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, Executor, Pool, Postgres};
use uuid::Uuid;

use super::batch::{
    BatchOutcome, PHOTO_LOOKUPS, PendingReport, PhotoLookups, REPORT_INTAKE, ReportIntake,
    WriterRuns,
};
use super::bulk::postgres as bulk;
use super::tracking::TrackingBlocks;
use super::workflow::{CaseChange, CaseSession, SaveOutcome};
use super::{CaseRecord, CreateReportError, StoreError};

pub struct PostgresRepository {
    pool: Pool<Postgres>,
    tracking: TrackingBlocks,
    intake: ReportIntake,
    photo_lookups: PhotoLookups,
}

/// A pooled connection idle for longer than this is pinged before it is used.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// How write transactions begin (SQLite needs `BEGIN IMMEDIATE`; see there).
const BEGIN_WRITE: &str = "BEGIN";

impl PostgresRepository {
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

    pub async fn connect(url: &str, connections: u32) -> Result<PostgresRepository, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(connections)
            .min_connections(1)
            // sqlx pings every connection it hands out: one more round trip
            // before every statement, about 10 % of action throughput. sqlx
            // already pings each connection when it comes back to the pool, so
            // only one that sat idle, long enough for the server to have gone
            // away meanwhile (a restart, a failover), is tested again.
            .test_before_acquire(false)
            .before_acquire(|connection, meta| {
                Box::pin(async move {
                    if meta.idle_for > IDLE_BEFORE_PING {
                        connection.ping().await?;
                    }
                    Ok(true)
                })
            })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(|connection, _| {
                Box::pin(async move {
                    // Every statement here is prepared once per connection and run
                    // many times with parameters whose values never change the best
                    // plan (keys, bounds, arrays of rows). By default PostgreSQL
                    // replans such statements on every run when it cannot cost the
                    // generic plan (the action save's UNNEST arrays); planning the
                    // CTE chain each time cost 15-20 % of action throughput.
                    connection
                        .execute("SET plan_cache_mode = force_generic_plan")
                        .await?;
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        let intake = ReportIntake::start(
            REPORT_INTAKE,
            pool.clone(),
            PostgresRepository::write_reports_at_once,
            WriterRuns::OnRuntime,
        );
        let photo_lookups = PhotoLookups::start(
            PHOTO_LOOKUPS,
            pool.clone(),
            PostgresRepository::look_up_photos,
            WriterRuns::OnRuntime,
        );
        Ok(PostgresRepository {
            pool,
            tracking: TrackingBlocks::default(),
            intake,
            photo_lookups,
        })
    }

    /// Nearly every batch needs no answer of its own for any report, and is
    /// stored by one statement (`bulk::insert_reports`), which refuses itself
    /// otherwise. A refused or failed batch goes the general way, which says what
    /// was wrong with which report.
    async fn write_reports_at_once(
        pool: Pool<Postgres>,
        batch: Arc<Vec<PendingReport>>,
    ) -> Result<BatchOutcome<CaseRecord, CreateReportError>, StoreError> {
        let records: Vec<CaseRecord> = batch
            .iter()
            .map(|p| p.report.to_record(p.tracking_no.clone()))
            .collect();
        match bulk::insert_reports(&pool, &batch, &records).await {
            Ok(()) => Ok(BatchOutcome::Done(records.into_iter().map(Ok).collect())),
            Err(e) => {
                // A refusal (its own check, or a key another request took) is
                // expected now and then; anything else deserves a look.
                let refused = match &e {
                    StoreError::Conflict(_) => true,
                    StoreError::Database(sqlx::Error::Database(db)) => db.is_check_violation(),
                    _ => false,
                };
                if refused {
                    tracing::debug!(error = %e, items = batch.len(), "report batch goes the general way");
                } else {
                    tracing::warn!(error = %e, items = batch.len(), "report batch failed as one statement; trying the general way");
                }
                PostgresRepository::write_reports(pool, batch).await
            }
        }
    }

    /// Committed without waiting for the WAL flush: the counter row is a hot
    /// lock, and a synchronous commit would hold it for an fsync. Durability is
    /// kept: the first case numbered from the block commits synchronously, which
    /// flushes the WAL past this commit record too.
    async fn reserve_tracking_block(&self, day: String, size: i64) -> Result<i64, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET LOCAL synchronous_commit TO OFF")
            .execute(&mut *tx)
            .await?;
        let last = sqlx::query_scalar(
            "INSERT INTO tracking_counters (day, last) VALUES ($1, $2) \
             ON CONFLICT (day) DO UPDATE SET last = tracking_counters.last + $2 RETURNING last",
        )
        .bind(day)
        .bind(size)
        .fetch_one(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(last)
    }

    /// Sweepers on PostgreSQL claim rows with `FOR UPDATE SKIP LOCKED`, so every
    /// instance may sweep at once.
    async fn job_lease(
        &self,
        _name: &str,
        _holder: &str,
        _now: chrono::DateTime<chrono::Utc>,
        _ttl: chrono::Duration,
    ) -> Result<bool, StoreError> {
        Ok(true)
    }

    /// Keeps the connection the case was read on for its save (see `CaseSession`).
    async fn open_case_session(&self, id: Uuid) -> Result<Option<CaseSession>, StoreError> {
        let mut connection = self.pool.acquire().await?;
        Ok(workflow_sql::read_case(&mut *connection, id)
            .await?
            .map(|case| CaseSession::new(case, Some(connection))))
    }

    /// With a connection per request, a change is one statement: no batching
    /// needed, and no BEGIN and COMMIT round trips.
    async fn save_without_photos(
        &self,
        change: &CaseChange,
        session: CaseSession,
    ) -> Result<SaveOutcome, StoreError> {
        let saved = match session.into_connection() {
            Some(mut connection) => bulk::save_change(&mut *connection, change).await?,
            None => bulk::save_change(&self.pool, change).await?,
        };
        Ok(if saved {
            SaveOutcome::Saved {
                version: change.expected_version + 1,
            }
        } else {
            SaveOutcome::Stale
        })
    }

    fn writer(&self) -> &Pool<Postgres> {
        &self.pool
    }

    fn reader(&self) -> &Pool<Postgres> {
        &self.pool
    }
}

super::sql::impl_repository!(PostgresRepository, sqlx::Postgres, "postgres");
super::reference::impl_reference_data!(PostgresRepository, sqlx::Postgres);
// Readers go on; a second load waits for the first to commit.
super::deadlines::impl_deadline_data!(
    PostgresRepository,
    sqlx::Postgres,
    "LOCK TABLE calendar_years IN SHARE ROW EXCLUSIVE MODE"
);
super::workflow::impl_workflow!(
    PostgresRepository,
    sqlx::Postgres,
    "FOR UPDATE OF k SKIP LOCKED",
    "strpos",
    Some("SELECT id FROM case_clocks WHERE case_id = $1 FOR UPDATE")
);
