//! Reference data for routing (`/api/v1/admin/…`): units, categories, zones and
//! rules. Admins change it; operators and supervisors may read it. Every change
//! is audited and rebuilds the routing table (here at once, elsewhere within
//! `routing.refresh_secs`).

use actix_web::{HttpResponse, delete, get, post, put, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::domain::code::{
    CODE_PATTERN, CODE_RULE, is_category_prefix, is_category_under, is_code,
};
use crate::domain::deadline::Urgency;
use crate::domain::instant;
use crate::domain::nul;
use crate::domain::role::Role;
use crate::domain::routing::Conflict;
use crate::domain::routing::ZoneKind;
use crate::error::extractors::Json;
use crate::error::extractors::{read_body, upload_text};
use crate::error::{ApiError, ItemError};
use crate::routing::{parse_zone_collection, rule_from_record, table_after_import};
use crate::state::{AppState, now};
use crate::store::{
    Actor, ApprovedReturn, AuditEntry, CategoryPolicy, CategorySeed, Deletion, ImportCounts,
    RuleRecord, StoreError, UnitRecord,
};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list_units)
        .service(create_unit)
        .service(update_unit)
        .service(delete_unit)
        .service(save_category)
        .service(list_zones)
        .service(get_zone)
        .service(import_zones)
        .service(list_rules)
        .service(rule_conflicts)
        .service(create_rule)
        .service(update_rule)
        .service(rule_versions)
        .service(delete_rule)
        .service(approved_returns)
        .service(audit_log);
}

/// Largest zone import accepted (a city's unit grids run to a few MB).
const MAX_IMPORT_BYTES: usize = 64 * 1024 * 1024;

pub(super) fn require_admin(user: &AuthUser) -> Result<Actor, ApiError> {
    user.require(|r| r == Role::Admin, "reference data is changed by admins")?;
    Ok(Actor {
        id: Some(user.id),
        role: user.role.as_str().to_owned(),
    })
}

fn require_reader(user: &AuthUser) -> Result<(), ApiError> {
    user.require(
        |r| matches!(r, Role::Admin | Role::Operator | Role::Supervisor),
        "reference data is for centre staff",
    )
}

/// Rebuilds this instance's routing table and deadline book now rather than at
/// the next poll; both follow the one reference version.
pub(super) async fn refresh_reference_data(state: &AppState) -> Result<(), ApiError> {
    state
        .routing
        .refresh(state.repo.as_ref())
        .await
        .map_err(ApiError::internal)?;
    state
        .workflow
        .deadlines()
        .refresh(state.repo.as_ref())
        .await
        .map_err(ApiError::internal)?;
    Ok(())
}

/// A unit's one reference is its parent, so a missing one is named.
fn missing_parent(unit: &UnitRecord, err: StoreError) -> ApiError {
    match err {
        StoreError::MissingReference(_) => ApiError::invalid_field(
            "parent_code",
            "unknown_reference",
            format!(
                "there is no unit {:?} to be the parent",
                unit.parent_code.as_deref().unwrap_or_default()
            ),
        ),
        other => other.into(),
    }
}

fn missing_reference(err: StoreError) -> ApiError {
    match err {
        StoreError::MissingReference(what) => ApiError::unprocessable(
            "unknown_reference",
            format!("refers to something that does not exist ({what})"),
        ),
        other => other.into(),
    }
}

// --- units ------------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UnitInput {
    #[schema(pattern = r"\S")]
    pub name: String,
    pub kind: UnitKind,
    /// The unit overdue cases escalate to.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub parent_code: Option<String>,
    /// `[{name, phone}]`; each entry an object.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub contacts: Vec<serde_json::Map<String, serde_json::Value>>,
    #[serde(default = "yes")]
    pub active: bool,
}

fn yes() -> bool {
    true
}

/// What sort of body a unit is.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UnitKind {
    Department,
    StreetOffice,
    Community,
    Enterprise,
    Property,
    GridTeam,
}

