//! What the repository takes and gives back, and the rows they map from.

use std::fmt;

use chrono::{DateTime, NaiveDate, Utc};
use uuid::Uuid;

use super::StoreError;
use super::workflow::{NewEvent, system_event};
use crate::domain::case::CaseState;
use crate::domain::geo::LatLon;
use crate::domain::phone::Phone;
use crate::domain::role::Role;

pub(super) fn parse_id(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|_| StoreError::Corrupt(format!("bad id {s:?}")))
}

pub(super) fn parse_opt_id(s: Option<String>) -> Result<Option<Uuid>, StoreError> {
    s.as_deref().map(parse_id).transpose()
}

// --- accounts -------------------------------------------------------------------

#[derive(Clone)]
pub struct User {
    pub id: Uuid,
    pub role: Role,
    pub unit_id: Option<String>,
    pub username: Option<String>,
    /// Argon2 PHC string; staff only.
    pub password_hash: Option<String>,
    pub phone: Option<Phone>,
    pub display_name: Option<String>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("id", &self.id)
            .field("role", &self.role)
            .field("unit_id", &self.unit_id)
            .field("username", &self.username)
            .field("phone", &self.phone)
            .field("disabled", &self.disabled)
            .finish_non_exhaustive()
    }
}

pub struct NewUser {
    pub id: Uuid,
    pub role: Role,
    pub unit_id: Option<String>,
    pub username: Option<String>,
    pub password_hash: Option<String>,
    pub phone: Option<Phone>,
    pub display_name: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(super) struct UserRow {
    id: String,
    role: String,
    unit_id: Option<String>,
    username: Option<String>,
    password_hash: Option<String>,
    phone: Option<String>,
    display_name: Option<String>,
    disabled: bool,
    created_at: DateTime<Utc>,
}

impl TryFrom<UserRow> for User {
    type Error = StoreError;
    fn try_from(row: UserRow) -> Result<User, StoreError> {
        Ok(User {
            id: parse_id(&row.id)?,
            role: Role::parse(&row.role)
                .ok_or_else(|| StoreError::Corrupt(format!("bad role {:?}", row.role)))?,
            unit_id: row.unit_id,
            username: row.username,
            password_hash: row.password_hash,
            phone: row
                .phone
                .as_deref()
                .map(Phone::from_stored)
                .transpose()
                .map_err(|_| StoreError::Corrupt("bad phone".into()))?,
            display_name: row.display_name,
            disabled: row.disabled,
            created_at: row.created_at,
        })
    }
}

// --- sign-in --------------------------------------------------------------------

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OtpRecord {
    pub code_hash: String,
    /// Including the attempt just counted.
    pub attempts: i64,
    pub expires_at: DateTime<Utc>,
}

pub struct NewRefreshToken {
    pub token_hash: String,
    pub family_id: Uuid,
    pub user_id: Uuid,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug)]
pub enum Rotation {
    /// The successor is stored; here is whom it belongs to.
    Rotated(User),
    /// The token had been used before: its family is now revoked.
    Reused,
    /// Unknown, expired or revoked.
    Invalid,
}

#[derive(sqlx::FromRow)]
pub(super) struct RefreshRow {
    pub family_id: String,
    pub user_id: String,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
    pub revoked: bool,
}

// --- photos ---------------------------------------------------------------------

/// One stored, metadata-free JPEG rendition of a photo.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredImage {
    pub key: String,
    pub width: i64,
    pub height: i64,
    pub etag: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PhotoRecord {
    pub id: Uuid,
    pub owner_id: Uuid,
    pub case_id: Option<Uuid>,
    /// MIME type of the upload as sniffed.
    pub source_type: String,
    pub width: i64,
    pub height: i64,
    pub taken_at: Option<DateTime<Utc>>,
    pub gps: Option<LatLon>,
    pub sha256: String,
    /// 64-bit perceptual hash, 16 hex digits.
    pub phash: String,
    pub byte_size: i64,
    pub display: StoredImage,
    pub thumbnail: StoredImage,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(super) struct PhotoRow {
    id: String,
    owner_id: String,
    case_id: Option<String>,
    source_type: String,
    width: i64,
    height: i64,
    taken_at: Option<DateTime<Utc>>,
    gps_lat: Option<f64>,
    gps_lon: Option<f64>,
    sha256: String,
    phash: String,
    byte_size: i64,
    display_key: String,
    display_width: i64,
    display_height: i64,
    display_etag: String,
    thumb_key: String,
    thumb_width: i64,
    thumb_height: i64,
    thumb_etag: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<PhotoRow> for PhotoRecord {
    type Error = StoreError;
    fn try_from(row: PhotoRow) -> Result<PhotoRecord, StoreError> {
        Ok(PhotoRecord {
            id: parse_id(&row.id)?,
            owner_id: parse_id(&row.owner_id)?,
            case_id: parse_opt_id(row.case_id)?,
            source_type: row.source_type,
            width: row.width,
            height: row.height,
            taken_at: row.taken_at,
            gps: row
                .gps_lat
                .zip(row.gps_lon)
                .map(|(lat, lon)| LatLon { lat, lon }),
            sha256: row.sha256,
            phash: row.phash,
            byte_size: row.byte_size,
            display: StoredImage {
                key: row.display_key,
                width: row.display_width,
                height: row.display_height,
                etag: row.display_etag,
            },
            thumbnail: StoredImage {
                key: row.thumb_key,
                width: row.thumb_width,
                height: row.thumb_height,
                etag: row.thumb_etag,
            },
            created_at: row.created_at,
        })
    }
}

// --- categories -----------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Category {
    pub code: String,
    pub parent_code: Option<String>,
    pub name_zh: String,
    pub name_en: String,
    pub sort_order: i64,
    pub active: bool,
}

// --- reports and cases ----------------------------------------------------------

/// The first response to a request made with an `Idempotency-Key`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct StoredResponse {
    pub request_hash: String,
    pub status: i64,
    pub body: String,
}

