//! Many-row writes of timeline events, outbox rows and sweeper clock updates
//! (and the names of the JSON functions one read uses), the one place where the two backends need different SQL to be fast:
//! PostgreSQL takes whole arrays (`UNNEST`, `= ANY`) in one constant statement;
//! SQLite takes the rows as one JSON array parameter expanded by `json_each`.
//! Binding many parameters is no way out on SQLite: sqlx names every parameter
//! it binds through `sqlite3_bind_parameter_name`, a linear scan, which makes
//! binding quadratic in the parameter count of one statement; `PARAMS` bounds
//! the statements elsewhere that still bind row by row.

use chrono::{DateTime, Utc};

use super::StoreError;
use super::workflow::NewEvent;

pub mod sqlite {
    use super::*;
    use sqlx::{AssertSqlSafe, Sqlite, Transaction};

    /// Parameters per statement: past a few hundred the quadratic binding
    /// costs more than another statement.
    pub const PARAMS: usize = 240;

    /// JSON aggregate and object constructors (see `workflow_case_sql`).
    pub const JSON_AGG: &str = "json_group_array";
    pub const JSON_OBJECT: &str = "json_object";

    /// Rows travel as one JSON array bound as a single parameter and expanded by
    /// `json_each`, in array order: one statement and one bind however many rows,
    /// where multi-row VALUES lists needed a statement (a round trip to the
    /// connection thread) per few dozen rows. Times are written as sqlx writes
    /// them, so they compare equal to times bound directly.
    fn json_rows(rows: impl Iterator<Item = serde_json::Value>) -> String {
        serde_json::Value::Array(rows.collect()).to_string()
    }

