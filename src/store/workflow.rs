//! Case workflow storage: loading what an action needs, saving a transition with
//! a compare-and-swap on the case version, the queues, and each case's clocks.
//! Types first; the SQL is a macro expanded for each backend like `sql.rs`.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::domain::case::{CaseState, PendingRequest, ReturnReason};
use crate::domain::clock::{Clock, ClockStatus};
use crate::domain::deadline::{Explanation, Limit, Unit, Urgency};
use crate::domain::geo::LatLon;

use super::StoreError;
use super::records::{parse_id, parse_opt_id};

/// Category policy (DESIGN §3) as the workflow reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CategoryPolicy {
    /// Reports with a photo and a matching rule are filed and dispatched by the system.
    pub auto_dispatch: bool,
    /// The reporter may pass the check (核查) by confirming the fix.
    pub reporter_may_check: bool,
    /// Extensions (延期) a case of this category may be granted.
    pub max_extensions: u32,
}

impl Default for CategoryPolicy {
    fn default() -> Self {
        CategoryPolicy {
            auto_dispatch: true,
            reporter_may_check: false,
            max_extensions: 2,
        }
    }
}

/// One unit's share of a dispatched case.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AssignmentRecord {
    pub unit: String,
    /// 主办 (true) or 协办.
    pub lead: bool,
    pub assigned_at: DateTime<Utc>,
    pub signed_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
}

/// The workflow columns of a case: everything an action may change besides the
/// state, assignments and clocks. Saved whole, so a change is never half-applied.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WorkflowFields {
    pub urgency: Urgency,
    pub pending_request: Option<PendingRequest>,
    pub extensions_granted: u32,
    pub rework_count: u32,
    pub dispatched_at: Option<DateTime<Utc>>,
    pub sign_window_ends: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    pub master_case_id: Option<Uuid>,
    pub not_filed_reason: Option<String>,
    pub rating: Option<u8>,
    /// What the checker should look at (after-photo doubts, outstanding co-units).
    pub check_flags: Vec<serde_json::Value>,
    /// Earliest due time among the case's own running clocks.
    pub due_at: Option<DateTime<Utc>>,
}

/// Everything an action needs to know about a case, read together.
#[derive(Debug, Clone)]
pub struct WorkflowCase {
    pub id: Uuid,
    pub state: CaseState,
    pub version: i64,
    pub source: String,
    pub category_code: String,
    pub location: LatLon,
    pub reporter_id: Uuid,
    /// 保密: the reporter is hidden from everyone but the reporter.
    pub confidential: bool,
    /// What routing proposed at intake (lead, co-units, profile); dispatch may differ.
    pub routed_lead: Option<String>,
    pub routed_co_units: Vec<String>,
    /// Profile named by the routing rule, else by the category.
    pub named_profile: Option<String>,
    pub created_at: DateTime<Utc>,
    pub fields: WorkflowFields,
    pub policy: CategoryPolicy,
    /// The category's default, which a case takes when it is filed.
    pub category_urgency: Urgency,
    pub assignments: Vec<AssignmentRecord>,
    /// Running and paused clocks; stopped ones are history.
    pub clocks: Vec<Clock>,
}

/// A case read for an action and, on PostgreSQL, the pooled connection it was
/// read on, which then saves the change planned from it: an action takes one
/// connection from the pool instead of two. sqlx pings every connection that goes
/// back to the pool, so each checkout costs a round trip of its own: the second
/// cost 3–17 % of action throughput (BENCHMARKS.md).
///
/// Hold a session only across work that needs no other connection: requests
/// that each hold one and wait for another could use up the pool between them.
/// [`CaseSession::release`] hands the connection back first.
pub struct CaseSession {
    case: WorkflowCase,
    connection: Option<sqlx::pool::PoolConnection<sqlx::Postgres>>,
}

impl CaseSession {
    pub(super) fn new(
        case: WorkflowCase,
        connection: Option<sqlx::pool::PoolConnection<sqlx::Postgres>>,
    ) -> CaseSession {
        CaseSession { case, connection }
    }

    pub fn case(&self) -> &WorkflowCase {
        &self.case
    }

    pub fn into_case(self) -> WorkflowCase {
        self.case
    }

    /// Returns the connection to the pool; the save will take one of its own.
    pub fn release(&mut self) {
        self.connection = None;
    }

    pub(super) fn into_connection(self) -> Option<sqlx::pool::PoolConnection<sqlx::Postgres>> {
        self.connection
    }
}

/// A timeline event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub id: Uuid,
    pub kind: String,
    pub actor_id: Option<Uuid>,
    pub actor_role: String,
    pub public: bool,
    pub data: serde_json::Value,
    /// When it happened; the outbox row carries the same time.
    pub at: DateTime<Utc>,
}

/// One transition, saved in one transaction: the case row (only if its version
/// is still `expected_version`), assignments, clocks, after-photos, the timeline
/// event, and an outbox row when the event is public.
#[derive(Debug, Clone)]
pub struct CaseChange {
    pub case_id: Uuid,
    pub expected_version: i64,
    pub state: CaseState,
    pub fields: WorkflowFields,
    /// `Some` replaces the case's assignments.
    pub assignments: Option<Vec<AssignmentRecord>>,
    /// New and changed clocks.
    pub clocks: Vec<Clock>,
    /// After-photos uploaded by `after_photos_owner`, attached with the event.
    pub after_photos: Vec<Uuid>,
    pub after_photos_owner: Option<Uuid>,
    pub event: NewEvent,
    /// Whether the event goes to the outbox: every public one, and every change
    /// of state or of the units assigned, public or not (a return to the
    /// centre, a reassignment, a co-unit's share handed back, the archive), so
    /// that a platform following the outbox always knows the state its
    /// reporter sees and who handles the case.
    pub outbox: bool,
    pub now: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SaveOutcome {
    Saved {
        version: i64,
    },
    /// Someone else changed the case first.
    Stale,
    /// An after-photo is not the actor's, already attached, or gone.
    PhotoUnavailable(Uuid),
}

/// Queue order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseSort {
    Newest,
    Oldest,
    /// Soonest due first; cases without a running clock are left out.
    Due,
}

/// Where a page of a queue starts: after the case with this key.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseCursor {
    pub id: Uuid,
    pub due_at: Option<DateTime<Utc>>,
}