impl UnitKind {
    fn as_str(self) -> &'static str {
        match self {
            UnitKind::Department => "department",
            UnitKind::StreetOffice => "street_office",
            UnitKind::Community => "community",
            UnitKind::Enterprise => "enterprise",
            UnitKind::Property => "property",
            UnitKind::GridTeam => "grid_team",
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct NewUnit {
    /// Stable code, e.g. `DEPT-CGJ`.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub code: String,
    #[serde(flatten)]
    pub unit: UnitInput,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UnitView {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub parent_code: Option<String>,
    #[schema(value_type = Vec<Object>)]
    pub contacts: serde_json::Value,
    pub active: bool,
}

fn unit_record(code: String, input: UnitInput) -> Result<UnitRecord, ApiError> {
    if !is_code(&code) {
        return Err(ApiError::invalid_field(
            "code",
            "invalid_code",
            format!("a unit's code is {CODE_RULE}"),
        ));
    }
    if input.name.trim().is_empty() {
        return Err(ApiError::invalid_field(
            "name",
            "invalid_name",
            "name must not be empty",
        ));
    }
    if input.parent_code.as_deref() == Some(code.as_str()) {
        return Err(ApiError::invalid_field(
            "parent_code",
            "invalid_parent",
            "a unit cannot be its own parent",
        ));
    }
    Ok(UnitRecord {
        code,
        name: input.name.trim().to_owned(),
        kind: input.kind.as_str().to_owned(),
        parent_code: input.parent_code,
        contacts: input
            .contacts
            .into_iter()
            .map(serde_json::Value::Object)
            .collect(),
        active: input.active,
    })
}

fn unit_view(unit: UnitRecord) -> UnitView {
    UnitView {
        code: unit.code,
        name: unit.name,
        kind: unit.kind,
        parent_code: unit.parent_code,
        contacts: unit.contacts,
        active: unit.active,
    }
}

/// Responsible units (责任单位).
#[utoipa::path(tag = "admin", security(("bearer" = [])), responses((status = 200, body = Vec<UnitView>), (status = 403, body = crate::error::Problem)))]
#[get("/api/v1/admin/units")]
async fn list_units(
    user: AuthUser,
    state: web::Data<AppState>,
) -> Result<web::Json<Vec<UnitView>>, ApiError> {
    require_reader(&user)?;
    Ok(web::Json(
        state
            .repo
            .units()
            .await?
            .into_iter()
            .map(unit_view)
            .collect(),
    ))
}

/// Adds a unit.
#[utoipa::path(tag = "admin", request_body = NewUnit, security(("bearer" = [])),
    responses((status = 201, body = UnitView), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem), (status = 403, body = crate::error::Problem)))]
#[post("/api/v1/admin/units")]
async fn create_unit(
    user: AuthUser,
    state: web::Data<AppState>,
    body: Json<NewUnit>,
) -> Result<HttpResponse, ApiError> {
    let actor = require_admin(&user)?;
    let NewUnit { code, unit } = body.into_inner();
    let unit = unit_record(code, unit)?;
    match state.repo.create_unit(&unit, &actor, now()).await {
        Ok(()) => {}
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::Conflict {
                code: "unit_exists",
                detail: format!("unit {} already exists", unit.code),
            });
        }
        Err(e) => return Err(missing_parent(&unit, e)),
    }
    refresh_reference_data(&state).await?;
    Ok(HttpResponse::Created().json(unit_view(unit)))
}

/// Changes a unit; `active: false` deactivates it. A unit that active rules still
/// route to cannot be deactivated (409 `unit_in_use`): move those rules first, so
/// that no report is routed to a unit nobody works for.
#[utoipa::path(tag = "admin", request_body = UnitInput, params(("code" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = UnitView), (status = 404, body = crate::error::Problem),
        (status = 409, description = "Active rules still route to the unit (`unit_in_use`)", body = crate::error::Problem),
        (status = 422, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem)))]
#[put("/api/v1/admin/units/{code}")]
async fn update_unit(
    user: AuthUser,
    state: web::Data<AppState>,
    code: web::Path<String>,
    body: Json<UnitInput>,
) -> Result<web::Json<UnitView>, ApiError> {
    let actor = require_admin(&user)?;
    let unit = unit_record(code.into_inner(), body.into_inner())?;
    if !unit.active {
        // The table may not have seen a rule saved through another instance
        // yet: brought up to the stored version first.
        refresh_reference_data(&state).await?;
        let routing_rules: Vec<String> = state
            .routing
            .table()
            .rules()
            .filter(|rule| rule.active && rule.routes_to(&unit.code))
            .map(|rule| rule.id.to_string())
            .collect();
        if !routing_rules.is_empty() {
            return Err(ApiError::Conflict {
                code: "unit_in_use",
                detail: format!(
                    "active rules still route to unit {}: {}; give them another unit or deactivate them first",
                    unit.code,
                    routing_rules.join(", ")
                ),
            });
        }
    }
    if !state
        .repo
        .update_unit(&unit, &actor, now())
        .await
        .map_err(|e| missing_parent(&unit, e))?
    {
        return Err(ApiError::NotFound("unit"));
    }
    refresh_reference_data(&state).await?;
    Ok(web::Json(unit_view(unit)))
}

