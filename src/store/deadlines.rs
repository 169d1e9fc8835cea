//! Storage of what deadlines are computed from: deadline profiles and working
//! calendars. Changes are audited and bump the reference version, so every
//! instance rebuilds its calculators (see `crate::deadlines`).

use chrono::{DateTime, Utc};

use crate::domain::deadline::{CalendarError, CalendarYear};

/// What a calendar load must pass, given every year stored when it begins.
pub type CalendarCheck<'a> =
    dyn Fn(Vec<CalendarYear>) -> Result<(), CalendarError> + Send + Sync + 'a;

/// A calendar year as loaded, with who loaded it and when.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCalendarYear {
    pub year: CalendarYear,
    pub loaded_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(super) struct ProfileRow {
    pub id: String,
    pub category_prefix: Option<String>,
    pub urgency: String,
    pub phases: String,
    pub warning_fraction: Option<f64>,
}

#[derive(sqlx::FromRow)]
pub(super) struct CalendarRow {
    pub document: String,
    pub loaded_at: DateTime<Utc>,
}

impl CalendarRow {
    pub(super) fn calendar_year(&self) -> Result<CalendarYear, super::StoreError> {
        serde_json::from_str(&self.document)
            .map_err(|e| super::StoreError::Corrupt(format!("calendar year: {e}")))
    }
}

