//! The case workflow over HTTP: actions, timeline, deadlines, the dispatch queue
//! and unit inboxes. Visibility is checked before anything else: a case a caller
//! may not see answers 404, exactly like one that does not exist.

use actix_web::{get, post, web};
use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use uuid::Uuid;

use crate::auth::AuthUser;
use crate::domain::case::{Action, ActionEnvelope, Actor, CaseState, PendingRequest, Refusal};
use crate::domain::clock::{Clock, ClockStatus};
use crate::domain::code::{CODE_RULE, is_code};
use crate::domain::deadline::{Explanation, Limit, Urgency};
use crate::domain::instant;
use crate::domain::role::Role;
use crate::error::ApiError;
use crate::error::extractors::Json;
use crate::limits::CitizenWork;
use crate::state::{AppState, now};
use crate::store::{CaseCursor, CaseQuery, CaseSession, CaseSort, CaseSummary, WorkflowCase};
use crate::workflow::WorkflowError;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(take_action)
        .service(case_detail)
        .service(timeline)
        .service(deadlines)
        .service(queue)
        .service(unit_inbox);
}

/// How a caller relates to a case they may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    Reporter,
    /// Dispatch centre, supervisors, inspectors, admins: every case.
    Centre,
    /// Staff of a unit with an assignment on the case.
    Unit,
}

/// Who may see `case`, or `None` (answered as 404). Staff who filed the report
/// themselves (an inspector on patrol) still see it as staff: their role, not
/// the report, decides the view.
pub(super) fn access(user: &AuthUser, case: &WorkflowCase) -> Option<Access> {
    let as_staff = match user.role {
        Role::Operator | Role::Supervisor | Role::Inspector | Role::Admin => Some(Access::Centre),
        Role::UnitStaff | Role::UnitLead => user.unit_id.as_deref().and_then(|unit| {
            case.assignments
                .iter()
                .any(|a| a.unit == unit)
                .then_some(Access::Unit)
        }),
        Role::Citizen | Role::Integrator => None,
    };
    as_staff.or_else(|| (case.reporter_id == user.id).then_some(Access::Reporter))
}

/// A case read for an action, if `user` may see it; 404 otherwise.
async fn visible_session(
    state: &AppState,
    user: &AuthUser,
    id: Uuid,
) -> Result<(CaseSession, Access), ApiError> {
    let session = state
        .workflow
        .open(id)
        .await
        .map_err(workflow_error)?
        .ok_or(ApiError::NotFound("case"))?;
    let access = access(user, session.case()).ok_or(ApiError::NotFound("case"))?;
    Ok((session, access))
}

async fn visible_case(
    state: &AppState,
    user: &AuthUser,
    id: Uuid,
) -> Result<(WorkflowCase, Access), ApiError> {
    let (session, access) = visible_session(state, user, id).await?;
    Ok((session.into_case(), access))
}

/// A case for staff views: the reporter, like anyone who may not see it, gets 404.
async fn staff_case(state: &AppState, user: &AuthUser, id: Uuid) -> Result<WorkflowCase, ApiError> {
    match visible_case(state, user, id).await? {
        (_, Access::Reporter) => Err(ApiError::NotFound("case")),
        (case, _) => Ok(case),
    }
}

/// An action as sent: `action` names it, `version` is the case version the
/// client last saw, and the action's own fields sit beside them.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ActionRequest {
    pub version: i64,
    #[serde(flatten)]
    pub action: Action,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ActionResult {
    pub case_id: Uuid,
    pub from: CaseState,
    pub state: CaseState,
    /// Send this as `version` with the next action.
    pub version: i64,
    pub event_id: Uuid,
    pub event_kind: String,
}

