//! The SQL both backends share. Written once as a macro expanded for each concrete
//! database type: the statements are identical (`$n` placeholders, `ON CONFLICT`,
//! `RETURNING` work on both), only the pools and migrations differ. A backend
//! provides `fn writer(&self) -> &Pool<DB>` and `fn reader(&self) -> &Pool<DB>`.

/// `$1, $2, …` starting at `first`, for `IN (…)` lists.
pub(super) fn placeholders(first: usize, count: usize) -> String {
    (first..first + count).map(|n| format!("${n}")).collect::<Vec<_>>().join(", ")
}

pub(super) const USER_COLUMNS: &str =
    "id, role, unit_id, username, password_hash, phone, display_name, disabled, created_at";
pub(super) const PHOTO_COLUMNS: &str = "id, owner_id, case_id, source_type, width, height, taken_at, gps_lat, gps_lon, \
     sha256, phash, byte_size, display_key, display_width, display_height, display_etag, \
     thumb_key, thumb_width, thumb_height, thumb_etag, created_at";
pub(super) const CASE_COLUMNS: &str = "id, tracking_no, state, source, category_code, lat, lon, accuracy_m, address, \
     description, confidential, reporter_id, photo_distance_m, version, created_at, updated_at";

macro_rules! impl_repository {
    ($repo:ty, $db:ty, $backend:literal) => {
        use std::collections::HashMap;

        use async_trait::async_trait;
        use chrono::{DateTime, Utc};
        use sqlx::AssertSqlSafe;
        use uuid::Uuid;

        use $crate::domain::case::CaseState;
        use $crate::domain::phone::Phone;
        use $crate::domain::role::Role;
        use $crate::store::sql::{placeholders, CASE_COLUMNS, PHOTO_COLUMNS, USER_COLUMNS};
        use $crate::store::records::{CaseEventRow, CasePhotoRow, CaseRow, PhotoRow, RefreshRow, UserRow};
        use $crate::store::*;

        impl $repo {
            async fn user_where(&self, clause: &str, value: &str) -> Result<Option<User>, StoreError> {
                let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {clause} = $1");
                sqlx::query_as::<$db, UserRow>(AssertSqlSafe(sql))
                    .bind(value)
                    .fetch_optional(self.reader())
                    .await?
                    .map(User::try_from)
                    .transpose()
            }

            /// Photo ids of the given cases, grouped by case, in report order.
            async fn photo_ids_of_cases(&self, case_ids: &[&str]) -> Result<HashMap<String, Vec<Uuid>>, StoreError> {
                let mut grouped: HashMap<String, Vec<Uuid>> = HashMap::new();
                if case_ids.is_empty() {
                    return Ok(grouped);
                }
                let sql = format!(
                    "SELECT case_id, id FROM photos WHERE case_id IN ({}) ORDER BY case_id, position",
                    placeholders(1, case_ids.len())
                );
                let mut query = sqlx::query_as::<$db, CasePhotoRow>(AssertSqlSafe(sql));
                for id in case_ids {
                    query = query.bind(*id);
                }
                for row in query.fetch_all(self.reader()).await? {
                    let photo = row.photo_id()?;
                    grouped.entry(row.case_id).or_default().push(photo);
                }
                Ok(grouped)
            }

            async fn cases_with_photos(&self, rows: Vec<CaseRow>) -> Result<Vec<CaseRecord>, StoreError> {
                let ids: Vec<&str> = rows.iter().map(|r| r.id()).collect();
                let mut photos = self.photo_ids_of_cases(&ids).await?;
                rows.into_iter()
                    .map(|row| {
                        let ids = photos.remove(row.id()).unwrap_or_default();
                        row.into_record(ids)
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
                let mut tx = self.writer().begin().await?;
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
                let claimed = sqlx::query(
                    "UPDATE refresh_tokens SET used_at = $1 WHERE token_hash = $2 AND used_at IS NULL",
                )
                .bind(now)
                .bind(presented_hash)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if row.used_at.is_some() || claimed == 0 {
                    sqlx::query("UPDATE refresh_tokens SET revoked = $1 WHERE family_id = $2")
                        .bind(true)
                        .bind(&row.family_id)
                        .execute(&mut *tx)
                        .await?;
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

            async fn unattached_photos_of(&self, owner: Uuid, ids: &[Uuid]) -> Result<Vec<PhotoRecord>, StoreError> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT {PHOTO_COLUMNS} FROM photos WHERE owner_id = $1 AND case_id IS NULL AND id IN ({})",
                    placeholders(2, ids.len())
                );
                let mut query = sqlx::query_as::<$db, PhotoRow>(AssertSqlSafe(sql)).bind(owner.to_string());
                for id in ids {
                    query = query.bind(id.to_string());
                }
                query.fetch_all(self.reader()).await?.into_iter().map(PhotoRecord::try_from).collect()
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

            async fn delete_unattached_photo(&self, id: Uuid) -> Result<bool, StoreError> {
                let done = sqlx::query("DELETE FROM photos WHERE id = $1 AND case_id IS NULL")
                    .bind(id.to_string())
                    .execute(self.writer())
                    .await?;
                Ok(done.rows_affected() == 1)
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
                render: RenderReport<'_>) -> Result<CaseRecord, CreateReportError> {
                let mut tx = self.writer().begin().await?;
                let known: Option<(bool,)> = sqlx::query_as("SELECT active FROM categories WHERE code = $1 AND parent_code IS NOT NULL")
                    .bind(&r.category)
                    .fetch_optional(&mut *tx)
                    .await?;
                if !matches!(known, Some((true,))) {
                    return Err(CreateReportError::UnknownCategory(r.category.clone()));
                }
                let (sequence,): (i64,) = sqlx::query_as(
                    "INSERT INTO tracking_counters (day, last) VALUES ($1, 1) \
                     ON CONFLICT (day) DO UPDATE SET last = tracking_counters.last + 1 RETURNING last",
                )
                .bind(r.local_day.format("%Y%m%d").to_string())
                .fetch_one(&mut *tx)
                .await?;
                let tracking_no =
                    $crate::domain::report::tracking_number(&r.tracking_prefix, r.local_day, sequence);
                let sql = format!(
                    "INSERT INTO cases ({CASE_COLUMNS}) VALUES \
                     ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $15) RETURNING {CASE_COLUMNS}"
                );
                let row = sqlx::query_as::<$db, CaseRow>(AssertSqlSafe(sql))
                    .bind(r.id.to_string())
                    .bind(&tracking_no)
                    .bind(CaseState::Submitted.as_str())
                    .bind(&r.source)
                    .bind(&r.category)
                    .bind(r.location.lat)
                    .bind(r.location.lon)
                    .bind(r.accuracy_m)
                    .bind(r.address.as_deref())
                    .bind(&r.description)
                    .bind(r.confidential)
                    .bind(r.reporter_id.to_string())
                    .bind(r.photo_distance_m)
                    .bind(1_i64)
                    .bind(r.now)
                    .fetch_one(&mut *tx)
                    .await?;
                for (position, photo) in r.photo_ids.iter().enumerate() {
                    let attached = sqlx::query(
                        "UPDATE photos SET case_id = $1, position = $2 \
                         WHERE id = $3 AND owner_id = $4 AND case_id IS NULL",
                    )
                    .bind(r.id.to_string())
                    .bind(position as i64)
                    .bind(photo.to_string())
                    .bind(r.reporter_id.to_string())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if attached != 1 {
                        return Err(CreateReportError::PhotoUnavailable(*photo));
                    }
                }
                let event_data = serde_json::json!({
                    "source": r.source,
                    "category": r.category,
                    "photo_distance_m": r.photo_distance_m,
                });
                sqlx::query(
                    "INSERT INTO case_events (id, case_id, kind, actor_id, actor_role, public, data, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(Uuid::now_v7().to_string())
                .bind(r.id.to_string())
                .bind("submitted")
                .bind(r.reporter_id.to_string())
                .bind(r.reporter_role.as_str())
                .bind(true)
                .bind(event_data.to_string())
                .bind(r.now)
                .execute(&mut *tx)
                .await?;
                let case = row.into_record(r.photo_ids.clone())?;
                if let Some(claim) = idempotency {
                    let stored = sqlx::query(
                        "INSERT INTO idempotency_keys (user_id, key, request_hash, status, body, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, key) DO NOTHING",
                    )
                    .bind(claim.user_id.to_string())
                    .bind(&claim.key)
                    .bind(&claim.request_hash)
                    .bind(201_i64)
                    .bind(render(&case))
                    .bind(r.now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if stored == 0 {
                        // Another request with this key committed first: undo ours, answer as it did.
                        tx.rollback().await?;
                        let first = self
                            .idempotent_response(claim.user_id, &claim.key)
                            .await?
                            .ok_or_else(|| StoreError::Corrupt("idempotency record vanished".into()))?;
                        return Err(CreateReportError::AlreadyProcessed(first));
                    }
                }
                tx.commit().await?;
                Ok(case)
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
    };
}

pub(super) use impl_repository;

#[cfg(test)]
mod tests {
    #[test]
    fn placeholder_lists() {
        assert_eq!(super::placeholders(2, 3), "$2, $3, $4");
        assert_eq!(super::placeholders(1, 1), "$1");
    }
}
