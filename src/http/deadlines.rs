//! Deadlines over HTTP: the preview staff use to check a calendar and a limit,
//! and the administration of working calendars and deadline profiles.

use actix_web::{HttpRequest, HttpResponse, delete, get, post, put, web};
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use super::admin::{deletion_response, refresh_reference_data, require_admin};
use crate::auth::AuthUser;
use crate::deadlines::{DeadlinesError, load_calendar_years, parse_calendar_file};
use crate::domain::code::{CODE_RULE, is_code, is_profile_prefix};
use crate::domain::deadline::{
    DeadlineError, DeadlineProfile, Explanation, Limit, PhaseLimits, Unit, Urgency,
};
use crate::domain::nul;
use crate::domain::role::Role;
use crate::error::ApiError;
use crate::error::extractors::Json;
use crate::error::extractors::{read_body, upload_text};
use crate::state::{AppState, now};
use crate::store::{ProfileSave, StoreError};

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(preview)
        .service(list_calendars)
        .service(load_calendars)
        .service(list_profiles)
        .service(save_profile)
        .service(delete_profile);
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct DeadlinePreviewRequest {
    /// When the clock starts (receipt), RFC 3339, years 1–9999.
    #[serde(deserialize_with = "crate::domain::instant::deserialize")]
    pub start: DateTime<Utc>,
    /// `work_hours`, `work_days` or `natural_hours`.
    pub unit: Unit,
    pub amount: u32,
    /// Calendar to count on; the city's own when absent.
    #[serde(default)]
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub jurisdiction: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PreviewResponse {
    /// In the city's offset.
    pub due_at: DateTime<FixedOffset>,
    /// When the yellow warning (预警) would go out.
    pub warning_at: DateTime<FixedOffset>,
    #[schema(value_type = Object)]
    pub explanation: Explanation,
}

/// When a limit started at `start` would be due, on the loaded working calendar.
/// 422 `beyond_calendar` when the calendar does not reach that far.
#[utoipa::path(
    tag = "deadlines",
    request_body = DeadlinePreviewRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = PreviewResponse),
        (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem),
    )
)]
#[post("/api/v1/deadlines/preview")]
async fn preview(
    user: AuthUser,
    state: web::Data<AppState>,
    body: Json<DeadlinePreviewRequest>,
) -> Result<web::Json<PreviewResponse>, ApiError> {
    user.require(Role::is_staff, "deadline previews are for staff")?;
    let request = body.into_inner();
    let book = state.workflow.deadlines().book();
    let calculator = book
        .calculator(request.jurisdiction.as_deref())
        .ok_or_else(|| {
            ApiError::invalid_field(
                "jurisdiction",
                "unknown_jurisdiction",
                format!(
                    "no working calendar is loaded for {:?}; loaded: {}",
                    request
                        .jurisdiction
                        .as_deref()
                        .unwrap_or(&state.settings.workflow.jurisdiction),
                    book.jurisdictions().join(", ")
                ),
            )
        })?;
    let limit = Limit {
        amount: request.amount,
        unit: request.unit,
    };
    let deadline = calculator
        .compute(request.start, limit)
        .map_err(deadline_error)?;
    Ok(web::Json(PreviewResponse {
        due_at: state.local(deadline.due),
        warning_at: state.local(deadline.warning_at),
        explanation: deadline.explanation,
    }))
}