#[derive(Clone)]
pub struct IdempotencyClaim {
    pub user_id: Uuid,
    pub key: String,
    /// SHA-256 of the request body: the same key with another body is refused.
    pub request_hash: String,
}

#[derive(Clone)]
pub struct NewReport {
    pub id: Uuid,
    pub reporter_id: Uuid,
    pub reporter_role: Role,
    pub source: String,
    pub category: String,
    pub location: LatLon,
    pub accuracy_m: Option<f64>,
    pub address: Option<String>,
    pub description: String,
    pub confidential: bool,
    pub photo_ids: Vec<Uuid>,
    /// Set when a photo's own GPS is far from the report: the operator checks.
    pub photo_distance_m: Option<f64>,
    pub now: DateTime<Utc>,
    /// The day in the city's zone, for the tracking number.
    pub local_day: NaiveDate,
    pub tracking_prefix: String,
    pub routing: CaseRouting,
}

impl NewReport {
    /// The case exactly as it will be stored: everything is known beforehand, so
    /// the response can be rendered (and kept for idempotent replays) in the same
    /// transaction that stores it.
    pub fn to_record(&self, tracking_no: String) -> CaseRecord {
        CaseRecord {
            id: self.id,
            tracking_no,
            state: CaseState::Submitted,
            source: self.source.clone(),
            category_code: self.category.clone(),
            location: self.location,
            accuracy_m: self.accuracy_m,
            address: self.address.clone(),
            description: self.description.clone(),
            confidential: self.confidential,
            reporter_id: self.reporter_id,
            photo_distance_m: self.photo_distance_m,
            version: 1,
            created_at: self.now,
            updated_at: self.now,
            photo_ids: self.photo_ids.clone(),
            after_photo_ids: Vec::new(),
            routing: self.routing.clone(),
        }
    }