/// Filters of the dispatch queue and unit inboxes; all optional, all ANDed.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseQuery {
    pub states: Vec<CaseState>,
    /// Cases with an assignment (lead or co-unit) of this unit.
    pub unit: Option<String>,
    /// Category code or prefix.
    pub category: Option<String>,
    pub zone: Option<String>,
    pub source: Option<String>,
    /// Cases due at or before this instant (a whole microsecond, as stored).
    pub due_by: Option<DateTime<Utc>>,
    /// `(true, now)`: only cases whose earliest running clock is past due at
    /// `now`; `(false, now)`: only cases that are not.
    pub overdue: Option<(bool, DateTime<Utc>)>,
    pub flagged: Option<bool>,
    pub sort: CaseSort,
    pub after: Option<CaseCursor>,
    pub limit: i64,
}

impl Default for CaseQuery {
    fn default() -> Self {
        CaseQuery {
            states: Vec::new(),
            unit: None,
            category: None,
            zone: None,
            source: None,
            due_by: None,
            overdue: None,
            flagged: None,
            sort: CaseSort::Newest,
            after: None,
            limit: 50,
        }
    }
}

/// A line of a queue.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseSummary {
    pub id: Uuid,
    pub tracking_no: String,
    pub state: CaseState,
    pub version: i64,
    pub source: String,
    pub category_code: String,
    pub urgency: Urgency,
    pub lead_unit: Option<String>,
    pub due_at: Option<DateTime<Utc>>,
    pub flagged: bool,
    pub created_at: DateTime<Utc>,
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub clocks: usize,
    pub warnings: usize,
    pub overdue: usize,
}

impl SweepReport {
    pub fn is_empty(&self) -> bool {
        self.clocks == 0
    }
}

/// What a clock row stores as "inputs": the computation and any extension.
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct ClockInputs {
    pub explanation: Explanation,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extended_to: Option<DateTime<Utc>>,
}

/// What saving a clock that already exists changes: everything but its identity,
/// phase, unit, limit and start. The sweeper marks given events on the row
/// without touching the case's version, so a change read before a sweep can
/// arrive after it: the stored marks win (they are only ever set, never
/// cleared), and the next check follows them as `Clock::next_check_at` would.
pub(super) const CLOCK_UPSERT: &str = "ON CONFLICT (id) DO UPDATE SET due_at = excluded.due_at, \
    warning_at = excluded.warning_at, status = excluded.status, paused_at = excluded.paused_at, \
    pauses = excluded.pauses, stopped_at = excluded.stopped_at, calendar_version = excluded.calendar_version, \
    inputs = excluded.inputs, \
    warned_at = COALESCE(case_clocks.warned_at, excluded.warned_at), \
    overdue_at = COALESCE(case_clocks.overdue_at, excluded.overdue_at), \
    next_check_at = CASE \
      WHEN excluded.next_check_at IS NULL OR case_clocks.overdue_at IS NOT NULL THEN NULL \
      WHEN case_clocks.warned_at IS NOT NULL THEN excluded.due_at \
      ELSE excluded.next_check_at END";

/// Values a change writes into its case row: the 15 new values and then the
/// expected version, in the order [`bind_case_row!`] binds them.
pub(super) const CASE_ROW_PARAMS: usize = 16;
/// Where the case id is among them.
pub(super) const CASE_ROW_ID_PARAM: usize = 15;

/// `UPDATE cases … FROM (VALUES rows) AS v …`: moves each listed case to its new
/// values only if its version is still the expected one, and returns the ids of
/// the cases it moved.
///
/// With `marks` (the case's clocks: `case_clocks`, or on PostgreSQL a CTE that
/// has locked them), a case also moves only while none of its clocks carries a
/// sweeper's mark later than the change's time. The sweeper marks clocks without
/// moving the version, so a change planned before a sweep can arrive after it;
/// saved, it would stop, pause or move a clock that the sweep has meanwhile
/// warned about or escalated, for a time the change says was already past. Refused
/// as stale instead, the change is planned again from the marked case.
pub(super) fn case_update_sql(rows: &str, marks: Option<&str>) -> String {
    let swept_later = marks.map_or(String::new(), |marks| {
        format!(
            " AND NOT EXISTS (SELECT 1 FROM {marks} k WHERE k.case_id = cases.id \
               AND (k.warned_at > v.column2 OR k.overdue_at > v.column2))"
        )
    });
    format!(
        "UPDATE cases SET state = v.column1, version = cases.version + 1, updated_at = v.column2, \
           urgency = v.column3, pending_request = v.column4, extensions_granted = v.column5, \
           rework_count = v.column6, dispatched_at = v.column7, sign_window_ends = v.column8, \
           closed_at = v.column9, master_case_id = v.column10, not_filed_reason = v.column11, \
           rating = v.column12, check_flags = v.column13, due_at = v.column14 \
         FROM (VALUES {rows}) AS v \
         WHERE cases.id = v.column15 AND cases.version = v.column16{swept_later} RETURNING cases.id"
    )
}

/// Binds one row of [`case_update_sql`]'s VALUES for `$change`; `?` on a
/// pending request that cannot be written as JSON.
macro_rules! bind_case_row {
    ($query:expr, $change:expr) => {{
        let change: &CaseChange = $change;
        let f = &change.fields;
        let pending_request = f
            .pending_request
            .as_ref()
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::Corrupt(format!("pending request: {e}")))?;
        $query
            .bind(change.state.as_str())
            .bind(change.now)
            .bind(f.urgency.as_str())
            .bind(pending_request)
            .bind(i64::from(f.extensions_granted))
            .bind(i64::from(f.rework_count))
            .bind(f.dispatched_at)
            .bind(f.sign_window_ends)
            .bind(f.closed_at)
            .bind(f.master_case_id.map(|id| id.to_string()))
            .bind(f.not_filed_reason.clone())
            .bind(f.rating.map(i64::from))
            .bind(serde_json::Value::Array(f.check_flags.clone()).to_string())
            .bind(f.due_at)
            .bind(change.case_id.to_string())
            .bind(change.expected_version)
    }};
}
pub(super) use bind_case_row;

pub(super) const CLOCK_COLUMNS: &str = "id, case_id, phase, unit_code, limit_amount, limit_unit, \
    started_at, due_at, warning_at, status, paused_at, pauses, stopped_at, calendar_version, inputs, \
    warned_at, overdue_at";

#[derive(sqlx::FromRow, serde::Deserialize)]
pub(super) struct ClockRow {
    id: String,
    phase: String,
    unit_code: Option<String>,
    limit_amount: i64,
    limit_unit: String,
    started_at: DateTime<Utc>,
    due_at: DateTime<Utc>,
    warning_at: DateTime<Utc>,
    status: String,
    paused_at: Option<DateTime<Utc>>,
    pauses: String,
    stopped_at: Option<DateTime<Utc>>,
    inputs: String,
    warned_at: Option<DateTime<Utc>>,
    overdue_at: Option<DateTime<Utc>>,
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

pub(super) fn limit_unit_name(unit: Unit) -> &'static str {
    match unit {
        Unit::WorkHours => "work_hours",
        Unit::WorkDays => "work_days",
        Unit::NaturalHours => "natural_hours",
    }
}

