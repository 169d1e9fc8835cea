//! Citizen reports: intake with idempotency, and reading them back.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use super::photos::{display_url, thumbnail_url};
use crate::auth::AuthUser;
use crate::domain::case::CaseState;
use crate::domain::geo::{Crs, LatLon};
use crate::domain::report::{self, ReportInput};
use crate::error::ApiError;
use crate::error::extractors::Json;
use crate::limits::CitizenWork;
use crate::state::{AppState, now};
use crate::store::{
    CaseRecord, CaseRouting, CreateReportError, IdempotencyClaim, NewReport, StoredResponse,
};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(create_report)
        .service(get_report)
        .service(my_reports);
}

const IDEMPOTENCY_HEADER: &str = "Idempotency-Key";

/// A misspelt field (`"CRS"`) is refused rather than dropped: a point taken as
/// WGS84 when it was GCJ-02 lies some 500 m off.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationInput {
    #[schema(minimum = -90, maximum = 90)]
    pub lat: f64,
    #[schema(minimum = -180, maximum = 180)]
    pub lon: f64,
    /// Horizontal accuracy the phone reported, in metres.
    #[serde(default)]
    #[schema(minimum = 0)]
    pub accuracy_m: Option<f64>,
    /// Coordinate system of `lat`/`lon`; stored converted to WGS84.
    #[serde(default)]
    pub crs: Crs,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewReportRequest {
    /// A leaf category code from `GET /api/v1/categories`.
    #[schema(pattern = "^[0-9]{2}([0-9]{2})?$")]
    pub category: String,
    pub location: LocationInput,
    #[serde(default)]
    pub address: Option<String>,
    /// Up to 2000 characters.
    #[serde(default)]
    pub description: String,
    /// 1–9 photos uploaded by the caller and not yet used in a report.
    pub photo_ids: Vec<Uuid>,
    /// 保密: hides the reporter from everyone working on the case.
    #[serde(default)]
    pub confidential: bool,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReportPhoto {
    pub id: Uuid,
    pub display_url: String,
    pub thumbnail_url: String,
}

/// Checks the operator should make before acting on the report.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReportFlags {
    /// A photo's own GPS position is far from the reported location.
    pub photo_location_mismatch: bool,
    /// That distance, in metres.
    pub photo_distance_m: Option<f64>,
}

/// The routing decision recorded on a case (谁主管、谁负责).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct RoutingView {
    /// Zones containing the report, largest first.
    pub zone_path: Vec<String>,
    /// The rule that decided, and its version; absent when no rule matched.
    pub rule_id: Option<Uuid>,
    pub rule_version: Option<i64>,
    /// 主办 unit.
    pub lead_unit: Option<String>,
    /// 协办 units.
    pub co_units: Vec<String>,
    pub deadline_profile: Option<String>,
    /// No rule matched: the district suggested to the triage queue (兜底).
    pub suggested_zone: Option<String>,
    /// `no_rule` when no rule matched and the case waits for an operator.
    pub reason: Option<String>,
}