/// Removes a unit nothing refers to; one that cases, rules, staff or other units
/// refer to can only be deactivated.
#[utoipa::path(tag = "admin", params(("code" = String, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 403, body = crate::error::Problem)))]
#[delete("/api/v1/admin/units/{code}")]
async fn delete_unit(
    user: AuthUser,
    state: web::Data<AppState>,
    code: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let actor = require_admin(&user)?;
    let deletion = state.repo.delete_unit(&code, &actor, now()).await?;
    deletion_response(&state, deletion, "unit", "unit_in_use", |what| {
        format!("unit {code} is referred to by {what}; deactivate it instead")
    })
    .await
}

/// The answer to a DELETE of reference data; rebuilds routing when something went.
pub(super) async fn deletion_response(
    state: &AppState,
    deletion: Deletion,
    what: &'static str,
    in_use_code: &'static str,
    in_use_detail: impl FnOnce(&str) -> String,
) -> Result<HttpResponse, ApiError> {
    match deletion {
        Deletion::Deleted => {
            refresh_reference_data(state).await?;
            Ok(HttpResponse::NoContent().finish())
        }
        Deletion::NotFound => Err(ApiError::NotFound(what)),
        Deletion::InUse(by) => Err(ApiError::Conflict {
            code: in_use_code,
            detail: in_use_detail(by),
        }),
    }
}

// --- categories -------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CategoryInput {
    /// The 大类 of a 小类; absent for a 大类.
    #[serde(default)]
    #[schema(pattern = "^[0-9]{2}$")]
    pub parent_code: Option<String>,
    pub name_zh: String,
    pub name_en: String,
    /// GB/T 30428 部件/事件 code, where one applies.
    #[serde(default)]
    pub national_code: Option<String>,
    /// Open311 `service_code`.
    #[serde(default)]
    pub service_code: Option<String>,
    #[serde(default)]
    pub default_urgency: Urgency,
    /// Stored, not enforced yet: every app report needs 1–9 photos.
    #[serde(default = "yes")]
    pub requires_photo: bool,
    /// Stored, not enforced yet: every active category is offered to citizens.
    #[serde(default = "yes")]
    pub public: bool,
    #[serde(default)]
    pub deadline_profile: Option<String>,
    #[serde(default)]
    pub sort_order: i64,
    #[serde(default = "yes")]
    pub active: bool,
    /// Filing and dispatch without an operator for app reports with a photo and
    /// a matching rule.
    #[serde(default = "yes")]
    pub auto_dispatch: bool,
    /// The reporter may confirm the fix themselves (核查 by the reporter).
    #[serde(default)]
    pub reporter_may_check: bool,
    /// How many extensions (延期) a case may be granted, at most 10: the count
    /// is a cap, not a way round the deadline.
    #[serde(default = "two")]
    #[schema(maximum = 10)]
    pub max_extensions: u32,
}

/// The most extensions a category may allow (its `max_extensions`).
pub const MAX_EXTENSIONS_CAP: u32 = 10;

fn two() -> u32 {
    2
}

/// Creates or changes a category (two-level code: 2 digits, or 4 under a 2-digit parent).
#[utoipa::path(tag = "admin", request_body = CategoryInput, params(("code" = String, Path, pattern = "^[0-9]{2}([0-9]{2})?$")), security(("bearer" = [])),
    responses((status = 204), (status = 422, body = crate::error::Problem), (status = 403, body = crate::error::Problem)))]