impl TryFrom<ClockRow> for Clock {
    type Error = StoreError;
    fn try_from(row: ClockRow) -> Result<Clock, StoreError> {
        let inputs: ClockInputs =
            serde_json::from_str(&row.inputs).map_err(|e| corrupt("clock inputs", e))?;
        let unit: Unit = serde_json::from_value(serde_json::Value::String(row.limit_unit))
            .map_err(|e| corrupt("clock limit unit", e))?;
        Ok(Clock {
            id: parse_id(&row.id)?,
            phase: crate::domain::case::Phase::parse(&row.phase)
                .ok_or_else(|| corrupt("clock phase", &row.phase))?,
            unit: row.unit_code,
            limit: Limit {
                amount: u32::try_from(row.limit_amount).map_err(|e| corrupt("clock limit", e))?,
                unit,
            },
            started_at: row.started_at,
            due_at: row.due_at,
            warning_at: row.warning_at,
            status: ClockStatus::parse(&row.status)
                .ok_or_else(|| corrupt("clock status", &row.status))?,
            paused_at: row.paused_at,
            pauses: serde_json::from_str(&row.pauses).map_err(|e| corrupt("clock pauses", e))?,
            stopped_at: row.stopped_at,
            explanation: inputs.explanation,
            extended_to: inputs.extended_to,
            warned_at: row.warned_at,
            overdue_at: row.overdue_at,
        })
    }
}

pub(super) fn pauses_json(clock: &Clock) -> String {
    serde_json::to_string(&clock.pauses).unwrap_or_else(|_| "[]".into())
}

pub(super) fn clock_inputs_json(clock: &Clock) -> String {
    serde_json::json!({
        "explanation": clock.explanation,
        "extended_to": clock.extended_to,
    })
    .to_string()
}

#[derive(sqlx::FromRow)]
pub(super) struct WorkflowCaseRow {
    id: String,
    state: String,
    version: i64,
    source: String,
    category_code: String,
    lat: f64,
    lon: f64,
    reporter_id: String,
    confidential: bool,
    lead_unit: Option<String>,
    co_units: String,
    deadline_profile: Option<String>,
    category_profile: Option<String>,
    created_at: DateTime<Utc>,
    urgency: String,
    pending_request: Option<String>,
    extensions_granted: i64,
    rework_count: i64,
    dispatched_at: Option<DateTime<Utc>>,
    sign_window_ends: Option<DateTime<Utc>>,
    closed_at: Option<DateTime<Utc>>,
    master_case_id: Option<String>,
    not_filed_reason: Option<String>,
    rating: Option<i64>,
    check_flags: String,
    due_at: Option<DateTime<Utc>>,
    auto_dispatch: bool,
    reporter_may_check: bool,
    max_extensions: i64,
    default_urgency: String,
    /// JSON list of [`AssignmentRow`]s.
    assignments: String,
    /// JSON list of the running and paused [`ClockRow`]s.
    clocks: String,
}

/// The case row with its category's policy, its assignments and its active
/// clocks, in one query: an action reads a case on every request, and each
/// statement is a round trip to a connection thread or a server. `agg` and
/// `object` name the dialect's JSON aggregate and object constructors.
pub(super) fn workflow_case_sql(agg: &str, object: &str) -> String {
    format!(
        "SELECT c.id, c.state, c.version, c.source, \
           c.category_code, c.lat, c.lon, c.reporter_id, c.confidential, c.lead_unit, c.co_units, c.deadline_profile, \
           k.deadline_profile AS category_profile, c.created_at, c.urgency, c.pending_request, \
           c.extensions_granted, c.rework_count, c.dispatched_at, c.sign_window_ends, c.closed_at, \
           c.master_case_id, c.not_filed_reason, c.rating, c.check_flags, c.due_at, k.auto_dispatch, \
           k.reporter_may_check, k.max_extensions, k.default_urgency, \
           CAST(COALESCE((SELECT {agg}({object}('unit_code', a.unit_code, 'lead', a.lead, \
             'assigned_at', a.assigned_at, 'signed_at', a.signed_at, 'finished_at', a.finished_at)) \
             FROM case_assignments a WHERE a.case_id = c.id), '[]') AS TEXT) AS assignments, \
           CAST(COALESCE((SELECT {agg}({object}('id', l.id, 'phase', l.phase, 'unit_code', l.unit_code, \
             'limit_amount', l.limit_amount, 'limit_unit', l.limit_unit, 'started_at', l.started_at, \
             'due_at', l.due_at, 'warning_at', l.warning_at, 'status', l.status, 'paused_at', l.paused_at, \
             'pauses', l.pauses, 'stopped_at', l.stopped_at, 'inputs', l.inputs, 'warned_at', l.warned_at, \
             'overdue_at', l.overdue_at)) \
             FROM case_clocks l WHERE l.case_id = c.id AND l.status <> 'stopped'), '[]') AS TEXT) AS clocks \
         FROM cases c JOIN categories k ON k.code = c.category_code WHERE c.id = $1"
    )
}

fn small(value: i64, what: &str) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|e| corrupt(what, e))
}

