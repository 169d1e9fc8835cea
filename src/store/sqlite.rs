//! The embedded default. SQLite allows one writer at a time, so writes go through a
//! pool of exactly one connection (queued fairly in the pool instead of spinning on
//! SQLITE_BUSY) while reads use several connections in WAL mode.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite};
use uuid::Uuid;

use super::StoreError;
use super::batch::BatchOutcome;
use super::batch::{
    CASE_CHANGES, CaseChanges, PHOTO_LOOKUPS, PhotoLookups, REPORT_INTAKE, ReportIntake, WriterRuns,
};
use super::bulk::sqlite as bulk;
use super::tracking::TrackingBlocks;
use super::workflow::{CaseChange, CaseSession, SaveOutcome};

pub struct SqliteRepository {
    writer: Pool<Sqlite>,
    reader: Pool<Sqlite>,
    tracking: TrackingBlocks,
    intake: ReportIntake,
    changes: CaseChanges,
    photo_lookups: PhotoLookups,
    checkpointer: tokio::task::JoinHandle<()>,
}

/// How often WAL pages are copied back into the database file. SQLite's default
/// is to do it inside whichever commit takes the log past 1,000 pages; that copy
/// and its fsync cost a sweep's commit ~45 ms, paid on the one write connection
/// every request waits for. A connection of its own does it in the background
/// instead, without blocking the writer or the readers.
const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(1);

/// How write transactions begin. A deferred `BEGIN` takes its snapshot at the
/// first read and must upgrade to a write lock later; when another process wrote
/// in between (several instances on one database file), SQLite refuses that
/// upgrade at once with "database is locked", without waiting out the busy
/// timeout. `IMMEDIATE` takes the write lock up front, waiting its turn.
const BEGIN_WRITE: &str = "BEGIN IMMEDIATE";

impl SqliteRepository {
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