#[put("/api/v1/admin/categories/{code}")]
async fn save_category(
    user: AuthUser,
    state: web::Data<AppState>,
    code: web::Path<String>,
    body: Json<CategoryInput>,
) -> Result<HttpResponse, ApiError> {
    let actor = require_admin(&user)?;
    let code = code.into_inner();
    let input = body.into_inner();
    if !is_category_under(&code, input.parent_code.as_deref()) {
        return Err(ApiError::invalid_field(
            "code",
            "invalid_code",
            "a 大类 code is 2 digits; a 小类 code is 4 digits starting with its parent's",
        ));
    }
    if input.max_extensions > MAX_EXTENSIONS_CAP {
        return Err(ApiError::invalid_field(
            "max_extensions",
            "invalid_max_extensions",
            format!("a category allows at most {MAX_EXTENSIONS_CAP} extensions"),
        ));
    }
    let category = CategorySeed {
        code,
        parent_code: input.parent_code,
        name_zh: input.name_zh,
        name_en: input.name_en,
        national_code: input.national_code,
        service_code: input.service_code,
        default_urgency: input.default_urgency.as_str().to_owned(),
        requires_photo: input.requires_photo,
        public: input.public,
        deadline_profile: input.deadline_profile,
        sort_order: input.sort_order,
        active: input.active,
        policy: CategoryPolicy {
            auto_dispatch: input.auto_dispatch,
            reporter_may_check: input.reporter_may_check,
            max_extensions: input.max_extensions,
        },
    };
    state
        .repo
        .save_category(&category, &actor, now())
        .await
        .map_err(missing_reference)?;
    Ok(HttpResponse::NoContent().finish())
}

// --- zones ------------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ZoneView {
    pub code: String,
    pub name: String,
    pub kind: String,
    pub parent_code: Option<String>,
    /// GeoJSON geometry (lon/lat WGS84); only when one zone is asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub geometry: Option<serde_json::Value>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ZoneFilter {
    /// Only zones of this kind (`district`, `street`, `community`, `grid`, `road`, …).
    pub kind: Option<String>,
}

/// Zones, without their geometry.
#[utoipa::path(tag = "admin", params(ZoneFilter), security(("bearer" = [])), responses((status = 200, body = Vec<ZoneView>), (status = 403, body = crate::error::Problem)))]
#[get("/api/v1/admin/zones")]
async fn list_zones(
    user: AuthUser,
    state: web::Data<AppState>,
    filter: web::Query<ZoneFilter>,
) -> Result<web::Json<Vec<ZoneView>>, ApiError> {
    require_reader(&user)?;
    let zones = state.repo.routing_data().await?.zones;
    Ok(web::Json(
        zones
            .into_iter()
            .filter(|z| filter.kind.as_deref().is_none_or(|k| z.kind == k))
            .map(|z| ZoneView {
                code: z.code,
                name: z.name,
                kind: z.kind,
                parent_code: z.parent_code,
                geometry: None,
            })
            .collect(),
    ))
}

