//! Taking an action on a case: load it, let `domain::case::apply` decide, turn
//! the transition's effects into clocks, assignments and fields
//! ([`plan_change`], pure), and save it all with a compare-and-swap on the
//! case version. Used by the HTTP handlers and by the auto-dispatch and archive jobs.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::config::WorkflowSettings;
use crate::deadlines::{DeadlineBook, LiveDeadlines};
use crate::domain::case::{
    Action, ActionEnvelope, Actor, Assignment, CaseSnapshot, CaseState, Effect, PendingRequest,
    Phase, Refusal, Transition, apply_envelope,
};
use crate::domain::clock::{Clock, ClockStatus};
use crate::domain::deadline::{DeadlineError, DeadlineProfile, Urgency};
use crate::domain::evidence::{EvidenceRefusal, EvidenceRules, PhotoEvidence, assess_after_photos};
use crate::store::{
    AssignmentRecord, CaseChange, CaseSession, NewEvent, PhotoRecord, Repository, SaveOutcome,
    StoreError, WorkflowCase,
};

#[derive(Debug, thiserror::Error)]
pub enum WorkflowError {
    #[error("no such case")]
    NotFound,
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Evidence(#[from] EvidenceRefusal),
    #[error("photo {0} is not available: upload it yourself and use it once")]
    PhotoUnavailable(Uuid),
    /// The action named a unit or case that does not exist (`what` says which).
    #[error("the {what} named does not exist")]
    UnknownReference { what: &'static str },
    /// A case cannot be given to a unit an admin has deactivated.
    #[error("unit {0} is deactivated; choose another unit")]
    InactiveUnit(String),
    /// A duplicate is merged into a case that is still a case: not one merged
    /// away or refused itself (which could make two reports each other's
    /// duplicate, and neither handled), nor a cancelled one.
    #[error("the master case is {0}; merge into a case that is handled or closed")]
    MasterNotACase(&'static str),
    #[error("no deadline profile applies to this case; an admin must add a default")]
    NoProfile,
    #[error("no working calendar is loaded for jurisdiction {0}")]
    NoCalendar(String),
    #[error(transparent)]
    Deadline(#[from] DeadlineError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What an allowed action did.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionOutcome {
    pub case_id: Uuid,
    pub from: CaseState,
    pub state: CaseState,
    pub version: i64,
    pub event_id: Uuid,
    pub event_kind: String,
}

/// The rules an action is judged by besides the state machine's own.
#[derive(Debug, Clone, Copy)]
pub struct WorkflowRules {
    pub reopen_window: Duration,
    pub evidence: EvidenceRules,
}

impl WorkflowRules {
    pub fn from_settings(settings: &WorkflowSettings) -> WorkflowRules {
        WorkflowRules {
            reopen_window: Duration::days(i64::from(settings.reopen_window_days)),
            evidence: EvidenceRules {
                max_distance_m: settings.after_photo_max_distance_m,
                ..EvidenceRules::default()
            },
        }
    }
}

pub struct Workflow {
    repo: Arc<dyn Repository>,
    deadlines: Arc<LiveDeadlines>,
    rules: WorkflowRules,
}

impl Workflow {
    pub fn new(
        repo: Arc<dyn Repository>,
        deadlines: Arc<LiveDeadlines>,
        rules: WorkflowRules,
    ) -> Workflow {
        Workflow {
            repo,
            deadlines,
            rules,
        }
    }

    pub fn deadlines(&self) -> &LiveDeadlines {
        &self.deadlines
    }

    pub fn rules(&self) -> &WorkflowRules {
        &self.rules
    }

    /// Reads a case for an action: look at it with [`CaseSession::case`], then
    /// pass it to [`Workflow::act`]. `None` when it does not exist.
    pub async fn open(&self, id: Uuid) -> Result<Option<CaseSession>, WorkflowError> {
        Ok(self.repo.open_case(id).await?)
    }

    /// Loads a case to look at; `None` when it does not exist.
    pub async fn case(&self, id: Uuid) -> Result<Option<WorkflowCase>, WorkflowError> {
        Ok(self.open(id).await?.map(CaseSession::into_case))
    }

    /// Applies `action` as the system actor (the background jobs), against the
    /// version the case was read at.
    pub async fn act_as_system(
        &self,
        session: CaseSession,
        action: Action,
        now: DateTime<Utc>,
    ) -> Result<ActionOutcome, WorkflowError> {
        let envelope = ActionEnvelope {
            expected_version: session.case().version,
            action,
        };
        self.act(session, &Actor::system(), &envelope, now).await
    }

    /// Applies `envelope` as `actor` to the case `session` read.
    pub async fn act(
        &self,
        mut session: CaseSession,
        actor: &Actor,
        envelope: &ActionEnvelope,
        mut now: DateTime<Utc>,
    ) -> Result<ActionOutcome, WorkflowError> {
        let case_id = session.case().id;
        for _ in 1..SWEPT_ATTEMPTS {
            match self.try_act(session, actor, envelope, now).await {
                Err(WorkflowError::Refused(Refusal::StaleVersion)) => {}
                other => return other,
            }
            session = self.open(case_id).await?.ok_or(WorkflowError::NotFound)?;
            if session.case().version != envelope.expected_version {
                return Err(Refusal::StaleVersion.into());
            }
            // Still at the client's version, the case was only marked by a sweep
            // after `now` (see `store::workflow::case_update_sql`): the action
            // takes place after those marks.
            if let Some(mark) = session
                .case()
                .clocks
                .iter()
                .filter_map(Clock::last_marked_at)
                .max()
            {
                now = now.max(mark);
            }
        }
        self.try_act(session, actor, envelope, now).await
    }

    async fn try_act(
        &self,
        mut session: CaseSession,
        actor: &Actor,
        envelope: &ActionEnvelope,
        now: DateTime<Utc>,
    ) -> Result<ActionOutcome, WorkflowError> {
        let transition =
            apply_envelope(&snapshot(session.case(), &self.rules), actor, envelope, now)?;
        let (after_photos, check_flags) = self
            .read_beyond_case(&mut session, actor, &envelope.action)
            .await?;
        let case = session.case();
        let book = self.deadlines.book();
        let mut change = plan_change(
            case,
            actor,
            &envelope.action,
            &transition,
            &book,
            check_flags,
            now,
        )?;
        if !after_photos.is_empty() {
            change.after_photos = after_photos;
            change.after_photos_owner = Some(actor.id);
        }
        let case_id = case.id;
        let saved = match self.repo.save_case_change(&change, session).await {
            Err(StoreError::MissingReference(_)) => {
                let what = match envelope.action {
                    Action::Merge { .. } => "master case",
                    _ => "unit",
                };
                return Err(WorkflowError::UnknownReference { what });
            }
            other => other?,
        };
        match saved {
            SaveOutcome::Saved { version } => Ok(ActionOutcome {
                case_id,
                from: transition.from,
                state: transition.to,
                version,
                event_id: change.event.id,
                event_kind: change.event.kind,
            }),
            SaveOutcome::Stale => Err(Refusal::StaleVersion.into()),
            SaveOutcome::PhotoUnavailable(id) => Err(WorkflowError::PhotoUnavailable(id)),
        }
    }

    /// What some actions need read besides their case: whether the units they
    /// name are active, whether a merge's master is a case, and the evidence of
    /// after-photos. These reads take
    /// connections of their own, so the session's goes back to the pool first.
    async fn read_beyond_case(
        &self,
        session: &mut CaseSession,
        actor: &Actor,
        action: &Action,
    ) -> Result<(Vec<Uuid>, Vec<serde_json::Value>), WorkflowError> {
        match action {
            Action::Dispatch {
                lead_unit,
                co_units,
            }
            | Action::Reassign {
                lead_unit,
                co_units,
            } => {
                session.release();
                let named: Vec<&str> = std::iter::once(lead_unit.as_str())
                    .chain(co_units.iter().map(String::as_str))
                    .collect();
                match self.repo.inactive_units(&named).await?.into_iter().next() {
                    Some(unit) => Err(WorkflowError::InactiveUnit(unit)),
                    None => Ok((Vec::new(), Vec::new())),
                }
            }
            Action::Merge { master } => {
                session.release();
                match self.case(*master).await?.map(|case| case.state) {
                    None => Err(WorkflowError::UnknownReference {
                        what: "master case",
                    }),
                    Some(state @ (CaseState::NotFiled | CaseState::Cancelled)) => {
                        Err(WorkflowError::MasterNotACase(state.as_str()))
                    }
                    Some(_) => Ok((Vec::new(), Vec::new())),
                }
            }
            Action::ReportDone { after_photo_ids } => {
                session.release();
                self.judge_after_photos(session.case(), actor, after_photo_ids)
                    .await
            }
            _ => Ok((Vec::new(), Vec::new())),
        }
    }

    /// After-photos must be the actor's own unattached uploads and not the
    /// reporter's photo again; doubtful time or place only flags the case.
    async fn judge_after_photos(
        &self,
        case: &WorkflowCase,
        actor: &Actor,
        ids: &[Uuid],
    ) -> Result<(Vec<Uuid>, Vec<serde_json::Value>), WorkflowError> {
        let mine = self.repo.unattached_photos_of(actor.id, ids).await?;
        if let Some(missing) = ids.iter().find(|id| !mine.iter().any(|p| p.id == **id)) {
            return Err(WorkflowError::PhotoUnavailable(*missing));
        }
        // The report's photos only: the units' after-photos on the case (a
        // co-unit's share, an earlier round before a rework) are proof of
        // their own, not the "before" this one must differ from.
        let before: Vec<PhotoEvidence> = self
            .repo
            .report_photos(case.id)
            .await?
            .iter()
            .filter_map(evidence_of)
            .collect();
        let after: Vec<PhotoEvidence> = mine.iter().filter_map(evidence_of).collect();
        let assessment = assess_after_photos(
            &before,
            &after,
            case.fields.dispatched_at,
            case.location,
            self.rules.evidence,
        )?;
        let flags = assessment
            .flags
            .iter()
            .map(|flag| serde_json::to_value(flag).unwrap_or(serde_json::Value::Null))
            .collect();
        Ok((ids.to_vec(), flags))
    }
}

/// How often an action is planned when sweeps keep marking its case meanwhile:
/// each sweep of a clock marks it once or twice, so a third plan is rarely needed.
const SWEPT_ATTEMPTS: usize = 3;

/// `None` for a photo whose stored hash does not parse: comparing a made-up hash
/// could refuse genuine proof.
fn evidence_of(photo: &PhotoRecord) -> Option<PhotoEvidence> {
    Some(PhotoEvidence {
        id: photo.id,
        taken_at: photo.taken_at,
        gps: photo.gps,
        phash: u64::from_str_radix(&photo.phash, 16).ok()?,
    })
}

/// What the state machine needs, from what the store keeps.
pub fn snapshot(case: &WorkflowCase, rules: &WorkflowRules) -> CaseSnapshot {
    let lead_unit = case
        .assignments
        .iter()
        .find(|a| a.lead)
        .map(|a| a.unit.clone());
    let co_units = case
        .assignments
        .iter()
        .filter(|a| !a.lead)
        .map(|a| Assignment {
            unit: a.unit.clone(),
            signed: a.signed_at.is_some(),
            finished: a.finished_at.is_some(),
            sign_window_ends: sign_window_end(&case.clocks, Some(&a.unit)),
        })
        .collect();
    CaseSnapshot {
        id: case.id,
        state: case.state,
        version: case.version,
        lead_unit,
        co_units,
        reporter_id: case.reporter_id,
        dispatched_at: case.fields.dispatched_at,
        sign_window_ends: case.fields.sign_window_ends,
        handle_due: case
            .clocks
            .iter()
            .find(|c| c.is_active() && c.unit.is_none() && c.phase == Phase::Handle)
            .map(|c| c.due_at),
        closed_at: case.fields.closed_at,
        reopen_window: rules.reopen_window,
        extensions_granted: case.fields.extensions_granted,
        max_extensions: case.policy.max_extensions,
        rework_count: case.fields.rework_count,
        pending_request: case.fields.pending_request.clone(),
        reporter_may_check: case.policy.reporter_may_check,
        rating: case.fields.rating,
    }
}

/// Turns an allowed transition into the rows to save. Pure: the deadline book
/// and "now" are passed in.
pub fn plan_change(
    case: &WorkflowCase,
    actor: &Actor,
    action: &Action,
    transition: &Transition,
    book: &DeadlineBook,
    evidence_flags: Vec<serde_json::Value>,
    now: DateTime<Utc>,
) -> Result<CaseChange, WorkflowError> {
    let mut fields = case.fields.clone();
    let mut assignments = case.assignments.clone();
    let mut assignments_changed = false;
    // Which units hold the case, not only how far they are with it.
    let mut units_changed = false;
    let mut clocks: Vec<Clock> = case.clocks.clone();
    let mut touched: Vec<Uuid> = Vec::new();
    let rework = transition
        .effects
        .iter()
        .any(|e| matches!(e, Effect::RecordReworkCount { .. }));
    if transition.to == CaseState::Filed
        && matches!(case.state, CaseState::Submitted | CaseState::Verifying)
    {
        // A case is graded when it is accepted (立案), by its category's default.
        fields.urgency = case.category_urgency;
    }
    let clock_context = ClockContext {
        book,
        case,
        urgency: fields.urgency,
        now,
    };

    for effect in &transition.effects {
        match effect {
            Effect::StartClock { phase } => add_clock(
                &mut clocks,
                &mut touched,
                clock_context.start(*phase, None, rework && *phase == Phase::Handle)?,
            ),
            Effect::StopClock { phase } => stop_clocks(&mut clocks, &mut touched, now, |c| {
                c.unit.is_none() && c.phase == *phase
            }),
            Effect::PauseClocks => {
                for clock in clocks.iter_mut().filter(|c| c.is_active()) {
                    clock.pause(now);
                    touched.push(clock.id);
                }
            }
            Effect::ResumeClocks => {
                let calculator = clock_context.calculator()?;
                for clock in clocks.iter_mut().filter(|c| c.is_active()) {
                    clock.resume(now, calculator)?;
                    touched.push(clock.id);
                }
            }
            Effect::StopAllClocks => stop_clocks(&mut clocks, &mut touched, now, |_| true),
            Effect::SetAssignments {
                lead_unit,
                co_units,
            } => {
                stop_clocks(&mut clocks, &mut touched, now, is_co_unit_clock);
                assignments = std::iter::once((lead_unit, true))
                    .chain(co_units.iter().map(|u| (u, false)))
                    .map(|(unit, lead)| AssignmentRecord {
                        unit: unit.clone(),
                        lead,
                        assigned_at: now,
                        signed_at: None,
                        finished_at: None,
                    })
                    .collect();
                assignments_changed = true;
                units_changed = true;
                fields.dispatched_at = Some(now);
                // Each co-unit signs on a clock of its own.
                for unit in co_units {
                    let clock = clock_context.start(Phase::Sign, Some(unit.clone()), false)?;
                    add_clock(&mut clocks, &mut touched, clock);
                }
            }
            Effect::DropCoUnit { unit } => {
                assignments.retain(|a| a.lead || &a.unit != unit);
                assignments_changed = true;
                units_changed = true;
                stop_clocks(&mut clocks, &mut touched, now, |c| {
                    c.unit.as_ref() == Some(unit)
                });
            }
            Effect::RestartCoUnitClocks { units } => {
                for unit in units {
                    let Some(assignment) = assignments.iter().find(|a| &a.unit == unit) else {
                        continue;
                    };
                    let clock = if assignment.signed_at.is_some() {
                        clock_context.start(Phase::Handle, Some(unit.clone()), rework)?
                    } else {
                        clock_context.start(Phase::Sign, Some(unit.clone()), false)?
                    };
                    add_clock(&mut clocks, &mut touched, clock);
                }
            }
            Effect::ClearAssignments => {
                stop_clocks(&mut clocks, &mut touched, now, is_co_unit_clock);
                assignments.clear();
                assignments_changed = true;
                units_changed = true;
                fields.dispatched_at = None;
                fields.sign_window_ends = None;
            }
            Effect::AssignmentSigned { unit } => {
                if let Some(a) = assignments.iter_mut().find(|a| &a.unit == unit) {
                    a.signed_at = Some(now);
                    assignments_changed = true;
                    if !a.lead {
                        stop_clocks(&mut clocks, &mut touched, now, |c| {
                            c.phase == Phase::Sign && c.unit.as_ref() == Some(unit)
                        });
                        let clock =
                            clock_context.start(Phase::Handle, Some(unit.clone()), false)?;
                        add_clock(&mut clocks, &mut touched, clock);
                    }
                }
            }
            Effect::AssignmentFinished { unit } => {
                if let Some(a) = assignments.iter_mut().find(|a| &a.unit == unit) {
                    a.finished_at = Some(now);
                    assignments_changed = true;
                    stop_clocks(&mut clocks, &mut touched, now, |c| {
                        c.phase == Phase::Handle && c.unit.as_ref() == Some(unit)
                    });
                }
            }
            Effect::CoUnitsOutstanding { units } => {
                // Their share ends with the lead's report: no clock of theirs
                // may run on into the check or past closing.
                stop_clocks(&mut clocks, &mut touched, now, is_co_unit_clock);
                fields.check_flags.push(serde_json::json!({
                    "flag": "co_units_outstanding",
                    "units": units,
                }));
            }
            Effect::SetPendingRequest { request } => {
                if let PendingRequest::Extension { new_due, .. } = request {
                    // Refused now, not when a resume must move a date no
                    // calendar covers.
                    clock_context.calculator()?.check_covered(*new_due)?;
                }
                fields.pending_request = Some(request.clone());
            }
            Effect::ClearPendingRequest => fields.pending_request = None,
            Effect::ExtendDue {
                new_due,
                extensions_granted,
            } => {
                // The handle clock moves to the approved date, and the case's
                // own clock with it when it would fall due sooner: the case is
                // never due before the handling it now allows.
                for clock in clocks.iter_mut().filter(|c| {
                    c.is_active()
                        && c.unit.is_none()
                        && (c.phase == Phase::Handle
                            || (c.phase == Phase::Resolve && c.due_at < *new_due))
                }) {
                    clock.extend_to(*new_due, clock_context.calculator()?)?;
                    touched.push(clock.id);
                }
                fields.extensions_granted = *extensions_granted;
            }
            Effect::RecordReworkCount { rework_count } => fields.rework_count = *rework_count,
            Effect::ClearCheckFlags => fields.check_flags.clear(),
            Effect::LinkMaster { master } => fields.master_case_id = Some(*master),
            Effect::SetNotFiledReason { reason } => {
                fields.not_filed_reason = serde_json::to_value(reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned));
            }
            Effect::SetClosedAt { at } => fields.closed_at = Some(*at),
            Effect::ClearClosedAt => fields.closed_at = None,
            Effect::RecordRating { score } => fields.rating = Some(*score),
            Effect::ClearRating => fields.rating = None,
        }
    }
    fields.check_flags.extend(evidence_flags);
    if transition.to == CaseState::Dispatched {
        fields.sign_window_ends = sign_window_end(&clocks, None);
    }
    // A paused clock is due at no time yet: a suspended case is never overdue.
    fields.due_at = clocks
        .iter()
        .filter(|c| c.status == ClockStatus::Running && c.unit.is_none())
        .map(|c| c.due_at)
        .min();

    touched.sort_unstable();
    touched.dedup();
    let changed_clocks = clocks
        .into_iter()
        .filter(|c| touched.contains(&c.id))
        .collect();
    let outbox = transition.public || transition.to != transition.from || units_changed;
    let mut data = serde_json::to_value(action).unwrap_or(serde_json::Value::Null);
    if let Some(map) = data.as_object_mut() {
        map.remove("action");
        if let Some(unit) = actor.unit.as_ref().filter(|_| actor.role.is_unit_role()) {
            map.insert("unit".into(), serde_json::Value::String(unit.clone()));
        }
        map.insert("from".into(), transition.from.as_str().into());
        map.insert("to".into(), transition.to.as_str().into());
        // An approval or denial names what it decided: for approved returns this
        // is the ownership record the routing rules are reviewed from.
        let decided = transition
            .effects
            .iter()
            .any(|effect| matches!(effect, Effect::ClearPendingRequest));
        // A request is between the unit and the centre: a public event reaches
        // the reporter's timeline, and the outbox leaves the system, so only an
        // internal event kept off the outbox carries an extension's or a
        // suspension's free-text reason. A return's is a code, which `returned`
        // keeps for the rule review.
        if let Some(request) = case.fields.pending_request.as_ref().filter(|request| {
            decided
                && !transition.public
                && (!outbox || matches!(request, PendingRequest::Return { .. }))
        }) {
            map.insert(
                "request".into(),
                serde_json::to_value(request).unwrap_or(serde_json::Value::Null),
            );
        }
    }
    Ok(CaseChange {
        case_id: case.id,
        expected_version: case.version,
        state: transition.to,
        fields,
        assignments: assignments_changed.then_some(assignments),
        clocks: changed_clocks,
        after_photos: Vec::new(),
        after_photos_owner: None,
        event: NewEvent {
            id: Uuid::now_v7(),
            kind: transition.event_kind.to_owned(),
            actor_id: (!actor.is_system()).then_some(actor.id),
            actor_role: actor.role_name().to_owned(),
            public: transition.public,
            data,
            at: now,
        },
        outbox,
        now,
    })
}

/// When the sign window of `unit` (`None`: the case's lead) ends: the due time
/// of its running sign clock.
fn sign_window_end(clocks: &[Clock], unit: Option<&str>) -> Option<DateTime<Utc>> {
    clocks
        .iter()
        .filter(|c| c.is_active() && c.phase == Phase::Sign && c.unit.as_deref() == unit)
        .map(|c| c.due_at)
        .max()
}

struct ClockContext<'a> {
    book: &'a DeadlineBook,
    case: &'a WorkflowCase,
    urgency: Urgency,
    now: DateTime<Utc>,
}

impl ClockContext<'_> {
    fn calculator(&self) -> Result<&crate::domain::deadline::DeadlineCalculator, WorkflowError> {
        self.book
            .calculator(None)
            .ok_or_else(|| WorkflowError::NoCalendar("(the city's)".into()))
    }

    fn profile(&self) -> Result<&DeadlineProfile, WorkflowError> {
        self.book
            .profile_for(
                self.case.named_profile.as_deref(),
                &self.case.category_code,
                self.urgency,
            )
            .ok_or(WorkflowError::NoProfile)
    }

    fn start(
        &self,
        phase: Phase,
        unit: Option<String>,
        rework: bool,
    ) -> Result<Clock, WorkflowError> {
        let profile = self.profile()?;
        let limit = profile.phases.limit_for(phase, rework);
        Ok(Clock::start(
            phase,
            unit,
            limit,
            self.now,
            self.calculator()?,
            profile.warning_fraction,
        )?)
    }
}

/// Stops every active clock `which` picks, noting it as changed.
fn stop_clocks(
    clocks: &mut [Clock],
    touched: &mut Vec<Uuid>,
    now: DateTime<Utc>,
    which: impl Fn(&Clock) -> bool,
) {
    for clock in clocks.iter_mut().filter(|c| c.is_active() && which(c)) {
        clock.stop(now);
        touched.push(clock.id);
    }
}

fn is_co_unit_clock(clock: &Clock) -> bool {
    clock.unit.is_some()
}

/// A clock just started, noted as changed.
fn add_clock(clocks: &mut Vec<Clock>, touched: &mut Vec<Uuid>, clock: Clock) {
    touched.push(clock.id);
    clocks.push(clock);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::case::{ReturnReason, apply};
    use crate::domain::deadline::{CalendarYear, DEFAULT_TZ, Limit, PhaseLimits};
    use crate::domain::geo::LatLon;
    use crate::domain::role::Role;
    use crate::store::{CategoryPolicy, WorkflowFields};
    use chrono::TimeZone;

    fn book() -> DeadlineBook {
        let years: Vec<CalendarYear> = crate::deadlines::SHIPPED_CALENDARS
            .iter()
            .map(|t| serde_json::from_str(t).expect("shipped calendar"))
            .collect();
        let profile = DeadlineProfile {
            id: "default".into(),
            category_prefix: Some("*".into()),
            urgency: Urgency::Normal,
            phases: PhaseLimits {
                verify: Limit::work_days(1),
                dispatch: Limit::work_hours(2),
                sign: Limit::work_hours(2),
                handle: Limit::work_days(3),
                check: Limit::work_days(1),
                rework: Limit::work_days(1),
                resolve: Limit::work_days(8),
            },
            warning_fraction: None,
        };
        DeadlineBook::build(
            years,
            vec![profile],
            &WorkflowSettings::default(),
            DEFAULT_TZ,
        )
        .expect("book")
    }

    /// Mon 2 March 2026, 10:00 in the city.
    fn monday() -> DateTime<Utc> {
        DEFAULT_TZ
            .with_ymd_and_hms(2026, 3, 2, 10, 0, 0)
            .single()
            .expect("time")
            .with_timezone(&Utc)
    }

    fn case(state: CaseState) -> WorkflowCase {
        WorkflowCase {
            id: Uuid::now_v7(),
            state,
            version: 1,
            source: "app".into(),
            category_code: "0301".into(),
            location: LatLon {
                lat: 31.87,
                lon: 120.55,
            },
            reporter_id: Uuid::now_v7(),
            confidential: false,
            routed_lead: Some("LEAD".into()),
            routed_co_units: vec![],
            named_profile: None,
            created_at: monday(),
            fields: WorkflowFields::default(),
            policy: CategoryPolicy::default(),
            category_urgency: Urgency::Urgent,
            assignments: vec![],
            clocks: vec![],
        }
    }

    fn rules() -> WorkflowRules {
        WorkflowRules::from_settings(&WorkflowSettings::default())
    }

    /// Applies `action` as `actor` and plans the change, then folds it back into
    /// the case as the store would.
    fn step(
        case: &mut WorkflowCase,
        actor: &Actor,
        action: Action,
        now: DateTime<Utc>,
    ) -> CaseChange {
        let transition = apply(&snapshot(case, &rules()), actor, &action, now).expect("allowed");
        let change =
            plan_change(case, actor, &action, &transition, &book(), vec![], now).expect("planned");
        case.state = change.state;
        case.version += 1;
        case.fields = change.fields.clone();
        if let Some(assignments) = &change.assignments {
            case.assignments = assignments.clone();
        }
        for clock in &change.clocks {
            case.clocks.retain(|c| c.id != clock.id);
            if clock.is_active() {
                case.clocks.push(clock.clone());
            }
        }
        change
    }

    /// `unit` reports its work done with a fresh after-photo.
    fn report_done(case: &mut WorkflowCase, unit: &str, now: DateTime<Utc>) -> CaseChange {
        let action = Action::ReportDone {
            after_photo_ids: vec![Uuid::now_v7()],
        };
        step(case, &staff(unit), action, now)
    }

    fn operator() -> Actor {
        Actor::new(Uuid::now_v7(), Role::Operator, None)
    }

    fn staff(unit: &str) -> Actor {
        Actor::new(Uuid::now_v7(), Role::UnitStaff, Some(unit.into()))
    }

    fn dispatched(now: DateTime<Utc>) -> WorkflowCase {
        let mut c = case(CaseState::Submitted);
        step(&mut c, &operator(), Action::File, now);
        step(
            &mut c,
            &operator(),
            Action::Dispatch {
                lead_unit: "LEAD".into(),
                co_units: vec!["CO".into()],
            },
            now,
        );
        c
    }

    #[test]
    fn filing_grades_the_case_and_starts_the_case_and_dispatch_clocks() {
        let mut c = case(CaseState::Submitted);
        let change = step(&mut c, &operator(), Action::File, monday());
        assert_eq!(change.fields.urgency, Urgency::Urgent);
        let phases: Vec<Phase> = change.clocks.iter().map(|k| k.phase).collect();
        assert_eq!(phases, [Phase::Resolve, Phase::Dispatch]);
        // Dispatch (2 work hours) falls due long before the case (8 work days).
        assert_eq!(change.fields.due_at, Some(change.clocks[1].due_at));
        assert!(change.event.public);
        assert_eq!(change.event.data["from"], "submitted");
        assert_eq!(change.event.data["to"], "filed");
        assert!(change.event.data.get("action").is_none());
    }

    #[test]
    fn dispatch_assigns_units_and_starts_a_sign_clock_for_each() {
        let now = monday();
        let c = dispatched(now);
        assert_eq!(c.state, CaseState::Dispatched);
        let units: Vec<(&str, bool)> = c
            .assignments
            .iter()
            .map(|a| (a.unit.as_str(), a.lead))
            .collect();
        assert_eq!(units, [("LEAD", true), ("CO", false)]);
        let signs: Vec<Option<&str>> = c
            .clocks
            .iter()
            .filter(|k| k.phase == Phase::Sign)
            .map(|k| k.unit.as_deref())
            .collect();
        assert_eq!(signs, [Some("CO"), None]);
        assert!(c.clocks.iter().all(|k| k.phase != Phase::Dispatch));
        // 2 work hours from Monday 10:00: 12:00.
        let case_sign = c
            .clocks
            .iter()
            .find(|k| k.unit.is_none() && k.phase == Phase::Sign)
            .expect("sign");
        assert_eq!(case_sign.due_at, now + Duration::hours(2));
        assert_eq!(c.fields.sign_window_ends, Some(case_sign.due_at));
        assert_eq!(c.fields.due_at, Some(case_sign.due_at));
        assert_eq!(c.fields.dispatched_at, Some(now));
    }

    #[test]
    fn a_co_unit_signs_and_finishes_on_clocks_of_its_own() {
        let now = monday();
        let mut c = dispatched(now);
        let later = now + Duration::minutes(30);
        let change = step(&mut c, &staff("CO"), Action::Sign, later);
        assert_eq!(
            change.state,
            CaseState::Dispatched,
            "the lead has not signed"
        );
        let co_clocks: Vec<(Phase, ClockStatus)> =
            change.clocks.iter().map(|k| (k.phase, k.status)).collect();
        assert_eq!(
            co_clocks,
            [
                (Phase::Sign, ClockStatus::Stopped),
                (Phase::Handle, ClockStatus::Running)
            ]
        );
        assert!(
            change
                .clocks
                .iter()
                .all(|k| k.unit.as_deref() == Some("CO"))
        );
        let co = c.assignments.iter().find(|a| !a.lead).expect("co-unit");
        assert_eq!(co.signed_at, Some(later));

        let done = report_done(&mut c, "CO", later);
        assert_eq!(done.event.kind, "co_unit_done");
        assert!(
            c.assignments
                .iter()
                .any(|a| !a.lead && a.finished_at == Some(later))
        );
        assert!(
            c.clocks.iter().all(|k| k.unit.is_none()),
            "co-unit clocks stopped"
        );
    }

    #[test]
    fn suspension_pauses_every_clock_and_resuming_adds_the_paused_time() {
        let now = monday();
        let mut c = dispatched(now);
        step(&mut c, &staff("LEAD"), Action::Sign, now);
        let handle_due = c
            .clocks
            .iter()
            .find(|k| k.unit.is_none() && k.phase == Phase::Handle)
            .expect("handle")
            .due_at;
        step(
            &mut c,
            &staff("LEAD"),
            Action::RequestSuspension {
                reason: "等待".into(),
            },
            now,
        );
        let supervisor = Actor::new(Uuid::now_v7(), Role::Supervisor, None);
        step(
            &mut c,
            &supervisor,
            Action::ApproveSuspension,
            now + Duration::days(1),
        );
        assert!(c.clocks.iter().all(|k| k.status == ClockStatus::Paused));
        assert_eq!(c.fields.due_at, None, "a suspended case is due at no time");
        // Paused from Tuesday 10:00 to Wednesday 10:00: one full office day of
        // the counted days (Monday, the day of receipt, never counts).
        step(&mut c, &supervisor, Action::Resume, now + Duration::days(2));
        let handle = c
            .clocks
            .iter()
            .find(|k| k.unit.is_none() && k.phase == Phase::Handle)
            .expect("handle");
        assert_eq!(handle.status, ClockStatus::Running);
        // 3 work days from Monday end Thursday 17:30; a day paused moves it to Friday.
        assert_eq!(handle.due_at, handle_due + Duration::days(1));
        assert_eq!(c.fields.due_at, Some(handle.due_at));
    }

    #[test]
    fn a_failed_check_is_rework_on_the_shorter_limit() {
        let now = monday();
        let mut c = dispatched(now);
        step(&mut c, &staff("LEAD"), Action::Sign, now);
        report_done(&mut c, "LEAD", now);
        assert_eq!(
            c.fields.check_flags.len(),
            1,
            "co-unit outstanding is flagged"
        );
        // The co-unit never signed; its sign clock stops with the lead's report,
        // or the sweeper would keep chasing a unit whose share is now checked.
        assert!(
            c.clocks.iter().all(|k| k.unit.is_none()),
            "no co-unit clock runs into the check: {:?}",
            c.clocks
        );
        step(
            &mut c,
            &operator(),
            Action::FailCheck {
                reason: "仍有线缆".into(),
            },
            now,
        );
        assert_eq!(c.state, CaseState::InProgress);
        assert_eq!(c.fields.rework_count, 1);
        assert!(c.fields.check_flags.is_empty());
        // The co-unit, which never signed, is given its sign clock again.
        let co: Vec<Phase> = c
            .clocks
            .iter()
            .filter(|k| k.unit.as_deref() == Some("CO"))
            .map(|k| k.phase)
            .collect();
        assert_eq!(co, [Phase::Sign]);
        let handle = c
            .clocks
            .iter()
            .find(|k| k.unit.is_none() && k.phase == Phase::Handle)
            .expect("a new handle clock");
        assert_eq!(handle.limit, Limit::work_days(1));
    }

    #[test]
    fn rework_reopens_an_unsigned_co_units_window_to_hand_its_share_back() {
        let now = monday();
        let mut c = dispatched(now);
        step(&mut c, &staff("LEAD"), Action::Sign, now);
        report_done(&mut c, "LEAD", now);
        // The check fails the next day, long after the dispatch's sign window.
        let next_day = now + Duration::days(1);
        let fail = Action::FailCheck {
            reason: "仍有线缆".into(),
        };
        step(&mut c, &operator(), fail, next_day);
        let case = snapshot(&c, &rules());
        assert!(case.sign_window_ends.is_none_or(|end| end <= next_day));
        let co_window = case.co_units[0].sign_window_ends.expect("its own window");
        assert!(co_window > next_day);
        let hand_back = Action::RequestReturn {
            reason: ReturnReason::NotOurs,
        };
        let change = step(&mut c, &staff("CO"), hand_back, next_day);
        assert_eq!(change.event.kind, "return_requested");
    }

    #[test]
    fn an_approved_return_stops_the_units_clocks_while_the_case_clock_runs_on() {
        let now = monday();
        let mut c = dispatched(now);
        let case_clock = c
            .clocks
            .iter()
            .find(|k| k.phase == Phase::Resolve)
            .expect("the case clock")
            .clone();
        step(
            &mut c,
            &staff("LEAD"),
            Action::RequestReturn {
                reason: ReturnReason::NotOurs,
            },
            now,
        );
        step(&mut c, &operator(), Action::ApproveReturn, now);
        assert_eq!(c.state, CaseState::Filed);
        assert!(c.assignments.is_empty());
        assert_eq!(c.fields.dispatched_at, None);
        let phases: Vec<Phase> = c.clocks.iter().map(|k| k.phase).collect();
        assert_eq!(phases, [Phase::Resolve, Phase::Dispatch]);
        // The same clock, untouched: a return does not give the case more time.
        let after = c
            .clocks
            .iter()
            .find(|k| k.phase == Phase::Resolve)
            .expect("the case clock");
        assert_eq!(after, &case_clock);
    }

    #[test]
    fn the_case_clock_stops_at_closing_and_follows_an_approved_extension() {
        let now = monday();
        let mut c = dispatched(now);
        step(&mut c, &staff("LEAD"), Action::Sign, now);
        let resolve_due = |c: &WorkflowCase| {
            c.clocks
                .iter()
                .find(|k| k.phase == Phase::Resolve)
                .map(|k| k.due_at)
        };
        let before = resolve_due(&c).expect("running");
        let new_due = before + Duration::days(7);
        step(
            &mut c,
            &staff("LEAD"),
            Action::RequestExtension {
                reason: "材料待采购".into(),
                new_due,
            },
            now,
        );
        step(&mut c, &operator(), Action::ApproveExtension, now);
        assert_eq!(resolve_due(&c), Some(new_due));
        report_done(&mut c, "LEAD", now);
        step(&mut c, &operator(), Action::PassCheck, now);
        assert_eq!(c.state, CaseState::Closed);
        assert!(c.clocks.is_empty(), "every clock stopped: {:?}", c.clocks);
    }

    #[test]
    fn an_extension_past_the_loaded_calendar_is_refused_when_requested() {
        let now = monday();
        let mut c = dispatched(now);
        step(&mut c, &staff("LEAD"), Action::Sign, now);
        let request = |new_due| Action::RequestExtension {
            reason: "材料待采购".into(),
            new_due,
        };
        let past_the_calendar = DEFAULT_TZ
            .with_ymd_and_hms(2027, 1, 5, 10, 0, 0)
            .single()
            .expect("time")
            .with_timezone(&Utc);
        let actor = staff("LEAD");
        let action = request(past_the_calendar);
        let transition = apply(&snapshot(&c, &rules()), &actor, &action, now).expect("allowed");
        let err = plan_change(&c, &actor, &action, &transition, &book(), vec![], now)
            .expect_err("beyond the calendar");
        assert!(
            matches!(
                err,
                WorkflowError::Deadline(DeadlineError::BeyondCalendar { .. })
            ),
            "{err}"
        );
        let change = step(&mut c, &actor, request(now + Duration::days(20)), now);
        assert!(matches!(
            change.fields.pending_request,
            Some(PendingRequest::Extension { .. })
        ));
    }

    #[test]
    fn without_a_calendar_or_profile_the_change_is_refused() {
        let empty = DeadlineBook::build(vec![], vec![], &WorkflowSettings::default(), DEFAULT_TZ)
            .expect("empty book");
        let c = case(CaseState::Submitted);
        let actor = operator();
        let transition =
            apply(&snapshot(&c, &rules()), &actor, &Action::File, monday()).expect("allowed");
        let err = plan_change(
            &c,
            &actor,
            &Action::File,
            &transition,
            &empty,
            vec![],
            monday(),
        )
        .expect_err("no profile");
        assert!(matches!(err, WorkflowError::NoProfile), "{err}");
    }

    /// A reopen is a new round of work, as a failed check is: the next check
    /// is shown only this round's flags.
    #[test]
    fn a_reopened_round_is_checked_without_the_last_rounds_flags() {
        let now = monday();
        let mut c = dispatched(now);
        step(&mut c, &staff("LEAD"), Action::Sign, now);
        // The lead reports done before the co-unit has signed: flagged.
        report_done(&mut c, "LEAD", now);
        assert_eq!(c.fields.check_flags.len(), 1, "{:?}", c.fields.check_flags);
        step(&mut c, &operator(), Action::PassCheck, now);
        let later = now + Duration::hours(1);
        step(
            &mut c,
            &operator(),
            Action::Rate {
                score: 1,
                comment: None,
            },
            later,
        );
        step(
            &mut c,
            &operator(),
            Action::Reopen {
                reason: "仍未修复".into(),
            },
            later,
        );
        assert!(
            c.fields.check_flags.is_empty(),
            "{:?}",
            c.fields.check_flags
        );
        // This round the co-unit signs and finishes before the lead reports.
        step(&mut c, &staff("CO"), Action::Sign, later);
        report_done(&mut c, "CO", later);
        report_done(&mut c, "LEAD", later);
        assert_eq!(c.state, CaseState::AwaitingCheck);
        assert!(
            c.fields.check_flags.is_empty(),
            "{:?}",
            c.fields.check_flags
        );
    }
}