macro_rules! impl_deadline_data {
    ($repo:ident, $db:ty, $lock_calendars:literal) => {
        mod deadline_sql {
            use super::*;
            use chrono::{DateTime, Utc};

            use $crate::domain::deadline::{CalendarError, CalendarYear, DeadlineProfile, Urgency};
            use $crate::store::deadlines::{CalendarCheck, CalendarRow, ProfileRow, StoredCalendarYear};
            use $crate::store::*;

            use super::reference_sql::audit;

            fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
                StoreError::Corrupt(format!("{what}: {e}"))
            }

            /// The category prefix and urgency a stored profile covers.
            struct Slot {
                category_prefix: Option<String>,
                urgency: String,
            }

            impl Slot {
                fn is_default(&self) -> bool {
                    Urgency::parse(&self.urgency).is_some_and(|urgency| {
                        DeadlineProfile::is_default_slot(self.category_prefix.as_deref(), urgency)
                    })
                }
            }

            async fn stored_slot(tx: &mut sqlx::Transaction<'static, $db>, id: &str) -> Result<Option<Slot>, StoreError> {
                let found: Option<(Option<String>, String)> =
                    sqlx::query_as("SELECT category_prefix, urgency FROM deadline_profiles WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&mut **tx)
                        .await?;
                Ok(found.map(|(category_prefix, urgency)| Slot { category_prefix, urgency }))
            }

            impl $repo {
                pub(super) async fn dl_profiles(&self) -> Result<Vec<DeadlineProfile>, StoreError> {
                    sqlx::query_as::<$db, ProfileRow>(
                        "SELECT id, category_prefix, urgency, phases, warning_fraction FROM deadline_profiles ORDER BY id",
                    )
                    .fetch_all(self.reader())
                    .await?
                    .into_iter()
                    .map(|row| {
                        Ok(DeadlineProfile {
                            urgency: Urgency::parse(&row.urgency)
                                .ok_or_else(|| corrupt("profile urgency", &row.urgency))?,
                            phases: serde_json::from_str(&row.phases).map_err(|e| corrupt("profile phases", e))?,
                            id: row.id,
                            category_prefix: row.category_prefix,
                            warning_fraction: row.warning_fraction,
                        })
                    })
                    .collect()
                }

                pub(super) async fn dl_save_profile(&self, p: &DeadlineProfile, actor: &Actor, now: DateTime<Utc>)
                    -> Result<ProfileSave, StoreError> {
                    let phases = serde_json::to_string(&p.phases).map_err(|e| corrupt("profile phases", e))?;
                    let mut tx = self.writer().begin_with(BEGIN_WRITE).await?;
                    // Every case must find some profile: the default is not moved away.
                    if !p.is_the_default() && stored_slot(&mut tx, &p.id).await?.is_some_and(|slot| slot.is_default()) {
                        return Ok(ProfileSave::DefaultStays);
                    }
                    sqlx::query(
                        "INSERT INTO deadline_profiles (id, category_prefix, urgency, phases, warning_fraction, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6) \
                         ON CONFLICT (id) DO UPDATE SET category_prefix = excluded.category_prefix, \
                           urgency = excluded.urgency, phases = excluded.phases, \
                           warning_fraction = excluded.warning_fraction, updated_at = excluded.updated_at",
                    )
                    .bind(&p.id)
                    .bind(&p.category_prefix)
                    .bind(p.urgency.as_str())
                    .bind(&phases)
                    .bind(p.warning_fraction)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    let data = serde_json::to_value(p).unwrap_or(serde_json::Value::Null);
                    audit(&mut tx, actor, "save", "deadline_profile", &p.id, data, now).await?;
                    tx.commit().await?;
                    Ok(ProfileSave::Saved)
                }

                pub(super) async fn dl_delete_profile(&self, id: &str, actor: &Actor, now: DateTime<Utc>)
                    -> Result<Deletion, StoreError> {
                    let mut tx = self.writer().begin_with(BEGIN_WRITE).await?;
                    let Some(slot) = stored_slot(&mut tx, id).await? else {
                        return Ok(Deletion::NotFound);
                    };
                    // Every case must find some profile: the normal-urgency default stays.
                    if slot.is_default() {
                        return Ok(Deletion::InUse("the default profile"));
                    }
                    sqlx::query("DELETE FROM deadline_profiles WHERE id = $1").bind(id).execute(&mut *tx).await?;
                    audit(&mut tx, actor, "delete", "deadline_profile", id, serde_json::Value::Null, now).await?;
                    tx.commit().await?;
                    Ok(Deletion::Deleted)
                }

                pub(super) async fn dl_calendar_years(&self) -> Result<Vec<StoredCalendarYear>, StoreError> {
                    sqlx::query_as::<$db, CalendarRow>(
                        "SELECT document, loaded_at FROM calendar_years ORDER BY jurisdiction, year",
                    )
                    .fetch_all(self.reader())
                    .await?
                    .into_iter()
                    .map(|row| {
                        Ok(StoredCalendarYear {
                            year: row.calendar_year()?,
                            loaded_at: row.loaded_at,
                        })
                    })
                    .collect()
                }

                pub(super) async fn dl_save_calendar_years(&self, years: &[CalendarYear], actor: &Actor, now: DateTime<Utc>,
                    check: &CalendarCheck<'_>) -> Result<Result<(), CalendarError>, StoreError> {
                    let mut tx = self.writer().begin_with(BEGIN_WRITE).await?;
                    if !$lock_calendars.is_empty() {
                        sqlx::query($lock_calendars).execute(&mut *tx).await?;
                    }
                    let stored = sqlx::query_as::<$db, CalendarRow>("SELECT document, loaded_at FROM calendar_years")
                        .fetch_all(&mut *tx)
                        .await?
                        .into_iter()
                        .map(|row| row.calendar_year())
                        .collect::<Result<Vec<CalendarYear>, StoreError>>()?;
                    if let Err(refusal) = check(stored) {
                        return Ok(Err(refusal));
                    }
                    for y in years {
                        let document = serde_json::to_string(y).map_err(|e| corrupt("calendar year", e))?;
                        // Uploads come versioned (`CalendarYear::versioned`).
                        let version = y.version_name();
                        sqlx::query(
                            "INSERT INTO calendar_years (jurisdiction, year, version, document, loaded_by, loaded_at) \
                             VALUES ($1, $2, $3, $4, $5, $6) \
                             ON CONFLICT (jurisdiction, year) DO UPDATE SET version = excluded.version, \
                               document = excluded.document, loaded_by = excluded.loaded_by, loaded_at = excluded.loaded_at",
                        )
                        .bind(&y.jurisdiction)
                        .bind(i64::from(y.year))
                        .bind(version)
                        .bind(&document)
                        .bind(actor.id.map(|id| id.to_string()))
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                        let entity_id = format!("{}/{}", y.jurisdiction, y.year);
                        // The row above is replaced by the next load of this year;
                        // the audit log keeps each loaded document, so a deadline
                        // counted on an earlier one can still be recomputed.
                        let data = serde_json::json!({"version": version, "document": y});
                        audit(&mut tx, actor, "load", "calendar_year", &entity_id, data, now).await?;
                    }
                    tx.commit().await?;
                    Ok(Ok(()))
                }
            }
        }
    };
}

pub(super) use impl_deadline_data;
