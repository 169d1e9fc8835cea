//! The embedded default. SQLite allows one writer at a time, so writes go through a
//! pool of exactly one connection (queued fairly in the pool instead of spinning on
//! SQLITE_BUSY) while reads use several connections in WAL mode.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite};

use super::StoreError;
use super::batch::{CHANGE_BATCH, CaseChanges, REPORT_BATCH, ReportIntake};
use super::bulk::sqlite as bulk;
use super::tracking::TrackingBlocks;

pub struct SqliteRepository {
    writer: Pool<Sqlite>,
    reader: Pool<Sqlite>,
    tracking: TrackingBlocks,
    intake: ReportIntake,
    changes: CaseChanges,
}

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
            .pragma("temp_store", "memory");
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
            .connect_with(options.read_only(true))
            .await?;
        let report_writer = writer.clone();
        let intake = ReportIntake::start(
            "report_intake",
            REPORT_BATCH,
            move |batch| SqliteRepository::write_reports(report_writer.clone(), batch),
            true,
        );
        let change_writer = writer.clone();
        let changes = CaseChanges::start(
            "case_changes",
            CHANGE_BATCH,
            move |batch| SqliteRepository::write_changes(change_writer.clone(), batch),
            true,
        );
        Ok(SqliteRepository {
            writer,
            reader,
            tracking: TrackingBlocks::default(),
            intake,
            changes,
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

    fn writer(&self) -> &Pool<Sqlite> {
        &self.writer
    }

    fn reader(&self) -> &Pool<Sqlite> {
        &self.reader
    }
}

super::sql::impl_repository!(SqliteRepository, sqlx::Sqlite, "sqlite");
super::reference::impl_reference_data!(SqliteRepository, sqlx::Sqlite);
super::deadlines::impl_deadline_data!(SqliteRepository, sqlx::Sqlite);
// The single writer connection already serialises sweeps within a process.
super::workflow::impl_workflow!(SqliteRepository, sqlx::Sqlite, "");
