//! The embedded default. SQLite allows one writer at a time, so writes go through a
//! pool of exactly one connection (queued fairly in the pool instead of spinning on
//! SQLITE_BUSY) while reads use several connections in WAL mode.

use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Pool, Sqlite};

use super::StoreError;

pub struct SqliteRepository {
    writer: Pool<Sqlite>,
    reader: Pool<Sqlite>,
}

impl SqliteRepository {
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

    pub async fn connect(url: &str) -> Result<SqliteRepository, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        if let Some(parent) = options.get_filename().parent() {
            if !parent.as_os_str().is_empty() {
                std::fs::create_dir_all(parent)
                    .map_err(|e| StoreError::Database(sqlx::Error::Io(e)))?;
            }
        }
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone())
            .await?;
        let readers = std::thread::available_parallelism().map_or(4, |n| n.get().max(4)) as u32;
        let reader = SqlitePoolOptions::new()
            .max_connections(readers)
            .connect_with(options.read_only(true))
            .await?;
        Ok(SqliteRepository { writer, reader })
    }

    fn writer(&self) -> &Pool<Sqlite> {
        &self.writer
    }

    fn reader(&self) -> &Pool<Sqlite> {
        &self.reader
    }
}

super::sql::impl_repository!(SqliteRepository, sqlx::Sqlite, "sqlite");