    /// The first two timeline events of the stored `case`: `submitted` (public:
    /// the reporter and the 12345 platform hear of it) and `routed` (staff only).
    pub(super) fn first_events(&self, case: &CaseRecord) -> [NewEvent; 2] {
        let submitted = NewEvent {
            id: Uuid::now_v7(),
            kind: "submitted".into(),
            actor_id: Some(case.reporter_id),
            actor_role: self.reporter_role.as_str().into(),
            public: true,
            data: serde_json::json!({
                "source": self.source,
                "category": self.category,
                "tracking_no": case.tracking_no,
            }),
            at: case.created_at,
        };
        let routing = serde_json::to_value(&case.routing).unwrap_or_else(|_| serde_json::json!({}));
        [submitted, system_event("routed", routing, case.created_at)]
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct CaseRecord {
    pub id: Uuid,
    pub tracking_no: String,
    pub state: CaseState,
    pub source: String,
    pub category_code: String,
    pub location: LatLon,
    pub accuracy_m: Option<f64>,
    pub address: Option<String>,
    pub description: String,
    pub confidential: bool,
    pub reporter_id: Uuid,
    pub photo_distance_m: Option<f64>,
    pub version: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// The report's photos, in the order the reporter gave them.
    pub photo_ids: Vec<Uuid>,
    /// The units' after-photos (their proof), in the order they were attached.
    pub after_photo_ids: Vec<Uuid>,
    pub routing: CaseRouting,
}

#[derive(sqlx::FromRow)]
pub(super) struct CaseRow {
    id: String,
    tracking_no: String,
    state: String,
    source: String,
    category_code: String,
    lat: f64,
    lon: f64,
    accuracy_m: Option<f64>,
    address: Option<String>,
    description: String,
    confidential: bool,
    reporter_id: String,
    photo_distance_m: Option<f64>,
    version: i64,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    zone_path: String,
    rule_id: Option<String>,
    rule_version: Option<i64>,
    lead_unit: Option<String>,
    co_units: String,
    deadline_profile: Option<String>,
    suggested_zone: Option<String>,
}

impl CaseRow {
    /// `photos` are the case's, in attachment order: the report's own (stage
    /// `before`), then the units' proof (stage `after`).
    pub(super) fn into_record(self, photos: Vec<CasePhotoRow>) -> Result<CaseRecord, StoreError> {
        let mut photo_ids = Vec::new();
        let mut after_photo_ids = Vec::new();
        for photo in photos {
            let id = parse_id(&photo.id)?;
            if photo.stage == AFTER_STAGE {
                after_photo_ids.push(id);
            } else {
                photo_ids.push(id);
            }
        }
        Ok(CaseRecord {
            id: parse_id(&self.id)?,
            tracking_no: self.tracking_no,
            state: CaseState::parse(&self.state)
                .ok_or_else(|| StoreError::Corrupt(format!("bad case state {:?}", self.state)))?,
            source: self.source,
            category_code: self.category_code,
            location: LatLon {
                lat: self.lat,
                lon: self.lon,
            },
            accuracy_m: self.accuracy_m,
            address: self.address,
            description: self.description,
            confidential: self.confidential,
            reporter_id: parse_id(&self.reporter_id)?,
            photo_distance_m: self.photo_distance_m,
            version: self.version,
            created_at: self.created_at,
            updated_at: self.updated_at,
            photo_ids,
            after_photo_ids,
            routing: CaseRouting {
                zone_path: serde_json::from_str(&self.zone_path)
                    .map_err(|e| StoreError::Corrupt(format!("case zone_path: {e}")))?,
                rule: match (self.rule_id, self.rule_version) {
                    (Some(id), Some(version)) => Some((parse_id(&id)?, version)),
                    _ => None,
                },
                lead_unit: self.lead_unit,
                co_units: serde_json::from_str(&self.co_units)
                    .map_err(|e| StoreError::Corrupt(format!("case co_units: {e}")))?,
                deadline_profile: self.deadline_profile,
                suggested_zone: self.suggested_zone,
            },
        })
    }

    pub(super) fn id(&self) -> &str {
        &self.id
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct CasePhotoRow {
    pub case_id: String,
    id: String,
    stage: String,
}

/// The stage of a photo attached as a unit's proof (`report_done`); a report's
/// own photos keep the default, `before`.
pub(super) const AFTER_STAGE: &str = "after";

/// One entry of a case's append-only timeline.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseEvent {
    pub id: Uuid,
    pub case_id: Uuid,
    pub kind: String,
    pub actor_id: Option<Uuid>,
    pub actor_role: String,
    /// Shown to the reporter as well as staff.
    pub public: bool,
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(super) struct CaseEventRow {
    id: String,
    case_id: String,
    kind: String,
    actor_id: Option<String>,
    actor_role: String,
    public: bool,
    data: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<CaseEventRow> for CaseEvent {
    type Error = StoreError;
    fn try_from(row: CaseEventRow) -> Result<CaseEvent, StoreError> {
        Ok(CaseEvent {
            id: parse_id(&row.id)?,
            case_id: parse_id(&row.case_id)?,
            kind: row.kind,
            actor_id: parse_opt_id(row.actor_id)?,
            actor_role: row.actor_role,
            public: row.public,
            data: serde_json::from_str(&row.data)
                .map_err(|e| StoreError::Corrupt(format!("event data: {e}")))?,
            created_at: row.created_at,
        })
    }
}

// --- reference data for routing ---------------------------------------------------

/// A responsible unit (责任单位).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UnitRecord {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub parent_code: Option<String>,
    /// `[{name, phone}]` as given.
    pub contacts: serde_json::Value,
    pub active: bool,
}

#[derive(sqlx::FromRow)]
pub(super) struct UnitRow {
    code: String,
    name: String,
    kind: String,
    parent_code: Option<String>,
    contacts: String,
    active: bool,
}

impl TryFrom<UnitRow> for UnitRecord {
    type Error = StoreError;
    fn try_from(row: UnitRow) -> Result<UnitRecord, StoreError> {
        Ok(UnitRecord {
            code: row.code,
            name: row.name,
            kind: row.kind,
            parent_code: row.parent_code,
            contacts: serde_json::from_str(&row.contacts)
                .map_err(|e| StoreError::Corrupt(format!("unit contacts: {e}")))?,
            active: row.active,
        })
    }
}

/// A zone as stored: its geometry is the GeoJSON it was imported as.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct ZoneRecord {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub parent_code: Option<String>,
    pub geometry: String,
}

/// One version of an ownership rule (责任规则).
#[derive(Debug, Clone, PartialEq)]
pub struct RuleRecord {
    pub id: Uuid,
    pub version: i64,
    pub category_prefix: String,
    pub zone_code: Option<String>,
    pub lead_unit: String,
    pub co_units: Vec<String>,
    pub deadline_profile: Option<String>,
    pub priority: i64,
    pub valid_from: Option<DateTime<Utc>>,
    pub valid_to: Option<DateTime<Utc>>,
    pub active: bool,
    pub note: Option<String>,
}

#[derive(sqlx::FromRow)]
pub(super) struct RuleRow {
    id: String,
    version: i64,
    category_prefix: String,
    zone_code: Option<String>,
    lead_unit: String,
    co_units: String,
    deadline_profile: Option<String>,
    priority: i64,
    valid_from: Option<DateTime<Utc>>,
    valid_to: Option<DateTime<Utc>>,
    active: bool,
    note: Option<String>,
}

impl TryFrom<RuleRow> for RuleRecord {
    type Error = StoreError;
    fn try_from(row: RuleRow) -> Result<RuleRecord, StoreError> {
        Ok(RuleRecord {
            id: parse_id(&row.id)?,
            version: row.version,
            category_prefix: row.category_prefix,
            zone_code: row.zone_code,
            lead_unit: row.lead_unit,
            co_units: serde_json::from_str(&row.co_units)
                .map_err(|e| StoreError::Corrupt(format!("rule co_units: {e}")))?,
            deadline_profile: row.deadline_profile,
            priority: row.priority,
            valid_from: row.valid_from,
            valid_to: row.valid_to,
            active: row.active,
            note: row.note,
        })
    }
}

/// A category with everything routing and intake need to know about it.
#[derive(Debug, Clone, PartialEq)]
pub struct CategorySeed {
    pub code: String,
    pub parent_code: Option<String>,
    pub name_zh: String,
    pub name_en: String,
    pub national_code: Option<String>,
    pub service_code: Option<String>,
    pub default_urgency: String,
    pub requires_photo: bool,
    pub public: bool,
    pub deadline_profile: Option<String>,
    pub sort_order: i64,
    pub active: bool,
    pub policy: super::workflow::CategoryPolicy,
}

/// Reference data loaded together, e.g. the demo city.
#[derive(Debug, Clone, Default)]
pub struct ReferenceData {
    pub units: Vec<UnitRecord>,
    pub categories: Vec<CategorySeed>,
    pub zones: Vec<ZoneRecord>,
    pub rules: Vec<RuleRecord>,
}

/// Everything the routing table is built from, and the version it reflects.
#[derive(Debug, Clone)]
pub struct RoutingData {
    pub version: i64,
    pub zones: Vec<ZoneRecord>,
    /// Current versions only.
    pub rules: Vec<RuleRecord>,
}

/// Who changed reference data, for the audit log.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: Option<Uuid>,
    pub role: String,
}

/// Where routing sent a case (stored with it; see DESIGN.md "Routing").
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct CaseRouting {
    /// Zone codes, largest first.
    pub zone_path: Vec<String>,
    /// The rule (id, version) that decided, if any.
    pub rule: Option<(Uuid, i64)>,
    pub lead_unit: Option<String>,
    pub co_units: Vec<String>,
    pub deadline_profile: Option<String>,
    /// No rule matched: the district suggested for triage (兜底).
    pub suggested_zone: Option<String>,
}

/// What saving a deadline profile did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProfileSave {
    Saved,
    /// The profile is the default (`*`, normal urgency), and the save would
    /// have moved it to another prefix or urgency.
    DefaultStays,
}

/// What removing a unit or rule did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deletion {
    Deleted,
    NotFound,
    /// Still referenced (by what): deactivate it instead.
    InUse(&'static str),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct ImportCounts {
    pub created: usize,
    pub updated: usize,
}

/// One change to reference data.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AuditEntry {
    pub id: Uuid,
    pub actor_id: Option<Uuid>,
    pub actor_role: String,
    pub action: String,
    pub entity: String,
    pub entity_id: String,
    pub data: serde_json::Value,
    pub created_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(super) struct AuditRow {
    id: String,
    actor_id: Option<String>,
    actor_role: String,
    action: String,
    entity: String,
    entity_id: String,
    data: String,
    created_at: DateTime<Utc>,
}

impl TryFrom<AuditRow> for AuditEntry {
    type Error = StoreError;
    fn try_from(row: AuditRow) -> Result<AuditEntry, StoreError> {
        Ok(AuditEntry {
            id: parse_id(&row.id)?,
            actor_id: parse_opt_id(row.actor_id)?,
            actor_role: row.actor_role,
            action: row.action,
            entity: row.entity,
            entity_id: row.entity_id,
            data: serde_json::from_str(&row.data)
                .map_err(|e| StoreError::Corrupt(format!("audit data: {e}")))?,
            created_at: row.created_at,
        })
    }
}
