//! The SQL both backends share. Written once as a macro expanded for each concrete
//! database type: the statements are identical (`$n` placeholders, `ON CONFLICT`,
//! `RETURNING` work on both), only the pools and migrations differ. A backend
//! provides `fn writer(&self) -> &Pool<DB>` and `fn reader(&self) -> &Pool<DB>`.

/// `$1, $2, …` starting at `first`, for `IN (…)` lists.
pub(super) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count)
        .map(|n| format!("${n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The tuples of a multi-row `VALUES`: `rows` tuples of `per_row` fresh
/// parameters numbered from `first`, each followed by `shared` (such as `", $1"`
/// for a parameter every row repeats).
pub(super) fn value_rows(rows: usize, per_row: usize, first: usize, shared: &str) -> String {
    (0..rows)
        .map(|k| format!("({}{shared})", placeholders(first + per_row * k, per_row)))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(super) const USER_COLUMNS: &str =
    "id, role, unit_id, username, password_hash, phone, display_name, disabled, created_at";
pub(super) const PHOTO_COLUMNS: &str = "id, owner_id, case_id, source_type, width, height, taken_at, gps_lat, gps_lon, \
     sha256, phash, byte_size, display_key, display_width, display_height, display_etag, \
     thumb_key, thumb_width, thumb_height, thumb_etag, created_at";
/// The owner of a photo that is not attached to a case yet, NULL otherwise:
/// `{UNATTACHED_OWNER} = $owner` is "still the owner's to attach". Written as one
/// expression rather than `case_id IS NULL AND owner_id = …` because SQLite keeps
/// no statistics: given nine or more ids, its planner takes `case_id IS NULL` for a
/// selective lookup in the `photos_case` index and walks every unattached photo
/// instead of looking the ids up (report intake's writer spent most of its time
/// there). An expression leaves the primary key as the only way in.
pub(super) const UNATTACHED_OWNER: &str = "CASE WHEN case_id IS NULL THEN owner_id END";
/// A reporter's photo keeps its own GPS fix only until the report is filed: the
/// distance to the report point is taken then, and exact reporter positions are
/// kept only as the report point (DESIGN, privacy).
pub(super) const FORGET_GPS: &str = "gps_lat = NULL, gps_lon = NULL";
/// The status an idempotency record of a stored report replays: 201 Created.
pub(super) const CREATED_STATUS: i64 = 201;
/// A category a report may be filed under: an active leaf (small class).
pub(super) const REPORTABLE_CATEGORY: &str = "active AND parent_code IS NOT NULL";
pub(super) const CASE_COLUMNS: &str = "id, tracking_no, state, source, category_code, lat, lon, accuracy_m, address, \
     description, confidential, reporter_id, photo_distance_m, version, created_at, updated_at, \
     zone_path, rule_id, rule_version, lead_unit, co_units, deadline_profile, suggested_zone";

macro_rules! impl_repository {
    ($repo:ident, $db:ty, $backend:literal) => {
        // A module of its own, so these imports never clash with the backend's.
        mod shared_sql {
        use super::*;
        use std::collections::HashMap;

        use async_trait::async_trait;
        use chrono::{DateTime, Utc};
        use sqlx::AssertSqlSafe;
        use uuid::Uuid;

        use $crate::domain::phone::Phone;
        use $crate::domain::role::Role;
        use $crate::store::sql::{placeholders, value_rows, CASE_COLUMNS, CREATED_STATUS, FORGET_GPS, PHOTO_COLUMNS, REPORTABLE_CATEGORY, UNATTACHED_OWNER, USER_COLUMNS};
        use $crate::store::records::{CaseEventRow, CasePhotoRow, CaseRow, PhotoRow, RefreshRow, RuleRow, UnitRow, UserRow};
        use $crate::store::*;
        use $crate::store::batch::{BatchOutcome, PendingReport, PhotoLookup};

        impl $repo {
            /// Answers every queued photo lookup with one read (see `PhotoLookups`).
            pub(super) async fn look_up_photos(
                pool: sqlx::Pool<$db>,
                batch: std::sync::Arc<Vec<PhotoLookup>>,
            ) -> Result<BatchOutcome<Vec<PhotoRecord>, StoreError>, StoreError> {
                static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
                    format!("SELECT {PHOTO_COLUMNS} FROM photos WHERE id {}", super::bulk::ID_IN)
                });
                let ids: Vec<String> = batch.iter().flat_map(|l| l.ids.iter().map(Uuid::to_string)).collect();
                let photos = sqlx::query_as::<$db, PhotoRow>(AssertSqlSafe(SQL.as_str()))
                    .bind(super::bulk::id_list(&ids))
                    .fetch_all(&pool)
                    .await?
                    .into_iter()
                    .map(PhotoRecord::try_from)
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(BatchOutcome::Done(batch.iter().map(|lookup| Ok(lookup.answer(&photos))).collect()))
            }

            async fn user_where(&self, clause: &str, value: &str) -> Result<Option<User>, StoreError> {
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {clause} = $1");
                sqlx::query_as::<$db, UserRow>(AssertSqlSafe(sql))
                    .bind(value)
                    .fetch_optional(self.reader())
                    .await?
                    .map(User::try_from)
                    .transpose()
            }

            /// Photos of the given cases, grouped by case, in attachment order.
            async fn photos_of_cases(&self, case_ids: &[&str]) -> Result<HashMap<String, Vec<CasePhotoRow>>, StoreError> {
                let mut grouped: HashMap<String, Vec<CasePhotoRow>> = HashMap::new();
                if case_ids.is_empty() {
                    return Ok(grouped);
                }
                let sql = format!(
                    "SELECT case_id, id, stage FROM photos WHERE case_id IN ({}) ORDER BY case_id, position",
                    placeholders(1, case_ids.len())
                );
                let mut query = sqlx::query_as::<$db, CasePhotoRow>(AssertSqlSafe(sql));
                for id in case_ids {
                    query = query.bind(*id);
                }
                for row in query.fetch_all(self.reader()).await? {
                    grouped.entry(row.case_id.clone()).or_default().push(row);
                }
                Ok(grouped)
            }

            /// Stores a batch of reports (see `batch`): categories checked, then one
            /// statement each for idempotency records, cases, photo attachment and
            /// first events, in one transaction.
            pub(super) async fn write_reports(writer: sqlx::Pool<$db>, batch: std::sync::Arc<Vec<PendingReport>>)
                -> Result<BatchOutcome<CaseRecord, CreateReportError>, StoreError> {
                let single = batch.len() == 1;
                let mut results: Vec<Option<Result<CaseRecord, CreateReportError>>> = batch.iter().map(|_| None).collect();
                let mut tx = writer.begin_with(BEGIN_WRITE).await?;

                let mut categories: Vec<&str> = batch.iter().map(|p| p.report.category.as_str()).collect();
                categories.sort_unstable();
                categories.dedup();
                let sql = format!(
                    "SELECT code FROM categories WHERE {REPORTABLE_CATEGORY} AND code IN ({})",
                    placeholders(1, categories.len())
                );
                let mut query = sqlx::query_scalar::<$db, String>(AssertSqlSafe(sql));
                for code in &categories {
                    query = query.bind(*code);
                }
                let known = query.fetch_all(&mut *tx).await?;
                let mut accepted = Vec::with_capacity(batch.len());
                for (i, pending) in batch.iter().enumerate() {
                    if known.contains(&pending.report.category) {
                        accepted.push(i);
                    } else {
                        results[i] = Some(Err(CreateReportError::UnknownCategory(pending.report.category.clone())));
                    }
                }
                // Set-based statements cannot tell which of two reports sharing a
                // photo or a key should win: such batches go one by one.
                let mut photos_seen = std::collections::HashSet::new();
                let mut keys_seen = std::collections::HashSet::new();
                let shared = accepted.iter().any(|&i| {
                    let pending = &batch[i];
                    !pending.report.photo_ids.iter().all(|p| photos_seen.insert(*p))
                        || pending.idempotency.as_ref().is_some_and(|c| !keys_seen.insert((c.user_id, c.key.clone())))
                });
                if shared && !single {
                    return Ok(BatchOutcome::Split);
                }
                if accepted.is_empty() {
                    return Ok(BatchOutcome::Done(results.into_iter().flatten().collect()));
                }
                let records: Vec<CaseRecord> =
                    accepted.iter().map(|&i| batch[i].report.to_record(batch[i].tracking_no.clone())).collect();

                let claims: Vec<(&IdempotencyClaim, &CaseRecord, RenderReport)> = accepted
                    .iter()
                    .zip(&records)
                    .filter_map(|(&i, case)| batch[i].idempotency.as_ref().map(|c| (c, case, batch[i].render)))
                    .collect();
                if !claims.is_empty() {
                    let sql = format!(
                        "INSERT INTO idempotency_keys (user_id, key, request_hash, status, body, created_at) VALUES {} \
                         ON CONFLICT (user_id, key) DO NOTHING",
                        value_rows(claims.len(), 6, 1, "")
                    );
                    let mut insert = sqlx::query::<$db>(AssertSqlSafe(sql));
                    for (claim, case, render) in &claims {
                        insert = insert
                            .bind(claim.user_id.to_string())
                            .bind(&claim.key)
                            .bind(&claim.request_hash)
                            .bind(CREATED_STATUS)
                            .bind(render(case))
                            .bind(case.created_at);
                    }
                    if insert.execute(&mut *tx).await?.rows_affected() != claims.len() as u64 {
                        if !single {
                            return Ok(BatchOutcome::Split);
                        }
                        // Another request with this key committed first: answer as it did.
                        tx.rollback().await?;
                        let claim = claims[0].0;
                        let first = sqlx::query_as::<$db, StoredResponse>(
                            "SELECT request_hash, status, body FROM idempotency_keys WHERE user_id = $1 AND key = $2",
                        )
                        .bind(claim.user_id.to_string())
                        .bind(&claim.key)
                        .fetch_optional(&writer)
                        .await?
                        .ok_or_else(|| StoreError::Corrupt("idempotency record vanished".into()))?;
                        return Ok(BatchOutcome::Done(vec![Err(CreateReportError::AlreadyProcessed(first))]));
                    }
                }

                let rows: Vec<String> = (0..records.len())
                    .map(|k| {
                        let first = 22 * k + 1;
                        // created_at and updated_at share one parameter.
                        format!("({}, ${}, {})", placeholders(first, 15), first + 14, placeholders(first + 15, 7))
                    })
                    .collect();
                let sql = format!("INSERT INTO cases ({CASE_COLUMNS}) VALUES {}", rows.join(", "));
                let mut insert = sqlx::query::<$db>(AssertSqlSafe(sql));
                for case in &records {
                    insert = insert
                        .bind(case.id.to_string())
                        .bind(&case.tracking_no)
                        .bind(case.state.as_str())
                        .bind(&case.source)
                        .bind(&case.category_code)
                        .bind(case.location.lat)
                        .bind(case.location.lon)
                        .bind(case.accuracy_m)
                        .bind(case.address.as_deref())
                        .bind(&case.description)
                        .bind(case.confidential)
                        .bind(case.reporter_id.to_string())
                        .bind(case.photo_distance_m)
                        .bind(case.version)
                        .bind(case.created_at)
                        .bind(serde_json::to_string(&case.routing.zone_path).unwrap_or_else(|_| "[]".into()))
                        .bind(case.routing.rule.map(|(id, _)| id.to_string()))
                        .bind(case.routing.rule.map(|(_, version)| version))
                        .bind(case.routing.lead_unit.as_deref())
                        .bind(serde_json::to_string(&case.routing.co_units).unwrap_or_else(|_| "[]".into()))
                        .bind(case.routing.deadline_profile.as_deref())
                        .bind(case.routing.suggested_zone.as_deref());
                }
                insert.execute(&mut *tx).await?;

                // Each photo joins its case at its position, if it still belongs to
                // the reporter and is still unattached.
                let mut case_of = String::new();
                let mut position_of = String::new();
                let mut owner_of = String::new();
                let mut ids = Vec::new();
                let mut binds: Vec<String> = Vec::new();
                for case in &records {
                    for (position, photo) in case.photo_ids.iter().enumerate() {
                        let n = binds.len();
                        binds.extend([photo.to_string(), case.id.to_string(), case.reporter_id.to_string()]);
                        let (photo, case, owner) = (n + 1, n + 2, n + 3);
                        case_of.push_str(&format!(" WHEN ${photo} THEN ${case}"));
                        position_of.push_str(&format!(" WHEN ${photo} THEN {position}"));
                        owner_of.push_str(&format!(" WHEN ${photo} THEN ${owner}"));
                        ids.push(format!("${photo}"));
                    }
                }
                let sql = format!(
                    "UPDATE photos SET case_id = CASE id{case_of} END, position = CASE id{position_of} END, \
                       {FORGET_GPS} WHERE id IN ({}) AND {UNATTACHED_OWNER} = CASE id{owner_of} END",
                    ids.join(", ")
                );
                let mut attach = sqlx::query::<$db>(AssertSqlSafe(sql));
                for value in &binds {
                    attach = attach.bind(value);
                }
                if attach.execute(&mut *tx).await?.rows_affected() != ids.len() as u64 {
                    if !single {
                        return Ok(BatchOutcome::Split);
                    }
                    let missing = Self::unattached(&mut tx, &records[0]).await?;
                    return Ok(BatchOutcome::Done(vec![Err(CreateReportError::PhotoUnavailable(missing))]));
                }

                let mut events: Vec<(String, NewEvent)> = Vec::with_capacity(2 * records.len());
                for (&i, case) in accepted.iter().zip(&records) {
                    for event in batch[i].report.first_events(case) {
                        events.push((case.id.to_string(), event));
                    }
                }
                let events: Vec<(&str, &NewEvent)> = events.iter().map(|(id, e)| (id.as_str(), e)).collect();
                super::bulk::insert_events(&mut tx, &events).await?;
                // New reports are public state changes too: the 12345 platform hears of them.
                let public: Vec<(&str, &NewEvent)> = events.into_iter().filter(|(_, e)| e.public).collect();
                super::bulk::insert_outbox(&mut tx, &public).await?;
                tx.commit().await?;

                for (&i, case) in accepted.iter().zip(records) {
                    results[i] = Some(Ok(case));
                }
                Ok(BatchOutcome::Done(results.into_iter().flatten().collect()))
            }

            /// The first photo of `case` that its transaction failed to attach.
            async fn unattached(tx: &mut sqlx::Transaction<'static, $db>, case: &CaseRecord) -> Result<Uuid, StoreError> {
                let sql = format!("SELECT id FROM photos WHERE case_id = $1 AND id IN ({})", placeholders(2, case.photo_ids.len()));
                let mut query = sqlx::query_scalar::<$db, String>(AssertSqlSafe(sql)).bind(case.id.to_string());
                for photo in &case.photo_ids {
                    query = query.bind(photo.to_string());
                }
                let attached = query.fetch_all(&mut **tx).await?;
                let missing = case.photo_ids.iter().find(|p| !attached.contains(&p.to_string()));
                Ok(missing.copied().unwrap_or(case.photo_ids[0]))
            }

            async fn cases_with_photos(&self, rows: Vec<CaseRow>) -> Result<Vec<CaseRecord>, StoreError> {
                let ids: Vec<&str> = rows.iter().map(|r| r.id()).collect();
                let mut photos = self.photos_of_cases(&ids).await?;
                rows.into_iter()
                    .map(|row| {
                        let photos = photos.remove(row.id()).unwrap_or_default();
                        row.into_record(photos)
                    })
                    .collect()
            }
        }

        #[async_trait]
        impl Repository for $repo {
            fn backend(&self) -> &'static str {
                $backend
            }

            async fn migrate(&self) -> Result<(), StoreError> {
                Self::MIGRATOR.run(self.writer()).await?;
                Ok(())
            }

            async fn ping(&self) -> Result<(), StoreError> {
                sqlx::query("SELECT 1").execute(self.reader()).await?;
                Ok(())
            }

            async fn create_user(&self, user: &NewUser) -> Result<User, StoreError> {
                let sql = format!(
                    "INSERT INTO users ({USER_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING {USER_COLUMNS}"
                );
                let row = sqlx::query_as::<$db, UserRow>(AssertSqlSafe(sql))
                    .bind(user.id.to_string())
                    .bind(user.role.as_str())
                    .bind(user.unit_id.as_deref())
                    .bind(user.username.as_deref())
                    .bind(user.password_hash.as_deref())
                    .bind(user.phone.as_ref().map(Phone::as_e164))
                    .bind(user.display_name.as_deref())
                    .bind(false)
                    .bind(user.created_at)
                    .fetch_one(self.writer())
                    .await?;
                User::try_from(row)
            }

            async fn user_by_id(&self, id: Uuid) -> Result<Option<User>, StoreError> {
                self.user_where("id", &id.to_string()).await
            }

            async fn user_by_username(&self, username: &str) -> Result<Option<User>, StoreError> {
                self.user_where("username", username).await
            }

            async fn citizen_for_phone(&self, phone: &Phone, now: DateTime<Utc>) -> Result<User, StoreError> {
                // Insert-or-nothing, then read: safe when two sign-ins race.
                sqlx::query(
                    "INSERT INTO users (id, role, phone, disabled, created_at) VALUES ($1, $2, $3, $4, $5) \
                     ON CONFLICT (phone) DO NOTHING",
                )
                .bind(Uuid::now_v7().to_string())
                .bind(Role::Citizen.as_str())
                .bind(phone.as_e164())
                .bind(false)
                .bind(now)
                .execute(self.writer())
                .await?;
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE phone = $1");
                let row = sqlx::query_as::<$db, UserRow>(AssertSqlSafe(sql))
                    .bind(phone.as_e164())
                    .fetch_one(self.writer())
                    .await?;
                User::try_from(row)
            }

            async fn put_otp(&self, phone: &Phone, code_hash: &str, now: DateTime<Utc>, expires_at: DateTime<Utc>,
                resend_cutoff: DateTime<Utc>) -> Result<bool, StoreError> {
                let done = sqlx::query(
                    "INSERT INTO otp_codes (phone, code_hash, attempts, expires_at, created_at) VALUES ($1, $2, 0, $3, $4) \
                     ON CONFLICT (phone) DO UPDATE SET code_hash = excluded.code_hash, attempts = 0, \
                       expires_at = excluded.expires_at, created_at = excluded.created_at \
                     WHERE otp_codes.created_at <= $5",
                )
                .bind(phone.as_e164())
                .bind(code_hash)
                .bind(expires_at)
                .bind(now)
                .bind(resend_cutoff)
                .execute(self.writer())
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn count_otp_attempt(&self, phone: &Phone) -> Result<Option<OtpRecord>, StoreError> {
                Ok(sqlx::query_as::<$db, OtpRecord>(
                    "UPDATE otp_codes SET attempts = attempts + 1 WHERE phone = $1 \
                     RETURNING code_hash, attempts, expires_at",
                )
                .bind(phone.as_e164())
                .fetch_optional(self.writer())
                .await?)
            }

            async fn delete_otp(&self, phone: &Phone) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM otp_codes WHERE phone = $1")
                    .bind(phone.as_e164())
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn withdraw_otp(&self, phone: &Phone, code_hash: &str) -> Result<bool, StoreError> {
                let deleted = sqlx::query("DELETE FROM otp_codes WHERE phone = $1 AND code_hash = $2")
                    .bind(phone.as_e164())
                    .bind(code_hash)
                    .execute(self.writer())
                    .await?;
                Ok(deleted.rows_affected() == 1)
            }

            async fn client_requests(&self, client: &str, window_start: DateTime<Utc>) -> Result<i64, StoreError> {
                let count: Option<i64> = sqlx::query_scalar(
                    "SELECT requests FROM otp_client_windows WHERE client = $1 AND window_start = $2",
                )
                .bind(client)
                .bind(window_start)
                .fetch_optional(self.reader())
                .await?;
                Ok(count.unwrap_or(0))
            }

            async fn count_client_request(&self, client: &str, window_start: DateTime<Utc>) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar(
                    "INSERT INTO otp_client_windows (client, window_start, requests) VALUES ($1, $2, 1) \
                     ON CONFLICT (client, window_start) DO UPDATE SET requests = otp_client_windows.requests + 1 \
                     RETURNING requests",
                )
                .bind(client)
                .bind(window_start)
                .fetch_one(self.writer())
                .await?)
            }

            async fn purge_sign_in_records(&self, now: DateTime<Utc>, windows_before: DateTime<Utc>)
                -> Result<u64, StoreError> {
                let mut tx = self.writer().begin_with(BEGIN_WRITE).await?;
                let mut purged = 0;
                for (sql, cutoff) in [
                    ("DELETE FROM otp_codes WHERE expires_at < $1", now),
                    ("DELETE FROM refresh_tokens WHERE expires_at < $1", now),
                    ("DELETE FROM otp_client_windows WHERE window_start < $1", windows_before),
                ] {
                    purged += sqlx::query(sql).bind(cutoff).execute(&mut *tx).await?.rows_affected();
                }
                tx.commit().await?;
                Ok(purged)
            }

            async fn purge_idempotency_keys(&self, created_before: DateTime<Utc>) -> Result<u64, StoreError> {
                let done = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
                    .bind(created_before)
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected())
            }

            async fn insert_refresh_token(&self, token: &NewRefreshToken) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at, revoked, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&token.token_hash)
                .bind(token.family_id.to_string())
                .bind(token.user_id.to_string())
                .bind(token.expires_at)
                .bind(false)
                .bind(token.created_at)
                .execute(self.writer())
                .await?;
                Ok(())
            }

            async fn rotate_refresh_token(&self, presented_hash: &str, next_hash: &str,
                next_expires_at: DateTime<Utc>, now: DateTime<Utc>) -> Result<Rotation, StoreError> {
                let mut tx = self.writer().begin_with(BEGIN_WRITE).await?;
                let Some(row) = sqlx::query_as::<$db, RefreshRow>(
                    "SELECT family_id, user_id, expires_at, used_at, revoked FROM refresh_tokens WHERE token_hash = $1",
                )
                .bind(presented_hash)
                .fetch_optional(&mut *tx)
                .await?
                else {
                    return Ok(Rotation::Invalid);
                };
                if row.revoked || row.expires_at <= now {
                    return Ok(Rotation::Invalid);
                }
                // Compare-and-set on used_at: of two concurrent uses, one is a replay.
                // `revoked` is checked again here, where the row is locked: on
                // PostgreSQL a revocation that committed since the read above
                // must stop this rotation from giving the family a live successor.
                let claimed = sqlx::query(
                    "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL AND revoked = $3",
                )
                .bind(now)
                .bind(presented_hash)
                .bind(false)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if row.used_at.is_some() || claimed == 0 {
                    // Each statement sees only successors committed before it
                    // began (PostgreSQL's read committed): one that a concurrent
                    // rotation inserts while this waits for its lock would stay
                    // live. Repeat until a pass finds nothing left to revoke;
                    // rotations claim only unrevoked tokens, so none can follow.
                    loop {
                        let revoked = sqlx::query(
                            "UPDATE refresh_tokens SET revoked = $1 WHERE family_id = $2 AND revoked = $3",
                        )
                        .bind(true)
                        .bind(&row.family_id)
                        .bind(false)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        if revoked == 0 {
                            break;
                        }
                    }
                    tx.commit().await?;
                    return Ok(Rotation::Reused);
                }
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
                let user = User::try_from(
                    sqlx::query_as::<$db, UserRow>(AssertSqlSafe(sql))
                        .bind(&row.user_id)
                        .fetch_one(&mut *tx)
                        .await?,
                )?;
                if user.disabled {
                    return Ok(Rotation::Invalid);
                }
                sqlx::query(
                    "INSERT INTO refresh_tokens (token_hash, family_id, user_id, expires_at, revoked, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(next_hash)
                .bind(&row.family_id)
                .bind(&row.user_id)
                .bind(next_expires_at)
                .bind(false)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Rotation::Rotated(user))
            }

            async fn insert_photo(&self, p: &PhotoRecord) -> Result<(), StoreError> {
                let sql = format!(
                    "INSERT INTO photos ({PHOTO_COLUMNS}) VALUES \
                     ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)"
                );
                sqlx::query::<$db>(AssertSqlSafe(sql))
                    .bind(p.id.to_string())
                    .bind(p.owner_id.to_string())
                    .bind(p.case_id.map(|id| id.to_string()))
                    .bind(&p.source_type)
                    .bind(p.width)
                    .bind(p.height)
                    .bind(p.taken_at)
                    .bind(p.gps.map(|g| g.lat))
                    .bind(p.gps.map(|g| g.lon))
                    .bind(&p.sha256)
                    .bind(&p.phash)
                    .bind(p.byte_size)
                    .bind(&p.display.key)
                    .bind(p.display.width)
                    .bind(p.display.height)
                    .bind(&p.display.etag)
                    .bind(&p.thumbnail.key)
                    .bind(p.thumbnail.width)
                    .bind(p.thumbnail.height)
                    .bind(&p.thumbnail.etag)
                    .bind(p.created_at)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn photo(&self, id: Uuid) -> Result<Option<PhotoRecord>, StoreError> {
                let sql = format!("SELECT {PHOTO_COLUMNS} FROM photos WHERE id = $1");
                sqlx::query_as::<$db, PhotoRow>(AssertSqlSafe(sql))
                    .bind(id.to_string())
                    .fetch_optional(self.reader())
                    .await?
                    .map(PhotoRecord::try_from)
                    .transpose()
            }

            async fn report_photos(&self, case_id: Uuid) -> Result<Vec<PhotoRecord>, StoreError> {
                let sql = format!(
                    "SELECT {PHOTO_COLUMNS} FROM photos WHERE case_id = $1 AND stage <> $2 ORDER BY position"
                );
                sqlx::query_as::<$db, PhotoRow>(AssertSqlSafe(sql))
                    .bind(case_id.to_string())
                    .bind($crate::store::records::AFTER_STAGE)
                    .fetch_all(self.reader())
                    .await?
                    .into_iter()
                    .map(PhotoRecord::try_from)
                    .collect()
            }

            async fn unattached_photos_of(&self, owner: Uuid, ids: &[Uuid]) -> Result<Vec<PhotoRecord>, StoreError> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                self.photo_lookups.submit(PhotoLookup { owner, ids: ids.to_vec() }).await
            }

            async fn stale_unattached_photos(&self, cutoff: DateTime<Utc>, limit: i64) -> Result<Vec<PhotoRecord>, StoreError> {
                let sql = format!(
                    "SELECT {PHOTO_COLUMNS} FROM photos WHERE case_id IS NULL AND created_at < $1 \
                     ORDER BY created_at LIMIT $2"
                );
                sqlx::query_as::<$db, PhotoRow>(AssertSqlSafe(sql))
                    .bind(cutoff)
                    .bind(limit)
                    .fetch_all(self.reader())
                    .await?
                    .into_iter()
                    .map(PhotoRecord::try_from)
                    .collect()
            }

            async fn delete_unattached_photo(&self, id: Uuid, now: DateTime<Utc>) -> Result<bool, StoreError> {
                let mut tx = self.writer().begin_with(BEGIN_WRITE).await?;
                let keys: Option<(String, String)> = sqlx::query_as(
                    "DELETE FROM photos WHERE id = $1 AND case_id IS NULL RETURNING display_key, thumb_key",
                )
                .bind(id.to_string())
                .fetch_optional(&mut *tx)
                .await?;
                let Some((display, thumb)) = keys else {
                    return Ok(false);
                };
                sqlx::query(
                    "INSERT INTO photo_object_deletions (object_key, queued_at) VALUES ($1, $3), ($2, $3) \
                     ON CONFLICT (object_key) DO NOTHING",
                )
                .bind(display)
                .bind(thumb)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn queued_object_deletions(&self, limit: i64) -> Result<Vec<String>, StoreError> {
                Ok(sqlx::query_scalar(
                    "SELECT object_key FROM photo_object_deletions ORDER BY queued_at, object_key LIMIT $1",
                )
                .bind(limit)
                .fetch_all(self.reader())
                .await?)
            }

            async fn forget_object_deletion(&self, key: &str) -> Result<(), StoreError> {
                sqlx::query("DELETE FROM photo_object_deletions WHERE object_key = $1")
                    .bind(key)
                    .execute(self.writer())
                    .await?;
                Ok(())
            }

            async fn categories(&self) -> Result<Vec<Category>, StoreError> {
                Ok(sqlx::query_as::<$db, Category>(
                    "SELECT code, parent_code, name_zh, name_en, sort_order, active FROM categories \
                     ORDER BY sort_order, code",
                )
                .fetch_all(self.reader())
                .await?)
            }

            async fn idempotent_response(&self, user: Uuid, key: &str) -> Result<Option<StoredResponse>, StoreError> {
                Ok(sqlx::query_as::<$db, StoredResponse>(
                    "SELECT request_hash, status, body FROM idempotency_keys WHERE user_id = $1 AND key = $2",
                )
                .bind(user.to_string())
                .bind(key)
                .fetch_optional(self.reader())
                .await?)
            }

            async fn create_report(&self, r: &NewReport, idempotency: Option<&IdempotencyClaim>,
                render: RenderReport) -> Result<CaseRecord, CreateReportError> {
                let day = r.local_day.format("%Y%m%d").to_string();
                let sequence = self.tracking.next(&day, |day, size| self.reserve_tracking_block(day, size)).await?;
                let tracking_no = $crate::domain::report::tracking_number(&r.tracking_prefix, r.local_day, sequence);
                self.intake
                    .submit(PendingReport { report: r.clone(), tracking_no, idempotency: idempotency.cloned(), render })
                    .await
            }

            async fn case_by_id(&self, id: Uuid) -> Result<Option<CaseRecord>, StoreError> {
                let sql = format!("SELECT {CASE_COLUMNS} FROM cases WHERE id = $1");
                let row = sqlx::query_as::<$db, CaseRow>(AssertSqlSafe(sql))
                    .bind(id.to_string())
                    .fetch_optional(self.reader())
                    .await?;
                match row {
                    Some(row) => Ok(self.cases_with_photos(vec![row]).await?.pop()),
                    None => Ok(None),
                }
            }

            async fn reports_of(&self, reporter: Uuid, before: Option<Uuid>, limit: i64) -> Result<Vec<CaseRecord>, StoreError> {
                // Ids are UUIDv7: their text order is their creation order.
                let sql = format!(
                    "SELECT {CASE_COLUMNS} FROM cases WHERE reporter_id = $1 AND ($2 IS NULL OR id < $2) \
                     ORDER BY id DESC LIMIT $3"
                );
                let rows = sqlx::query_as::<$db, CaseRow>(AssertSqlSafe(sql))
                    .bind(reporter.to_string())
                    .bind(before.map(|id| id.to_string()))
                    .bind(limit)
                    .fetch_all(self.reader())
                    .await?;
                self.cases_with_photos(rows).await
            }

            async fn routing_version(&self) -> Result<i64, StoreError> {
                Ok(sqlx::query_scalar("SELECT version FROM routing_state WHERE id = 1").fetch_one(self.reader()).await?)
            }

            async fn routing_data(&self) -> Result<RoutingData, StoreError> {
                let mut tx = self.reader().begin().await?;
                let version = sqlx::query_scalar("SELECT version FROM routing_state WHERE id = 1").fetch_one(&mut *tx).await?;
                let zones = sqlx::query_as::<$db, ZoneRecord>(
                    "SELECT code, name, kind, parent_code, geometry FROM zones ORDER BY code",
                )
                .fetch_all(&mut *tx)
                .await?;
                let rules = sqlx::query_as::<$db, RuleRow>(
                    "SELECT id, version, category_prefix, zone_code, lead_unit, co_units, deadline_profile, priority, \
                     valid_from, valid_to, active, note FROM rules WHERE is_current ORDER BY id",
                )
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(RuleRecord::try_from)
                .collect::<Result<Vec<_>, _>>()?;
                tx.commit().await?;
                Ok(RoutingData { version, zones, rules })
            }

            async fn seed_reference_data(&self, data: &ReferenceData, actor: &Actor, now: DateTime<Utc>)
                -> Result<bool, StoreError> {
                self.ref_seed(data, actor, now).await
            }

            async fn create_unit(&self, unit: &UnitRecord, actor: &Actor, now: DateTime<Utc>) -> Result<(), StoreError> {
                self.ref_create_unit(unit, actor, now).await
            }

            async fn update_unit(&self, unit: &UnitRecord, actor: &Actor, now: DateTime<Utc>) -> Result<bool, StoreError> {
                self.ref_update_unit(unit, actor, now).await
            }

            async fn delete_unit(&self, code: &str, actor: &Actor, now: DateTime<Utc>) -> Result<Deletion, StoreError> {
                self.ref_delete_unit(code, actor, now).await
            }

            async fn save_category(&self, category: &CategorySeed, actor: &Actor, now: DateTime<Utc>) -> Result<(), StoreError> {
                self.ref_save_category(category, actor, now).await
            }

            async fn zone(&self, code: &str) -> Result<Option<ZoneRecord>, StoreError> {
                self.ref_zone(code).await
            }

            async fn import_zones(&self, zones: &[ZoneRecord], actor: &Actor, now: DateTime<Utc>)
                -> Result<ImportCounts, StoreError> {
                self.ref_import_zones(zones, actor, now).await
            }

            async fn rule_versions(&self, id: Uuid) -> Result<Vec<RuleRecord>, StoreError> {
                self.ref_rule_versions(id).await
            }

            async fn save_rule(&self, rule: &RuleRecord, actor: &Actor, now: DateTime<Utc>) -> Result<RuleRecord, StoreError> {
                self.ref_save_rule(rule, actor, now).await
            }

            async fn delete_rule(&self, id: Uuid, actor: &Actor, now: DateTime<Utc>) -> Result<Deletion, StoreError> {
                self.ref_delete_rule(id, actor, now).await
            }

            async fn audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
                self.ref_audit_log(limit).await
            }

            async fn deadline_profiles(&self) -> Result<Vec<$crate::domain::deadline::DeadlineProfile>, StoreError> {
                self.dl_profiles().await
            }

            async fn save_deadline_profile(&self, profile: &$crate::domain::deadline::DeadlineProfile, actor: &Actor,
                now: DateTime<Utc>) -> Result<$crate::store::ProfileSave, StoreError> {
                self.dl_save_profile(profile, actor, now).await
            }

            async fn delete_deadline_profile(&self, id: &str, actor: &Actor, now: DateTime<Utc>) -> Result<Deletion, StoreError> {
                self.dl_delete_profile(id, actor, now).await
            }

            async fn calendar_years(&self) -> Result<Vec<StoredCalendarYear>, StoreError> {
                self.dl_calendar_years().await
            }

            async fn save_calendar_years(&self, years: &[$crate::domain::deadline::CalendarYear], actor: &Actor,
                now: DateTime<Utc>, check: &$crate::store::CalendarCheck<'_>)
                -> Result<Result<(), $crate::domain::deadline::CalendarError>, StoreError> {
                self.dl_save_calendar_years(years, actor, now, check).await
            }

            async fn open_case(&self, id: Uuid) -> Result<Option<CaseSession>, StoreError> {
                self.open_case_session(id).await
            }

            async fn save_case_change(&self, change: &CaseChange, session: CaseSession) -> Result<SaveOutcome, StoreError> {
                self.wf_save(change, session).await
            }

            async fn case_clocks(&self, case_id: Uuid) -> Result<Vec<$crate::domain::clock::Clock>, StoreError> {
                self.wf_all_clocks(case_id).await
            }

            async fn list_cases(&self, query: &CaseQuery) -> Result<Vec<CaseSummary>, StoreError> {
                self.wf_list(query).await
            }

            async fn auto_dispatch_candidates(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<Uuid>, StoreError> {
                self.wf_auto_dispatch_candidates(now, limit).await
            }

            async fn defer_auto_dispatch(&self, ids: &[Uuid], until: DateTime<Utc>, seen_version: i64) -> Result<u64, StoreError> {
                self.wf_defer_auto_dispatch(ids, until, seen_version).await
            }

            async fn archive_candidates(&self, closed_before: DateTime<Utc>, limit: i64) -> Result<Vec<Uuid>, StoreError> {
                self.wf_archive_candidates(closed_before, limit).await
            }

            async fn sweep_clocks(&self, now: DateTime<Utc>, limit: i64) -> Result<SweepReport, StoreError> {
                self.wf_sweep(now, limit).await
            }

            async fn take_job_lease(&self, name: &str, holder: &str, now: DateTime<Utc>, ttl: chrono::Duration)
                -> Result<bool, StoreError> {
                self.job_lease(name, holder, now, ttl).await
            }

            async fn approved_returns(&self, limit: i64) -> Result<Vec<ApprovedReturn>, StoreError> {
                self.wf_approved_returns(limit).await
            }

            async fn outbox(&self, after: i64, limit: i64) -> Result<Vec<OutboxEntry>, StoreError> {
                self.wf_outbox(after, limit).await
            }

            async fn units(&self) -> Result<Vec<UnitRecord>, StoreError> {
                sqlx::query_as::<$db, UnitRow>(
                    "SELECT code, name, kind, parent_code, contacts, active FROM units ORDER BY code",
                )
                .fetch_all(self.reader())
                .await?
                .into_iter()
                .map(UnitRecord::try_from)
                .collect()
            }

            async fn inactive_units(&self, codes: &[&str]) -> Result<Vec<String>, StoreError> {
                if codes.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT code FROM units WHERE NOT active AND code IN ({}) ORDER BY code",
                    placeholders(1, codes.len())
                );
                let mut query = sqlx::query_scalar::<$db, String>(AssertSqlSafe(sql));
                for code in codes {
                    query = query.bind(*code);
                }
                Ok(query.fetch_all(self.reader()).await?)
            }

            async fn case_events(&self, case_id: Uuid) -> Result<Vec<CaseEvent>, StoreError> {
                sqlx::query_as::<$db, CaseEventRow>(
                    "SELECT id, case_id, kind, actor_id, actor_role, public, data, created_at FROM case_events \
                     WHERE case_id = $1 ORDER BY id",
                )
                .bind(case_id.to_string())
                .fetch_all(self.reader())
                .await?
                .into_iter()
                .map(CaseEvent::try_from)
                .collect()
            }
        }
        }
    };
}

pub(super) use impl_repository;

#[cfg(test)]
mod tests {
    #[test]
    fn placeholder_lists() {
        assert_eq!(super::placeholders(2, 3), "$2, $3, $4");
        assert_eq!(super::placeholders(1, 1), "$1");
        assert_eq!(
            super::value_rows(2, 2, 2, ", $1"),
            "($2, $3, $1), ($4, $5, $1)"
        );
    }
}