/// Take an action on a case (DESIGN.md §3). 409 `stale_version` when the case
/// changed since `version`; the refusal `code` says why anything else failed.
#[utoipa::path(
    tag = "cases",
    params(("id" = Uuid, Path)),
    request_body = ActionRequest,
    security(("bearer" = [])),
    responses(
        (status = 200, body = ActionResult),
        (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem, description = "wrong_role, wrong_unit"),
        (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem, description = "stale_version, wrong_state, request_pending, no_pending_request"),
        (status = 422, body = crate::error::Problem, description = "missing_reason, missing_after_photo, outside_window, reporter_not_dissatisfied, extension_cap_reached, invalid_input, same_photo_as_before, photo_unavailable, unknown_unit, inactive_unit, unknown_case, invalid_master, deadline_unavailable"),
        (status = 429, body = crate::error::Problem, description = "This citizen's actions for the hour are used up"),
    )
)]
#[post("/api/v1/cases/{id}/actions")]
async fn take_action(
    user: AuthUser,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
    body: Json<ActionRequest>,
) -> Result<web::Json<ActionResult>, ApiError> {
    let (session, _) = visible_session(&state, &user, id.into_inner()).await?;
    state
        .citizen_limits
        .spend(user.id, user.role, CitizenWork::Action)?;
    let request = body.into_inner();
    let actor = Actor::new(user.id, user.role, user.unit_id.clone());
    let envelope = ActionEnvelope {
        expected_version: request.version,
        action: request.action,
    };
    let outcome = state
        .workflow
        .act(session, &actor, &envelope, now())
        .await
        .map_err(workflow_error)?;
    Ok(web::Json(ActionResult {
        case_id: outcome.case_id,
        from: outcome.from,
        state: outcome.state,
        version: outcome.version,
        event_id: outcome.event_id,
        event_kind: outcome.event_kind,
    }))
}

pub(super) fn workflow_error(err: WorkflowError) -> ApiError {
    match err {
        WorkflowError::NotFound => ApiError::NotFound("case"),
        WorkflowError::Refused(refusal) => refusal_error(&refusal),
        WorkflowError::Evidence(refusal) => {
            ApiError::invalid_field("after_photo_ids", refusal.code(), refusal.to_string())
        }
        WorkflowError::PhotoUnavailable(_) => {
            ApiError::invalid_field("after_photo_ids", "photo_unavailable", err.to_string())
        }
        WorkflowError::UnknownReference { what } => ApiError::unprocessable(
            if what == "unit" {
                "unknown_unit"
            } else {
                "unknown_case"
            },
            err.to_string(),
        ),
        WorkflowError::InactiveUnit(_) => ApiError::unprocessable("inactive_unit", err.to_string()),
        WorkflowError::MasterNotACase(_) => {
            ApiError::invalid_field("master", "invalid_master", err.to_string())
        }
        WorkflowError::NoProfile | WorkflowError::NoCalendar(_) | WorkflowError::Deadline(_) => {
            ApiError::unprocessable("deadline_unavailable", err.to_string())
        }
        WorkflowError::Store(e) => e.into(),
    }
}

fn refusal_error(refusal: &Refusal) -> ApiError {
    let code = refusal.code();
    let detail = refusal.to_string();
    match refusal {
        Refusal::WrongRole { .. } | Refusal::WrongUnit => ApiError::Denied { code, detail },
        Refusal::StaleVersion
        | Refusal::WrongState { .. }
        | Refusal::RequestPending
        | Refusal::NoPendingRequest => ApiError::Conflict { code, detail },
        Refusal::MissingReason
        | Refusal::MissingAfterPhoto
        | Refusal::OutsideWindow
        | Refusal::ReporterNotDissatisfied
        | Refusal::ExtensionCapReached
        | Refusal::InvalidInput(_) => ApiError::unprocessable(code, detail),
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TimelineEntry {
    pub id: Uuid,
    pub kind: String,
    pub at: DateTime<Utc>,
    /// `citizen`, `operator`, … or `system`.
    pub actor_role: String,
    /// Staff only: who acted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<Uuid>,
    /// Whether the reporter sees this entry.
    pub public: bool,
    pub data: serde_json::Value,
}

/// One unit's share of a case: 主办 (lead) or 协办 (co-unit).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AssignmentView {
    pub unit: String,
    pub lead: bool,
    pub assigned_at: DateTime<FixedOffset>,
    /// When the unit signed (签收); absent while it has not.
    pub signed_at: Option<DateTime<FixedOffset>>,
    /// When the unit reported its share done; absent while it has not.
    pub finished_at: Option<DateTime<FixedOffset>>,
}

/// A case as staff work it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CaseDetail {
    pub id: Uuid,
    pub state: CaseState,
    /// Send this as `version` with the next action.
    pub version: i64,
    pub source: String,
    pub category: String,
    pub urgency: Urgency,
    /// Lead first, then co-units, each with its own sign and finish times.
    pub assignments: Vec<AssignmentView>,
    /// A unit's return, extension or suspension request awaiting a decision.
    pub pending_request: Option<PendingRequest>,
    pub extensions_granted: u32,
    pub rework_count: u32,
    /// What the checker (核查) should look at: after-photos taken before
    /// dispatch or far from the case, co-units that had not finished when the
    /// lead reported done.
    #[schema(value_type = Vec<Object>)]
    pub check_flags: Vec<serde_json::Value>,
    /// Earliest due time among the case's running clocks.
    pub due_at: Option<DateTime<FixedOffset>>,
    pub dispatched_at: Option<DateTime<FixedOffset>>,
    pub closed_at: Option<DateTime<FixedOffset>>,
    /// The case this one was merged into as a duplicate.
    pub master_case_id: Option<Uuid>,
}