    fn time_text(at: DateTime<Utc>) -> String {
        at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false)
    }

    pub async fn insert_events(
        tx: &mut Transaction<'static, Sqlite>,
        events: &[(&str, &NewEvent)],
    ) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let rows = json_rows(events.iter().map(|(case_id, e)| {
            serde_json::json!([
                e.id.to_string(),
                case_id,
                e.kind,
                e.actor_id.map(|id| id.to_string()),
                e.actor_role,
                i64::from(e.public),
                e.data.to_string(),
                time_text(e.at),
            ])
        }));
        sqlx::query(
            "INSERT INTO case_events (id, case_id, kind, actor_id, actor_role, public, data, created_at) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, \
               value ->> 6, value ->> 7 \
             FROM json_each($1) ORDER BY key",
        )
        .bind(rows)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    pub async fn insert_outbox(
        tx: &mut Transaction<'static, Sqlite>,
        events: &[(&str, &NewEvent)],
    ) -> Result<(), StoreError> {
        if events.is_empty() {
            return Ok(());
        }
        let rows = json_rows(events.iter().map(|(case_id, e)| {
            serde_json::json!([case_id, e.id.to_string(), e.kind, time_text(e.at)])
        }));
        // Outbox ids are assigned in row order, which is delivery order.
        sqlx::query(
            "INSERT INTO outbox (case_id, event_id, kind, created_at) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3 FROM json_each($1) ORDER BY key",
        )
        .bind(rows)
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// `UPDATE case_clocks SET {set} WHERE id IN (ids)`, `$1` bound to `now`.
    pub async fn update_clocks(
        tx: &mut Transaction<'static, Sqlite>,
        set: &str,
        ids: &[&str],
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let sql =
            format!("UPDATE case_clocks SET {set} WHERE id IN (SELECT value FROM json_each($2))");
        sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(json_rows(ids.iter().map(|id| serde_json::json!(id))))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}

pub mod postgres {
    use super::*;
    use std::sync::LazyLock;

    use sqlx::{AssertSqlSafe, Postgres, Transaction};

    use crate::domain::clock::Clock;
    use crate::store::sql::value_rows;
    use crate::store::workflow::{
        CASE_ROW_PARAMS, CLOCK_COLUMNS, CLOCK_UPSERT, CaseChange, bind_case_row, case_update_sql,
        clock_inputs_json, limit_unit_name, pauses_json,
    };

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

    /// Saves a change without after-photos in one statement: the case row only if
    /// its version is still the expected one, and everything else only with it
    /// (each part reads the `moved` row, so nothing is written for a stale
    /// version). Assignments are replaced by deleting the units no longer named
    /// and upserting the rest, so no row is touched twice. `true` when saved.
    pub async fn save_change(
        pool: &sqlx::Pool<Postgres>,
        change: &CaseChange,
    ) -> Result<bool, StoreError> {
        static SQL: LazyLock<String> = LazyLock::new(|| {
            format!(
                "WITH moved AS ({}), \
                 dropped AS (DELETE FROM case_assignments a USING moved m \
                   WHERE $17 AND a.case_id = m.id AND a.unit_code <> ALL($18)), \
                 placed AS (INSERT INTO case_assignments (case_id, unit_code, lead, assigned_at, signed_at, finished_at) \
                   SELECT m.id, a.* FROM moved m, \
                     UNNEST($18::text[], $19::bool[], $20::timestamptz[], $21::timestamptz[], $22::timestamptz[]) AS a \
                   WHERE $17 \
                   ON CONFLICT (case_id, unit_code) DO UPDATE SET lead = excluded.lead, \
                     assigned_at = excluded.assigned_at, signed_at = excluded.signed_at, finished_at = excluded.finished_at), \
                 clocks AS (INSERT INTO case_clocks ({CLOCK_COLUMNS}, next_check_at) \
                   SELECT k.id, m.id, k.phase, k.unit_code, k.limit_amount, k.limit_unit, k.started_at, k.due_at, \
                     k.warning_at, k.status, k.paused_at, k.pauses, k.stopped_at, k.calendar_version, k.inputs, \
                     k.warned_at, k.overdue_at, k.next_check_at \
                   FROM moved m, UNNEST($23::text[], $24::text[], $25::text[], $26::int8[], $27::text[], \
                     $28::timestamptz[], $29::timestamptz[], $30::timestamptz[], $31::text[], $32::timestamptz[], \
                     $33::text[], $34::timestamptz[], $35::text[], $36::text[], $37::timestamptz[], \
                     $38::timestamptz[], $39::timestamptz[]) \
                     AS k(id, phase, unit_code, limit_amount, limit_unit, started_at, due_at, warning_at, status, \
                       paused_at, pauses, stopped_at, calendar_version, inputs, warned_at, overdue_at, next_check_at) \
                   {CLOCK_UPSERT}), \
                 event AS (INSERT INTO case_events (id, case_id, kind, actor_id, actor_role, public, data, created_at) \
                   SELECT $40, m.id, $41, $42, $43, $44, $45, $46 FROM moved m), \
                 queued AS (INSERT INTO outbox (case_id, event_id, kind, created_at) \
                   SELECT m.id, $40, $41, $46 FROM moved m WHERE $44) \
                 SELECT COUNT(*) FROM moved",
                case_update_sql(&value_rows(1, CASE_ROW_PARAMS, 1, ""))
            )
        });
        let query = sqlx::query_scalar::<Postgres, i64>(AssertSqlSafe(SQL.as_str()));
        let query = bind_case_row!(query, change);

        let assignments = change.assignments.as_deref().unwrap_or_default();
        let query = query
            .bind(change.assignments.is_some())
            .bind(
                assignments
                    .iter()
                    .map(|a| a.unit.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(assignments.iter().map(|a| a.lead).collect::<Vec<_>>())
            .bind(
                assignments
                    .iter()
                    .map(|a| a.assigned_at)
                    .collect::<Vec<_>>(),
            )
            .bind(assignments.iter().map(|a| a.signed_at).collect::<Vec<_>>())
            .bind(
                assignments
                    .iter()
                    .map(|a| a.finished_at)
                    .collect::<Vec<_>>(),
            );

        let clocks = &change.clocks;
        let column =
            |f: fn(&Clock) -> Option<DateTime<Utc>>| clocks.iter().map(f).collect::<Vec<_>>();
        let query = query
            .bind(clocks.iter().map(|k| k.id.to_string()).collect::<Vec<_>>())
            .bind(clocks.iter().map(|k| k.phase.as_str()).collect::<Vec<_>>())
            .bind(clocks.iter().map(|k| k.unit.clone()).collect::<Vec<_>>())
            .bind(
                clocks
                    .iter()
                    .map(|k| i64::from(k.limit.amount))
                    .collect::<Vec<_>>(),
            )
            .bind(
                clocks
                    .iter()
                    .map(|k| limit_unit_name(k.limit.unit))
                    .collect::<Vec<_>>(),
            )
            .bind(column(|k| Some(k.started_at)))
            .bind(column(|k| Some(k.due_at)))
            .bind(column(|k| Some(k.warning_at)))
            .bind(clocks.iter().map(|k| k.status.as_str()).collect::<Vec<_>>())
            .bind(column(|k| k.paused_at))
            .bind(clocks.iter().map(pauses_json).collect::<Vec<_>>())
            .bind(column(|k| k.stopped_at))
            .bind(
                clocks
                    .iter()
                    .map(|k| k.calendar_version().to_owned())
                    .collect::<Vec<_>>(),
            )
            .bind(clocks.iter().map(clock_inputs_json).collect::<Vec<_>>())
            .bind(column(|k| k.warned_at))
            .bind(column(|k| k.overdue_at))
            .bind(column(Clock::next_check_at));

        let event = &change.event;
        let moved = query
            .bind(event.id.to_string())
            .bind(&event.kind)
            .bind(event.actor_id.map(|id| id.to_string()))
            .bind(&event.actor_role)
            .bind(event.public)
            .bind(event.data.to_string())
            .bind(event.at)
            .fetch_one(pool)
            .await?;
        Ok(moved == 1)
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
