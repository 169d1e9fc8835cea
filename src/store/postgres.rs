//! Production backend: one pool; PostgreSQL handles concurrent writers itself.

use std::time::Duration;

use sqlx::postgres::PgPoolOptions;
use sqlx::{Pool, Postgres};

use super::StoreError;

pub struct PostgresRepository {
    pool: Pool<Postgres>,
}

impl PostgresRepository {
    const MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

    pub async fn connect(url: &str) -> Result<PostgresRepository, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        Ok(PostgresRepository { pool })
    }

    fn writer(&self) -> &Pool<Postgres> {
        &self.pool
    }

    fn reader(&self) -> &Pool<Postgres> {
        &self.pool
    }
}

super::sql::impl_repository!(PostgresRepository, sqlx::Postgres, "postgres");