impl WorkflowCaseRow {
    pub(super) fn into_case(self) -> Result<WorkflowCase, StoreError> {
        let mut assignments: Vec<AssignmentRecord> =
            serde_json::from_str::<Vec<AssignmentRow>>(&self.assignments)
                .map_err(|e| corrupt("case assignments", e))?
                .into_iter()
                .map(AssignmentRecord::from)
                .collect();
        assignments.sort_by(|a, b| b.lead.cmp(&a.lead).then_with(|| a.unit.cmp(&b.unit)));
        let mut clocks = serde_json::from_str::<Vec<ClockRow>>(&self.clocks)
            .map_err(|e| corrupt("case clocks", e))?
            .into_iter()
            .map(Clock::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        clocks.sort_by_key(|clock| (clock.started_at, clock.id));
        Ok(WorkflowCase {
            id: parse_id(&self.id)?,
            state: CaseState::parse(&self.state)
                .ok_or_else(|| corrupt("case state", &self.state))?,
            version: self.version,
            source: self.source,
            category_code: self.category_code,
            location: LatLon {
                lat: self.lat,
                lon: self.lon,
            },
            reporter_id: parse_id(&self.reporter_id)?,
            confidential: self.confidential,
            routed_lead: self.lead_unit,
            routed_co_units: serde_json::from_str(&self.co_units)
                .map_err(|e| corrupt("case co_units", e))?,
            named_profile: self.deadline_profile.or(self.category_profile),
            created_at: self.created_at,
            fields: WorkflowFields {
                urgency: Urgency::parse(&self.urgency)
                    .ok_or_else(|| corrupt("case urgency", &self.urgency))?,
                pending_request: self
                    .pending_request
                    .map(|json| serde_json::from_str(&json))
                    .transpose()
                    .map_err(|e| corrupt("case pending_request", e))?,
                extensions_granted: small(self.extensions_granted, "extensions_granted")?,
                rework_count: small(self.rework_count, "rework_count")?,
                dispatched_at: self.dispatched_at,
                sign_window_ends: self.sign_window_ends,
                closed_at: self.closed_at,
                master_case_id: parse_opt_id(self.master_case_id)?,
                not_filed_reason: self.not_filed_reason,
                rating: self
                    .rating
                    .map(|r| u8::try_from(r).map_err(|e| corrupt("case rating", e)))
                    .transpose()?,
                check_flags: serde_json::from_str(&self.check_flags)
                    .map_err(|e| corrupt("case check_flags", e))?,
                due_at: self.due_at,
            },
            policy: CategoryPolicy {
                auto_dispatch: self.auto_dispatch,
                reporter_may_check: self.reporter_may_check,
                max_extensions: small(self.max_extensions, "max_extensions")?,
            },
            category_urgency: Urgency::parse(&self.default_urgency).unwrap_or(Urgency::Normal),
            assignments,
            clocks,
        })
    }
}

#[derive(serde::Deserialize)]
pub(super) struct AssignmentRow {
    unit_code: String,
    #[serde(deserialize_with = "bool_or_number")]
    lead: bool,
    assigned_at: DateTime<Utc>,
    signed_at: Option<DateTime<Utc>>,
    finished_at: Option<DateTime<Utc>>,
}

/// SQLite keeps booleans as 0 and 1, and its JSON functions pass them on as numbers.
fn bool_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Bool(bool),
        Number(i64),
    }
    Ok(
        match <Stored as serde::Deserialize>::deserialize(deserializer)? {
            Stored::Bool(value) => value,
            Stored::Number(value) => value != 0,
        },
    )
}