/// A case's workflow state: version, units and their progress, the pending
/// request and what the checker should look at. Staff who may see the case
/// (unit staff: cases assigned to their unit); others get 404.
#[utoipa::path(
    tag = "cases",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = CaseDetail), (status = 401, body = crate::error::Problem), (status = 404, body = crate::error::Problem))
)]
#[get("/api/v1/cases/{id}")]
async fn case_detail(
    user: AuthUser,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<web::Json<CaseDetail>, ApiError> {
    let case = staff_case(&state, &user, id.into_inner()).await?;
    let local = |t: DateTime<Utc>| state.local(t);
    let mut assignments: Vec<AssignmentView> = case
        .assignments
        .iter()
        .map(|a| AssignmentView {
            unit: a.unit.clone(),
            lead: a.lead,
            assigned_at: local(a.assigned_at),
            signed_at: a.signed_at.map(local),
            finished_at: a.finished_at.map(local),
        })
        .collect();
    assignments.sort_by_key(|a| !a.lead);
    let fields = case.fields;
    Ok(web::Json(CaseDetail {
        id: case.id,
        state: case.state,
        version: case.version,
        source: case.source,
        category: case.category_code,
        urgency: fields.urgency,
        assignments,
        pending_request: fields.pending_request,
        extensions_granted: fields.extensions_granted,
        rework_count: fields.rework_count,
        check_flags: fields.check_flags,
        due_at: fields.due_at.map(local),
        dispatched_at: fields.dispatched_at.map(local),
        closed_at: fields.closed_at.map(local),
        master_case_id: fields.master_case_id,
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct Timeline {
    pub case_id: Uuid,
    pub items: Vec<TimelineEntry>,
}

/// A case's timeline, oldest first: public entries for the reporter, all for staff.
#[utoipa::path(
    tag = "cases",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = Timeline), (status = 401, body = crate::error::Problem), (status = 404, body = crate::error::Problem))
)]
#[get("/api/v1/cases/{id}/timeline")]
async fn timeline(
    user: AuthUser,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<web::Json<Timeline>, ApiError> {
    let (case, access) = visible_case(&state, &user, id.into_inner()).await?;
    let staff = access != Access::Reporter;
    // Staff see who acted, except the reporter of a confidential (保密) case.
    let shown = |actor: Option<Uuid>| {
        actor.filter(|id| staff && !(case.confidential && *id == case.reporter_id))
    };
    let items = state
        .repo
        .case_events(case.id)
        .await?
        .into_iter()
        .filter(|e| staff || e.public)
        .map(|e| TimelineEntry {
            id: e.id,
            kind: e.kind,
            at: e.created_at,
            actor_role: e.actor_role,
            actor_id: shown(e.actor_id),
            public: e.public,
            data: e.data,
        })
        .collect();
    Ok(web::Json(Timeline {
        case_id: case.id,
        items,
    }))
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ClockView {
    pub id: Uuid,
    pub phase: crate::domain::case::Phase,
    /// The co-unit whose clock this is; absent for the case's own clocks.
    pub unit: Option<String>,
    pub status: ClockStatus,
    pub limit: Limit,
    pub started_at: DateTime<FixedOffset>,
    pub warning_at: DateTime<FixedOffset>,
    pub due_at: DateTime<FixedOffset>,
    /// Set when an approved extension replaced the computed due time.
    pub extended_to: Option<DateTime<FixedOffset>>,
    pub stopped_at: Option<DateTime<FixedOffset>>,
    pub warned_at: Option<DateTime<FixedOffset>>,
    pub overdue_at: Option<DateTime<FixedOffset>>,
    /// Whether it was (or, while running, is now) past due.
    pub overdue: bool,
    pub calendar_version: String,
    /// The inputs the due time was computed from: start, limit, calendar
    /// years and version, office hours, pauses, the receipt day (not counted).
    #[schema(value_type = Object)]
    pub explanation: Explanation,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CaseDeadlines {
    pub case_id: Uuid,
    pub state: CaseState,
    pub urgency: Urgency,
    /// Earliest due time among the case's running clocks.
    pub due_at: Option<DateTime<FixedOffset>>,
    pub clocks: Vec<ClockView>,
}

/// Every clock the case ran, with how each due time was computed. Staff only.
#[utoipa::path(
    tag = "cases",
    params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = CaseDeadlines), (status = 401, body = crate::error::Problem), (status = 404, body = crate::error::Problem))
)]
#[get("/api/v1/cases/{id}/deadlines")]
async fn deadlines(
    user: AuthUser,
    state: web::Data<AppState>,
    id: web::Path<Uuid>,
) -> Result<web::Json<CaseDeadlines>, ApiError> {
    let case = staff_case(&state, &user, id.into_inner()).await?;
    let local = |t: DateTime<Utc>| state.local(t);
    let at = now();
    let clocks = state
        .repo
        .case_clocks(case.id)
        .await?
        .into_iter()
        .map(|c: Clock| ClockView {
            overdue: c.overdue_at.is_some()
                || (c.status == ClockStatus::Running && c.due_at <= at)
                || c.stopped_at.is_some_and(|s| s > c.due_at),
            id: c.id,
            phase: c.phase,
            unit: c.unit.clone(),
            status: c.status,
            limit: c.limit,
            started_at: local(c.started_at),
            warning_at: local(c.warning_at),
            due_at: local(c.due_at),
            extended_to: c.extended_to.map(local),
            stopped_at: c.stopped_at.map(local),
            warned_at: c.warned_at.map(local),
            overdue_at: c.overdue_at.map(local),
            calendar_version: c.calendar_version().to_owned(),
            explanation: c.explanation,
        })
        .collect();
    Ok(web::Json(CaseDeadlines {
        case_id: case.id,
        state: case.state,
        urgency: case.fields.urgency,
        due_at: case.fields.due_at.map(local),
        clocks,
    }))
}