/// One zone with its geometry.
#[utoipa::path(tag = "admin", params(("code" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = ZoneView), (status = 404, body = crate::error::Problem), (status = 403, body = crate::error::Problem)))]
#[get("/api/v1/admin/zones/{code}")]
async fn get_zone(
    user: AuthUser,
    state: web::Data<AppState>,
    code: web::Path<String>,
) -> Result<web::Json<ZoneView>, ApiError> {
    require_reader(&user)?;
    let zone = state
        .repo
        .zone(&code)
        .await?
        .ok_or(ApiError::NotFound("zone"))?;
    let geometry = serde_json::from_str(&zone.geometry).map_err(ApiError::internal)?;
    Ok(web::Json(ZoneView {
        code: zone.code,
        name: zone.name,
        kind: zone.kind,
        parent_code: zone.parent_code,
        geometry: Some(geometry),
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ImportReport {
    pub created: usize,
    pub updated: usize,
}

/// The zone import's body in the API document. The `geojson` crate reads the
/// file (`parse_zone_collection`) and brings no schema, so this says what that
/// reading accepts.
pub struct ZoneImportFile;

impl utoipa::PartialSchema for ZoneImportFile {
    fn schema() -> RefOr<Schema> {
        let string = || ObjectBuilder::new().schema_type(Type::String);
        let tag = |value: &str| string().enum_values(Some([value]));
        let code = || string().pattern(Some(CODE_PATTERN));
        let properties = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("code", code())
            .property("name", string())
            .property("kind", ZoneKind::schema())
            .property(
                "parent",
                code().description(Some("The enclosing zone's code; absent for a top zone.")),
            )
            .required("code")
            .required("name")
            .required("kind");
        let geometry = ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("A GeoJSON Polygon or MultiPolygon in WGS84."));
        let feature = ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("type", tag("Feature"))
            .property("properties", properties)
            .property("geometry", geometry)
            .required("type")
            .required("properties")
            .required("geometry");
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .description(Some("A GeoJSON FeatureCollection of zones."))
            .property("type", tag("FeatureCollection"))
            .property("features", ArrayBuilder::new().items(feature))
            .required("type")
            .required("features")
            .into()
    }
}

impl ToSchema for ZoneImportFile {}

/// Imports a GeoJSON FeatureCollection of zones (properties `code`, `name`,
/// `kind`, `parent`), upserting by code. All or nothing: any bad feature refuses
/// the whole import, with the reason for each bad feature by index.
#[utoipa::path(tag = "admin", request_body(content = ZoneImportFile, content_type = "application/geo+json", description = "A GeoJSON FeatureCollection"),
    security(("bearer" = [])),
    responses((status = 200, body = ImportReport), (status = 413, body = crate::error::Problem), (status = 422, body = crate::error::Problem), (status = 403, body = crate::error::Problem)))]
#[post("/api/v1/admin/zones/import")]
async fn import_zones(
    user: AuthUser,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<web::Json<ImportReport>, ApiError> {
    let actor = require_admin(&user)?;
    let body = read_body(payload, MAX_IMPORT_BYTES).await?;
    let text = upload_text(&body, nul::Format::Json, "invalid_zones")?;
    let zones = import_check(text)?;
    let current = state.repo.routing_data().await?;
    let checked = zones.clone();
    web::block(move || table_after_import(current, &checked))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| {
            ApiError::unprocessable(
                "invalid_zones",
                format!("the import would leave the zones inconsistent: {e}"),
            )
        })?;
    let ImportCounts { created, updated } = state.repo.import_zones(&zones, &actor, now()).await?;
    refresh_reference_data(&state).await?;
    tracing::info!(created, updated, "zones imported");
    Ok(web::Json(ImportReport { created, updated }))
}

fn import_check(text: &str) -> Result<Vec<crate::store::ZoneRecord>, ApiError> {
    parse_zone_collection(text).map_err(|errors: Vec<ItemError>| ApiError::InvalidItems {
        code: "invalid_zones",
        detail: format!("{} feature(s) refused; nothing was imported", errors.len()),
        errors,
    })
}

// --- rules ------------------------------------------------------------------------

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RuleInput {
    /// Category code or a whole-level prefix ("03" matches "0301"); "" matches all.
    #[schema(pattern = "^([0-9]{2}){0,2}$")]
    pub category_prefix: String,
    /// Absent for a citywide rule.
    #[serde(default)]
    pub zone_code: Option<String>,
    pub lead_unit: String,
    #[serde(default)]
    pub co_units: Vec<String>,
    /// Overrides the category's deadline profile.
    #[serde(default)]
    pub deadline_profile: Option<String>,
    /// Higher wins before zone size and prefix length are compared.
    pub priority: i32,
    #[serde(default, deserialize_with = "instant::deserialize_option")]
    pub valid_from: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "instant::deserialize_option")]
    pub valid_to: Option<DateTime<Utc>>,
    #[serde(default = "yes")]
    pub active: bool,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RuleView {
    pub id: Uuid,
    pub version: i64,
    #[serde(flatten)]
    pub rule: RuleInput,
}

fn rule_view(rule: RuleRecord) -> RuleView {
    RuleView {
        id: rule.id,
        version: rule.version,
        rule: RuleInput {
            category_prefix: rule.category_prefix,
            zone_code: rule.zone_code,
            lead_unit: rule.lead_unit,
            co_units: rule.co_units,
            deadline_profile: rule.deadline_profile,
            priority: i32::try_from(rule.priority).unwrap_or(i32::MAX),
            valid_from: rule.valid_from,
            valid_to: rule.valid_to,
            active: rule.active,
            note: rule.note,
        },
    }
}