fn deadline_error(err: DeadlineError) -> ApiError {
    let code = match err {
        DeadlineError::BeyondCalendar { .. } => "beyond_calendar",
        DeadlineError::BeforeCalendar { .. } => "before_calendar",
        _ => "invalid_deadline",
    };
    ApiError::unprocessable(code, err.to_string())
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CalendarYearView {
    pub jurisdiction: String,
    pub year: i32,
    pub version: Option<String>,
    /// `["2026-10-01", "2026-10-07"]` ranges or single dates.
    pub holidays: Vec<crate::domain::deadline::HolidaySpan>,
    /// 调休 make-up working days.
    #[schema(value_type = Vec<String>)]
    pub workdays: Vec<chrono::NaiveDate>,
    pub loaded_at: DateTime<Utc>,
}

/// The loaded working calendars, one entry per jurisdiction and year.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    responses((status = 200, body = [CalendarYearView]), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem))
)]
#[get("/api/v1/admin/calendars")]
async fn list_calendars(
    user: AuthUser,
    state: web::Data<AppState>,
) -> Result<web::Json<Vec<CalendarYearView>>, ApiError> {
    user.require(
        |r| matches!(r, Role::Admin | Role::Operator | Role::Supervisor),
        "calendars are for centre staff",
    )?;
    Ok(web::Json(
        state
            .repo
            .calendar_years()
            .await?
            .into_iter()
            .map(|stored| CalendarYearView {
                jurisdiction: stored.year.jurisdiction,
                year: stored.year.year,
                version: stored.year.version,
                holidays: stored.year.holidays,
                workdays: stored.year.workdays,
                loaded_at: stored.loaded_at,
            })
            .collect(),
    ))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CalendarLoadResult {
    /// `jurisdiction/year` of every year stored.
    pub loaded: Vec<String>,
}

/// Largest calendar file accepted. A year is well under 2 KiB even as CSV, so
/// this holds a hundred years or more while refusing anything that is not a calendar.
const MAX_CALENDAR_BYTES: usize = 256 * 1024;

/// Loads or replaces working-calendar years: JSON (one year or an array, as in
/// `calendars/cn-2026.json`) or CSV with `Content-Type: text/csv`
/// (`jurisdiction,date,kind,name` rows, `kind` = `holiday` or `workday`), at
/// most 256 KiB (413 `body_too_large` beyond).
/// Refused whole (422) when a year is invalid or would leave a gap.
#[utoipa::path(
    tag = "admin",
    request_body(
        description = "One calendar year or an array of years; or CSV rows `jurisdiction,date,kind,name`",
        content(
            (crate::deadlines::CalendarFile = "application/json"),
            (String = "text/csv"),
        ),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, body = CalendarLoadResult),
        (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem),
        (status = 413, body = crate::error::Problem),
        (status = 415, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem),
    )
)]
#[put("/api/v1/admin/calendars")]
async fn load_calendars(
    user: AuthUser,
    state: web::Data<AppState>,
    request: HttpRequest,
    payload: web::Payload,
) -> Result<web::Json<CalendarLoadResult>, ApiError> {
    let actor = require_admin(&user)?;
    let content_type = request
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let csv = if content_type.starts_with("text/csv") {
        true
    } else if content_type.starts_with("application/json") {
        false
    } else {
        return Err(ApiError::UnsupportedMediaType(
            "send calendars as application/json or text/csv".into(),
        ));
    };
    let body = read_body(payload, MAX_CALENDAR_BYTES).await?;
    let format = if csv {
        nul::Format::Plain
    } else {
        nul::Format::Json
    };
    let text = upload_text(&body, format, "invalid_calendar")?;
    let years = parse_calendar_file(text, csv)
        .map_err(|e| ApiError::unprocessable("invalid_calendar", e.to_string()))?;
    load_calendar_years(state.repo.as_ref(), &years, &actor)
        .await
        .map_err(|e| match e {
            DeadlinesError::Calendar(e) => {
                ApiError::unprocessable("invalid_calendar", e.to_string())
            }
            DeadlinesError::Store(e) => e.into(),
            other => ApiError::internal(other),
        })?;
    refresh_reference_data(&state).await?;
    Ok(web::Json(CalendarLoadResult {
        loaded: years
            .iter()
            .map(|y| format!("{}/{}", y.jurisdiction, y.year))
            .collect(),
    }))
}