impl From<AssignmentRow> for AssignmentRecord {
    fn from(row: AssignmentRow) -> AssignmentRecord {
        AssignmentRecord {
            unit: row.unit_code,
            lead: row.lead,
            assigned_at: row.assigned_at,
            signed_at: row.signed_at,
            finished_at: row.finished_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct CaseSummaryRow {
    id: String,
    tracking_no: String,
    state: String,
    version: i64,
    source: String,
    category_code: String,
    urgency: String,
    lead_unit: Option<String>,
    due_at: Option<DateTime<Utc>>,
    flagged: bool,
    created_at: DateTime<Utc>,
}

impl TryFrom<CaseSummaryRow> for CaseSummary {
    type Error = StoreError;
    fn try_from(row: CaseSummaryRow) -> Result<CaseSummary, StoreError> {
        Ok(CaseSummary {
            id: parse_id(&row.id)?,
            tracking_no: row.tracking_no,
            state: CaseState::parse(&row.state).ok_or_else(|| corrupt("case state", &row.state))?,
            version: row.version,
            source: row.source,
            category_code: row.category_code,
            urgency: Urgency::parse(&row.urgency)
                .ok_or_else(|| corrupt("case urgency", &row.urgency))?,
            lead_unit: row.lead_unit,
            due_at: row.due_at,
            flagged: row.flagged,
            created_at: row.created_at,
        })
    }
}

/// The WHERE clause and ORDER BY of a queue query, with its binds in order.
pub(super) struct QueueSql {
    pub sql: String,
    pub binds: Vec<QueueBind>,
}

pub(super) enum QueueBind {
    Text(String),
    Time(DateTime<Utc>),
    Int(i64),
}

/// Builds the queue query. Every value is a bind; only fixed SQL is formatted in.
/// `find` is the dialect's `(text, substring)` search, 0 when absent: SQLite's
/// `instr`, PostgreSQL's `strpos`.
pub(super) fn queue_sql(query: &CaseQuery, find: &str) -> QueueSql {
    let mut binds: Vec<QueueBind> = Vec::new();
    let next = |bind: QueueBind, binds: &mut Vec<QueueBind>| {
        binds.push(bind);
        format!("${}", binds.len())
    };
    let mut conditions: Vec<String> = Vec::new();
    if !query.states.is_empty() {
        let list: Vec<String> = query
            .states
            .iter()
            .map(|s| next(QueueBind::Text(s.as_str().to_owned()), &mut binds))
            .collect();
        conditions.push(format!("c.state IN ({})", list.join(", ")));
    }
    if let Some(unit) = &query.unit {
        let p = next(QueueBind::Text(unit.clone()), &mut binds);
        conditions.push(format!(
            "EXISTS (SELECT 1 FROM case_assignments a WHERE a.case_id = c.id AND a.unit_code = {p})"
        ));
    }
    // Codes may hold `_`, a LIKE wildcard, and SQLite's LIKE ignores case, so
    // codes are compared as plain text.
    if let Some(category) = &query.category {
        let prefix = next(QueueBind::Text(category.clone()), &mut binds);
        let length = next(QueueBind::Text(category.clone()), &mut binds);
        conditions.push(format!(
            "substr(c.category_code, 1, length({length})) = {prefix}"
        ));
    }
    if let Some(zone) = &query.zone {
        // zone_path is a JSON array of codes; the handler allows only code
        // characters, which JSON writes as they are.
        let p = next(QueueBind::Text(format!("\"{zone}\"")), &mut binds);
        conditions.push(format!("{find}(c.zone_path, {p}) > 0"));
    }
    if let Some(source) = &query.source {
        let p = next(QueueBind::Text(source.clone()), &mut binds);
        conditions.push(format!("c.source = {p}"));
    }
    if let Some(by) = query.due_by {
        let p = next(QueueBind::Time(by), &mut binds);
        conditions.push(format!("c.due_at <= {p}"));
    }
    // Past due means due at `now` or earlier, as the sweeper counts it.
    match query.overdue {
        Some((true, now)) => {
            let p = next(QueueBind::Time(now), &mut binds);
            conditions.push(format!("c.due_at <= {p}"));
        }
        Some((false, now)) => {
            let p = next(QueueBind::Time(now), &mut binds);
            conditions.push(format!("(c.due_at IS NULL OR c.due_at > {p})"));
        }
        None => {}
    }
    match query.flagged {
        Some(true) => {
            conditions.push("(c.photo_distance_m IS NOT NULL OR c.check_flags <> '[]')".to_owned())
        }
        Some(false) => {
            conditions.push("(c.photo_distance_m IS NULL AND c.check_flags = '[]')".to_owned())
        }
        None => {}
    }
    let order = match query.sort {
        CaseSort::Newest => {
            if let Some(after) = &query.after {
                let p = next(QueueBind::Text(after.id.to_string()), &mut binds);
                conditions.push(format!("c.id < {p}"));
            }
            "c.id DESC"
        }
        CaseSort::Oldest => {
            if let Some(after) = &query.after {
                let p = next(QueueBind::Text(after.id.to_string()), &mut binds);
                conditions.push(format!("c.id > {p}"));
            }
            "c.id ASC"
        }
        CaseSort::Due => {
            conditions.push("c.due_at IS NOT NULL".to_owned());
            if let Some(CaseCursor {
                id,
                due_at: Some(due),
            }) = &query.after
            {
                let d1 = next(QueueBind::Time(*due), &mut binds);
                let d2 = next(QueueBind::Time(*due), &mut binds);
                let i = next(QueueBind::Text(id.to_string()), &mut binds);
                conditions.push(format!(
                    "(c.due_at > {d1} OR (c.due_at = {d2} AND c.id > {i}))"
                ));
            }
            "c.due_at ASC, c.id ASC"
        }
    };
    let limit = next(QueueBind::Int(query.limit), &mut binds);
    let filter = if conditions.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conditions.join(" AND "))
    };
    QueueSql {
        sql: format!(
            "SELECT c.id, c.tracking_no, c.state, c.version, c.source, c.category_code, c.urgency, \
             (SELECT a.unit_code FROM case_assignments a WHERE a.case_id = c.id AND a.lead) AS lead_unit, \
             c.due_at, (c.photo_distance_m IS NOT NULL OR c.check_flags <> '[]') AS flagged, c.created_at \
             FROM cases c {filter} ORDER BY {order} LIMIT {limit}"
        ),
        binds,
    }
}

/// Expands to inherent `wf_*` methods on a backend; the `Repository` impl
/// delegates. `$claim` is the row-locking clause of the sweeper's claim query,
/// `$find` the dialect's substring search (see [`queue_sql`]), `$lock_clocks` the
/// statement that locks a case's clocks before a save with after-photos (none on
/// SQLite, whose writers take turns).
macro_rules! impl_workflow {
    ($repo:ident, $db:ty, $claim:literal, $find:literal, $lock_clocks:expr) => {
        mod workflow_sql {
            use super::*;
            use chrono::{DateTime, Utc};
            use sqlx::AssertSqlSafe;
            use uuid::Uuid;

            use $crate::domain::clock::{Clock, ClockEvent, owed_events};
            use $crate::store::sql::value_rows;
            use $crate::store::workflow::*;

            use super::bulk;

            /// Saves a round of changes to distinct cases: each case row only if its
            /// version is still the expected one, and the rest of a change only
            /// with its row. Returns, per change, whether it was saved.
            pub(super) async fn save_round(
                tx: &mut sqlx::Transaction<'static, $db>,
                changes: &[&CaseChange],
            ) -> Result<Vec<bool>, StoreError> {
                let mut updated = std::collections::HashSet::new();
                for chunk in changes.chunks(bulk::PARAMS / CASE_ROW_PARAMS) {
                    let sql = case_update_sql(
                        &value_rows(chunk.len(), CASE_ROW_PARAMS, 1, ""),
                        Some("case_clocks"),
                    );
                    let mut query = sqlx::query_scalar::<$db, String>(AssertSqlSafe(sql));
                    for change in chunk {
                        query = bind_case_row!(query, change);
                    }
                    updated.extend(query.fetch_all(&mut **tx).await?);
                }
                let case_ids: Vec<String> = changes.iter().map(|c| c.case_id.to_string()).collect();
                let saved: Vec<bool> = case_ids.iter().map(|id| updated.contains(id)).collect();
                let saved_changes: Vec<(&str, &CaseChange)> = case_ids
                    .iter()
                    .zip(changes)
                    .zip(&saved)
                    .filter(|(_, saved)| **saved)
                    .map(|((id, change), _)| (id.as_str(), *change))
                    .collect();
                let reassigned: Vec<(&str, &[AssignmentRecord])> = saved_changes
                    .iter()
                    .filter_map(|(id, change)| change.assignments.as_deref().map(|a| (*id, a)))
                    .collect();
                replace_assignments(tx, &reassigned).await?;
                let clocks: Vec<(&str, &Clock)> = saved_changes
                    .iter()
                    .flat_map(|(id, change)| change.clocks.iter().map(move |clock| (*id, clock)))
                    .collect();
                upsert_clocks(tx, &clocks).await?;
                let events: Vec<(&str, &NewEvent)> =
                    saved_changes.iter().map(|(id, change)| (*id, &change.event)).collect();
                bulk::insert_events(tx, &events).await?;
                let queued: Vec<(&str, &NewEvent)> = saved_changes
                    .iter()
                    .filter(|(_, change)| change.outbox)
                    .map(|(id, change)| (*id, &change.event))
                    .collect();
                bulk::insert_outbox(tx, &queued).await?;
                Ok(saved)
            }

            async fn upsert_clocks(
                tx: &mut sqlx::Transaction<'static, $db>,
                clocks: &[(&str, &Clock)],
            ) -> Result<(), StoreError> {
                for chunk in clocks.chunks(bulk::PARAMS / 18) {
                    let sql = format!(
                        "INSERT INTO case_clocks ({CLOCK_COLUMNS}, next_check_at) VALUES {} {CLOCK_UPSERT}",
                        value_rows(chunk.len(), 18, 1, "")
                    );
                    let mut query = sqlx::query(AssertSqlSafe(sql));
                    for (case_id, clock) in chunk {
                        query = query
                            .bind(clock.id.to_string())
                            .bind(*case_id)
                            .bind(clock.phase.as_str())
                            .bind(clock.unit.clone())
                            .bind(i64::from(clock.limit.amount))
                            .bind(limit_unit_name(clock.limit.unit))
                            .bind(clock.started_at)
                            .bind(clock.due_at)
                            .bind(clock.warning_at)
                            .bind(clock.status.as_str())
                            .bind(clock.paused_at)
                            .bind(pauses_json(clock))
                            .bind(clock.stopped_at)
                            .bind(clock.calendar_version().to_owned())
                            .bind(clock_inputs_json(clock))
                            .bind(clock.warned_at)
                            .bind(clock.overdue_at)
                            .bind(clock.next_check_at());
                    }
                    query.execute(&mut **tx).await?;
                }
                Ok(())
            }

            async fn replace_assignments(
                tx: &mut sqlx::Transaction<'static, $db>,
                cases: &[(&str, &[AssignmentRecord])],
            ) -> Result<(), StoreError> {
                for chunk in cases.chunks(bulk::PARAMS) {
                    let sql = format!(
                        "DELETE FROM case_assignments WHERE case_id IN ({})",
                        $crate::store::sql::placeholders(1, chunk.len())
                    );
                    let mut query = sqlx::query(AssertSqlSafe(sql));
                    for (case_id, _) in chunk {
                        query = query.bind(*case_id);
                    }
                    query.execute(&mut **tx).await?;
                }
                let rows: Vec<(&str, &AssignmentRecord)> = cases
                    .iter()
                    .flat_map(|(case_id, assignments)| assignments.iter().map(move |a| (*case_id, a)))
                    .collect();
                for chunk in rows.chunks(bulk::PARAMS / 6) {
                    let sql = format!(
                        "INSERT INTO case_assignments (case_id, unit_code, lead, assigned_at, signed_at, finished_at) VALUES {}",
                        value_rows(chunk.len(), 6, 1, "")
                    );
                    let mut query = sqlx::query(AssertSqlSafe(sql));
                    for (case_id, a) in chunk {
                        query = query
                            .bind(*case_id)
                            .bind(&a.unit)
                            .bind(a.lead)
                            .bind(a.assigned_at)
                            .bind(a.signed_at)
                            .bind(a.finished_at);
                    }
                    query.execute(&mut **tx).await?;
                }
                Ok(())
            }

            pub(super) async fn read_case<'e, E: sqlx::Executor<'e, Database = $db>>(
                executor: E,
                id: Uuid,
            ) -> Result<Option<WorkflowCase>, StoreError> {
                static SQL: std::sync::LazyLock<String> =
                    std::sync::LazyLock::new(|| workflow_case_sql(bulk::JSON_AGG, bulk::JSON_OBJECT));
                sqlx::query_as::<$db, WorkflowCaseRow>(AssertSqlSafe(SQL.as_str()))
                    .bind(id.to_string())
                    .fetch_optional(executor)
                    .await?
                    .map(WorkflowCaseRow::into_case)
                    .transpose()
            }

            impl $repo {
                pub(super) async fn wf_all_clocks(&self, case_id: Uuid) -> Result<Vec<Clock>, StoreError> {
                    let sql = format!("SELECT {CLOCK_COLUMNS} FROM case_clocks WHERE case_id = $1 ORDER BY started_at, id");
                    sqlx::query_as::<$db, ClockRow>(AssertSqlSafe(sql))
                        .bind(case_id.to_string())
                        .fetch_all(self.reader())
                        .await?
                        .into_iter()
                        .map(Clock::try_from)
                        .collect()
                }

                /// Saves one change. Each backend saves changes without
                /// after-photos its own fastest way; attaching photos needs a
                /// per-photo answer, so those changes get a transaction of their own.
                pub(super) async fn wf_save(&self, change: &CaseChange, session: CaseSession) -> Result<SaveOutcome, StoreError> {
                    if change.after_photos.is_empty() {
                        return self.save_without_photos(change, session).await;
                    }
                    // Never wait for a second connection while holding the first.
                    drop(session);
                    let mut tx = self.writer().begin_with(BEGIN_WRITE).await?;
                    // A sweep holding the case's clocks commits first, so that the
                    // save's check reads its marks (see `case_update_sql`).
                    let lock_clocks: Option<&'static str> = $lock_clocks;
                    if let Some(sql) = lock_clocks {
                        sqlx::query(sql)
                            .bind(change.case_id.to_string())
                            .fetch_all(&mut *tx)
                            .await?;
                    }
                    if save_round(&mut tx, &[change]).await? != [true] {
                        return Ok(SaveOutcome::Stale);
                    }
                    let case_id = change.case_id.to_string();
                    let owner = change.after_photos_owner.map(|id| id.to_string());
                    let position_base: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM photos WHERE case_id = $1")
                        .bind(&case_id)
                        .fetch_one(&mut *tx)
                        .await?;
                    for (k, photo) in change.after_photos.iter().enumerate() {
                        let attached = sqlx::query(
                            "UPDATE photos SET case_id = $1, position = $2, stage = $5 \
                             WHERE id = $3 AND owner_id = $4 AND case_id IS NULL",
                        )
                        .bind(&case_id)
                        .bind(position_base + k as i64)
                        .bind(photo.to_string())
                        .bind(&owner)
                        .bind($crate::store::records::AFTER_STAGE)
                        .execute(&mut *tx)
                        .await?;
                        if attached.rows_affected() == 0 {
                            return Ok(SaveOutcome::PhotoUnavailable(*photo));
                        }
                    }
                    tx.commit().await?;
                    Ok(SaveOutcome::Saved { version: change.expected_version + 1 })
                }

                pub(super) async fn wf_list(&self, query: &CaseQuery) -> Result<Vec<CaseSummary>, StoreError> {
                    let built = queue_sql(query, $find);
                    let mut q = sqlx::query_as::<$db, CaseSummaryRow>(AssertSqlSafe(built.sql));
                    for bind in built.binds {
                        q = match bind {
                            QueueBind::Text(s) => q.bind(s),
                            QueueBind::Time(t) => q.bind(t),
                            QueueBind::Int(i) => q.bind(i),
                        };
                    }
                    q.fetch_all(self.reader()).await?.into_iter().map(CaseSummary::try_from).collect()
                }

                pub(super) async fn wf_auto_dispatch_candidates(&self, now: DateTime<Utc>, limit: i64) -> Result<Vec<Uuid>, StoreError> {
                    let ids: Vec<String> = sqlx::query_scalar(
                        "SELECT c.id FROM cases c JOIN categories k ON k.code = c.category_code \
                         WHERE c.state = 'submitted' AND c.lead_unit IS NOT NULL AND k.auto_dispatch \
                           AND (c.auto_dispatch_after IS NULL OR c.auto_dispatch_after <= $1) \
                         ORDER BY c.id LIMIT $2",
                    )
                    .bind(now)
                    .bind(limit)
                    .fetch_all(self.reader())
                    .await?;
                    ids.iter().map(|id| $crate::store::records::parse_id(id)).collect()
                }

                pub(super) async fn wf_defer_auto_dispatch(&self, ids: &[Uuid], until: DateTime<Utc>, seen_version: i64) -> Result<u64, StoreError> {
                    if ids.is_empty() {
                        return Ok(0);
                    }
                    // One statement for the pass (SQLite has one writer); the
                    // version check leaves alone a case whose failure a
                    // reference change committed meanwhile may have mended.
                    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
                        format!(
                            "UPDATE cases SET auto_dispatch_after = $2 \
                             WHERE id {} AND state = 'submitted' \
                               AND (SELECT version FROM routing_state WHERE id = 1) = $3",
                            bulk::ID_IN
                        )
                    });
                    let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
                    Ok(sqlx::query(AssertSqlSafe(SQL.as_str()))
                        .bind(bulk::id_list(&ids))
                        .bind(until)
                        .bind(seen_version)
                        .execute(self.writer())
                        .await?
                        .rows_affected())
                }

                pub(super) async fn wf_archive_candidates(&self, closed_before: DateTime<Utc>, limit: i64) -> Result<Vec<Uuid>, StoreError> {
                    // Closed cases are few (archiving moves them on), so the
                    // state index finds them without one of their own.
                    let ids: Vec<String> = sqlx::query_scalar(
                        "SELECT id FROM cases WHERE state = 'closed' AND closed_at < $1 \
                         ORDER BY closed_at, id LIMIT $2",
                    )
                    .bind(closed_before)
                    .bind(limit)
                    .fetch_all(self.reader())
                    .await?;
                    ids.iter().map(|id| $crate::store::records::parse_id(id)).collect()
                }

                /// Claims due clocks (row locks skipped by other sweepers on
                /// PostgreSQL; the single writer serialises SQLite), records the
                /// events they owe and moves each clock's next check, all in one
                /// transaction: a crash before commit leaves every clock due.
                pub(super) async fn wf_sweep(&self, now: DateTime<Utc>, limit: i64) -> Result<SweepReport, StoreError> {
                    let mut tx = self.writer().begin_with(BEGIN_WRITE).await?;
                    // The responsible unit: the clock's co-unit, else the case's
                    // lead for a phase a unit works; none for the centre's own.
                    static SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
                        let units_phases = $crate::domain::case::Phase::ALL
                            .iter()
                            .filter(|phase| !phase.is_centres_work())
                            .map(|phase| format!("'{}'", phase.as_str()))
                            .collect::<Vec<_>>()
                            .join(", ");
                        format!(
                            "SELECT k.id, k.case_id, k.phase, k.due_at, k.warning_at, k.warned_at, k.overdue_at, \
                               u.code AS unit, u.parent_code \
                             FROM case_clocks k \
                             LEFT JOIN units u ON u.code = COALESCE(k.unit_code, CASE WHEN k.phase IN ({units_phases}) \
                               THEN (SELECT a.unit_code FROM case_assignments a WHERE a.case_id = k.case_id AND a.lead) END) \
                             WHERE k.next_check_at <= $1 ORDER BY k.next_check_at LIMIT $2 {}",
                            $claim
                        )
                    });
                    let claimed = sqlx::query_as::<$db, DueClockRow>(AssertSqlSafe(SQL.as_str()))
                        .bind(now)
                        .bind(limit)
                        .fetch_all(&mut *tx)
                        .await?;
                    let mut report = SweepReport { clocks: claimed.len(), ..SweepReport::default() };
                    if claimed.is_empty() {
                        return Ok(report);
                    }
                    let mut events: Vec<(String, NewEvent)> = Vec::new();
                    let mut warned: Vec<&str> = Vec::new();
                    let mut overdue: Vec<&str> = Vec::new();
                    for row in &claimed {
                        let owed = owed_events(row.warning_at, row.due_at, row.warned_at, row.overdue_at, now);
                        for event in owed {
                            let base = serde_json::json!({
                                "clock_id": row.id,
                                "phase": row.phase,
                                "unit": row.unit,
                                "due_at": row.due_at,
                            });
                            match event {
                                ClockEvent::Warning => {
                                    report.warnings += 1;
                                    events.push((row.case_id.clone(), system_event("deadline_warning", base, now)));
                                }
                                ClockEvent::Overdue => {
                                    report.overdue += 1;
                                    events.push((row.case_id.clone(), system_event("deadline_overdue", base, now)));
                                    let mut to: Vec<&str> = row.parent_code.iter().map(String::as_str).collect();
                                    to.push(DISPATCH_CENTRE);
                                    events.push((
                                        row.case_id.clone(),
                                        system_event(
                                            "escalated",
                                            serde_json::json!({"clock_id": row.id, "phase": row.phase, "unit": row.unit, "to": to}),
                                            now,
                                        ),
                                    ));
                                }
                            }
                        }
                        if row.overdue_at.is_none() && row.due_at <= now {
                            overdue.push(&row.id);
                        } else if row.warned_at.is_none() {
                            warned.push(&row.id);
                        }
                    }
                    bulk::update_clocks(&mut tx, MARK_WARNED, &warned, now).await?;
                    bulk::update_clocks(&mut tx, MARK_OVERDUE, &overdue, now).await?;
                    let refs: Vec<(&str, &NewEvent)> = events.iter().map(|(c, e)| (c.as_str(), e)).collect();
                    bulk::insert_events(&mut tx, &refs).await?;
                    bulk::insert_outbox(&mut tx, &refs).await?;
                    tx.commit().await?;
                    Ok(report)
                }