impl RoutingView {
    fn of(routing: &CaseRouting) -> RoutingView {
        RoutingView {
            zone_path: routing.zone_path.clone(),
            rule_id: routing.rule.map(|(id, _)| id),
            rule_version: routing.rule.map(|(_, version)| version),
            lead_unit: routing.lead_unit.clone(),
            co_units: routing.co_units.clone(),
            deadline_profile: routing.deadline_profile.clone(),
            suggested_zone: routing.suggested_zone.clone(),
            reason: routing.rule.is_none().then(|| "no_rule".to_owned()),
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReportView {
    pub id: Uuid,
    /// e.g. `SP20260512-000123`.
    pub tracking_no: String,
    pub state: CaseState,
    pub category: String,
    /// WGS84.
    pub location: LatLon,
    pub accuracy_m: Option<f64>,
    pub address: Option<String>,
    pub description: String,
    pub confidential: bool,
    /// The report's photos, then the units' after-photos: for the reporter only
    /// while the case stands reported done (`awaiting_check`, `closed`, `archived`).
    pub photos: Vec<ReportPhoto>,
    /// Staff only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flags: Option<ReportFlags>,
    /// Staff only, and never for confidential reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reporter_id: Option<Uuid>,
    /// Staff only: where ownership routing sent the case.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub routing: Option<RoutingView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Who is looking decides what they see.
#[derive(Clone, Copy, PartialEq)]
enum Audience {
    Reporter,
    Staff,
}

impl ReportView {
    fn of(case: &CaseRecord, audience: Audience) -> ReportView {
        let staff = audience == Audience::Staff;
        ReportView {
            id: case.id,
            tracking_no: case.tracking_no.clone(),
            state: case.state,
            category: case.category_code.clone(),
            location: case.location,
            accuracy_m: case.accuracy_m,
            address: case.address.clone(),
            description: case.description.clone(),
            confidential: case.confidential,
            photos: case
                .photo_ids
                .iter()
                .chain(
                    case.after_photo_ids
                        .iter()
                        .filter(|_| staff || case.state.shows_units_proof()),
                )
                .map(|id| ReportPhoto {
                    id: *id,
                    display_url: display_url(*id),
                    thumbnail_url: thumbnail_url(*id),
                })
                .collect(),
            flags: staff.then(|| ReportFlags {
                photo_location_mismatch: case.photo_distance_m.is_some(),
                photo_distance_m: case.photo_distance_m,
            }),
            reporter_id: (staff && !case.confidential).then_some(case.reporter_id),
            routing: staff.then(|| RoutingView::of(&case.routing)),
            created_at: case.created_at,
            updated_at: case.updated_at,
        }
    }
}

fn idempotency_key(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().map(str::trim).unwrap_or_default();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::bad_request(
            "invalid_idempotency_key",
            "Idempotency-Key must be 1–255 visible ASCII characters (a UUID is a good choice)",
        ));
    }
    Ok(Some(key.to_owned()))
}

fn report_location(id: Uuid) -> (header::HeaderName, String) {
    (header::LOCATION, format!("/api/v1/reports/{id}"))
}

/// The first response again. Only its body is stored; that body is the created
/// report, whose id gives back the `Location` the first answer carried.
fn replay(status: i64, body: String) -> HttpResponse {
    #[derive(Deserialize)]
    struct Created {
        id: Uuid,
    }
    let status = u16::try_from(status)
        .ok()
        .and_then(|s| actix_web::http::StatusCode::from_u16(s).ok())
        .unwrap_or(actix_web::http::StatusCode::CREATED);
    let mut response = HttpResponse::build(status);
    response
        .content_type("application/json")
        .insert_header(("Idempotent-Replayed", "true"));
    if let Ok(created) = serde_json::from_str::<Created>(&body) {
        response.insert_header(report_location(created.id));
    }
    response.body(body)
}

/// The answer to a request whose key was used before: the first response for
/// the same body, a refusal for another.
fn earlier_answer(request_hash: &str, first: StoredResponse) -> Result<HttpResponse, ApiError> {
    if first.request_hash == request_hash {
        Ok(replay(first.status, first.body))
    } else {
        Err(ApiError::unprocessable(
            "idempotency_key_reused",
            "this Idempotency-Key was already used with a different request body",
        ))
    }
}

/// Files a report. With an `Idempotency-Key` header, a retry with the same key and
/// body returns the first response instead of creating a second case; a key is
/// kept a week (`jobs::idempotency_purge`).
#[utoipa::path(
    tag = "reports",
    request_body = NewReportRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: same key and body, same answer, for a week")),
    security(("bearer" = [])),
    responses(
        (status = 201, body = ReportView, headers(("Location" = String))),
        (status = 400, body = crate::error::Problem),
        (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem),
        (status = 413, body = crate::error::Problem),
        (status = 422, description = "Invalid field, unknown category, unusable photo, or key reused with another body", body = crate::error::Problem),
        (status = 429, description = "This citizen's reports for the hour are used up", body = crate::error::Problem),
    )
)]
#[post("/api/v1/reports")]
async fn create_report(
    user: AuthUser,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<NewReportRequest>,
) -> Result<HttpResponse, ApiError> {
    user.require(
        |r| r.may_report(),
        "only citizens and inspectors file reports",
    )?;
    let key = idempotency_key(&req)?;
    let _turn = match &key {
        Some(key) => Some(state.citizen_limits.report_turn(user.id, key).await),
        None => None,
    };
    let request = body.into_inner();
    let claim = match key {
        Some(key) => {
            let canonical = serde_json::to_vec(&request).map_err(ApiError::internal)?;
            let request_hash = hex::encode(Sha256::digest(&canonical));
            if let Some(first) = state.repo.idempotent_response(user.id, &key).await? {
                return earlier_answer(&request_hash, first);
            }
            Some(IdempotencyClaim {
                user_id: user.id,
                key,
                request_hash,
            })
        }
        None => None,
    };
    let now = now();
    let valid = report::validate(
        ReportInput {
            category: request.category,
            lat: request.location.lat,
            lon: request.location.lon,
            accuracy_m: request.location.accuracy_m,
            crs: request.location.crs,
            address: request.address,
            description: request.description,
            photo_ids: request.photo_ids,
            confidential: request.confidential,
        },
        &state.report_rules,
    )
    .map_err(|e| ApiError::invalid_field(e.field, e.code, e.message))?;

    let photos = state
        .repo
        .unattached_photos_of(user.id, &valid.photo_ids)
        .await?;
    if let Some(missing) = valid
        .photo_ids
        .iter()
        .find(|id| !photos.iter().any(|p| p.id == **id))
    {
        // A retry sent before its first attempt was answered finds the photos
        // taken by that attempt once it commits: it is owed that attempt's answer.
        if let Some(claim) = &claim
            && let Some(first) = state.repo.idempotent_response(user.id, &claim.key).await?
        {
            return earlier_answer(&claim.request_hash, first);
        }
        return Err(photo_unavailable(*missing));
    }
    let photo_distance_m = report::photo_location_mismatch(
        valid.location,
        photos.iter().filter_map(|p| p.gps),
        state.report_rules.max_photo_distance_m,
    );
    // Past the request's own checks: a replay or a report refused for a
    // mistake in it does not count (one the store refuses still does).
    state
        .citizen_limits
        .spend(user.id, user.role, CitizenWork::Report)?;

    let decision = state
        .routing
        .table()
        .decide(valid.location, &valid.category, now);
    let routing = CaseRouting {
        zone_path: decision.zone_path.iter().map(|z| z.code.clone()).collect(),
        rule: decision
            .winner
            .as_ref()
            .map(|w| (w.id, i64::from(w.version))),
        lead_unit: decision.winner.as_ref().map(|w| w.lead_unit.clone()),
        co_units: decision
            .winner
            .as_ref()
            .map(|w| w.co_units.clone())
            .unwrap_or_default(),
        deadline_profile: decision
            .winner
            .as_ref()
            .and_then(|w| w.deadline_profile.clone()),
        suggested_zone: decision.fallback,
    };
    let new = NewReport {
        id: Uuid::now_v7(),
        reporter_id: user.id,
        reporter_role: user.role,
        source: "app".into(),
        category: valid.category,
        location: valid.location,
        accuracy_m: valid.accuracy_m,
        address: valid.address,
        description: valid.description,
        confidential: valid.confidential,
        photo_ids: valid.photo_ids,
        photo_distance_m,
        now,
        local_day: now.with_timezone(&state.tz).date_naive(),
        tracking_prefix: state.settings.city.tracking_prefix.clone(),
        routing,
    };
    match state
        .repo
        .create_report(&new, claim.as_ref(), render_for_reporter)
        .await
    {
        Ok(case) => {
            tracing::info!(case = %case.id, tracking_no = %case.tracking_no, "report filed");
            if case.routing.lead_unit.is_some() {
                state.auto_dispatch.notify_one();
            }
            Ok(HttpResponse::Created()
                .insert_header(report_location(case.id))
                .json(ReportView::of(&case, Audience::Reporter)))
        }
        Err(CreateReportError::UnknownCategory(code)) => Err(ApiError::invalid_field(
            "category",
            "unknown_category",
            format!("{code:?} is not a category that can be reported; see GET /api/v1/categories"),
        )),
        Err(CreateReportError::PhotoUnavailable(id)) => Err(photo_unavailable(id)),
        Err(CreateReportError::AlreadyProcessed(first)) => earlier_answer(
            claim.as_ref().map_or("", |c| c.request_hash.as_str()),
            first,
        ),
        Err(CreateReportError::Store(e)) => Err(e.into()),
    }
}