/// Filters of the dispatch queue and unit inboxes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QueueParams {
    /// Comma-separated states, e.g. `dispatched,in_progress`.
    #[param(value_type = Option<Vec<CaseState>>, style = Form, explode = false)]
    pub state: Option<String>,
    /// Cases with an assignment (lead or co-unit) of this unit.
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub unit: Option<String>,
    /// Category code or prefix.
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub category: Option<String>,
    /// Zone code on the case's zone path.
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub zone: Option<String>,
    /// `app`, `inspector`, `hotline`…
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub source: Option<String>,
    /// Cases whose earliest running clock is due before this instant (years 1–9999).
    #[serde(default, deserialize_with = "instant::deserialize_option")]
    pub due_before: Option<DateTime<Utc>>,
    /// `true`: only cases past due now; `false`: only cases that are not.
    pub overdue: Option<bool>,
    /// Only cases flagged for a human look (photo far away, doubtful proof).
    pub flagged: Option<bool>,
    /// `newest` (default), `oldest` or `due` (soonest first; only cases with a
    /// running clock). A `due` walk is a live view: a case whose due time moves
    /// between two pages (an extension, a resume) may be listed again or missed.
    #[param(inline)]
    pub sort: Option<CaseSort>,
    /// `next_cursor` of the previous page, sent with the same `sort` and filters
    /// (400 otherwise; `limit` may change); absent or empty for the first.
    pub cursor: Option<String>,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CaseLine {
    pub id: Uuid,
    pub tracking_no: String,
    pub state: CaseState,
    pub version: i64,
    pub source: String,
    pub category: String,
    pub urgency: Urgency,
    pub lead_unit: Option<String>,
    pub due_at: Option<DateTime<FixedOffset>>,
    pub overdue: bool,
    pub flagged: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CasePage {
    pub items: Vec<CaseLine>,
    /// Pass as `cursor` with the same filters for the next page; null on the last.
    pub next_cursor: Option<String>,
}

/// The dispatch centre's queue. Unit staff see only their own unit's cases.
#[utoipa::path(
    tag = "cases",
    params(QueueParams),
    security(("bearer" = [])),
    responses((status = 200, body = CasePage), (status = 400, body = crate::error::Problem), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem))
)]
#[get("/api/v1/cases")]
async fn queue(
    user: AuthUser,
    state: web::Data<AppState>,
    params: web::Query<QueueParams>,
) -> Result<web::Json<CasePage>, ApiError> {
    let mut params = params.into_inner();
    if user.role.is_unit_role() {
        let own = user
            .unit_id
            .clone()
            .ok_or(ApiError::Forbidden("this account belongs to no unit"))?;
        if params.unit.as_ref().is_some_and(|u| *u != own) {
            return Err(ApiError::Forbidden(
                "unit staff see their own unit's cases only",
            ));
        }
        params.unit = Some(own);
    } else {
        require_centre(&user)?;
    }
    list(&state, params).await
}