/// Validates a rule against the live table and stored units, and refuses one that
/// could never be ordered against an existing rule.
async fn checked_rule(
    state: &AppState,
    id: Uuid,
    input: RuleInput,
) -> Result<RuleRecord, ApiError> {
    let prefix = input.category_prefix.trim().to_owned();
    if !is_category_prefix(&prefix) {
        return Err(ApiError::invalid_field(
            "category_prefix",
            "invalid_category_prefix",
            "category_prefix must be empty (every category) or a category code: a 2-digit 大类 \
             (which covers its 小类) or a 4-digit 小类",
        ));
    }
    if let (Some(from), Some(to)) = (input.valid_from, input.valid_to)
        && from >= to
    {
        return Err(ApiError::invalid_field(
            "valid_to",
            "invalid_validity",
            "valid_to must be after valid_from",
        ));
    }
    // Zones and ties are judged on the table, which may not yet hold a change
    // made through another instance: brought up to the stored version first.
    refresh_reference_data(state).await?;
    let table = state.routing.table();
    if let Some(zone) = &input.zone_code
        && table.zone(zone).is_none()
    {
        return Err(ApiError::invalid_field(
            "zone_code",
            "unknown_zone",
            format!("there is no zone {zone}"),
        ));
    }
    let units = state.repo.units().await?;
    let named = std::iter::once(("lead_unit", &input.lead_unit))
        .chain(input.co_units.iter().map(|unit| ("co_units", unit)));
    for (field, code) in named {
        match units.iter().find(|u| &u.code == code) {
            None => {
                return Err(ApiError::invalid_field(
                    field,
                    "unknown_unit",
                    format!("there is no unit {code}"),
                ));
            }
            Some(unit) if !unit.active && input.active => {
                return Err(ApiError::invalid_field(
                    field,
                    "inactive_unit",
                    format!("unit {code} is deactivated; an active rule cannot route to it"),
                ));
            }
            Some(_) => {}
        }
    }
    let record = RuleRecord {
        id,
        version: 0,
        category_prefix: prefix,
        zone_code: input.zone_code,
        lead_unit: input.lead_unit,
        co_units: input.co_units,
        deadline_profile: input.deadline_profile,
        priority: i64::from(input.priority),
        valid_from: input.valid_from.map(instant::to_stored_precision),
        valid_to: input.valid_to.map(instant::to_stored_precision),
        active: input.active,
        note: input.note,
    };
    let rule = rule_from_record(&record).map_err(ApiError::internal)?;
    if let Some(conflict) = table.conflict_with(&rule) {
        return Err(ApiError::Conflict {
            code: "rule_conflict",
            detail: format!(
                "rule {} has the same priority, category and zone (or an equal overlapping zone); \
                 change its priority or scope",
                conflict.conflicting_rule_id
            ),
        });
    }
    Ok(record)
}

/// Current versions of all rules.
#[utoipa::path(tag = "admin", security(("bearer" = [])), responses((status = 200, body = Vec<RuleView>), (status = 403, body = crate::error::Problem)))]
#[get("/api/v1/admin/rules")]
async fn list_rules(
    user: AuthUser,
    state: web::Data<AppState>,
) -> Result<web::Json<Vec<RuleView>>, ApiError> {
    require_reader(&user)?;
    Ok(web::Json(
        state
            .repo
            .routing_data()
            .await?
            .rules
            .into_iter()
            .map(rule_view)
            .collect(),
    ))
}

/// Pairs of rules whose order is ambiguous somewhere (should be empty).
#[utoipa::path(tag = "admin", security(("bearer" = [])), responses((status = 200, body = Vec<Conflict>), (status = 403, body = crate::error::Problem)))]
#[get("/api/v1/admin/rules/conflicts")]
async fn rule_conflicts(
    user: AuthUser,
    state: web::Data<AppState>,
) -> Result<web::Json<Vec<Conflict>>, ApiError> {
    require_reader(&user)?;
    let table = state.routing.table();
    Ok(web::Json(
        web::block(move || table.conflicts())
            .await
            .map_err(ApiError::internal)?,
    ))
}

/// Adds a rule (version 1). 409 when it would tie with an active rule.
#[utoipa::path(tag = "admin", request_body = RuleInput, security(("bearer" = [])),
    responses((status = 201, body = RuleView), (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem), (status = 403, body = crate::error::Problem)))]
#[post("/api/v1/admin/rules")]
async fn create_rule(
    user: AuthUser,
    state: web::Data<AppState>,
    body: Json<RuleInput>,
) -> Result<HttpResponse, ApiError> {
    let actor = require_admin(&user)?;
    let record = checked_rule(&state, Uuid::now_v7(), body.into_inner()).await?;
    let saved = state
        .repo
        .save_rule(&record, &actor, now())
        .await
        .map_err(missing_reference)?;
    refresh_reference_data(&state).await?;
    Ok(HttpResponse::Created().json(rule_view(saved)))
}

