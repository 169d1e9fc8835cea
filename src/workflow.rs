//! Taking an action on a case: load it, let `domain::case::apply` decide, turn
//! the transition's effects into clocks, assignments and fields
//! ([`plan_change`], pure), and save it all with a compare-and-swap on the
//! case version. Used by the HTTP handlers and by the auto-dispatch job.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::config::WorkflowSettings;
use crate::deadlines::{DeadlineBook, LiveDeadlines};
use crate::domain::case::{
    Action, ActionEnvelope, Actor, Assignment, CaseSnapshot, CaseState, Effect, Phase, Refusal,
    Transition, apply_envelope,
};
use crate::domain::clock::Clock;
use crate::domain::deadline::{DeadlineError, DeadlineProfile, Urgency};
use crate::domain::evidence::{EvidenceRefusal, EvidenceRules, PhotoEvidence, assess_after_photos};
use crate::store::{
    AssignmentRecord, CaseChange, NewEvent, PhotoRecord, Repository, SaveOutcome, StoreError,
    WorkflowCase,
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

    /// Loads a case for an action; `None` when it does not exist.
    pub async fn case(&self, id: Uuid) -> Result<Option<WorkflowCase>, WorkflowError> {
        Ok(self.repo.workflow_case(id).await?)
    }

    /// Applies `envelope` to `case` (loaded by [`Workflow::case`]) as `actor`.
    pub async fn act(
        &self,
        case: &WorkflowCase,
        actor: &Actor,
        envelope: &ActionEnvelope,
        now: DateTime<Utc>,
    ) -> Result<ActionOutcome, WorkflowError> {
        let snapshot = snapshot(case, &self.rules);
        let transition = apply_envelope(&snapshot, actor, envelope, now)?;
        let (after_photos, check_flags) = match &envelope.action {
            Action::ReportDone { after_photo_ids } => {
                self.judge_after_photos(case, actor, after_photo_ids)
                    .await?
            }
            _ => (Vec::new(), Vec::new()),
        };
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
        let saved = match self.repo.save_case_change(&change).await {
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
                case_id: case.id,
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
        let mut before = Vec::new();
        if let Some(record) = self.repo.case_by_id(case.id).await? {
            for id in record.photo_ids {
                if let Some(evidence) = self.repo.photo(id).await?.as_ref().and_then(evidence_of) {
                    before.push(evidence);
                }
            }
        }
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
        closed_at: case.fields.closed_at,
        reopen_window: rules.reopen_window,
        extensions_granted: case.fields.extensions_granted,
        max_extensions: case.policy.max_extensions,
        rework_count: case.fields.rework_count,
        pending_request: case.fields.pending_request.clone(),
        reporter_may_check: case.policy.reporter_may_check,
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
        fields.urgency = Some(case.category_urgency);
    }
    let clock_context = ClockContext {
        book,
        case,
        urgency: fields.urgency.unwrap_or(Urgency::Normal),
        now,
    };

    for effect in &transition.effects {
        match effect {
            Effect::StartClock { phase } => {
                let clock = clock_context.start(*phase, None, rework && *phase == Phase::Handle)?;
                touched.push(clock.id);
                clocks.push(clock);
            }
            Effect::StopClock { phase } => {
                for clock in clocks
                    .iter_mut()
                    .filter(|c| c.is_active() && c.unit.is_none() && c.phase == *phase)
                {
                    clock.stop(now);
                    touched.push(clock.id);
                }
            }
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
            Effect::StopAllClocks => {
                for clock in clocks.iter_mut().filter(|c| c.is_active()) {
                    clock.stop(now);
                    touched.push(clock.id);
                }
            }
            Effect::SetAssignments {
                lead_unit,
                co_units,
            } => {
                stop_co_unit_clocks(&mut clocks, &mut touched, now);
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
                fields.dispatched_at = Some(now);
                // Each co-unit signs on a clock of its own.
                for unit in co_units {
                    let clock = clock_context.start(Phase::Sign, Some(unit.clone()), false)?;
                    touched.push(clock.id);
                    clocks.push(clock);
                }
            }
            Effect::ClearAssignments => {
                stop_co_unit_clocks(&mut clocks, &mut touched, now);
                assignments.clear();
                assignments_changed = true;
                fields.dispatched_at = None;
                fields.sign_window_ends = None;
            }
            Effect::AssignmentSigned { unit } => {
                if let Some(a) = assignments.iter_mut().find(|a| &a.unit == unit) {
                    a.signed_at = Some(now);
                    assignments_changed = true;
                    if !a.lead {
                        stop_unit_clock(&mut clocks, &mut touched, unit, Phase::Sign, now);
                        let clock =
                            clock_context.start(Phase::Handle, Some(unit.clone()), false)?;
                        touched.push(clock.id);
                        clocks.push(clock);
                    }
                }
            }
            Effect::AssignmentFinished { unit } => {
                if let Some(a) = assignments.iter_mut().find(|a| &a.unit == unit) {
                    a.finished_at = Some(now);
                    assignments_changed = true;
                    stop_unit_clock(&mut clocks, &mut touched, unit, Phase::Handle, now);
                }
            }
            Effect::CoUnitsOutstanding { units } => fields.check_flags.push(serde_json::json!({
                "flag": "co_units_outstanding",
                "units": units,
            })),
            Effect::SetPendingRequest { request } => fields.pending_request = Some(request.clone()),
            Effect::ClearPendingRequest => fields.pending_request = None,
            Effect::ExtendDue {
                new_due,
                extensions_granted,
            } => {
                for clock in clocks
                    .iter_mut()
                    .filter(|c| c.is_active() && c.unit.is_none() && c.phase == Phase::Handle)
                {
                    clock.extend_to(*new_due);
                    touched.push(clock.id);
                }
                fields.extensions_granted = *extensions_granted;
            }
            Effect::RecordReworkCount { rework_count } => {
                fields.rework_count = *rework_count;
                // The checker's doubts were about the work now being redone.
                fields.check_flags.clear();
            }
            Effect::LinkMaster { master } => fields.master_case_id = Some(*master),
            Effect::SetNotFiledReason { reason } => {
                fields.not_filed_reason = serde_json::to_value(reason)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned));
            }
            Effect::SetClosedAt { at } => fields.closed_at = Some(*at),
            Effect::ClearClosedAt => fields.closed_at = None,
            Effect::RecordRating { score } => fields.rating = Some(*score),
        }
    }
    fields.check_flags.extend(evidence_flags);
    if transition.to == CaseState::Dispatched {
        fields.sign_window_ends = clocks
            .iter()
            .filter(|c| c.is_active() && c.unit.is_none() && c.phase == Phase::Sign)
            .map(|c| c.due_at)
            .max();
    }
    fields.due_at = clocks
        .iter()
        .filter(|c| c.is_active() && c.unit.is_none())
        .map(|c| c.due_at)
        .min();

    touched.sort_unstable();
    touched.dedup();
    let changed_clocks = clocks
        .into_iter()
        .filter(|c| touched.contains(&c.id))
        .collect();
    let mut data = serde_json::to_value(action).unwrap_or(serde_json::Value::Null);
    if let Some(map) = data.as_object_mut() {
        map.remove("action");
        if let Some(unit) = actor.unit.as_ref().filter(|_| actor.role.is_unit_role()) {
            map.insert("unit".into(), serde_json::Value::String(unit.clone()));
        }
        map.insert("from".into(), transition.from.as_str().into());
        map.insert("to".into(), transition.to.as_str().into());
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
        },
        now,
    })
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

fn stop_co_unit_clocks(clocks: &mut [Clock], touched: &mut Vec<Uuid>, now: DateTime<Utc>) {
    for clock in clocks
        .iter_mut()
        .filter(|c| c.is_active() && c.unit.is_some())
    {
        clock.stop(now);
        touched.push(clock.id);
    }
}

fn stop_unit_clock(
    clocks: &mut [Clock],
    touched: &mut Vec<Uuid>,
    unit: &str,
    phase: Phase,
    now: DateTime<Utc>,
) {
    for clock in clocks
        .iter_mut()
        .filter(|c| c.is_active() && c.phase == phase && c.unit.as_deref() == Some(unit))
    {
        clock.stop(now);
        touched.push(clock.id);
    }
}