/// The creation response, as stored for idempotent replays.
fn render_for_reporter(case: &CaseRecord) -> String {
    serde_json::to_string(&ReportView::of(case, Audience::Reporter)).unwrap_or_default()
}

fn photo_unavailable(id: Uuid) -> ApiError {
    ApiError::invalid_field(
        "photo_ids",
        "photo_unavailable",
        format!("photo {id} is not one of your uploads, or it is already part of a report"),
    )
}

/// A report, for its reporter or staff. Anyone else gets 404.
#[utoipa::path(
    tag = "reports",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = ReportView), (status = 401, body = crate::error::Problem), (status = 404, body = crate::error::Problem))
)]
#[get("/api/v1/reports/{id}")]
async fn get_report(
    user: AuthUser,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<web::Json<ReportView>, ApiError> {
    let case = state
        .repo
        .case_by_id(id.into_inner())
        .await?
        .ok_or(ApiError::NotFound("report"))?;
    // Staff who filed the report see it as staff, like its case (`cases::access`).
    let audience = if staff_sees_case(&state, &user, case.id).await? {
        Audience::Staff
    } else if case.reporter_id == user.id {
        Audience::Reporter
    } else {
        return Err(ApiError::NotFound("report"));
    };
    Ok(web::Json(ReportView::of(&case, audience)))
}

/// Whether the caller sees a case as staff: the centre's roles every case, unit
/// staff once it is assigned to their unit (lead or co-unit).
pub(super) async fn staff_sees_case(
    state: &AppState,
    user: &AuthUser,
    case_id: Uuid,
) -> Result<bool, ApiError> {
    if !user.role.is_unit_role() {
        return Ok(user.role.is_staff());
    }
    let Some(case) = state
        .workflow
        .case(case_id)
        .await
        .map_err(super::cases::workflow_error)?
    else {
        return Ok(false);
    };
    Ok(super::cases::access(user, &case) == Some(super::cases::Access::Unit))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// `next_cursor` of the previous page.
    pub cursor: Option<Uuid>,
    /// 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ReportPage {
    pub items: Vec<ReportView>,
    /// Pass as `cursor` to get the next page; null on the last one.
    pub next_cursor: Option<Uuid>,
}

/// The caller's own reports, newest first.
#[utoipa::path(
    tag = "reports",
    params(Page),
    security(("bearer" = [])),
    responses((status = 200, body = ReportPage), (status = 400, body = crate::error::Problem), (status = 401, body = crate::error::Problem))
)]
#[get("/api/v1/me/reports")]
async fn my_reports(
    user: AuthUser,
    state: web::Data<AppState>,
    page: web::Query<Page>,
) -> Result<web::Json<ReportPage>, ApiError> {
    let limit = page.limit.unwrap_or(20);
    if !(1..=100).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            "limit must be between 1 and 100",
        ));
    }
    // One extra row tells whether there is a next page.
    let mut cases = state
        .repo
        .reports_of(user.id, page.cursor, i64::from(limit) + 1)
        .await?;
    let more = cases.len() > limit as usize;
    cases.truncate(limit as usize);
    let next_cursor = if more {
        cases.last().map(|c| c.id)
    } else {
        None
    };
    Ok(web::Json(ReportPage {
        items: cases
            .iter()
            .map(|c| ReportView::of(c, Audience::Reporter))
            .collect(),
        next_cursor,
    }))
}