/// Changes a rule by adding a version; cases keep the version that routed them.
#[utoipa::path(tag = "admin", request_body = RuleInput, params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = RuleView), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 403, body = crate::error::Problem)))]
#[put("/api/v1/admin/rules/{id}")]
async fn update_rule(
    user: AuthUser,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: Json<RuleInput>,
) -> Result<web::Json<RuleView>, ApiError> {
    let actor = require_admin(&user)?;
    let id = id.into_inner();
    if state.repo.rule_versions(id).await?.is_empty() {
        return Err(ApiError::NotFound("rule"));
    }
    let record = checked_rule(&state, id, body.into_inner()).await?;
    let saved = state
        .repo
        .save_rule(&record, &actor, now())
        .await
        .map_err(missing_reference)?;
    refresh_reference_data(&state).await?;
    Ok(web::Json(rule_view(saved)))
}

/// Every version of a rule, oldest first.
#[utoipa::path(tag = "admin", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 200, body = Vec<RuleView>), (status = 404, body = crate::error::Problem), (status = 403, body = crate::error::Problem)))]
#[get("/api/v1/admin/rules/{id}/versions")]
async fn rule_versions(
    user: AuthUser,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<web::Json<Vec<RuleView>>, ApiError> {
    require_reader(&user)?;
    let versions = state.repo.rule_versions(id.into_inner()).await?;
    if versions.is_empty() {
        return Err(ApiError::NotFound("rule"));
    }
    Ok(web::Json(versions.into_iter().map(rule_view).collect()))
}

/// Removes a rule no case was routed by; otherwise deactivate it (PUT with `active: false`).
#[utoipa::path(tag = "admin", params(("id" = Uuid, Path)), security(("bearer" = [])),
    responses((status = 204), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem), (status = 403, body = crate::error::Problem)))]
#[delete("/api/v1/admin/rules/{id}")]
async fn delete_rule(
    user: AuthUser,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let actor = require_admin(&user)?;
    let id = id.into_inner();
    let deletion = state.repo.delete_rule(id, &actor, now()).await?;
    deletion_response(&state, deletion, "rule", "rule_in_use", |what| {
        format!("rule {id} routed {what}; deactivate it instead")
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LimitQuery {
    /// 1–500, default 100.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
}

fn limit_of(query: &LimitQuery) -> Result<i64, ApiError> {
    let limit = query.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be between 1 and 500",
        ));
    }
    Ok(limit)
}

/// Cases their unit handed back (回退) with the centre's approval, newest first,
/// each with the rule that had routed it: where the ownership rules need review.
#[utoipa::path(tag = "admin", params(LimitQuery), security(("bearer" = [])),
    responses((status = 200, body = Vec<ApprovedReturn>), (status = 403, body = crate::error::Problem)))]
#[get("/api/v1/admin/rules/returns")]
async fn approved_returns(
    user: AuthUser,
    state: web::Data<AppState>,
    query: web::Query<LimitQuery>,
) -> Result<web::Json<Vec<ApprovedReturn>>, ApiError> {
    require_reader(&user)?;
    Ok(web::Json(
        state.repo.approved_returns(limit_of(&query)?).await?,
    ))
}

/// Who changed reference data, and when, newest first.
#[utoipa::path(tag = "admin", params(LimitQuery), security(("bearer" = [])), responses((status = 200, body = Vec<Object>), (status = 403, body = crate::error::Problem)))]
#[get("/api/v1/admin/audit")]
async fn audit_log(
    user: AuthUser,
    state: web::Data<AppState>,
    query: web::Query<LimitQuery>,
) -> Result<web::Json<Vec<AuditEntry>>, ApiError> {
    user.require(
        |r| matches!(r, Role::Admin | Role::Supervisor),
        "the audit log is for admins and supervisors",
    )?;
    Ok(web::Json(state.repo.audit_log(limit_of(&query)?).await?))
}

#[cfg(test)]
mod tests {
    use super::UnitKind;

    #[test]
    fn a_unit_kind_is_stored_as_it_is_sent() {
        for kind in [
            UnitKind::Department,
            UnitKind::StreetOffice,
            UnitKind::Community,
            UnitKind::Enterprise,
            UnitKind::Property,
            UnitKind::GridTeam,
        ] {
            let sent = serde_json::to_value(kind).expect("serialises");
            assert_eq!(sent, kind.as_str());
            let read: UnitKind = serde_json::from_value(sent).expect("reads back");
            assert_eq!(read.as_str(), kind.as_str());
        }
    }
}