/// A unit's inbox: cases on which the unit has an assignment. The `unit` filter,
/// if given, must be the same unit (400 otherwise).
#[utoipa::path(
    tag = "cases",
    params(("code" = String, Path), QueueParams),
    security(("bearer" = [])),
    responses((status = 200, body = CasePage), (status = 400, body = crate::error::Problem), (status = 401, body = crate::error::Problem), (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem))
)]
#[get("/api/v1/units/{code}/cases")]
async fn unit_inbox(
    user: AuthUser,
    state: web::Data<AppState>,
    code: web::Path<String>,
    params: web::Query<QueueParams>,
) -> Result<web::Json<CasePage>, ApiError> {
    let code = code.into_inner();
    if user.role.is_unit_role() {
        // Another unit's inbox does not exist for unit staff.
        if user.unit_id.as_deref() != Some(code.as_str()) {
            return Err(ApiError::NotFound("unit"));
        }
    } else {
        require_centre(&user)?;
        if !state.repo.units().await?.iter().any(|u| u.code == code) {
            return Err(ApiError::NotFound("unit"));
        }
    }
    let mut params = params.into_inner();
    // The path names the unit; a different `unit` filter would be silently
    // replaced, so it is refused instead.
    if params.unit.as_ref().is_some_and(|u| *u != code) {
        return Err(invalid_query(format!(
            "this inbox lists {code}'s cases; `unit` filters the dispatch queue, /api/v1/cases"
        )));
    }
    params.unit = Some(code);
    list(&state, params).await
}

fn require_centre(user: &AuthUser) -> Result<(), ApiError> {
    user.require(
        |r| {
            matches!(
                r,
                Role::Operator | Role::Supervisor | Role::Inspector | Role::Admin
            )
        },
        "the case queue is for centre and unit staff",
    )
}