                pub(super) async fn wf_approved_returns(&self, limit: i64) -> Result<Vec<ApprovedReturn>, StoreError> {
                    let rows = sqlx::query_as::<$db, ApprovedReturnRow>(
                        "SELECT e.case_id, c.tracking_no, c.category_code, c.rule_id, c.rule_version, e.data, \
                           e.actor_id, e.created_at \
                         FROM case_events e JOIN cases c ON c.id = e.case_id \
                         WHERE e.kind IN ('returned', 'co_unit_returned') \
                         ORDER BY e.created_at DESC, e.id DESC LIMIT $1",
                    )
                    .bind(limit)
                    .fetch_all(self.reader())
                    .await?;
                    rows.into_iter().filter_map(|row| row.into_return().transpose()).collect()
                }

                pub(super) async fn wf_outbox(&self, after: i64, limit: i64) -> Result<Vec<OutboxEntry>, StoreError> {
                    sqlx::query_as::<$db, OutboxRow>(
                        "SELECT o.id, o.case_id, o.event_id, o.kind, e.data AS payload, o.created_at, o.delivered_at \
                         FROM outbox o JOIN case_events e ON e.id = o.event_id \
                         WHERE o.id > $1 ORDER BY o.id LIMIT $2",
                    )
                    .bind(after)
                    .bind(limit)
                    .fetch_all(self.reader())
                    .await?
                    .into_iter()
                    .map(OutboxEntry::try_from)
                    .collect()
                }
            }
        }
    };
}