    pub async fn connect(url: &str) -> Result<SqliteRepository, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5))
            // The default 2 MB page cache makes every query past it a pread system
            // call; memory-mapped reads and a larger cache keep hot pages at hand.
            .pragma("cache_size", "-32768")
            .pragma("mmap_size", "268435456")
            .pragma("temp_store", "memory")
            .pragma("wal_autocheckpoint", "0");
        if let Some(parent) = options.get_filename().parent()
            && !parent.as_os_str().is_empty()
        {
            std::fs::create_dir_all(parent)
                .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        // Each SQLite connection is a thread in sqlx; more readers than cores only
        // adds context switches.
        let readers = std::thread::available_parallelism().map_or(2, |n| n.get().max(2)) as u32;
        let reader = SqlitePoolOptions::new()
            .max_connections(readers)
            .connect_with(options.clone().read_only(true))
            .await?;
        let checkpointer = spawn_checkpointer(
            SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options.clone())
                .await?,
        );
        let intake = ReportIntake::start(
            REPORT_INTAKE,
            writer.clone(),
            SqliteRepository::write_reports,
            WriterRuns::OwnThread,
        );
        let changes = CaseChanges::start(
            CASE_CHANGES,
            writer.clone(),
            SqliteRepository::write_changes,
            WriterRuns::OwnThread,
        );
        let photo_lookups = PhotoLookups::start(
            PHOTO_LOOKUPS,
            reader.clone(),
            SqliteRepository::look_up_photos,
            WriterRuns::OnRuntime,
        );
        Ok(SqliteRepository {
            writer,
            reader,
            photo_lookups,
            tracking: TrackingBlocks::default(),
            intake,
            changes,
            checkpointer,
        })
    }

    async fn reserve_tracking_block(&self, day: String, size: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO tracking_counters (day, last) VALUES ($1, $2) \
             ON CONFLICT (day) DO UPDATE SET last = tracking_counters.last + $2 RETURNING last",
        )
        .bind(day)
        .bind(size)
        .fetch_one(&self.writer)
        .await?)
    }

    /// SQLite cannot skip locked rows, so one instance at a time holds the lease
    /// (several processes may share one database file).
    async fn job_lease(
        &self,
        name: &str,
        holder: &str,
        now: chrono::DateTime<chrono::Utc>,
        ttl: chrono::Duration,
    ) -> Result<bool, StoreError> {
        let taken = sqlx::query(
            "INSERT INTO job_leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE job_leases.holder = excluded.holder OR job_leases.expires_at < $4",
        )
        .bind(name)
        .bind(holder)
        .bind(now + ttl)
        .bind(now)
        .execute(&self.writer)
        .await?;
        Ok(taken.rows_affected() == 1)
    }

    /// Reads go to the reader pool, while saves queue for the one writer: there
    /// is no connection worth keeping between the two.
    async fn open_case_session(&self, id: Uuid) -> Result<Option<CaseSession>, StoreError> {
        Ok(workflow_sql::read_case(&self.reader, id)
            .await?
            .map(|case| CaseSession::new(case, None)))
    }

    /// With one write connection, changes queue for the batch writer (see `batch`).
    async fn save_without_photos(
        &self,
        change: &CaseChange,
        _: CaseSession,
    ) -> Result<SaveOutcome, StoreError> {
        self.changes.submit(change.clone()).await
    }

    /// Stores a batch of changes in one transaction. Two changes to one
    /// case go in successive rounds, so the later is checked against
    /// the version the earlier left, as if they had come one by one.
    /// A statement that fails (a unit or master case that does not exist)
    /// fails the batch, which the batcher then retries change by change.
    async fn write_changes(
        writer: Pool<Sqlite>,
        batch: std::sync::Arc<Vec<CaseChange>>,
    ) -> Result<BatchOutcome<SaveOutcome, StoreError>, StoreError> {
        let mut tx = writer.begin_with(BEGIN_WRITE).await?;
        let mut outcomes = vec![SaveOutcome::Stale; batch.len()];
        let mut pending: Vec<usize> = (0..batch.len()).collect();
        while !pending.is_empty() {
            let mut seen = std::collections::HashSet::new();
            let (round, later): (Vec<usize>, Vec<usize>) = pending
                .iter()
                .partition(|&&i| seen.insert(batch[i].case_id));
            let changes: Vec<&CaseChange> = round.iter().map(|&i| &batch[i]).collect();
            let saved = workflow_sql::save_round(&mut tx, &changes).await?;
            for (&i, saved) in round.iter().zip(saved) {
                if saved {
                    outcomes[i] = SaveOutcome::Saved {
                        version: batch[i].expected_version + 1,
                    };
                }
            }
            pending = later;
        }
        tx.commit().await?;
        Ok(BatchOutcome::Done(outcomes.into_iter().map(Ok).collect()))
    }

    fn writer(&self) -> &Pool<Sqlite> {
        &self.writer
    }

    fn reader(&self) -> &Pool<Sqlite> {
        &self.reader
    }
}

impl Drop for SqliteRepository {
    fn drop(&mut self) {
        self.checkpointer.abort();
    }
}

fn spawn_checkpointer(connection: Pool<Sqlite>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(CHECKPOINT_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            // PASSIVE copies what no reader still needs and never waits for locks.
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&connection)
                .await
            {
                tracing::warn!(error = %e, "WAL checkpoint failed; will retry");
            }
        }
    })
}

super::sql::impl_repository!(SqliteRepository, sqlx::Sqlite, "sqlite");
super::reference::impl_reference_data!(SqliteRepository, sqlx::Sqlite);
// Write transactions begin IMMEDIATE, which already serialises loads.
super::deadlines::impl_deadline_data!(SqliteRepository, sqlx::Sqlite, "");
// The single writer connection already serialises sweeps within a process.
super::workflow::impl_workflow!(SqliteRepository, sqlx::Sqlite, "", "instr", None);