async fn list(state: &AppState, params: QueueParams) -> Result<web::Json<CasePage>, ApiError> {
    let at = now();
    let limit = params.limit.unwrap_or(50);
    if !(1..=200).contains(&limit) {
        return Err(invalid_query("limit must be between 1 and 200"));
    }
    let sort = params.sort.unwrap_or(CaseSort::Newest);
    let states = match &params.state {
        None => Vec::new(),
        // `state=` and stray commas, as form builders send them, filter nothing.
        Some(list) => list
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                CaseState::parse(s).ok_or_else(|| invalid_query(format!("unknown state {s:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    for (name, value) in [
        ("unit", &params.unit),
        ("category", &params.category),
        ("zone", &params.zone),
        ("source", &params.source),
    ] {
        if let Some(v) = value
            && !is_code(v)
        {
            return Err(invalid_query(format!("{name} must be {CODE_RULE}")));
        }
    }
    let mut query = CaseQuery {
        states,
        unit: params.unit,
        category: params.category,
        zone: params.zone,
        source: params.source,
        due_by: params.due_before.map(instant::last_stored_before),
        overdue: params.overdue.map(|overdue| (overdue, at)),
        flagged: params.flagged,
        sort,
        after: None,
        limit: i64::from(limit) + 1,
    };
    let walk = Walk::of(&query);
    // An empty `cursor=` is the first page, as an empty `state=` is no filter.
    query.after = params
        .cursor
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(|c| walk.parse(c))
        .transpose()?;
    let mut rows = state.repo.list_cases(&query).await?;
    let more = rows.len() > limit as usize;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| walk.cursor_after(r))
    } else {
        None
    };
    Ok(web::Json(CasePage {
        items: rows
            .into_iter()
            .map(|r| CaseLine {
                overdue: r.due_at.is_some_and(|d| d <= at),
                due_at: r.due_at.map(|d| state.local(d)),
                id: r.id,
                tracking_no: r.tracking_no,
                state: r.state,
                version: r.version,
                source: r.source,
                category: r.category_code,
                urgency: r.urgency,
                lead_unit: r.lead_unit,
                flagged: r.flagged,
                created_at: r.created_at,
            })
            .collect(),
        next_cursor,
    }))
}

fn invalid_query(detail: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_query", detail)
}

/// One walk through a queue: its order and filters. A cursor names the walk it
/// belongs to and the last case given out, so a cursor used with another order
/// or other filters is refused rather than continuing some other walk
/// (as Google's API guidelines, AIP-158, ask). The page size may change.
struct Walk {
    /// The order's letter and a digest of the filters.
    tag: String,
    sort: CaseSort,
}

impl Walk {
    fn of(query: &CaseQuery) -> Walk {
        use sha2::{Digest, Sha256};
        let mut states: Vec<&str> = query.states.iter().map(|s| s.as_str()).collect();
        states.sort_unstable();
        states.dedup();
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let filters = [
            states.join(","),
            text(&query.unit),
            text(&query.category),
            text(&query.zone),
            text(&query.source),
            query
                .due_by
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true))
                .unwrap_or_default(),
            query
                .overdue
                .map(|(o, _)| o.to_string())
                .unwrap_or_default(),
            query.flagged.map(|f| f.to_string()).unwrap_or_default(),
        ]
        .join("\u{1f}");
        let digest = Sha256::digest(filters.as_bytes());
        let order = match query.sort {
            CaseSort::Newest => 'n',
            CaseSort::Oldest => 'o',
            CaseSort::Due => 'd',
        };
        Walk {
            tag: format!("{order}{}", hex::encode(&digest[..4])),
            sort: query.sort,
        }
    }

    /// `tag~id`, and for `due` order `tag~seconds.nanoseconds~id`: the due time
    /// to the nanosecond, as the database holds it.
    fn cursor_after(&self, row: &CaseSummary) -> String {
        match (self.sort, row.due_at) {
            (CaseSort::Due, Some(due)) => format!(
                "{}~{}.{:09}~{}",
                self.tag,
                due.timestamp(),
                due.timestamp_subsec_nanos(),
                row.id
            ),
            _ => format!("{}~{}", self.tag, row.id),
        }
    }

    fn parse(&self, cursor: &str) -> Result<CaseCursor, ApiError> {
        let bad = || invalid_query("cursor is not one this endpoint gave out");
        let (tag, position) = cursor.split_once('~').ok_or_else(bad)?;
        if tag != self.tag {
            let well_formed = tag.len() == self.tag.len()
                && tag.starts_with(['n', 'o', 'd'])
                && tag[1..].bytes().all(|b| b.is_ascii_hexdigit());
            return Err(if well_formed {
                invalid_query(
                    "the cursor belongs to another order or other filters; \
                     start again without a cursor",
                )
            } else {
                bad()
            });
        }
        let (due_at, id) = match self.sort {
            CaseSort::Due => {
                let (due, id) = position.split_once('~').ok_or_else(bad)?;
                let (seconds, nanos) = due
                    .split_once('.')
                    .filter(|(_, nanos)| nanos.len() == 9)
                    .ok_or_else(bad)?;
                let due = seconds
                    .parse()
                    .ok()
                    .zip(nanos.parse().ok())
                    .and_then(|(s, n)| DateTime::from_timestamp(s, n))
                    .and_then(|t| instant::checked(t).ok())
                    .ok_or_else(bad)?;
                (Some(due), id)
            }
            CaseSort::Newest | CaseSort::Oldest => (None, position),
        };
        Ok(CaseCursor {
            id: Uuid::parse_str(id).map_err(|_| bad())?,
            due_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(due: Option<DateTime<Utc>>) -> CaseSummary {
        CaseSummary {
            id: Uuid::now_v7(),
            tracking_no: "SP20261128-000001".into(),
            state: CaseState::Dispatched,
            version: 3,
            source: "app".into(),
            category_code: "0101".into(),
            urgency: Urgency::Normal,
            lead_unit: Some("U1".into()),
            due_at: due,
            flagged: false,
            created_at: Utc::now(),
        }
    }

    fn walk(sort: CaseSort, states: Vec<CaseState>) -> Walk {
        Walk::of(&CaseQuery {
            states,
            sort,
            ..CaseQuery::default()
        })
    }

    #[test]
    fn cursors_round_trip_for_every_order_to_the_nanosecond() {
        // A due time from a database that keeps nanoseconds (SQLite's text).
        let due = DateTime::from_timestamp(1_790_000_000, 123_456_789).expect("time");
        let row = summary(Some(due));
        for sort in [CaseSort::Newest, CaseSort::Oldest, CaseSort::Due] {
            let walk = walk(sort, vec![]);
            let cursor = walk.parse(&walk.cursor_after(&row)).expect("parses");
            assert_eq!(cursor.id, row.id);
            assert_eq!(cursor.due_at, (sort == CaseSort::Due).then_some(due));
        }
    }

    #[test]
    fn a_cursor_belongs_to_its_order_and_filters() {
        let row = summary(Some(Utc::now()));
        let filed = walk(CaseSort::Newest, vec![CaseState::Filed]);
        let cursor = filed.cursor_after(&row);
        // The order of the states named does not make another walk.
        let same = walk(CaseSort::Newest, vec![CaseState::Filed, CaseState::Filed]);
        assert_eq!(same.parse(&cursor).expect("the same walk").id, row.id);
        for other in [
            walk(CaseSort::Oldest, vec![CaseState::Filed]),
            walk(CaseSort::Due, vec![CaseState::Filed]),
            walk(CaseSort::Newest, vec![]),
            walk(CaseSort::Newest, vec![CaseState::Dispatched]),
        ] {
            let refusal = other.parse(&cursor).expect_err("another walk").problem();
            assert_eq!(refusal.code, "invalid_query");
            assert!(
                refusal
                    .detail
                    .as_deref()
                    .unwrap_or_default()
                    .contains("another order or other filters"),
                "{refusal:?}"
            );
        }
    }

    #[test]
    fn malformed_cursors_are_refused() {
        let due = walk(CaseSort::Due, vec![]);
        let tag = &due.tag;
        let id = Uuid::now_v7();
        for cursor in [
            "nonsense".to_owned(),
            "x~y".to_owned(),
            id.to_string(),
            format!("{tag}~{id}"),
            format!("{tag}~1790000000~{id}"),
            format!("{tag}~1790000000.5x~{id}"),
            format!("{tag}~1790000000.1000000000~{id}"),
            format!("{tag}~1790000000.000000000~not-a-uuid"),
            // Before year 1: PostgreSQL could not compare it.
            format!("{tag}~-1000000000000000000.000000000~{id}"),
        ] {
            let refusal = due.parse(&cursor).expect_err("malformed").problem();
            assert_eq!(
                refusal.detail.as_deref(),
                Some("cursor is not one this endpoint gave out"),
                "{cursor}"
            );
        }
    }
}
