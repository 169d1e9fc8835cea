//! Many-row writes of timeline events, outbox rows and sweeper clock updates
//! (and the names of the JSON functions one read uses), the one place where the two backends need different SQL to be fast:
//! PostgreSQL takes whole arrays (`UNNEST`, `= ANY`) in one constant statement;
//! SQLite takes short multi-row statements, because sqlx names every parameter
//! it binds through `sqlite3_bind_parameter_name`, a linear scan, which makes
//! binding quadratic in the parameter count of one statement.

use chrono::{DateTime, Utc};

use super::StoreError;
use super::workflow::NewEvent;

pub mod sqlite {
    use super::*;
    use crate::store::sql::{placeholders, value_rows};
    use sqlx::{AssertSqlSafe, Sqlite, Transaction};

    /// Parameters per statement: past a few hundred the quadratic binding
    /// costs more than another statement.
    pub const PARAMS: usize = 240;

    /// JSON aggregate and object constructors (see `workflow_case_sql`).
    pub const JSON_AGG: &str = "json_group_array";
    pub const JSON_OBJECT: &str = "json_object";

    pub async fn insert_events(
        tx: &mut Transaction<'static, Sqlite>,
        events: &[(&str, &NewEvent)],
    ) -> Result<(), StoreError> {
        for chunk in events.chunks(PARAMS / 8) {
            let sql = format!(
                "INSERT INTO case_events (id, case_id, kind, actor_id, actor_role, public, data, created_at) VALUES {}",
                value_rows(chunk.len(), 8, 1, "")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (case_id, e) in chunk {
                query = query
                    .bind(e.id.to_string())
                    .bind(*case_id)
                    .bind(&e.kind)
                    .bind(e.actor_id.map(|id| id.to_string()))
                    .bind(&e.actor_role)
                    .bind(e.public)
                    .bind(e.data.to_string())
                    .bind(e.at);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    pub async fn insert_outbox(
        tx: &mut Transaction<'static, Sqlite>,
        events: &[(&str, &NewEvent)],
    ) -> Result<(), StoreError> {
        for chunk in events.chunks(PARAMS / 4) {
            let sql = format!(
                "INSERT INTO outbox (case_id, event_id, kind, created_at) VALUES {}",
                value_rows(chunk.len(), 4, 1, "")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for (case_id, e) in chunk {
                query = query
                    .bind(*case_id)
                    .bind(e.id.to_string())
                    .bind(&e.kind)
                    .bind(e.at);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }

    /// `UPDATE case_clocks SET {set} WHERE id IN (ids)`, `$1` bound to `now`.
    pub async fn update_clocks(
        tx: &mut Transaction<'static, Sqlite>,
        set: &str,
        ids: &[&str],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        for chunk in ids.chunks(PARAMS) {
            let sql = format!(
                "UPDATE case_clocks SET {set} WHERE id IN ({})",
                placeholders(2, chunk.len())
            );
            let mut query = sqlx::query(AssertSqlSafe(sql)).bind(now);
            for id in chunk {
                query = query.bind(*id);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }
}

pub mod postgres {
    use super::*;
    use sqlx::{AssertSqlSafe, Postgres, Transaction};

    /// Parameters per multi-row statement. PostgreSQL allows 65,535, and the
    /// large writes here go through arrays anyway; this only bounds the small
    /// multi-row statements both backends share.
    pub const PARAMS: usize = 30_000;

    /// JSON aggregate and object constructors (see `workflow_case_sql`).
    pub const JSON_AGG: &str = "json_agg";
    pub const JSON_OBJECT: &str = "json_build_object";

    pub async fn insert_events(
        tx: &mut Transaction<'static, Postgres>,
        events: &[(&str, &NewEvent)],
    ) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::with_capacity(events.len());
        let mut cases = Vec::with_capacity(events.len());
        let mut kinds = Vec::with_capacity(events.len());
        let mut actors = Vec::with_capacity(events.len());
        let mut roles = Vec::with_capacity(events.len());
        let mut public = Vec::with_capacity(events.len());
        let mut data = Vec::with_capacity(events.len());
        let mut times = Vec::with_capacity(events.len());
        for (case_id, e) in events {
            ids.push(e.id.to_string());
            cases.push(case_id.to_string());
            kinds.push(e.kind.clone());
            actors.push(e.actor_id.map(|id| id.to_string()));
            roles.push(e.actor_role.clone());
            public.push(e.public);
            data.push(e.data.to_string());
            times.push(e.at);
        }
        sqlx::query(
            "INSERT INTO case_events (id, case_id, kind, actor_id, actor_role, public, data, created_at) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[], \
               $7::text[], $8::timestamptz[])",
        )
        .bind(ids)
        .bind(cases)
        .bind(kinds)
        .bind(actors)
        .bind(roles)
        .bind(public)
        .bind(data)
        .bind(times)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub async fn insert_outbox(
        tx: &mut Transaction<'static, Postgres>,
        events: &[(&str, &NewEvent)],
    ) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let cases: Vec<&str> = events.iter().map(|(case_id, _)| *case_id).collect();
        let ids: Vec<String> = events.iter().map(|(_, e)| e.id.to_string()).collect();
        let kinds: Vec<&str> = events.iter().map(|(_, e)| e.kind.as_str()).collect();
        let times: Vec<DateTime<Utc>> = events.iter().map(|(_, e)| e.at).collect();
        sqlx::query(
            "INSERT INTO outbox (case_id, event_id, kind, created_at) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::timestamptz[])",
        )
        .bind(cases)
        .bind(ids)
        .bind(kinds)
        .bind(times)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// `UPDATE case_clocks SET {set} WHERE id = ANY(ids)`, `$1` bound to `now`.
    pub async fn update_clocks(
        tx: &mut Transaction<'static, Postgres>,
        set: &str,
        ids: &[&str],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql = format!("UPDATE case_clocks SET {set} WHERE id = ANY($2)");
        sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(ids)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}
