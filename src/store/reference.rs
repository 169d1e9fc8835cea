//! SQL for administering reference data (units, categories, zones, rules). Every
//! change is written with an audit record and a bump of the routing version, in
//! one transaction, so that every instance rebuilds its routing table.

/// Expands to inherent methods on a backend; the `Repository` impl delegates.
macro_rules! impl_reference_data {
    ($repo:ident, $db:ty) => {
        mod reference_sql {
            use super::*;
            use chrono::{DateTime, Utc};
            use sqlx::AssertSqlSafe;
            use uuid::Uuid;

            use $crate::store::records::{AuditRow, RuleRow};
            use $crate::store::*;

            const RULE_COLUMNS: &str = "id, version, category_prefix, zone_code, lead_unit, co_units, \
                deadline_profile, priority, valid_from, valid_to, active, note";

            /// Records a change to reference data: its audit entry, a new
            /// reference version (which every instance's routing table and
            /// deadline book follow), and another chance for the reports set
            /// aside by automatic dispatch, since this change may be what they
            /// were waiting for (next year's calendar, a unit, a rule).
            pub(in super::super) async fn audit(
                tx: &mut sqlx::Transaction<'static, $db>,
                actor: &Actor,
                action: &str,
                entity: &str,
                entity_id: &str,
                data: serde_json::Value,
                now: DateTime<Utc>,
            ) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO audit_log (id, actor_id, actor_role, action, entity, entity_id, data, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(Uuid::now_v7().to_string())
                .bind(actor.id.map(|id| id.to_string()))
                .bind(&actor.role)
                .bind(action)
                .bind(entity)
                .bind(entity_id)
                .bind(data.to_string())
                .bind(now)
                .execute(&mut **tx)
                .await?;
                sqlx::query("UPDATE routing_state SET version = version + 1 WHERE id = 1").execute(&mut **tx).await?;
                sqlx::query("UPDATE cases SET auto_dispatch_after = NULL WHERE auto_dispatch_after IS NOT NULL")
                    .execute(&mut **tx)
                    .await?;
                Ok(())
            }

            fn unit_json(unit: &UnitRecord) -> serde_json::Value {
                serde_json::to_value(unit).unwrap_or(serde_json::Value::Null)
            }

            async fn upsert_category(tx: &mut sqlx::Transaction<'static, $db>, c: &CategorySeed) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO categories (code, parent_code, name_zh, name_en, sort_order, active, national_code, \
                       service_code, default_urgency, requires_photo, public, deadline_profile, auto_dispatch, \
                       reporter_may_check, max_extensions) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15) \
                     ON CONFLICT (code) DO UPDATE SET parent_code = excluded.parent_code, name_zh = excluded.name_zh, \
                       name_en = excluded.name_en, sort_order = excluded.sort_order, active = excluded.active, \
                       national_code = excluded.national_code, service_code = excluded.service_code, \
                       default_urgency = excluded.default_urgency, requires_photo = excluded.requires_photo, \
                       public = excluded.public, deadline_profile = excluded.deadline_profile, \
                       auto_dispatch = excluded.auto_dispatch, reporter_may_check = excluded.reporter_may_check, \
                       max_extensions = excluded.max_extensions",
                )
                .bind(&c.code)
                .bind(c.parent_code.as_deref())
                .bind(&c.name_zh)
                .bind(&c.name_en)
                .bind(c.sort_order)
                .bind(c.active)
                .bind(c.national_code.as_deref())
                .bind(c.service_code.as_deref())
                .bind(&c.default_urgency)
                .bind(c.requires_photo)
                .bind(c.public)
                .bind(c.deadline_profile.as_deref())
                .bind(c.policy.auto_dispatch)
                .bind(c.policy.reporter_may_check)
                .bind(i64::from(c.policy.max_extensions))
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            /// Returns whether the zone existed before.
            async fn upsert_zone(tx: &mut sqlx::Transaction<'static, $db>, z: &ZoneRecord, now: DateTime<Utc>)
                -> Result<bool, StoreError> {
                let existed: Option<String> = sqlx::query_scalar("SELECT code FROM zones WHERE code = $1")
                    .bind(&z.code)
                    .fetch_optional(&mut **tx)
                    .await?;
                sqlx::query(
                    "INSERT INTO zones (code, name, kind, parent_code, geometry, created_at, updated_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $6) \
                     ON CONFLICT (code) DO UPDATE SET name = excluded.name, kind = excluded.kind, \
                       parent_code = excluded.parent_code, geometry = excluded.geometry, \
                       updated_at = excluded.updated_at",
                )
                .bind(&z.code)
                .bind(&z.name)
                .bind(&z.kind)
                .bind(z.parent_code.as_deref())
                .bind(&z.geometry)
                .bind(now)
                .execute(&mut **tx)
                .await?;
                Ok(existed.is_some())
            }

            /// Stores `rule` as the current version (the caller retires the previous one).
            async fn insert_rule_version(tx: &mut sqlx::Transaction<'static, $db>, rule: &RuleRecord, actor: &Actor,
                now: DateTime<Utc>) -> Result<(), StoreError> {
                sqlx::query(
                    "INSERT INTO rules (id, version, category_prefix, zone_code, lead_unit, co_units, deadline_profile, \
                       priority, valid_from, valid_to, active, note, is_current, created_by, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
                )
                .bind(rule.id.to_string())
                .bind(rule.version)
                .bind(&rule.category_prefix)
                .bind(rule.zone_code.as_deref())
                .bind(&rule.lead_unit)
                .bind(serde_json::to_string(&rule.co_units).unwrap_or_else(|_| "[]".into()))
                .bind(rule.deadline_profile.as_deref())
                .bind(rule.priority)
                .bind(rule.valid_from)
                .bind(rule.valid_to)
                .bind(rule.active)
                .bind(rule.note.as_deref())
                .bind(true)
                .bind(actor.id.map(|id| id.to_string()))
                .bind(now)
                .execute(&mut **tx)
                .await?;
                Ok(())
            }

            impl $repo {
                pub(super) async fn ref_seed(&self, data: &ReferenceData, actor: &Actor, now: DateTime<Utc>)
                    -> Result<bool, StoreError> {
                    let mut tx = self.writer().begin_with(BEGIN_WRITE).await?;
                    let units: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM units").fetch_one(&mut *tx).await?;
                    if units > 0 {
                        return Ok(false);
                    }
                    // Parents first, so the self-references always point at a stored row.
                    let mut categories: Vec<&CategorySeed> = data.categories.iter().collect();
                    categories.sort_by_key(|c| (c.parent_code.is_some(), c.code.clone()));
                    for c in categories {
                        upsert_category(&mut tx, c).await?;
                    }
                    for u in &data.units {
                        sqlx::query(
                            "INSERT INTO units (code, name, kind, parent_code, contacts, active, created_at, updated_at) \
                             VALUES ($1, $2, $3, NULL, $4, $5, $6, $6)",
                        )
                        .bind(&u.code)
                        .bind(&u.name)
                        .bind(&u.kind)
                        .bind(u.contacts.to_string())
                        .bind(u.active)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                    }
                    for u in data.units.iter().filter(|u| u.parent_code.is_some()) {
                        sqlx::query("UPDATE units SET parent_code = $1 WHERE code = $2")
                            .bind(u.parent_code.as_deref())
                            .bind(&u.code)
                            .execute(&mut *tx)
                            .await?;
                    }
                    for z in &data.zones {
                        upsert_zone(&mut tx, z, now).await?;
                    }
                    for r in &data.rules {
                        insert_rule_version(&mut tx, r, actor, now).await?;
                    }
                    let counts = serde_json::json!({
                        "units": data.units.len(), "categories": data.categories.len(),
                        "zones": data.zones.len(), "rules": data.rules.len(),
                    });
                    audit(&mut tx, actor, "seed", "reference_data", "*", counts, now).await?;
                    tx.commit().await?;
                    Ok(true)
                }

                pub(super) async fn ref_create_unit(&self, unit: &UnitRecord, actor: &Actor, now: DateTime<Utc>)
                    -> Result<(), StoreError> {
                    let mut tx = self.writer().begin_with(BEGIN_WRITE).await?;
                    sqlx::query(
                        "INSERT INTO units (code, name, kind, parent_code, contacts, active, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $7)",
                    )
                    .bind(&unit.code)
                    .bind(&unit.name)
                    .bind(&unit.kind)
                    .bind(unit.parent_code.as_deref())
                    .bind(unit.contacts.to_string())
                    .bind(unit.active)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    audit(&mut tx, actor, "create", "unit", &unit.code, unit_json(unit), now).await?;
                    tx.commit().await?;
                    Ok(())
                }

                pub(super) async fn ref_update_unit(&self, unit: &UnitRecord, actor: &Actor, now: DateTime<Utc>)
                    -> Result<bool, StoreError> {
                    let mut tx = self.writer().begin_with(BEGIN_WRITE).await?;
                    let updated = sqlx::query(
                        "UPDATE units SET name = $2, kind = $3, parent_code = $4, contacts = $5, active = $6, \
                         updated_at = $7 WHERE code = $1",
                    )
                    .bind(&unit.code)
                    .bind(&unit.name)
                    .bind(&unit.kind)
                    .bind(unit.parent_code.as_deref())
                    .bind(unit.contacts.to_string())
                    .bind(unit.active)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    if updated == 0 {
                        return Ok(false);
                    }
                    audit(&mut tx, actor, "update", "unit", &unit.code, unit_json(unit), now).await?;
                    tx.commit().await?;
                    Ok(true)
                }

                pub(super) async fn ref_delete_unit(&self, code: &str, actor: &Actor, now: DateTime<Utc>)
                    -> Result<Deletion, StoreError> {
                    let mut tx = self.writer().begin_with(BEGIN_WRITE).await?;
                    let exists: Option<String> = sqlx::query_scalar("SELECT code FROM units WHERE code = $1")
                        .bind(code)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if exists.is_none() {
                        return Ok(Deletion::NotFound);
                    }
                    let uses: [(&str, &str); 4] = [
                        ("cases", "SELECT COUNT(*) FROM cases WHERE lead_unit = $1"),
                        ("rules", "SELECT COUNT(*) FROM rules WHERE lead_unit = $1"),
                        ("staff accounts", "SELECT COUNT(*) FROM users WHERE unit_id = $1"),
                        ("child units", "SELECT COUNT(*) FROM units WHERE parent_code = $1"),
                    ];
                    for (what, sql) in uses {
                        let count: i64 = sqlx::query_scalar(sql).bind(code).fetch_one(&mut *tx).await?;
                        if count > 0 {
                            return Ok(Deletion::InUse(what));
                        }
                    }
                    sqlx::query("DELETE FROM units WHERE code = $1").bind(code).execute(&mut *tx).await?;
                    audit(&mut tx, actor, "delete", "unit", code, serde_json::Value::Null, now).await?;
                    tx.commit().await?;
                    Ok(Deletion::Deleted)
                }

                pub(super) async fn ref_save_category(&self, c: &CategorySeed, actor: &Actor, now: DateTime<Utc>)
                    -> Result<(), StoreError> {
                    let mut tx = self.writer().begin_with(BEGIN_WRITE).await?;
                    upsert_category(&mut tx, c).await?;
                    let data = serde_json::json!({"name_zh": c.name_zh, "name_en": c.name_en, "active": c.active});
                    audit(&mut tx, actor, "save", "category", &c.code, data, now).await?;
                    tx.commit().await?;
                    Ok(())
                }

                pub(super) async fn ref_import_zones(&self, zones: &[ZoneRecord], actor: &Actor, now: DateTime<Utc>)
                    -> Result<ImportCounts, StoreError> {
                    let mut tx = self.writer().begin_with(BEGIN_WRITE).await?;
                    let mut counts = ImportCounts::default();
                    for z in zones {
                        if upsert_zone(&mut tx, z, now).await? { counts.updated += 1 } else { counts.created += 1 }
                    }
                    let data = serde_json::json!({"created": counts.created, "updated": counts.updated});
                    audit(&mut tx, actor, "import", "zones", "*", data, now).await?;
                    tx.commit().await?;
                    Ok(counts)
                }

                pub(super) async fn ref_zone(&self, code: &str) -> Result<Option<ZoneRecord>, StoreError> {
                    Ok(sqlx::query_as::<$db, ZoneRecord>(
                        "SELECT code, name, kind, parent_code, geometry FROM zones WHERE code = $1",
                    )
                    .bind(code)
                    .fetch_optional(self.reader())
                    .await?)
                }

                pub(super) async fn ref_rule_versions(&self, id: Uuid) -> Result<Vec<RuleRecord>, StoreError> {
                    let sql = format!("SELECT {RULE_COLUMNS} FROM rules WHERE id = $1 ORDER BY version");
                    sqlx::query_as::<$db, RuleRow>(AssertSqlSafe(sql))
                        .bind(id.to_string())
                        .fetch_all(self.reader())
                        .await?
                        .into_iter()
                        .map(RuleRecord::try_from)
                        .collect()
                }

                pub(super) async fn ref_save_rule(&self, rule: &RuleRecord, actor: &Actor, now: DateTime<Utc>)
                    -> Result<RuleRecord, StoreError> {
                    let mut tx = self.writer().begin_with(BEGIN_WRITE).await?;
                    let last: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM rules WHERE id = $1")
                        .bind(rule.id.to_string())
                        .fetch_one(&mut *tx)
                        .await?;
                    sqlx::query("UPDATE rules SET is_current = $2 WHERE id = $1 AND is_current")
                        .bind(rule.id.to_string())
                        .bind(false)
                        .execute(&mut *tx)
                        .await?;
                    let saved = RuleRecord { version: last.unwrap_or(0) + 1, ..rule.clone() };
                    insert_rule_version(&mut tx, &saved, actor, now).await?;
                    let data = serde_json::json!({
                        "version": saved.version, "category_prefix": saved.category_prefix,
                        "zone_code": saved.zone_code, "lead_unit": saved.lead_unit,
                        "co_units": saved.co_units, "priority": saved.priority, "active": saved.active,
                    });
                    audit(&mut tx, actor, "save", "rule", &saved.id.to_string(), data, now).await?;
                    tx.commit().await?;
                    Ok(saved)
                }

                pub(super) async fn ref_delete_rule(&self, id: Uuid, actor: &Actor, now: DateTime<Utc>)
                    -> Result<Deletion, StoreError> {
                    let mut tx = self.writer().begin_with(BEGIN_WRITE).await?;
                    let versions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM rules WHERE id = $1")
                        .bind(id.to_string())
                        .fetch_one(&mut *tx)
                        .await?;
                    if versions == 0 {
                        return Ok(Deletion::NotFound);
                    }
                    let cases: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM cases WHERE rule_id = $1")
                        .bind(id.to_string())
                        .fetch_one(&mut *tx)
                        .await?;
                    if cases > 0 {
                        return Ok(Deletion::InUse("cases"));
                    }
                    sqlx::query("DELETE FROM rules WHERE id = $1").bind(id.to_string()).execute(&mut *tx).await?;
                    audit(&mut tx, actor, "delete", "rule", &id.to_string(), serde_json::Value::Null, now).await?;
                    tx.commit().await?;
                    Ok(Deletion::Deleted)
                }

                pub(super) async fn ref_audit_log(&self, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
                    sqlx::query_as::<$db, AuditRow>(
                        "SELECT id, actor_id, actor_role, action, entity, entity_id, data, created_at FROM audit_log \
                         ORDER BY id DESC LIMIT $1",
                    )
                    .bind(limit)
                    .fetch_all(self.reader())
                    .await?
                    .into_iter()
                    .map(AuditEntry::try_from)
                    .collect()
                }
            }
        }
    };
}

pub(super) use impl_reference_data;