/// Deadline profiles: phase limits per category prefix (`*` for all) and urgency.
#[utoipa::path(
    tag = "admin",
    security(("bearer" = [])),
    responses((status = 200, body = [DeadlineProfile]), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem))
)]
#[get("/api/v1/admin/deadline-profiles")]
async fn list_profiles(
    user: AuthUser,
    state: web::Data<AppState>,
) -> Result<web::Json<Vec<DeadlineProfile>>, ApiError> {
    user.require(
        |r| matches!(r, Role::Admin | Role::Operator | Role::Supervisor),
        "deadline profiles are for centre staff",
    )?;
    Ok(web::Json(state.repo.deadline_profiles().await?))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct ProfileInput {
    /// A category code or prefix (`02`, `0201`), or `*` for every category;
    /// absent for a profile used only where a category or rule names it.
    #[serde(default)]
    #[schema(pattern = r"^(\*|[0-9]{2}|[0-9]{4})$")]
    pub category_prefix: Option<String>,
    pub urgency: Urgency,
    pub phases: PhaseLimits,
    /// Overrides the city's warning fraction (0–1).
    #[serde(default)]
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub warning_fraction: Option<f64>,
}

/// Creates or replaces a deadline profile. 409 when another profile already
/// covers the same category prefix and urgency.
#[utoipa::path(
    tag = "admin",
    params(("id" = String, Path, pattern = "^[A-Za-z0-9_-]{1,64}$")),
    request_body = ProfileInput,
    security(("bearer" = [])),
    responses(
        (status = 204),
        (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem),
        (status = 422, body = crate::error::Problem),
    )
)]
#[put("/api/v1/admin/deadline-profiles/{id}")]
async fn save_profile(
    user: AuthUser,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: Json<ProfileInput>,
) -> Result<HttpResponse, ApiError> {
    let actor = require_admin(&user)?;
    let id = id.into_inner();
    let input = body.into_inner();
    if !is_code(&id) {
        return Err(ApiError::invalid_field(
            "id",
            "invalid_id",
            format!("a profile id is {CODE_RULE}"),
        ));
    }
    // Trimmed like a routing rule's prefix, so " 03" pasted from a sheet is "03".
    let category_prefix = input.category_prefix.map(|p| p.trim().to_owned());
    if !category_prefix.as_deref().is_none_or(is_profile_prefix) {
        return Err(ApiError::invalid_field(
            "category_prefix",
            "invalid_category_prefix",
            "category_prefix is a category code (a 大类 also covers its 小类), or *",
        ));
    }
    if input
        .warning_fraction
        .is_some_and(|f| !(0.0..=1.0).contains(&f))
    {
        return Err(ApiError::invalid_field(
            "warning_fraction",
            "invalid_warning_fraction",
            "warning_fraction is between 0 and 1",
        ));
    }
    let phases = input.phases;
    if let Some((phase, limit)) = phases.named().into_iter().find(|(_, l)| !l.is_settable()) {
        return Err(ApiError::invalid_field(
            format!("phases.{phase}"),
            "invalid_limit",
            format!(
                "{phase} is {limit}; a phase limit is between 1 and {} of its unit",
                Limit::max_amount(limit.unit)
            ),
        ));
    }
    if !phases.rework_is_shorter() {
        return Err(ApiError::invalid_field(
            "phases.rework",
            "rework_not_shorter",
            "the rework limit must be shorter than the handle limit (返工 follows a failed check)",
        ));
    }
    let profile = DeadlineProfile {
        id,
        category_prefix,
        urgency: input.urgency,
        phases,
        warning_fraction: input.warning_fraction,
    };
    match state
        .repo
        .save_deadline_profile(&profile, &actor, now())
        .await
    {
        Ok(ProfileSave::Saved) => {}
        Ok(ProfileSave::DefaultStays) => {
            return Err(ApiError::Conflict {
                code: "profile_in_use",
                detail: format!(
                    "{} is the default profile (*, normal urgency) every case falls back on; \
                     change its limits, not its category or urgency",
                    profile.id
                ),
            });
        }
        Err(StoreError::Conflict(_)) => {
            return Err(ApiError::Conflict {
                code: "profile_conflict",
                detail: format!(
                    "another profile already covers category {} at {} urgency",
                    profile.category_prefix.as_deref().unwrap_or_default(),
                    profile.urgency.as_str()
                ),
            });
        }
        Err(other) => return Err(other.into()),
    }
    refresh_reference_data(&state).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Deletes a profile; the normal-urgency default (`*`) cannot be deleted.
#[utoipa::path(
    tag = "admin",
    params(("id" = String, Path)),
    security(("bearer" = [])),
    responses((status = 204), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem), (status = 409, body = crate::error::Problem))
)]
#[delete("/api/v1/admin/deadline-profiles/{id}")]
async fn delete_profile(
    user: AuthUser,
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let actor = require_admin(&user)?;
    let deletion = state
        .repo
        .delete_deadline_profile(&id, &actor, now())
        .await?;
    deletion_response(
        &state,
        deletion,
        "deadline profile",
        "profile_in_use",
        |by| format!("cannot delete {by}; change its limits instead"),
    )
    .await
}