pub(super) use impl_workflow;

/// SET clauses of the sweeper's clock updates (`$1` is "now").
pub(super) const MARK_WARNED: &str = "warned_at = $1, next_check_at = due_at";
pub(super) const MARK_OVERDUE: &str =
    "warned_at = COALESCE(warned_at, $1), overdue_at = $1, next_check_at = NULL";

/// Who overdue cases escalate to besides the unit's parent: the dispatch centre.
pub const DISPATCH_CENTRE: &str = "dispatch_centre";

pub(super) fn system_event(kind: &str, data: serde_json::Value, at: DateTime<Utc>) -> NewEvent {
    NewEvent {
        id: Uuid::now_v7(),
        kind: kind.to_owned(),
        actor_id: None,
        actor_role: "system".to_owned(),
        public: false,
        data,
        at,
    }
}

#[derive(sqlx::FromRow)]
pub(super) struct DueClockRow {
    pub id: String,
    pub case_id: String,
    pub phase: String,
    pub due_at: DateTime<Utc>,
    pub warning_at: DateTime<Utc>,
    pub warned_at: Option<DateTime<Utc>>,
    pub overdue_at: Option<DateTime<Utc>>,
    pub unit: Option<String>,
    pub parent_code: Option<String>,
}

/// A case its unit handed back (回退) with the centre's approval, and the rule
/// that had routed it there: the list routing rules are reviewed from.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct ApprovedReturn {
    pub case_id: Uuid,
    pub tracking_no: String,
    pub category_code: String,
    /// The routing rule (id and version) that chose the unit; absent when an
    /// operator dispatched without a rule.
    pub rule_id: Option<String>,
    pub rule_version: Option<i64>,
    /// The unit that said the case was not its to handle.
    pub unit: String,
    pub reason: ReturnReason,
    pub approved_by: Option<Uuid>,
    pub approved_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(super) struct ApprovedReturnRow {
    case_id: String,
    tracking_no: String,
    category_code: String,
    rule_id: Option<String>,
    rule_version: Option<i64>,
    data: String,
    actor_id: Option<String>,
    created_at: DateTime<Utc>,
}

