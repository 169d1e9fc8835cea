//! The live routing table: built from the store at start, swapped atomically on
//! every change (readers never block, a lookup never touches the database), and
//! kept in step with other instances by polling the store's routing version.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use arc_swap::ArcSwap;

use crate::domain::code::{CODE_RULE, is_code};
use crate::domain::routing::{RoutingTable, Rule, Zone, ZoneKind, parse_zone_geometry};
use crate::error::ItemError;
use crate::store::{Repository, RoutingData, RuleRecord, StoreError, ZoneRecord};

#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("zone {code}: {reason}")]
    Zone { code: String, reason: String },
    #[error("rule {id}: {reason}")]
    Rule { id: uuid::Uuid, reason: String },
    #[error("routing table: {0}")]
    Build(#[from] crate::domain::routing::BuildError),
}

pub struct LiveRouting {
    table: ArcSwap<RoutingTable>,
    version: AtomicI64,
    /// One rebuild at a time (an admin's write and the poller can both ask):
    /// otherwise the one that read older data could store its table after the
    /// newer one's and before its version, leaving an old table under the new
    /// version until the next change.
    rebuilding: tokio::sync::Mutex<()>,
}

/// A stored zone as the engine sees it.
pub fn zone_from_record(record: &ZoneRecord) -> Result<Zone, RoutingError> {
    let invalid = |reason: String| RoutingError::Zone {
        code: record.code.clone(),
        reason,
    };
    let kind: ZoneKind = serde_json::from_value(serde_json::Value::String(record.kind.clone()))
        .map_err(|_| invalid(format!("unknown kind {:?}", record.kind)))?;
    let geometry: geojson::Geometry = record
        .geometry
        .parse()
        .map_err(|e| invalid(format!("GeoJSON: {e}")))?;
    let geometry = parse_zone_geometry(&geometry).map_err(|e| invalid(e.to_string()))?;
    Ok(Zone::new(
        record.code.clone(),
        record.name.clone(),
        kind,
        record.parent_code.clone(),
        geometry,
    ))
}

pub fn rule_from_record(record: &RuleRecord) -> Result<Rule, RoutingError> {
    let narrow = |value: i64, what: &str| {
        i32::try_from(value).map_err(|_| RoutingError::Rule {
            id: record.id,
            reason: format!("{what} out of range"),
        })
    };
    Ok(Rule {
        id: record.id,
        version: narrow(record.version, "version")?,
        category_prefix: record.category_prefix.clone(),
        zone_code: record.zone_code.clone(),
        lead_unit: record.lead_unit.clone(),
        co_units: record.co_units.clone(),
        deadline_profile: record.deadline_profile.clone(),
        priority: narrow(record.priority, "priority")?,
        valid_from: record.valid_from,
        valid_to: record.valid_to,
        active: record.active,
    })
}

/// Zones from a GeoJSON FeatureCollection whose features carry `code`, `name`,
/// `kind` and `parent` properties. Every feature is checked — properties, kind,
/// geometry, codes unique in the file — and either all zones come back or every
/// reason, by feature index. Geometry is kept as the GeoJSON text given.
pub fn parse_zone_collection(text: &str) -> Result<Vec<ZoneRecord>, Vec<ItemError>> {
    parse_zone_collection_with_progress(text, &mut |_, _| {})
}

/// As [`parse_zone_collection`], calling `progress(done, total)` after each feature.
pub fn parse_zone_collection_with_progress(
    text: &str,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Vec<ZoneRecord>, Vec<ItemError>> {
    let collection: geojson::FeatureCollection = text.parse().map_err(|e| {
        vec![ItemError {
            index: 0,
            key: None,
            reason: format!("not a GeoJSON FeatureCollection: {e}"),
        }]
    })?;
    let mut zones = Vec::with_capacity(collection.features.len());
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let total = collection.features.len();
    for (index, feature) in collection.features.into_iter().enumerate() {
        progress(index, total);
        let property = |name: &str| {
            feature
                .property(name)
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        let code = property("code");
        let mut refuse = |reason: String| {
            errors.push(ItemError {
                index,
                key: code.clone(),
                reason,
            })
        };
        let (Some(code_value), Some(name), Some(kind)) =
            (code.clone(), property("name"), property("kind"))
        else {
            refuse("every feature needs string properties `code`, `name` and `kind`".into());
            continue;
        };
        let Some(geometry) = feature.geometry.as_ref() else {
            refuse("the feature has no geometry".into());
            continue;
        };
        if !is_code(&code_value) {
            refuse(format!("zone code {code_value:?} is not {CODE_RULE}"));
            continue;
        }
        if !seen.insert(code_value.clone()) {
            refuse(format!(
                "zone code {code_value} appears more than once in this file"
            ));
            continue;
        }
        let record = ZoneRecord {
            code: code_value,
            name,
            kind,
            parent_code: property("parent"),
            geometry: geometry.to_string(),
        };
        match zone_from_record(&record) {
            Ok(_) => zones.push(record),
            Err(RoutingError::Zone { reason, .. }) => refuse(reason),
            Err(other) => refuse(other.to_string()),
        }
    }
    progress(total, total);
    if errors.is_empty() {
        Ok(zones)
    } else {
        Err(errors)
    }
}

/// The table that importing `imported` (upsert by code) into `current` would give:
/// proves the import consistent with everything stored (parents, rules' zones).
pub fn table_after_import(
    current: RoutingData,
    imported: &[ZoneRecord],
) -> Result<RoutingTable, RoutingError> {
    let mut zones = current.zones;
    zones.retain(|z| !imported.iter().any(|i| i.code == z.code));
    zones.extend(imported.iter().cloned());
    build_table(&RoutingData {
        version: current.version,
        zones,
        rules: current.rules,
    })
}

/// Builds the engine's table from stored data (CPU work: call off the async threads).
pub fn build_table(data: &RoutingData) -> Result<RoutingTable, RoutingError> {
    let zones = data
        .zones
        .iter()
        .map(zone_from_record)
        .collect::<Result<Vec<_>, _>>()?;
    let rules = data
        .rules
        .iter()
        .map(rule_from_record)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(RoutingTable::build(zones, rules)?)
}

impl LiveRouting {
    pub async fn load(repo: &dyn Repository) -> Result<LiveRouting, RoutingError> {
        let data = repo.routing_data().await?;
        let version = data.version;
        let table = tokio::task::spawn_blocking(move || build_table(&data))
            .await
            .map_err(|e| StoreError::Unavailable(format!("building the routing table: {e}")))??;
        Ok(LiveRouting {
            table: ArcSwap::from_pointee(table),
            version: AtomicI64::new(version),
            rebuilding: tokio::sync::Mutex::new(()),
        })
    }

    /// The current table; cheap, never blocks.
    pub fn table(&self) -> Arc<RoutingTable> {
        self.table.load_full()
    }

    pub fn version(&self) -> i64 {
        self.version.load(Ordering::Acquire)
    }

    /// Rebuilds when the stored version moved; returns whether it did.
    pub async fn refresh(&self, repo: &dyn Repository) -> Result<bool, RoutingError> {
        let _rebuilding = self.rebuilding.lock().await;
        if repo.routing_version().await? == self.version() {
            return Ok(false);
        }
        let data = repo.routing_data().await?;
        let version = data.version;
        let table = tokio::task::spawn_blocking(move || build_table(&data))
            .await
            .map_err(|e| StoreError::Unavailable(format!("building the routing table: {e}")))??;
        self.table.store(Arc::new(table));
        self.version.store(version, Ordering::Release);
        Ok(true)
    }
}
