//! Many-row writes of timeline events, outbox rows and sweeper clock updates
//! (and the names of the JSON functions one read uses), the one place where the
//! two backends need different SQL to be fast; on PostgreSQL also the
//! one-statement writes of a report batch and of a case change.
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

    /// `id {ID_IN}` matches every id bound as [`id_list`], however many, in one
    /// parameter; SQLite looks each up by primary key.
    pub const ID_IN: &str = "IN (SELECT value FROM json_each($1))";

    pub fn id_list(ids: &[String]) -> String {
        serde_json::Value::from(ids).to_string()
    }

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

    /// `id {ID_IN}` matches every id bound as [`id_list`], however many.
    pub const ID_IN: &str = "= ANY($1)";

    pub fn id_list(ids: &[String]) -> &[String] {
        ids
    }

    use crate::domain::clock::Clock;
    use crate::store::batch::PendingReport;
    use crate::store::sql::{
        CASE_COLUMNS, CREATED_STATUS, FORGET_GPS, REPORTABLE_CATEGORY, UNATTACHED_OWNER, value_rows,
    };
    use crate::store::workflow::{
        CASE_ROW_ID_PARAM, CASE_ROW_PARAMS, CLOCK_COLUMNS, CLOCK_UPSERT, CaseChange, bind_case_row,
        case_update_sql, clock_inputs_json, limit_unit_name, pauses_json,
    };
    use crate::store::{CaseRecord, IdempotencyClaim, RenderReport};

    /// Parameters per multi-row statement. PostgreSQL allows 65,535, and the
    /// large writes here go through arrays anyway; this only bounds the small
    /// multi-row statements both backends share.
    pub const PARAMS: usize = 30_000;

    /// JSON aggregate and object constructors (see `workflow_case_sql`).
    pub const JSON_AGG: &str = "json_agg";
    pub const JSON_OBJECT: &str = "json_build_object";

    type UnnestQuery<'q> = sqlx::query::Query<'q, Postgres, sqlx::postgres::PgArguments>;

    /// `$first::type, …`, one typed parameter per entry of `types`.
    fn typed_params(first: usize, types: &[&str]) -> String {
        (first..)
            .zip(types)
            .map(|(n, ty)| format!("${n}::{ty}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Rows of one table as one array per column, inserted with `UNNEST`.
    trait ColumnArrays {
        /// `table (columns)`, the columns in binding order.
        const INTO: &'static str;
        /// The array types, in binding order.
        const TYPES: &'static [&'static str];

        fn is_empty(&self) -> bool;

        fn bind(self, query: UnnestQuery<'_>) -> UnnestQuery<'_>;

        /// `INSERT INTO …` from the arrays bound from `$first` on.
        fn insert_sql(first: usize) -> String {
            format!(
                "INSERT INTO {} SELECT * FROM UNNEST({})",
                Self::INTO,
                typed_params(first, Self::TYPES)
            )
        }
    }

    /// Timeline events as one array per column, for `UNNEST`.
    #[derive(Default)]
    struct EventColumns {
        ids: Vec<String>,
        cases: Vec<String>,
        kinds: Vec<String>,
        actors: Vec<Option<String>>,
        roles: Vec<String>,
        public: Vec<bool>,
        data: Vec<String>,
        times: Vec<DateTime<Utc>>,
    }

    impl EventColumns {
        fn of<'e>(events: impl Iterator<Item = (&'e str, &'e NewEvent)>) -> Self {
            let mut columns = Self::default();
            for (case_id, e) in events {
                columns.ids.push(e.id.to_string());
                columns.cases.push(case_id.to_owned());
                columns.kinds.push(e.kind.clone());
                columns.actors.push(e.actor_id.map(|id| id.to_string()));
                columns.roles.push(e.actor_role.clone());
                columns.public.push(e.public);
                columns.data.push(e.data.to_string());
                columns.times.push(e.at);
            }
            columns
        }
    }

    /// Outbox rows for `events` as one array per column, for `UNNEST`.
    #[derive(Default)]
    struct OutboxColumns {
        cases: Vec<String>,
        events: Vec<String>,
        kinds: Vec<String>,
        times: Vec<DateTime<Utc>>,
    }

    impl OutboxColumns {
        fn of<'e>(events: impl Iterator<Item = (&'e str, &'e NewEvent)>) -> Self {
            let mut columns = Self::default();
            for (case_id, e) in events {
                columns.cases.push(case_id.to_owned());
                columns.events.push(e.id.to_string());
                columns.kinds.push(e.kind.clone());
                columns.times.push(e.at);
            }
            columns
        }
    }

    impl ColumnArrays for EventColumns {
        const INTO: &'static str =
            "case_events (id, case_id, kind, actor_id, actor_role, public, data, created_at)";
        const TYPES: &'static [&'static str] = &[
            "text[]",
            "text[]",
            "text[]",
            "text[]",
            "text[]",
            "bool[]",
            "text[]",
            "timestamptz[]",
        ];

        fn is_empty(&self) -> bool {
            self.ids.is_empty()
        }

        fn bind(self, query: UnnestQuery<'_>) -> UnnestQuery<'_> {
            query
                .bind(self.ids)
                .bind(self.cases)
                .bind(self.kinds)
                .bind(self.actors)
                .bind(self.roles)
                .bind(self.public)
                .bind(self.data)
                .bind(self.times)
        }
    }

    impl ColumnArrays for OutboxColumns {
        const INTO: &'static str = "outbox (case_id, event_id, kind, created_at)";
        const TYPES: &'static [&'static str] = &["text[]", "text[]", "text[]", "timestamptz[]"];

        fn is_empty(&self) -> bool {
            self.cases.is_empty()
        }

        fn bind(self, query: UnnestQuery<'_>) -> UnnestQuery<'_> {
            query
                .bind(self.cases)
                .bind(self.events)
                .bind(self.kinds)
                .bind(self.times)
        }
    }

    /// Inserts `rows` in one statement; nothing for no rows.
    async fn insert_rows<C: ColumnArrays>(
        tx: &mut Transaction<'static, Postgres>,
        rows: C,
    ) -> Result<(), StoreError> {
        if rows.is_empty() {
            return Ok(());
        }
        rows.bind(sqlx::query(AssertSqlSafe(C::insert_sql(1))))
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    pub async fn insert_events(
        tx: &mut Transaction<'static, Postgres>,
        events: &[(&str, &NewEvent)],
    ) -> Result<(), StoreError> {
        insert_rows(tx, EventColumns::of(events.iter().copied())).await
    }

    pub async fn insert_outbox(
        tx: &mut Transaction<'static, Postgres>,
        events: &[(&str, &NewEvent)],
    ) -> Result<(), StoreError> {
        insert_rows(tx, OutboxColumns::of(events.iter().copied())).await
    }

    /// Stores a batch of new reports in one statement — cases, photo
    /// attachments, idempotency records, first events and outbox rows — or
    /// nothing. It refuses itself (`refuse_unless` raises) when a category is not
    /// open for reports or a photo is no longer the reporter's to attach, and a
    /// reused idempotency key fails its primary key; the caller then takes the
    /// general path, which gives each report its own answer. One round trip and
    /// no BEGIN or COMMIT, where the general path needs eight.
    pub async fn insert_reports(
        pool: &sqlx::Pool<Postgres>,
        batch: &[PendingReport],
        records: &[CaseRecord],
    ) -> Result<(), StoreError> {
        // Parameters in binding order: case columns, photo attachments,
        // idempotency records, then events and outbox rows.
        const CASES: [&str; 22] = [
            "text[]",
            "text[]",
            "text[]",
            "text[]",
            "text[]",
            "float8[]",
            "float8[]",
            "float8[]",
            "text[]",
            "text[]",
            "bool[]",
            "text[]",
            "float8[]",
            "int8[]",
            "timestamptz[]",
            "text[]",
            "text[]",
            "int8[]",
            "text[]",
            "text[]",
            "text[]",
            "text[]",
        ];
        const PHOTOS: [&str; 4] = ["text[]", "text[]", "text[]", "int8[]"];
        const KEYS: [&str; 6] = [
            "text[]",
            "text[]",
            "text[]",
            "int8[]",
            "text[]",
            "timestamptz[]",
        ];
        static SQL: LazyLock<String> = LazyLock::new(|| {
            let photos = 1 + CASES.len();
            let keys = photos + PHOTOS.len();
            let events = keys + KEYS.len();
            let outbox = events + EventColumns::TYPES.len();
            format!(
                "WITH stored AS (INSERT INTO cases ({CASE_COLUMNS}) \
                   SELECT r.id, r.tracking_no, r.state, r.source, r.category_code, r.lat, r.lon, r.accuracy_m, \
                     r.address, r.description, r.confidential, r.reporter_id, r.photo_distance_m, r.version, \
                     r.created_at, r.created_at, r.zone_path, r.rule_id, r.rule_version, r.lead_unit, r.co_units, \
                     r.deadline_profile, r.suggested_zone \
                   FROM UNNEST({}) \
                     AS r(id, tracking_no, state, source, category_code, lat, lon, accuracy_m, address, description, \
                       confidential, reporter_id, photo_distance_m, version, created_at, zone_path, rule_id, \
                       rule_version, lead_unit, co_units, deadline_profile, suggested_zone) \
                   WHERE EXISTS (SELECT 1 FROM categories WHERE code = r.category_code AND {REPORTABLE_CATEGORY}) \
                   RETURNING 1), \
                 attached AS (UPDATE photos SET case_id = a.new_case, position = a.pos, {FORGET_GPS} \
                   FROM UNNEST({}) AS a(photo, new_case, reporter, pos) \
                   WHERE id = a.photo AND {UNATTACHED_OWNER} = a.reporter \
                   RETURNING 1), \
                 remembered AS (INSERT INTO idempotency_keys (user_id, key, request_hash, status, body, created_at) \
                   SELECT * FROM UNNEST({})), \
                 events AS ({}), \
                 queued AS ({}) \
                 SELECT refuse_unless((SELECT count(*) FROM stored) = cardinality($1::text[]) \
                   AND (SELECT count(*) FROM attached) = cardinality(${photos}::text[]), \
                   'a report of this batch needs an answer of its own')",
                typed_params(1, &CASES),
                typed_params(photos, &PHOTOS),
                typed_params(keys, &KEYS),
                EventColumns::insert_sql(events),
                OutboxColumns::insert_sql(outbox),
            )
        });
        let text = |f: fn(&CaseRecord) -> String| records.iter().map(f).collect::<Vec<_>>();
        let optional_text =
            |f: fn(&CaseRecord) -> Option<String>| records.iter().map(f).collect::<Vec<_>>();
        let number = |f: fn(&CaseRecord) -> Option<f64>| records.iter().map(f).collect::<Vec<_>>();
        let json = |value: &[String]| serde_json::to_string(value).unwrap_or_else(|_| "[]".into());
        let query = sqlx::query(AssertSqlSafe(SQL.as_str()))
            .bind(text(|c| c.id.to_string()))
            .bind(text(|c| c.tracking_no.clone()))
            .bind(text(|c| c.state.as_str().to_owned()))
            .bind(text(|c| c.source.clone()))
            .bind(text(|c| c.category_code.clone()))
            .bind(number(|c| Some(c.location.lat)))
            .bind(number(|c| Some(c.location.lon)))
            .bind(number(|c| c.accuracy_m))
            .bind(optional_text(|c| c.address.clone()))
            .bind(text(|c| c.description.clone()))
            .bind(records.iter().map(|c| c.confidential).collect::<Vec<_>>())
            .bind(text(|c| c.reporter_id.to_string()))
            .bind(number(|c| c.photo_distance_m))
            .bind(records.iter().map(|c| c.version).collect::<Vec<_>>())
            .bind(records.iter().map(|c| c.created_at).collect::<Vec<_>>())
            .bind(
                records
                    .iter()
                    .map(|c| json(&c.routing.zone_path))
                    .collect::<Vec<_>>(),
            )
            .bind(optional_text(|c| {
                c.routing.rule.map(|(id, _)| id.to_string())
            }))
            .bind(
                records
                    .iter()
                    .map(|c| c.routing.rule.map(|(_, version)| version))
                    .collect::<Vec<_>>(),
            )
            .bind(optional_text(|c| c.routing.lead_unit.clone()))
            .bind(
                records
                    .iter()
                    .map(|c| json(&c.routing.co_units))
                    .collect::<Vec<_>>(),
            )
            .bind(optional_text(|c| c.routing.deadline_profile.clone()))
            .bind(optional_text(|c| c.routing.suggested_zone.clone()));

        let mut photos: (Vec<String>, Vec<String>, Vec<String>, Vec<i64>) = Default::default();
        for case in records {
            for (position, photo) in (0_i64..).zip(&case.photo_ids) {
                photos.0.push(photo.to_string());
                photos.1.push(case.id.to_string());
                photos.2.push(case.reporter_id.to_string());
                photos.3.push(position);
            }
        }
        let query = query
            .bind(photos.0)
            .bind(photos.1)
            .bind(photos.2)
            .bind(photos.3);

        let claims: Vec<(&IdempotencyClaim, &CaseRecord, RenderReport)> = batch
            .iter()
            .zip(records)
            .filter_map(|(p, case)| p.idempotency.as_ref().map(|c| (c, case, p.render)))
            .collect();
        let query = query
            .bind(
                claims
                    .iter()
                    .map(|(c, _, _)| c.user_id.to_string())
                    .collect::<Vec<_>>(),
            )
            .bind(
                claims
                    .iter()
                    .map(|(c, _, _)| c.key.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                claims
                    .iter()
                    .map(|(c, _, _)| c.request_hash.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(claims.iter().map(|_| CREATED_STATUS).collect::<Vec<_>>())
            .bind(
                claims
                    .iter()
                    .map(|(_, case, render)| render(case))
                    .collect::<Vec<_>>(),
            )
            .bind(
                claims
                    .iter()
                    .map(|(_, case, _)| case.created_at)
                    .collect::<Vec<_>>(),
            );

        let events: Vec<(String, NewEvent)> = batch
            .iter()
            .zip(records)
            .flat_map(|(p, case)| {
                p.report
                    .first_events(case)
                    .map(|event| (case.id.to_string(), event))
            })
            .collect();
        let events = || events.iter().map(|(case_id, e)| (case_id.as_str(), e));
        let query = EventColumns::of(events()).bind(query);
        let query = OutboxColumns::of(events().filter(|(_, e)| e.public)).bind(query);
        query.execute(pool).await?;
        Ok(())
    }

    /// A change's assignments as arrays: unit, lead, assigned, signed, finished.
    const ASSIGNMENT_ARRAYS: [&str; 5] = [
        "text[]",
        "bool[]",
        "timestamptz[]",
        "timestamptz[]",
        "timestamptz[]",
    ];
    /// A change's clocks as arrays, in the order of `AS k(…)` in `ChangeShape::sql`.
    const CLOCK_ARRAYS: [&str; 17] = [
        "text[]",
        "text[]",
        "text[]",
        "int8[]",
        "text[]",
        "timestamptz[]",
        "timestamptz[]",
        "timestamptz[]",
        "text[]",
        "timestamptz[]",
        "text[]",
        "timestamptz[]",
        "text[]",
        "text[]",
        "timestamptz[]",
        "timestamptz[]",
        "timestamptz[]",
    ];
    /// The event's own values: id, kind, actor, role, public, data, time.
    const EVENT_PARAMS: usize = 7;

    /// Which parts a change writes besides its case row and its event. Every
    /// table a statement names costs the executor work on each run (opening
    /// and locking the table and its indexes), written to or not, so each
    /// shape gets a statement of its own.
    #[derive(Clone, Copy)]
    struct ChangeShape {
        assignments: bool,
        clocks: bool,
        outbox: bool,
    }

    impl ChangeShape {
        fn of(change: &CaseChange) -> Self {
            ChangeShape {
                assignments: change.assignments.is_some(),
                clocks: !change.clocks.is_empty(),
                outbox: change.outbox,
            }
        }

        fn index(self) -> usize {
            usize::from(self.assignments)
                | usize::from(self.clocks) << 1
                | usize::from(self.outbox) << 2
        }

        fn all() -> impl Iterator<Item = ChangeShape> {
            (0..8).map(|bits| ChangeShape {
                assignments: bits & 1 != 0,
                clocks: bits & 2 != 0,
                outbox: bits & 4 != 0,
            })
        }

        /// The statement: the case row only if its version is still the expected
        /// one, and every other part only with it (each reads the `moved` row, so
        /// nothing is written for a stale version). Parameters: the case row,
        /// then the assignment arrays, the clock arrays and the event, each
        /// only when present.
        fn sql(self) -> String {
            let mut next = CASE_ROW_PARAMS + 1;
            let mut take = |count: usize| {
                let first = next;
                next += count;
                first
            };
            // A change that moves clocks waits for a sweep holding them and
            // reads the marks it committed (see `case_update_sql`).
            let mut parts = Vec::new();
            if self.clocks {
                parts.push(format!(
                    "swept AS (SELECT case_id, warned_at, overdue_at FROM case_clocks \
                       WHERE case_id = ${CASE_ROW_ID_PARAM} FOR UPDATE)"
                ));
            }
            parts.push(format!(
                "moved AS ({})",
                case_update_sql(
                    &value_rows(1, CASE_ROW_PARAMS, 1, ""),
                    self.clocks.then_some("swept")
                )
            ));
            if self.assignments {
                let first = take(ASSIGNMENT_ARRAYS.len());
                let arrays = typed_params(first, &ASSIGNMENT_ARRAYS);
                // Assignments are replaced by deleting the units no longer named
                // and upserting the rest, so no row is touched twice.
                parts.push(format!(
                    "dropped AS (DELETE FROM case_assignments a USING moved m \
                       WHERE a.case_id = m.id AND a.unit_code <> ALL(${first})), \
                     placed AS (INSERT INTO case_assignments (case_id, unit_code, lead, assigned_at, signed_at, finished_at) \
                       SELECT m.id, a.* FROM moved m, UNNEST({arrays}) AS a \
                       ON CONFLICT (case_id, unit_code) DO UPDATE SET lead = excluded.lead, \
                         assigned_at = excluded.assigned_at, signed_at = excluded.signed_at, \
                         finished_at = excluded.finished_at)"
                ));
            }
            if self.clocks {
                let arrays = typed_params(take(CLOCK_ARRAYS.len()), &CLOCK_ARRAYS);
                parts.push(format!(
                    "clocks AS (INSERT INTO case_clocks ({CLOCK_COLUMNS}, next_check_at) \
                       SELECT k.id, m.id, k.phase, k.unit_code, k.limit_amount, k.limit_unit, k.started_at, k.due_at, \
                         k.warning_at, k.status, k.paused_at, k.pauses, k.stopped_at, k.calendar_version, k.inputs, \
                         k.warned_at, k.overdue_at, k.next_check_at \
                       FROM moved m, UNNEST({arrays}) \
                         AS k(id, phase, unit_code, limit_amount, limit_unit, started_at, due_at, warning_at, status, \
                           paused_at, pauses, stopped_at, calendar_version, inputs, warned_at, overdue_at, next_check_at) \
                       {CLOCK_UPSERT})"
                ));
            }
            let event = take(EVENT_PARAMS);
            let [id, kind, actor, role, public, data, at] = std::array::from_fn(|k| event + k);
            parts.push(format!(
                "event AS (INSERT INTO case_events (id, case_id, kind, actor_id, actor_role, public, data, created_at) \
                   SELECT ${id}, m.id, ${kind}, ${actor}, ${role}, ${public}, ${data}, ${at} FROM moved m)"
            ));
            if self.outbox {
                parts.push(format!(
                    "queued AS (INSERT INTO outbox (case_id, event_id, kind, created_at) \
                       SELECT m.id, ${id}, ${kind}, ${at} FROM moved m)"
                ));
            }
            format!("WITH {} SELECT COUNT(*) FROM moved", parts.join(", "))
        }
    }

    #[cfg(test)]
    #[test]
    fn every_change_shape_uses_each_parameter_it_binds() {
        for shape in ChangeShape::all() {
            let sql = shape.sql();
            let used: std::collections::BTreeSet<usize> = sql
                .split('$')
                .skip(1)
                .filter_map(|rest| {
                    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                    digits.parse().ok()
                })
                .collect();
            let bound = CASE_ROW_PARAMS
                + if shape.assignments {
                    ASSIGNMENT_ARRAYS.len()
                } else {
                    0
                }
                + if shape.clocks { CLOCK_ARRAYS.len() } else { 0 }
                + EVENT_PARAMS;
            assert_eq!(used, (1..=bound).collect(), "shape {}", shape.index());
            assert_eq!(sql.contains("case_assignments"), shape.assignments);
            assert_eq!(sql.contains("case_clocks"), shape.clocks);
            assert_eq!(sql.contains("outbox"), shape.outbox);
        }
    }

    /// Saves a change without after-photos in one statement (see
    /// `ChangeShape::sql`). `true` when saved, `false` for a stale version.
    pub async fn save_change(
        executor: impl sqlx::Executor<'_, Database = Postgres>,
        change: &CaseChange,
    ) -> Result<bool, StoreError> {
        static SQL: LazyLock<Vec<String>> =
            LazyLock::new(|| ChangeShape::all().map(ChangeShape::sql).collect());
        let shape = ChangeShape::of(change);
        let query = sqlx::query_scalar::<Postgres, i64>(AssertSqlSafe(SQL[shape.index()].as_str()));
        let mut query = bind_case_row!(query, change);

        if let Some(assignments) = &change.assignments {
            query = query
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
        }

        if shape.clocks {
            let clocks = &change.clocks;
            let column =
                |f: fn(&Clock) -> Option<DateTime<Utc>>| clocks.iter().map(f).collect::<Vec<_>>();
            query = query
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
        }

        let event = &change.event;
        let moved = query
            .bind(event.id.to_string())
            .bind(&event.kind)
            .bind(event.actor_id.map(|id| id.to_string()))
            .bind(&event.actor_role)
            .bind(event.public)
            .bind(event.data.to_string())
            .bind(event.at)
            .fetch_one(executor)
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