impl ApprovedReturnRow {
    /// `None` for events written before returns recorded their request: they
    /// name no unit to review.
    pub(super) fn into_return(self) -> Result<Option<ApprovedReturn>, StoreError> {
        #[derive(serde::Deserialize)]
        struct Decided {
            request: Option<PendingRequest>,
        }
        let decided: Decided =
            serde_json::from_str(&self.data).map_err(|e| corrupt("returned event", e))?;
        let Some(request) = decided.request else {
            return Ok(None);
        };
        let PendingRequest::Return { unit, reason } = request else {
            return Err(corrupt("returned event", "the request is not a return"));
        };
        Ok(Some(ApprovedReturn {
            case_id: parse_id(&self.case_id)?,
            tracking_no: self.tracking_no,
            category_code: self.category_code,
            rule_id: self.rule_id,
            rule_version: self.rule_version,
            unit,
            reason,
            approved_by: parse_opt_id(self.actor_id)?,
            approved_at: self.created_at,
        }))
    }
}

/// A row of the outbox, for delivery (and for tests and operators to inspect).
/// The outbox points at timeline events; `payload` is the event's data.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxEntry {
    pub id: i64,
    pub case_id: Uuid,
    pub event_id: Uuid,
    pub kind: String,
    pub payload: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
pub(super) struct OutboxRow {
    id: i64,
    case_id: String,
    event_id: String,
    kind: String,
    payload: String,
    created_at: DateTime<Utc>,
    delivered_at: Option<DateTime<Utc>>,
}

impl TryFrom<OutboxRow> for OutboxEntry {
    type Error = StoreError;
    fn try_from(row: OutboxRow) -> Result<OutboxEntry, StoreError> {
        Ok(OutboxEntry {
            id: row.id,
            case_id: parse_id(&row.case_id)?,
            event_id: parse_id(&row.event_id)?,
            kind: row.kind,
            payload: serde_json::from_str(&row.payload)
                .map_err(|e| corrupt("outbox payload", e))?,
            created_at: row.created_at,
            delivered_at: row.delivered_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_sql_binds_every_value_in_order() {
        let query = CaseQuery {
            states: vec![CaseState::Dispatched, CaseState::InProgress],
            unit: Some("U1".into()),
            category: Some("02".into()),
            flagged: Some(true),
            sort: CaseSort::Due,
            after: Some(CaseCursor {
                id: Uuid::nil(),
                due_at: Some(DateTime::<Utc>::MIN_UTC),
            }),
            limit: 20,
            ..CaseQuery::default()
        };
        let built = queue_sql(&query, "instr");
        assert_eq!(built.binds.len(), 9);
        assert!(built.sql.contains("c.state IN ($1, $2)"));
        assert!(built.sql.contains("a.unit_code = $3"));
        assert!(
            built
                .sql
                .contains("substr(c.category_code, 1, length($5)) = $4")
        );
        assert!(
            built
                .sql
                .contains("(c.due_at > $6 OR (c.due_at = $7 AND c.id > $8))")
        );
        assert!(
            built
                .sql
                .ends_with("ORDER BY c.due_at ASC, c.id ASC LIMIT $9")
        );
    }

    #[test]
    fn a_zone_is_found_as_a_whole_quoted_code_and_overdue_both_ways() {
        let query = CaseQuery {
            zone: Some("320582_R01".into()),
            overdue: Some((false, DateTime::<Utc>::MIN_UTC)),
            ..CaseQuery::default()
        };
        let built = queue_sql(&query, "strpos");
        assert!(built.sql.contains("strpos(c.zone_path, $1) > 0"));
        assert!(matches!(&built.binds[0], QueueBind::Text(t) if t == "\"320582_R01\""));
        assert!(built.sql.contains("(c.due_at IS NULL OR c.due_at > $2)"));
        let overdue = CaseQuery {
            overdue: Some((true, DateTime::<Utc>::MIN_UTC)),
            ..CaseQuery::default()
        };
        assert!(queue_sql(&overdue, "instr").sql.contains("c.due_at <= $1"));
    }

    #[test]
    fn an_unfiltered_queue_is_newest_first() {
        let built = queue_sql(&CaseQuery::default(), "instr");
        assert!(!built.sql.contains("FROM cases c WHERE"));
        assert!(built.sql.ends_with("ORDER BY c.id DESC LIMIT $1"));
        assert_eq!(built.binds.len(), 1);
    }
}
