//! Case states of the 数字城管 / 12345 closed loop and the workflow between them
//! (DESIGN.md §3). Pure: [`apply`] takes the case, the actor, the action and "now",
//! and returns either the transition to record or why it is refused.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::instant;
use crate::domain::role::Role;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseState {
    /// 待受理: received from any channel.
    Submitted,
    /// 待核实: an inspector is checking a public report on site.
    Verifying,
    /// 待派遣: accepted (立案).
    Filed,
    /// 待签收: assigned to a lead unit.
    Dispatched,
    /// 处置中: the lead unit signed for it.
    InProgress,
    /// 挂账: approved pause; clocks stop.
    Suspended,
    /// 待核查: reported fixed.
    AwaitingCheck,
    /// 已结案 (销号).
    Closed,
    /// 归档.
    Archived,
    /// 不予立案.
    NotFiled,
    /// 作废.
    Cancelled,
}

impl CaseState {
    pub const ALL: [CaseState; 11] = [
        CaseState::Submitted,
        CaseState::Verifying,
        CaseState::Filed,
        CaseState::Dispatched,
        CaseState::InProgress,
        CaseState::Suspended,
        CaseState::AwaitingCheck,
        CaseState::Closed,
        CaseState::Archived,
        CaseState::NotFiled,
        CaseState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CaseState::Submitted => "submitted",
            CaseState::Verifying => "verifying",
            CaseState::Filed => "filed",
            CaseState::Dispatched => "dispatched",
            CaseState::InProgress => "in_progress",
            CaseState::Suspended => "suspended",
            CaseState::AwaitingCheck => "awaiting_check",
            CaseState::Closed => "closed",
            CaseState::Archived => "archived",
            CaseState::NotFiled => "not_filed",
            CaseState::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<CaseState> {
        CaseState::ALL.into_iter().find(|state| state.as_str() == s)
    }
}

impl std::fmt::Display for CaseState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl CaseState {
    /// States in which work on the case is still going on. Cancel and urge only make
    /// sense here: a closed case is reopened, not cancelled, and nobody urges a
    /// case that is finished.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            CaseState::Submitted
                | CaseState::Verifying
                | CaseState::Filed
                | CaseState::Dispatched
                | CaseState::InProgress
                | CaseState::Suspended
                | CaseState::AwaitingCheck
        )
    }

    /// States in which the units' report that the work is done stands, so the
    /// reporter sees their after-photos with it. Before the lead reports, a
    /// co-unit's share is internal; a failed check or a reopen withdraws the
    /// report, and its proof with it, until the next one.
    pub fn shows_units_proof(self) -> bool {
        matches!(
            self,
            CaseState::AwaitingCheck | CaseState::Closed | CaseState::Archived
        )
    }
}

// ---------------------------------------------------------------------------
// Inputs
// ---------------------------------------------------------------------------

/// Why a case is not filed (不予立案). Stored with the case, shown to the reporter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotFiledReason {
    /// 重复: only reachable through `merge`, which links the master case.
    Duplicate,
    /// 不属实.
    Untrue,
    /// 非受理范围.
    OutOfScope,
    /// 已自行解决.
    SelfResolved,
    /// 信息不全.
    Incomplete,
}

/// Reason code a unit gives when asking to hand a case back (申请回退).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReturnReason {
    /// 非本单位职责.
    NotOurs,
    /// 位置有误.
    WrongLocation,
    /// 需其他部门处理.
    NeedsOtherDepartment,
    /// 重复案件.
    Duplicate,
}

/// One unit's share of a dispatched case (协办 assignment). The lead unit's own
/// signing is the case state itself (`dispatched` → `in_progress`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Assignment {
    pub unit: String,
    pub signed: bool,
    pub finished: bool,
    /// End of this unit's own sign window (the due time of its running sign
    /// clock), within which it may hand its share back. A failed check
    /// restarts an unsigned co-unit's sign clock, and with it this window.
    pub sign_window_ends: Option<DateTime<Utc>>,
}

/// A unit's request waiting for the centre's decision. Only one may be pending at a
/// time, so an approval can never be applied to the wrong request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum PendingRequest {
    Return {
        unit: String,
        reason: ReturnReason,
    },
    Extension {
        unit: String,
        reason: String,
        new_due: DateTime<Utc>,
    },
    Suspension {
        unit: String,
        reason: String,
    },
}

impl PendingRequest {
    pub fn unit(&self) -> &str {
        match self {
            PendingRequest::Return { unit, .. }
            | PendingRequest::Extension { unit, .. }
            | PendingRequest::Suspension { unit, .. } => unit,
        }
    }
}

/// What the state machine needs to know about a case. Loaded by the repository;
/// `version` is what its compare-and-swap checks when the transition is saved.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaseSnapshot {
    pub id: Uuid,
    pub state: CaseState,
    pub version: i64,
    /// 主办 unit; `None` until dispatched.
    pub lead_unit: Option<String>,
    /// 协办 units with their own sign/finish status.
    pub co_units: Vec<Assignment>,
    pub reporter_id: Uuid,
    pub dispatched_at: Option<DateTime<Utc>>,
    /// End of the sign phase, computed by the deadline module at dispatch. A return
    /// may be requested until then.
    pub sign_window_ends: Option<DateTime<Utc>>,
    /// Due time of the lead's running handle clock (处置), which an extension
    /// must move later.
    pub handle_due: Option<DateTime<Utc>>,
    pub closed_at: Option<DateTime<Utc>>,
    /// How long after closing an operator may still reopen (重办).
    pub reopen_window: Duration,
    pub extensions_granted: u32,
    pub max_extensions: u32,
    pub rework_count: u32,
    pub pending_request: Option<PendingRequest>,
    /// Category policy: the reporter may pass the check (核查) themselves.
    pub reporter_may_check: bool,
    /// The reporter's satisfaction (回访), 1–5, given in the app or taken by an
    /// operator on a call-back; a reopen needs it at [`DISSATISFIED_AT_MOST`].
    pub rating: Option<u8>,
}

/// The highest rating that counts as dissatisfied (不满意): 1 or 2 of 5.
pub const DISSATISFIED_AT_MOST: u8 = 2;

/// Who is acting. Build with [`Actor::new`] or [`Actor::system`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    pub id: Uuid,
    pub role: Role,
    /// The unit of `unit_staff` / `unit_lead`; ignored for other roles.
    pub unit: Option<String>,
    // Private so that only `Actor::system()` can produce the system actor: a
    // struct literal built from request data must never carry system rights.
    system: bool,
}

impl Actor {
    pub fn new(id: Uuid, role: Role, unit: Option<String>) -> Actor {
        Actor {
            id,
            role,
            unit,
            system: false,
        }
    }

    /// Timers and auto-dispatch. `Role` has no `system` variant, so the system
    /// carries the least privileged machine role (`integrator`) and the nil id;
    /// its rights here come only from the private flag.
    pub fn system() -> Actor {
        Actor {
            id: Uuid::nil(),
            role: Role::Integrator,
            unit: None,
            system: true,
        }
    }

    pub fn is_system(&self) -> bool {
        self.system
    }

    /// Name used in refusals and the timeline.
    pub fn role_name(&self) -> &'static str {
        if self.system {
            "system"
        } else {
            self.role.as_str()
        }
    }
}

/// Everything that can be done to a case (DESIGN.md §3, actions table).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    File,
    SendToVerify,
    /// `reason` is required when `filed` is false.
    Verify {
        filed: bool,
        #[serde(default)]
        reason: Option<NotFiledReason>,
    },
    Reject {
        reason: NotFiledReason,
    },
    Merge {
        master: Uuid,
    },
    Dispatch {
        lead_unit: String,
        #[serde(default)]
        co_units: Vec<String>,
    },
    Reassign {
        lead_unit: String,
        #[serde(default)]
        co_units: Vec<String>,
    },
    Sign,
    RequestReturn {
        reason: ReturnReason,
    },
    ApproveReturn,
    DenyReturn,
    RequestExtension {
        reason: String,
        #[serde(deserialize_with = "crate::domain::instant::deserialize")]
        new_due: DateTime<Utc>,
    },
    ApproveExtension,
    DenyExtension,
    RequestSuspension {
        reason: String,
    },
    ApproveSuspension,
    /// Not in the DESIGN table, but without it a suspension request could only be
    /// cleared by reassigning or cancelling the case.
    DenySuspension,
    Resume,
    ReportDone {
        after_photo_ids: Vec<Uuid>,
    },
    PassCheck,
    FailCheck {
        reason: String,
    },
    Reopen {
        reason: String,
    },
    Archive,
    Cancel {
        reason: String,
    },
    Urge {
        #[serde(default)]
        note: String,
    },
    Comment {
        text: String,
    },
    Rate {
        /// 1 (very dissatisfied) to 5 (very satisfied).
        #[schema(minimum = 1, maximum = 5)]
        score: u8,
        #[serde(default)]
        comment: Option<String>,
    },
}

/// The kind of an [`Action`] without its payload; names match the serde tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ActionKind {
    File,
    SendToVerify,
    Verify,
    Reject,
    Merge,
    Dispatch,
    Reassign,
    Sign,
    RequestReturn,
    ApproveReturn,
    DenyReturn,
    RequestExtension,
    ApproveExtension,
    DenyExtension,
    RequestSuspension,
    ApproveSuspension,
    DenySuspension,
    Resume,
    ReportDone,
    PassCheck,
    FailCheck,
    Reopen,
    Archive,
    Cancel,
    Urge,
    Comment,
    Rate,
}

impl ActionKind {
    pub const ALL: [ActionKind; 27] = [
        ActionKind::File,
        ActionKind::SendToVerify,
        ActionKind::Verify,
        ActionKind::Reject,
        ActionKind::Merge,
        ActionKind::Dispatch,
        ActionKind::Reassign,
        ActionKind::Sign,
        ActionKind::RequestReturn,
        ActionKind::ApproveReturn,
        ActionKind::DenyReturn,
        ActionKind::RequestExtension,
        ActionKind::ApproveExtension,
        ActionKind::DenyExtension,
        ActionKind::RequestSuspension,
        ActionKind::ApproveSuspension,
        ActionKind::DenySuspension,
        ActionKind::Resume,
        ActionKind::ReportDone,
        ActionKind::PassCheck,
        ActionKind::FailCheck,
        ActionKind::Reopen,
        ActionKind::Archive,
        ActionKind::Cancel,
        ActionKind::Urge,
        ActionKind::Comment,
        ActionKind::Rate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::File => "file",
            ActionKind::SendToVerify => "send_to_verify",
            ActionKind::Verify => "verify",
            ActionKind::Reject => "reject",
            ActionKind::Merge => "merge",
            ActionKind::Dispatch => "dispatch",
            ActionKind::Reassign => "reassign",
            ActionKind::Sign => "sign",
            ActionKind::RequestReturn => "request_return",
            ActionKind::ApproveReturn => "approve_return",
            ActionKind::DenyReturn => "deny_return",
            ActionKind::RequestExtension => "request_extension",
            ActionKind::ApproveExtension => "approve_extension",
            ActionKind::DenyExtension => "deny_extension",
            ActionKind::RequestSuspension => "request_suspension",
            ActionKind::ApproveSuspension => "approve_suspension",
            ActionKind::DenySuspension => "deny_suspension",
            ActionKind::Resume => "resume",
            ActionKind::ReportDone => "report_done",
            ActionKind::PassCheck => "pass_check",
            ActionKind::FailCheck => "fail_check",
            ActionKind::Reopen => "reopen",
            ActionKind::Archive => "archive",
            ActionKind::Cancel => "cancel",
            ActionKind::Urge => "urge",
            ActionKind::Comment => "comment",
            ActionKind::Rate => "rate",
        }
    }
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Action::File => ActionKind::File,
            Action::SendToVerify => ActionKind::SendToVerify,
            Action::Verify { .. } => ActionKind::Verify,
            Action::Reject { .. } => ActionKind::Reject,
            Action::Merge { .. } => ActionKind::Merge,
            Action::Dispatch { .. } => ActionKind::Dispatch,
            Action::Reassign { .. } => ActionKind::Reassign,
            Action::Sign => ActionKind::Sign,
            Action::RequestReturn { .. } => ActionKind::RequestReturn,
            Action::ApproveReturn => ActionKind::ApproveReturn,
            Action::DenyReturn => ActionKind::DenyReturn,
            Action::RequestExtension { .. } => ActionKind::RequestExtension,
            Action::ApproveExtension => ActionKind::ApproveExtension,
            Action::DenyExtension => ActionKind::DenyExtension,
            Action::RequestSuspension { .. } => ActionKind::RequestSuspension,
            Action::ApproveSuspension => ActionKind::ApproveSuspension,
            Action::DenySuspension => ActionKind::DenySuspension,
            Action::Resume => ActionKind::Resume,
            Action::ReportDone { .. } => ActionKind::ReportDone,
            Action::PassCheck => ActionKind::PassCheck,
            Action::FailCheck { .. } => ActionKind::FailCheck,
            Action::Reopen { .. } => ActionKind::Reopen,
            Action::Archive => ActionKind::Archive,
            Action::Cancel { .. } => ActionKind::Cancel,
            Action::Urge { .. } => ActionKind::Urge,
            Action::Comment { .. } => ActionKind::Comment,
            Action::Rate { .. } => ActionKind::Rate,
        }
    }
}

/// An action as it arrives over HTTP, with the version the client last saw.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ActionEnvelope {
    pub expected_version: i64,
    #[serde(flatten)]
    pub action: Action,
}

// ---------------------------------------------------------------------------
// Outputs
// ---------------------------------------------------------------------------

/// Deadline phases the clocks run for (DESIGN.md §3, deadline profiles).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    Verify,
    Dispatch,
    Sign,
    Handle,
    Check,
    /// 办结: the case's own clock from filing (立案) to closing. Units' clocks
    /// stop and restart with returns, reassignments and rework; this one keeps
    /// running through them (it pauses only with a suspension).
    Resolve,
}

impl Phase {
    pub const ALL: [Phase; 6] = [
        Phase::Verify,
        Phase::Dispatch,
        Phase::Sign,
        Phase::Handle,
        Phase::Check,
        Phase::Resolve,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Verify => "verify",
            Phase::Dispatch => "dispatch",
            Phase::Sign => "sign",
            Phase::Handle => "handle",
            Phase::Check => "check",
            Phase::Resolve => "resolve",
        }
    }

    pub fn parse(s: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Whether the dispatch centre (its operators and inspectors) works this
    /// phase rather than a unit: overdue, it is escalated to the centre alone,
    /// not to the parent of a unit that has nothing to do in it.
    pub fn is_centres_work(self) -> bool {
        match self {
            Phase::Verify | Phase::Dispatch | Phase::Check => true,
            // The case's own clock runs while a unit holds the case.
            Phase::Sign | Phase::Handle | Phase::Resolve => false,
        }
    }
}

/// What the caller must do besides moving the state and appending the event.
/// Effects are instructions, not a diff: the caller owns the clock and storage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(tag = "effect", rename_all = "snake_case")]
pub enum Effect {
    /// Start the clock of a phase, with a fresh deadline from the profile.
    StartClock {
        phase: Phase,
    },
    StopClock {
        phase: Phase,
    },
    /// Suspension: stop every running clock without losing elapsed time.
    PauseClocks,
    ResumeClocks,
    /// The case ends without a fix (cancelled, or rejected or merged after
    /// filing): it will never meet its deadlines; stop counting.
    StopAllClocks,
    /// Replace lead and co-units; every assignment starts unsigned.
    SetAssignments {
        lead_unit: String,
        co_units: Vec<String>,
    },
    /// Forget lead and co-units (the case went back to `filed`).
    ClearAssignments,
    /// A co-unit's approved return: its assignment and its clocks go.
    DropCoUnit {
        unit: String,
    },
    /// The case is worked on again (rework, reopen): co-units whose share was
    /// not finished get a clock again, to sign if they had not, else to handle.
    RestartCoUnitClocks {
        units: Vec<String>,
    },
    AssignmentSigned {
        unit: String,
    },
    /// A co-unit (协办) reported its own share done. The case does not move:
    /// only the lead's report sends it to the check, and from then on the
    /// lead's `CoUnitsOutstanding` no longer names this unit.
    AssignmentFinished {
        unit: String,
    },
    /// The lead reported done while these co-units had not finished. The lead
    /// is not blocked on them; the checker sees them, and their clocks stop,
    /// since their share goes to the check with the case.
    CoUnitsOutstanding {
        units: Vec<String>,
    },
    SetPendingRequest {
        request: PendingRequest,
    },
    ClearPendingRequest,
    /// Move the handle deadline and count the extension.
    ExtendDue {
        new_due: DateTime<Utc>,
        extensions_granted: u32,
    },
    /// New value of the rework counter (after a failed check).
    RecordReworkCount {
        rework_count: u32,
    },
    LinkMaster {
        master: Uuid,
    },
    SetNotFiledReason {
        reason: NotFiledReason,
    },
    SetClosedAt {
        at: DateTime<Utc>,
    },
    ClearClosedAt,
    RecordRating {
        score: u8,
    },
    /// A reopen answers the rating; the next round is rated afresh.
    ClearRating,
    /// A new round of work (a failed check, a reopen): the checker's doubts
    /// were about the work now being redone.
    ClearCheckFlags,
}

/// The result of an allowed action: the caller appends one timeline event of
/// `event_kind`, saves `to` with a compare-and-swap on the version, and applies
/// `effects`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transition {
    pub from: CaseState,
    pub to: CaseState,
    pub event_kind: &'static str,
    /// Whether the reporter sees this event in their timeline.
    pub public: bool,
    pub effects: Vec<Effect>,
}

/// Why an action was refused. Messages are shown to users; codes are stable API.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("cannot {action} a case that is {state}")]
    WrongState {
        state: CaseState,
        action: &'static str,
    },
    #[error("a {role} may not {action} this case")]
    WrongRole {
        role: &'static str,
        action: &'static str,
    },
    #[error("this case is not assigned to your unit")]
    WrongUnit,
    #[error("a reason is required")]
    MissingReason,
    #[error("at least one after-photo is required")]
    MissingAfterPhoto,
    #[error("the time allowed for this action has passed")]
    OutsideWindow,
    #[error(
        "a closed case is reopened when its reporter is dissatisfied: a rating of \
         {DISSATISFIED_AT_MOST} or less, given in the app or taken on a call-back"
    )]
    ReporterNotDissatisfied,
    #[error("no more extensions may be granted for this case")]
    ExtensionCapReached,
    #[error("there is no matching request waiting for a decision")]
    NoPendingRequest,
    #[error("another request on this case is still waiting for a decision")]
    RequestPending,
    #[error("the case was changed by someone else; reload and try again")]
    StaleVersion,
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::WrongState { .. } => "wrong_state",
            Refusal::WrongRole { .. } => "wrong_role",
            Refusal::WrongUnit => "wrong_unit",
            Refusal::MissingReason => "missing_reason",
            Refusal::MissingAfterPhoto => "missing_after_photo",
            Refusal::OutsideWindow => "outside_window",
            Refusal::ReporterNotDissatisfied => "reporter_not_dissatisfied",
            Refusal::ExtensionCapReached => "extension_cap_reached",
            Refusal::NoPendingRequest => "no_pending_request",
            Refusal::RequestPending => "request_pending",
            Refusal::StaleVersion => "stale_version",
            Refusal::InvalidInput(_) => "invalid_input",
        }
    }
}

// ---------------------------------------------------------------------------
// The machine
// ---------------------------------------------------------------------------

/// [`apply`] for an HTTP envelope. The repository's compare-and-swap stays the real
/// guard; checking here just refuses early with a clear message.
pub fn apply_envelope(
    case: &CaseSnapshot,
    actor: &Actor,
    envelope: &ActionEnvelope,
    now: DateTime<Utc>,
) -> Result<Transition, Refusal> {
    if envelope.expected_version != case.version {
        return Err(Refusal::StaleVersion);
    }
    apply(case, actor, &envelope.action, now)
}

/// Decide whether `actor` may take `action` on `case` at `now`, and what follows.
///
/// Checks run in a fixed order so a refusal is predictable: role (may this kind of
/// actor ever do this?), then state, then unit, then the action's own
/// preconditions (pending request, windows, caps, input).
pub fn apply(
    case: &CaseSnapshot,
    actor: &Actor,
    action: &Action,
    now: DateTime<Utc>,
) -> Result<Transition, Refusal> {
    let kind = action.kind();
    if !who_may(kind, actor, case) {
        return Err(Refusal::WrongRole {
            role: actor.role_name(),
            action: kind.as_str(),
        });
    }
    within_limits(action)?;
    let from = case.state;
    let wrong_state = Err(Refusal::WrongState {
        state: from,
        action: kind.as_str(),
    });
    let t = |to: CaseState, event_kind: &'static str, public: bool, effects: Vec<Effect>| {
        Ok(Transition {
            from,
            to,
            event_kind,
            public,
            effects,
        })
    };
    use CaseState as S;
    use Effect as E;

    match action {
        Action::File => match from {
            S::Submitted => t(
                S::Filed,
                "filed",
                true,
                vec![
                    E::StartClock {
                        phase: Phase::Resolve,
                    },
                    E::StartClock {
                        phase: Phase::Dispatch,
                    },
                ],
            ),
            S::Verifying => t(
                S::Filed,
                "filed",
                true,
                vec![
                    E::StopClock {
                        phase: Phase::Verify,
                    },
                    E::StartClock {
                        phase: Phase::Resolve,
                    },
                    E::StartClock {
                        phase: Phase::Dispatch,
                    },
                ],
            ),
            _ => wrong_state,
        },
        Action::SendToVerify => match from {
            S::Submitted => t(
                S::Verifying,
                "sent_to_verify",
                true,
                vec![E::StartClock {
                    phase: Phase::Verify,
                }],
            ),
            _ => wrong_state,
        },
        Action::Verify { filed, reason } => {
            if from != S::Verifying {
                return wrong_state;
            }
            if *filed {
                t(
                    S::Filed,
                    "verified",
                    true,
                    vec![
                        E::StopClock {
                            phase: Phase::Verify,
                        },
                        E::StartClock {
                            phase: Phase::Resolve,
                        },
                        E::StartClock {
                            phase: Phase::Dispatch,
                        },
                    ],
                )
            } else {
                let reason = reason.ok_or(Refusal::MissingReason)?;
                not_duplicate(reason)?;
                t(
                    S::NotFiled,
                    "not_filed",
                    true,
                    vec![
                        E::StopClock {
                            phase: Phase::Verify,
                        },
                        E::SetNotFiledReason { reason },
                    ],
                )
            }
        }
        Action::Reject { reason } => {
            let stop = match from {
                S::Submitted => vec![],
                S::Verifying => vec![E::StopClock {
                    phase: Phase::Verify,
                }],
                S::Filed => vec![E::StopAllClocks],
                _ => return wrong_state,
            };
            not_duplicate(*reason)?;
            let mut effects = stop;
            effects.push(E::SetNotFiledReason { reason: *reason });
            t(S::NotFiled, "not_filed", true, effects)
        }
        Action::Merge { master } => {
            let mut effects = match from {
                S::Submitted => vec![],
                S::Filed => vec![E::StopAllClocks],
                _ => return wrong_state,
            };
            if *master == case.id {
                return Err(Refusal::InvalidInput(
                    "a case cannot be merged into itself".into(),
                ));
            }
            effects.push(E::SetNotFiledReason {
                reason: NotFiledReason::Duplicate,
            });
            effects.push(E::LinkMaster { master: *master });
            t(S::NotFiled, "merged", true, effects)
        }
        Action::Dispatch {
            lead_unit,
            co_units,
        } => {
            if from != S::Filed {
                return wrong_state;
            }
            let (lead, co) = validate_units(lead_unit, co_units)?;
            t(
                S::Dispatched,
                "dispatched",
                true,
                vec![
                    E::StopClock {
                        phase: Phase::Dispatch,
                    },
                    E::SetAssignments {
                        lead_unit: lead,
                        co_units: co,
                    },
                    E::StartClock { phase: Phase::Sign },
                ],
            )
        }
        Action::Reassign {
            lead_unit,
            co_units,
        } => {
            let running = match from {
                S::Dispatched => Phase::Sign,
                S::InProgress => Phase::Handle,
                _ => return wrong_state,
            };
            let (lead, co) = validate_units(lead_unit, co_units)?;
            let mut effects = vec![E::StopClock { phase: running }];
            // A request made by the old unit means nothing to the new one.
            clear_pending(case, &mut effects);
            effects.push(E::SetAssignments {
                lead_unit: lead,
                co_units: co,
            });
            effects.push(E::StartClock { phase: Phase::Sign });
            t(S::Dispatched, "reassigned", false, effects)
        }
        Action::Sign => {
            if !matches!(from, S::Dispatched | S::InProgress) {
                return wrong_state;
            }
            let unit = actor_unit(actor)?;
            if case.lead_unit.as_deref() == Some(unit) {
                // The lead signs once; after that the case is already in progress.
                if from != S::Dispatched {
                    return wrong_state;
                }
                return t(
                    S::InProgress,
                    "signed",
                    true,
                    vec![
                        E::StopClock { phase: Phase::Sign },
                        E::AssignmentSigned {
                            unit: unit.to_owned(),
                        },
                        E::StartClock {
                            phase: Phase::Handle,
                        },
                    ],
                );
            }
            // Co-units sign their own assignment, before or after the lead.
            let assignment = case
                .co_units
                .iter()
                .find(|a| a.unit == unit)
                .ok_or(Refusal::WrongUnit)?;
            if assignment.signed {
                return Err(Refusal::InvalidInput(
                    "this assignment is already signed".into(),
                ));
            }
            // Signing would accept the share the co-unit has asked to hand back.
            if matches!(&case.pending_request,
                Some(PendingRequest::Return { unit, .. }) if *unit == assignment.unit)
            {
                return Err(Refusal::RequestPending);
            }
            t(
                from,
                "co_unit_signed",
                false,
                vec![E::AssignmentSigned {
                    unit: unit.to_owned(),
                }],
            )
        }
        Action::RequestReturn { reason } => {
            if !matches!(from, S::Dispatched | S::InProgress) {
                return wrong_state;
            }
            // A co-unit hands back only its own share (协办 not ours), and only
            // before it has signed for it.
            let (unit, window_ends) = match co_assignment_of(case, actor) {
                Some(assignment) if assignment.signed => {
                    return Err(Refusal::InvalidInput(
                        "this assignment is signed: it can no longer be returned".into(),
                    ));
                }
                Some(assignment) => (assignment.unit.as_str(), assignment.sign_window_ends),
                None => (lead_unit_of(case, actor)?, case.sign_window_ends),
            };
            // A return is the unit's answer to the dispatch, due within its sign
            // window, signed or not; afterwards the case is the unit's, and a
            // return would reset deadlines it has already missed.
            if window_ends.is_none_or(|end| now >= end) {
                return Err(Refusal::OutsideWindow);
            }
            no_pending(case)?;
            t(
                from,
                "return_requested",
                false,
                vec![E::SetPendingRequest {
                    request: PendingRequest::Return {
                        unit: unit.to_owned(),
                        reason: *reason,
                    },
                }],
            )
        }
        Action::ApproveReturn | Action::DenyReturn => {
            let running = match from {
                S::Dispatched => Phase::Sign,
                S::InProgress => Phase::Handle,
                _ => return wrong_state,
            };
            let Some(PendingRequest::Return { unit, .. }) = &case.pending_request else {
                return Err(Refusal::NoPendingRequest);
            };
            if kind == ActionKind::DenyReturn {
                return t(from, "return_denied", false, vec![E::ClearPendingRequest]);
            }
            if case.lead_unit.as_deref() != Some(unit.as_str()) {
                // A co-unit's share goes; the case stays with its lead.
                return t(
                    from,
                    "co_unit_returned",
                    false,
                    vec![E::ClearPendingRequest, E::DropCoUnit { unit: unit.clone() }],
                );
            }
            t(
                S::Filed,
                "returned",
                false,
                vec![
                    E::StopClock { phase: running },
                    E::ClearPendingRequest,
                    E::ClearAssignments,
                    E::StartClock {
                        phase: Phase::Dispatch,
                    },
                ],
            )
        }
        Action::RequestExtension { reason, new_due } => {
            if from != S::InProgress {
                return wrong_state;
            }
            let unit = lead_unit_of(case, actor)?;
            require_reason(reason)?;
            if *new_due <= now {
                return Err(Refusal::InvalidInput(
                    "the new due date must be in the future".into(),
                ));
            }
            later_than_handle_due(
                case,
                *new_due,
                "the new due date must be later than the current one",
            )?;
            // Refuse now rather than let the unit wait for a decision that cannot come.
            if case.extensions_granted >= case.max_extensions {
                return Err(Refusal::ExtensionCapReached);
            }
            no_pending(case)?;
            t(
                from,
                "extension_requested",
                false,
                vec![E::SetPendingRequest {
                    request: PendingRequest::Extension {
                        unit: unit.to_owned(),
                        reason: reason.trim().to_owned(),
                        new_due: instant::to_stored_precision(*new_due),
                    },
                }],
            )
        }
        Action::ApproveExtension | Action::DenyExtension => {
            if from != S::InProgress {
                return wrong_state;
            }
            let Some(PendingRequest::Extension { new_due, .. }) = &case.pending_request else {
                return Err(Refusal::NoPendingRequest);
            };
            if kind == ActionKind::DenyExtension {
                return t(
                    from,
                    "extension_denied",
                    false,
                    vec![E::ClearPendingRequest],
                );
            }
            // The cap may have been lowered since the request was made.
            if case.extensions_granted >= case.max_extensions {
                return Err(Refusal::ExtensionCapReached);
            }
            // Decided after the requested date, it would give the unit no time
            // and still count against the cap.
            if *new_due <= now {
                return Err(Refusal::InvalidInput(
                    "the requested date has passed; deny it".into(),
                ));
            }
            // A resume since the request may have moved the due time past it.
            later_than_handle_due(
                case,
                *new_due,
                "the requested date is no longer later than the due time; deny it",
            )?;
            t(
                from,
                "extension_approved",
                false,
                vec![
                    E::ClearPendingRequest,
                    E::ExtendDue {
                        new_due: *new_due,
                        extensions_granted: case.extensions_granted.saturating_add(1),
                    },
                ],
            )
        }
        Action::RequestSuspension { reason } => {
            if from != S::InProgress {
                return wrong_state;
            }
            let unit = lead_unit_of(case, actor)?;
            require_reason(reason)?;
            no_pending(case)?;
            t(
                from,
                "suspension_requested",
                false,
                vec![E::SetPendingRequest {
                    request: PendingRequest::Suspension {
                        unit: unit.to_owned(),
                        reason: reason.trim().to_owned(),
                    },
                }],
            )
        }
        Action::ApproveSuspension | Action::DenySuspension => {
            if from != S::InProgress {
                return wrong_state;
            }
            if !matches!(
                case.pending_request,
                Some(PendingRequest::Suspension { .. })
            ) {
                return Err(Refusal::NoPendingRequest);
            }
            if kind == ActionKind::DenySuspension {
                return t(
                    from,
                    "suspension_denied",
                    false,
                    vec![E::ClearPendingRequest],
                );
            }
            t(
                S::Suspended,
                "suspended",
                true,
                vec![E::ClearPendingRequest, E::PauseClocks],
            )
        }
        Action::Resume => match from {
            S::Suspended => t(S::InProgress, "resumed", true, vec![E::ResumeClocks]),
            _ => wrong_state,
        },
        Action::ReportDone { after_photo_ids } => {
            if let Some(assignment) = co_assignment_of(case, actor) {
                // A co-unit may finish before the lead has signed: its share
                // does not depend on the lead's.
                if !matches!(from, S::Dispatched | S::InProgress) {
                    return wrong_state;
                }
                if !assignment.signed {
                    return Err(Refusal::InvalidInput("sign the assignment first".into()));
                }
                if assignment.finished {
                    return Err(Refusal::InvalidInput(
                        "this assignment is already reported done".into(),
                    ));
                }
                if after_photo_ids.is_empty() {
                    return Err(Refusal::MissingAfterPhoto);
                }
                // Internal: the reporter waits for the lead's report, which
                // is the one that says the problem is fixed.
                return t(
                    from,
                    "co_unit_done",
                    false,
                    vec![E::AssignmentFinished {
                        unit: assignment.unit.clone(),
                    }],
                );
            }
            if from != S::InProgress {
                return wrong_state;
            }
            lead_unit_of(case, actor)?;
            if after_photo_ids.is_empty() {
                return Err(Refusal::MissingAfterPhoto);
            }
            let mut effects = vec![E::StopClock {
                phase: Phase::Handle,
            }];
            // Done supersedes whatever the unit was still asking for.
            clear_pending(case, &mut effects);
            let outstanding: Vec<String> = case
                .co_units
                .iter()
                .filter(|a| !a.finished)
                .map(|a| a.unit.clone())
                .collect();
            if !outstanding.is_empty() {
                effects.push(E::CoUnitsOutstanding { units: outstanding });
            }
            effects.push(E::StartClock {
                phase: Phase::Check,
            });
            t(S::AwaitingCheck, "reported_done", true, effects)
        }
        Action::PassCheck => match from {
            S::AwaitingCheck => t(
                S::Closed,
                "check_passed",
                true,
                vec![
                    E::StopClock {
                        phase: Phase::Check,
                    },
                    E::StopClock {
                        phase: Phase::Resolve,
                    },
                    E::SetClosedAt { at: now },
                ],
            ),
            _ => wrong_state,
        },
        Action::FailCheck { reason } => {
            if from != S::AwaitingCheck {
                return wrong_state;
            }
            require_reason(reason)?;
            let mut effects = vec![
                E::StopClock {
                    phase: Phase::Check,
                },
                E::RecordReworkCount {
                    rework_count: case.rework_count.saturating_add(1),
                },
                E::ClearCheckFlags,
                E::StartClock {
                    phase: Phase::Handle,
                },
            ];
            restart_unfinished_co_units(case, &mut effects);
            t(S::InProgress, "check_failed", true, effects)
        }
        Action::Reopen { reason } => {
            if from != S::Closed {
                return wrong_state;
            }
            require_reason(reason)?;
            // Without a recorded closing time the window cannot be proven open.
            let within = case
                .closed_at
                .and_then(|closed| closed.checked_add_signed(case.reopen_window))
                .is_some_and(|end| now <= end);
            if !within {
                return Err(Refusal::OutsideWindow);
            }
            if case.rating.is_none_or(|score| score > DISSATISFIED_AT_MOST) {
                return Err(Refusal::ReporterNotDissatisfied);
            }
            // 重办 is a new round of work with its own overall limit.
            let mut effects = vec![
                E::ClearClosedAt,
                E::ClearRating,
                E::ClearCheckFlags,
                E::StartClock {
                    phase: Phase::Resolve,
                },
                E::StartClock {
                    phase: Phase::Handle,
                },
            ];
            restart_unfinished_co_units(case, &mut effects);
            t(S::InProgress, "reopened", true, effects)
        }
        Action::Archive => {
            if from != S::Closed {
                return wrong_state;
            }
            // While the reporter may still be heard (重办), the record stays open.
            let window_passed = case
                .closed_at
                .and_then(|closed| closed.checked_add_signed(case.reopen_window))
                .is_some_and(|end| now > end);
            if !window_passed {
                return Err(Refusal::InvalidInput(
                    "a closed case is archived once its reopen window has passed".into(),
                ));
            }
            t(S::Archived, "archived", false, vec![])
        }
        Action::Cancel { reason } => {
            if !from.is_open() {
                return wrong_state;
            }
            require_reason(reason)?;
            let mut effects = vec![E::StopAllClocks];
            clear_pending(case, &mut effects);
            t(S::Cancelled, "cancelled", true, effects)
        }
        Action::Urge { .. } => {
            if !from.is_open() {
                return wrong_state;
            }
            t(from, "urged", false, vec![])
        }
        Action::Comment { text } => {
            // After archiving the record is frozen.
            if from == S::Archived {
                return wrong_state;
            }
            if actor.role.is_unit_role() && !is_reporter(actor, case) {
                let unit = actor_unit(actor)?;
                let on_case = case.lead_unit.as_deref() == Some(unit)
                    || case.co_units.iter().any(|a| a.unit == unit);
                if !on_case {
                    return Err(Refusal::WrongUnit);
                }
            }
            if text.trim().is_empty() {
                return Err(Refusal::InvalidInput("the comment is empty".into()));
            }
            // The reporter sees their own comments; staff notes stay internal.
            t(from, "commented", is_reporter(actor, case), vec![])
        }
        Action::Rate { score, .. } => {
            if from != S::Closed {
                return wrong_state;
            }
            if !(1..=5).contains(score) {
                return Err(Refusal::InvalidInput(
                    "the score must be between 1 and 5".into(),
                ));
            }
            t(from, "rated", true, vec![E::RecordRating { score: *score }])
        }
    }
}

fn is_reporter(actor: &Actor, case: &CaseSnapshot) -> bool {
    !actor.is_system() && actor.id == case.reporter_id
}

/// The "who" column of the DESIGN table, before state and unit are looked at.
/// Unit roles pass here; which unit they belong to is checked later (`WrongUnit`).
fn who_may(kind: ActionKind, actor: &Actor, case: &CaseSnapshot) -> bool {
    use ActionKind as K;
    use Role as R;
    if actor.is_system() {
        return matches!(kind, K::File | K::Dispatch | K::Archive);
    }
    let role = actor.role;
    match kind {
        K::File | K::Dispatch => role == R::Operator,
        K::SendToVerify | K::Reject | K::Merge | K::Reassign => role == R::Operator,
        K::ApproveReturn | K::DenyReturn => role == R::Operator,
        K::Verify => role == R::Inspector,
        K::Sign | K::RequestReturn | K::RequestExtension | K::RequestSuspension | K::ReportDone => {
            role.is_unit_role()
        }
        // "operator (first), supervisor (later ones)", read strictly: a later
        // extension is an escalation the operator may not grant, and the first
        // one stays with the duty desk.
        K::ApproveExtension | K::DenyExtension => {
            if case.extensions_granted == 0 {
                role == R::Operator
            } else {
                role == R::Supervisor
            }
        }
        K::ApproveSuspension | K::DenySuspension | K::Resume | K::Cancel => role == R::Supervisor,
        K::PassCheck => {
            matches!(role, R::Inspector | R::Operator)
                || (case.reporter_may_check && is_reporter(actor, case))
        }
        K::FailCheck => matches!(role, R::Inspector | R::Operator),
        K::Reopen => role == R::Operator,
        K::Archive => false,
        K::Urge => matches!(role, R::Operator | R::Supervisor),
        // Staff on the case: centre staff see every case; unit staff only their own
        // (checked once the state is known). Admins configure, they do not work cases.
        K::Comment => {
            is_reporter(actor, case)
                || matches!(
                    role,
                    R::Inspector | R::Operator | R::Supervisor | R::UnitStaff | R::UnitLead
                )
        }
        K::Rate => is_reporter(actor, case) || role == R::Operator,
    }
}

fn actor_unit(actor: &Actor) -> Result<&str, Refusal> {
    match actor.unit.as_deref() {
        Some(unit) if actor.role.is_unit_role() && !unit.is_empty() => Ok(unit),
        _ => Err(Refusal::WrongUnit),
    }
}

/// The actor's unit, if it is the case's lead unit.
fn lead_unit_of<'a>(case: &CaseSnapshot, actor: &'a Actor) -> Result<&'a str, Refusal> {
    let unit = actor_unit(actor)?;
    if case.lead_unit.as_deref() == Some(unit) {
        Ok(unit)
    } else {
        Err(Refusal::WrongUnit)
    }
}

/// The actor's own co-unit assignment. `None` for the lead unit even if bad
/// data also lists it as a co-unit, so the lead always gets the lead's rules.
fn co_assignment_of<'c>(case: &'c CaseSnapshot, actor: &Actor) -> Option<&'c Assignment> {
    let unit = actor_unit(actor).ok()?;
    if case.lead_unit.as_deref() == Some(unit) {
        return None;
    }
    case.co_units.iter().find(|a| a.unit == unit)
}

fn require_reason(reason: &str) -> Result<(), Refusal> {
    if reason.trim().is_empty() {
        Err(Refusal::MissingReason)
    } else {
        Ok(())
    }
}

/// Duplicates go through `merge` so the master case is always linked.
fn not_duplicate(reason: NotFiledReason) -> Result<(), Refusal> {
    if reason == NotFiledReason::Duplicate {
        Err(Refusal::InvalidInput(
            "use merge to mark a duplicate, so the master case is linked".into(),
        ))
    } else {
        Ok(())
    }
}

fn no_pending(case: &CaseSnapshot) -> Result<(), Refusal> {
    if case.pending_request.is_some() {
        Err(Refusal::RequestPending)
    } else {
        Ok(())
    }
}

/// An extension must give more time than the handle clock already has.
fn later_than_handle_due(
    case: &CaseSnapshot,
    new_due: DateTime<Utc>,
    refusal: &str,
) -> Result<(), Refusal> {
    if case.handle_due.is_some_and(|due| new_due <= due) {
        return Err(Refusal::InvalidInput(refusal.into()));
    }
    Ok(())
}

/// Co-units whose share was left unfinished when the lead reported done had
/// their clocks stopped; when the case is worked on again, so is their share.
fn restart_unfinished_co_units(case: &CaseSnapshot, effects: &mut Vec<Effect>) {
    let units: Vec<String> = case
        .co_units
        .iter()
        .filter(|a| !a.finished)
        .map(|a| a.unit.clone())
        .collect();
    if !units.is_empty() {
        effects.push(Effect::RestartCoUnitClocks { units });
    }
}

fn clear_pending(case: &CaseSnapshot, effects: &mut Vec<Effect>) {
    if case.pending_request.is_some() {
        effects.push(Effect::ClearPendingRequest);
    }
}

/// Free text an action carries (a reason, a note, a comment), in characters.
pub const MAX_TEXT_CHARS: usize = 2000;
/// After-photos one report of work done may carry, as a citizen's report may.
pub const MAX_AFTER_PHOTOS: usize = crate::domain::report::MAX_PHOTOS;
/// Co-units (协办) one case may be given.
pub const MAX_CO_UNITS: usize = 10;

/// Sizes every action is held to, whatever its state: what an action stores
/// goes into the timeline for good, and what it names is looked up one by one.
fn within_limits(action: &Action) -> Result<(), Refusal> {
    let text = match action {
        Action::RequestExtension { reason, .. }
        | Action::RequestSuspension { reason }
        | Action::FailCheck { reason }
        | Action::Reopen { reason }
        | Action::Cancel { reason } => Some(reason.as_str()),
        Action::Urge { note } => Some(note.as_str()),
        Action::Comment { text } => Some(text.as_str()),
        Action::Rate { comment, .. } => comment.as_deref(),
        _ => None,
    };
    if text.is_some_and(|t| t.chars().count() > MAX_TEXT_CHARS) {
        return Err(Refusal::InvalidInput(format!(
            "text is limited to {MAX_TEXT_CHARS} characters"
        )));
    }
    match action {
        Action::ReportDone { after_photo_ids } => {
            if after_photo_ids.len() > MAX_AFTER_PHOTOS {
                return Err(Refusal::InvalidInput(format!(
                    "at most {MAX_AFTER_PHOTOS} after-photos"
                )));
            }
            let mut seen = std::collections::HashSet::new();
            if !after_photo_ids.iter().all(|id| seen.insert(id)) {
                return Err(Refusal::InvalidInput(
                    "an after-photo is listed twice".into(),
                ));
            }
        }
        Action::Dispatch { co_units, .. } | Action::Reassign { co_units, .. }
            if co_units.len() > MAX_CO_UNITS =>
        {
            return Err(Refusal::InvalidInput(format!(
                "at most {MAX_CO_UNITS} co-units"
            )));
        }
        _ => {}
    }
    Ok(())
}

/// Trimmed, non-empty, distinct unit codes, the lead not repeated as a co-unit.
fn validate_units(lead: &str, co_units: &[String]) -> Result<(String, Vec<String>), Refusal> {
    let lead = lead.trim();
    if lead.is_empty() {
        return Err(Refusal::InvalidInput("a lead unit is required".into()));
    }
    let mut co: Vec<String> = Vec::with_capacity(co_units.len());
    for unit in co_units {
        let unit = unit.trim();
        if unit.is_empty() {
            return Err(Refusal::InvalidInput("a co-unit is empty".into()));
        }
        if unit == lead {
            return Err(Refusal::InvalidInput(
                "the lead unit cannot also be a co-unit".into(),
            ));
        }
        if co.iter().any(|c| c == unit) {
            return Err(Refusal::InvalidInput(format!(
                "co-unit {unit} is listed twice"
            )));
        }
        co.push(unit.to_owned());
    }
    Ok((lead.to_owned(), co))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn names_round_trip_and_match_serde() {
        for state in CaseState::ALL {
            assert_eq!(CaseState::parse(state.as_str()), Some(state));
            assert_eq!(
                serde_json::to_string(&state).unwrap(),
                format!("\"{}\"", state.as_str())
            );
        }
        assert_eq!(CaseState::parse("open"), None);
    }

    #[test]
    fn phase_names_match_serde() {
        for phase in Phase::ALL {
            assert_eq!(Phase::parse(phase.as_str()), Some(phase));
            assert_eq!(
                serde_json::to_string(&phase).expect("serialises"),
                format!("\"{}\"", phase.as_str())
            );
        }
    }

    // ---- fixtures ---------------------------------------------------------

    const LEAD: &str = "U-LEAD";
    const CO: &str = "U-CO";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 10, 0, 0).unwrap()
    }

    fn reporter_id() -> Uuid {
        Uuid::from_u128(0x5EED)
    }

    /// A case where every precondition other than state, role and unit holds, so
    /// the exhaustive table only has to think about those three.
    fn case_in(state: CaseState) -> CaseSnapshot {
        CaseSnapshot {
            id: Uuid::from_u128(1),
            state,
            version: 7,
            lead_unit: Some(LEAD.into()),
            co_units: vec![Assignment {
                unit: CO.into(),
                signed: false,
                finished: false,
                sign_window_ends: Some(now() + Duration::hours(1)),
            }],
            reporter_id: reporter_id(),
            dispatched_at: Some(now() - Duration::hours(2)),
            sign_window_ends: Some(now() + Duration::hours(1)),
            handle_due: Some(now() + Duration::hours(20)),
            closed_at: Some(now() - Duration::hours(1)),
            reopen_window: Duration::days(7),
            extensions_granted: 0,
            max_extensions: 2,
            rework_count: 0,
            pending_request: None,
            reporter_may_check: true,
            // Dissatisfied, so that a closed case may be reopened where the
            // tables expect it; `reopen_needs_a_dissatisfied_reporter` varies it.
            rating: Some(1),
        }
    }

    fn pending_return() -> PendingRequest {
        PendingRequest::Return {
            unit: LEAD.into(),
            reason: ReturnReason::NotOurs,
        }
    }

    fn pending_extension() -> PendingRequest {
        PendingRequest::Extension {
            unit: LEAD.into(),
            reason: "materials on order".into(),
            new_due: now() + Duration::days(3),
        }
    }

    fn pending_suspension() -> PendingRequest {
        PendingRequest::Suspension {
            unit: LEAD.into(),
            reason: "court case".into(),
        }
    }

    /// The case fixture for an action: decisions need the matching request pending.
    fn case_for(kind: ActionKind, state: CaseState) -> CaseSnapshot {
        let mut case = case_in(state);
        case.pending_request = match kind {
            ActionKind::ApproveReturn | ActionKind::DenyReturn => Some(pending_return()),
            ActionKind::ApproveExtension | ActionKind::DenyExtension => Some(pending_extension()),
            ActionKind::ApproveSuspension | ActionKind::DenySuspension => {
                Some(pending_suspension())
            }
            _ => None,
        };
        // Archiving waits for the reopen window to pass; reopening needs it open.
        if kind == ActionKind::Archive {
            case.closed_at = Some(now() - case.reopen_window - Duration::hours(1));
        }
        // A co-unit reports done only on a signed assignment; Sign itself
        // needs it unsigned, so only ReportDone gets the signed fixture.
        if kind == ActionKind::ReportDone {
            for a in &mut case.co_units {
                a.signed = true;
            }
        }
        case
    }

    /// A valid payload for every kind.
    fn sample(kind: ActionKind) -> Action {
        use ActionKind as K;
        match kind {
            K::File => Action::File,
            K::SendToVerify => Action::SendToVerify,
            K::Verify => Action::Verify {
                filed: true,
                reason: None,
            },
            K::Reject => Action::Reject {
                reason: NotFiledReason::OutOfScope,
            },
            K::Merge => Action::Merge {
                master: Uuid::from_u128(2),
            },
            K::Dispatch => Action::Dispatch {
                lead_unit: LEAD.into(),
                co_units: vec![CO.into()],
            },
            K::Reassign => Action::Reassign {
                lead_unit: "U-OTHER".into(),
                co_units: vec![],
            },
            K::Sign => Action::Sign,
            K::RequestReturn => Action::RequestReturn {
                reason: ReturnReason::WrongLocation,
            },
            K::ApproveReturn => Action::ApproveReturn,
            K::DenyReturn => Action::DenyReturn,
            K::RequestExtension => Action::RequestExtension {
                reason: "materials on order".into(),
                new_due: now() + Duration::days(3),
            },
            K::ApproveExtension => Action::ApproveExtension,
            K::DenyExtension => Action::DenyExtension,
            K::RequestSuspension => Action::RequestSuspension {
                reason: "court case".into(),
            },
            K::ApproveSuspension => Action::ApproveSuspension,
            K::DenySuspension => Action::DenySuspension,
            K::Resume => Action::Resume,
            K::ReportDone => Action::ReportDone {
                after_photo_ids: vec![Uuid::from_u128(9)],
            },
            K::PassCheck => Action::PassCheck,
            K::FailCheck => Action::FailCheck {
                reason: "still blocked".into(),
            },
            K::Reopen => Action::Reopen {
                reason: "reporter called back".into(),
            },
            K::Archive => Action::Archive,
            K::Cancel => Action::Cancel {
                reason: "entered twice".into(),
            },
            K::Urge => Action::Urge {
                note: "overdue".into(),
            },
            K::Comment => Action::Comment {
                text: "any news?".into(),
            },
            K::Rate => Action::Rate {
                score: 4,
                comment: None,
            },
        }
    }

    /// The actors of the exhaustive table: every role (not the reporter; unit roles
    /// belong to the lead unit), a co-unit's staff, the system, and the reporter
    /// (a citizen).
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    enum W {
        Cit,
        Insp,
        Op,
        Staff,
        Lead,
        /// Unit staff of the co-unit `CO`.
        Co,
        Sup,
        Adm,
        Integ,
        Sys,
        Rep,
    }

    const ACTORS: [W; 11] = [
        W::Cit,
        W::Insp,
        W::Op,
        W::Staff,
        W::Lead,
        W::Co,
        W::Sup,
        W::Adm,
        W::Integ,
        W::Sys,
        W::Rep,
    ];

    fn actor(w: W) -> Actor {
        let id = Uuid::from_u128(0xA000);
        match w {
            W::Cit => Actor::new(id, Role::Citizen, None),
            W::Insp => Actor::new(id, Role::Inspector, None),
            W::Op => Actor::new(id, Role::Operator, None),
            W::Staff => Actor::new(id, Role::UnitStaff, Some(LEAD.into())),
            W::Lead => Actor::new(id, Role::UnitLead, Some(LEAD.into())),
            W::Co => Actor::new(id, Role::UnitStaff, Some(CO.into())),
            W::Sup => Actor::new(id, Role::Supervisor, None),
            W::Adm => Actor::new(id, Role::Admin, None),
            W::Integ => Actor::new(id, Role::Integrator, None),
            W::Sys => Actor::system(),
            W::Rep => Actor::new(reporter_id(), Role::Citizen, None),
        }
    }

    fn role_name(w: W) -> &'static str {
        match w {
            W::Cit | W::Rep => "citizen",
            W::Insp => "inspector",
            W::Op => "operator",
            W::Staff | W::Co => "unit_staff",
            W::Lead => "unit_lead",
            W::Sup => "supervisor",
            W::Adm => "admin",
            W::Integ => "integrator",
            W::Sys => "system",
        }
    }

    /// DESIGN.md §3 actions table, transcribed by hand: who, and from → to.
    /// (action, who may, allowed from → to). `W::Co` is in "who" wherever its
    /// role may act; what it may then do is [`co_unit_moves`].
    type Row = (ActionKind, Vec<W>, Vec<(CaseState, CaseState)>);

    /// What the co-unit may do where its role is allowed. In a state where the
    /// lead could act but the co-unit cannot, the co-unit gets `WrongUnit`.
    fn co_unit_moves(kind: ActionKind) -> Vec<(CaseState, CaseState)> {
        use CaseState::*;
        let same = |states: &[CaseState]| states.iter().map(|s| (*s, *s)).collect::<Vec<_>>();
        match kind {
            // Co-units sign and finish their own share; the case stays put.
            // ReportDone used to be lead-only (co-unit → WrongUnit); co-units
            // now report their share done, deliberately.
            ActionKind::Sign | ActionKind::ReportDone => same(&[Dispatched, InProgress]),
            // A co-unit may hand back its unsigned share within the sign window.
            ActionKind::RequestReturn => same(&[Dispatched, InProgress]),
            ActionKind::Comment => same(&[
                Submitted,
                Verifying,
                Filed,
                Dispatched,
                InProgress,
                Suspended,
                AwaitingCheck,
                Closed,
                NotFiled,
                Cancelled,
            ]),
            _ => vec![],
        }
    }

    fn expectation_table() -> Vec<Row> {
        use ActionKind as K;
        use CaseState::*;
        let same = |states: &[CaseState]| states.iter().map(|s| (*s, *s)).collect::<Vec<_>>();
        let open = [
            Submitted,
            Verifying,
            Filed,
            Dispatched,
            InProgress,
            Suspended,
            AwaitingCheck,
        ];
        let unit = vec![W::Staff, W::Lead, W::Co];
        vec![
            (
                K::File,
                vec![W::Op, W::Sys],
                vec![(Submitted, Filed), (Verifying, Filed)],
            ),
            (K::SendToVerify, vec![W::Op], vec![(Submitted, Verifying)]),
            (K::Verify, vec![W::Insp], vec![(Verifying, Filed)]),
            (
                K::Reject,
                vec![W::Op],
                vec![
                    (Submitted, NotFiled),
                    (Verifying, NotFiled),
                    (Filed, NotFiled),
                ],
            ),
            (
                K::Merge,
                vec![W::Op],
                vec![(Submitted, NotFiled), (Filed, NotFiled)],
            ),
            (K::Dispatch, vec![W::Op, W::Sys], vec![(Filed, Dispatched)]),
            (
                K::Reassign,
                vec![W::Op],
                vec![(Dispatched, Dispatched), (InProgress, Dispatched)],
            ),
            (K::Sign, unit.clone(), vec![(Dispatched, InProgress)]),
            (
                K::RequestReturn,
                unit.clone(),
                same(&[Dispatched, InProgress]),
            ),
            (
                K::ApproveReturn,
                vec![W::Op],
                vec![(Dispatched, Filed), (InProgress, Filed)],
            ),
            (K::DenyReturn, vec![W::Op], same(&[Dispatched, InProgress])),
            (K::RequestExtension, unit.clone(), same(&[InProgress])),
            // First extension: operator only (later ones: see extension tests).
            (K::ApproveExtension, vec![W::Op], same(&[InProgress])),
            (K::DenyExtension, vec![W::Op], same(&[InProgress])),
            (K::RequestSuspension, unit.clone(), same(&[InProgress])),
            (
                K::ApproveSuspension,
                vec![W::Sup],
                vec![(InProgress, Suspended)],
            ),
            (K::DenySuspension, vec![W::Sup], same(&[InProgress])),
            (K::Resume, vec![W::Sup], vec![(Suspended, InProgress)]),
            (
                K::ReportDone,
                unit.clone(),
                vec![(InProgress, AwaitingCheck)],
            ),
            (
                K::PassCheck,
                vec![W::Insp, W::Op, W::Rep],
                vec![(AwaitingCheck, Closed)],
            ),
            (
                K::FailCheck,
                vec![W::Insp, W::Op],
                vec![(AwaitingCheck, InProgress)],
            ),
            (K::Reopen, vec![W::Op], vec![(Closed, InProgress)]),
            (K::Archive, vec![W::Sys], vec![(Closed, Archived)]),
            (
                K::Cancel,
                vec![W::Sup],
                open.iter().map(|s| (*s, Cancelled)).collect(),
            ),
            (K::Urge, vec![W::Op, W::Sup], same(&open)),
            (
                K::Comment,
                vec![W::Rep, W::Insp, W::Op, W::Sup, W::Staff, W::Lead, W::Co],
                same(&[
                    Submitted,
                    Verifying,
                    Filed,
                    Dispatched,
                    InProgress,
                    Suspended,
                    AwaitingCheck,
                    Closed,
                    NotFiled,
                    Cancelled,
                ]),
            ),
            (K::Rate, vec![W::Rep, W::Op], same(&[Closed])),
        ]
    }

    // ---- the exhaustive table --------------------------------------------

    #[test]
    fn every_state_action_and_actor_matches_the_design_table() {
        let table = expectation_table();
        // The table covers every action exactly once.
        for kind in ActionKind::ALL {
            assert_eq!(
                table.iter().filter(|(k, _, _)| *k == kind).count(),
                1,
                "{kind:?} in table"
            );
        }
        let mut checked = 0;
        for (kind, who, moves) in &table {
            let action = sample(*kind);
            assert_eq!(action.kind(), *kind);
            let co_moves = co_unit_moves(*kind);
            for state in CaseState::ALL {
                let case = case_for(*kind, state);
                for w in ACTORS {
                    let got = apply(&case, &actor(w), &action, now());
                    let lead_may = moves.iter().find(|(from, _)| *from == state);
                    let expected = if !who.contains(&w) {
                        Err(Refusal::WrongRole {
                            role: role_name(w),
                            action: kind.as_str(),
                        })
                    } else if w == W::Co {
                        match co_moves.iter().find(|(from, _)| *from == state) {
                            Some((_, to)) => Ok(*to),
                            None if lead_may.is_some() => Err(Refusal::WrongUnit),
                            None => Err(Refusal::WrongState {
                                state,
                                action: kind.as_str(),
                            }),
                        }
                    } else if let Some((_, to)) = lead_may {
                        Ok(*to)
                    } else {
                        Err(Refusal::WrongState {
                            state,
                            action: kind.as_str(),
                        })
                    };
                    match (&got, expected) {
                        (Ok(t), Ok(to)) => {
                            assert_eq!((t.from, t.to), (state, to), "{kind:?} {state:?} {w:?}");
                            assert!(!t.event_kind.is_empty());
                        }
                        (Err(e), Err(want)) => assert_eq!(*e, want, "{kind:?} {state:?} {w:?}"),
                        (got, want) => {
                            panic!("{kind:?} {state:?} {w:?}: got {got:?}, want {want:?}")
                        }
                    }
                    checked += 1;
                }
            }
        }
        assert_eq!(checked, 27 * 11 * 11);
    }

    /// The case clock (办结) starts when the case is filed or reopened and stops
    /// only when the case ends; returns, reassignments and rework leave it be.
    #[test]
    fn only_filing_reopening_and_the_end_of_a_case_touch_the_case_clock() {
        let starts = Effect::StartClock {
            phase: Phase::Resolve,
        };
        let stops = Effect::StopClock {
            phase: Phase::Resolve,
        };
        let mut seen = std::collections::BTreeSet::new();
        for (kind, who, _) in expectation_table() {
            for state in CaseState::ALL {
                let case = case_for(kind, state);
                for w in who.iter().copied() {
                    let Ok(t) = apply(&case, &actor(w), &sample(kind), now()) else {
                        continue;
                    };
                    let touch = if t.effects.contains(&starts) {
                        "starts"
                    } else if t.effects.contains(&stops) {
                        "stops"
                    } else if t.effects.contains(&Effect::StopAllClocks) {
                        "stops all"
                    } else {
                        continue;
                    };
                    seen.insert((kind.as_str(), state.as_str(), touch));
                }
            }
        }
        let want: std::collections::BTreeSet<(&str, &str, &str)> = [
            ("file", "submitted", "starts"),
            ("file", "verifying", "starts"),
            ("verify", "verifying", "starts"),
            ("reopen", "closed", "starts"),
            ("pass_check", "awaiting_check", "stops"),
            ("reject", "filed", "stops all"),
            ("merge", "filed", "stops all"),
        ]
        .into_iter()
        .chain(
            CaseState::ALL
                .into_iter()
                .filter(|s| s.is_open())
                .map(|s| ("cancel", s.as_str(), "stops all")),
        )
        .collect();
        assert_eq!(seen, want);
    }

    #[test]
    fn the_units_proof_shows_only_while_a_report_of_done_stands() {
        let shown: Vec<&str> = CaseState::ALL
            .into_iter()
            .filter(|s| s.shows_units_proof())
            .map(CaseState::as_str)
            .collect();
        assert_eq!(shown, ["awaiting_check", "closed", "archived"]);
    }

    #[test]
    fn actions_serialize_tagged_by_action_in_snake_case() {
        for kind in ActionKind::ALL {
            let action = sample(kind);
            let json = serde_json::to_value(&action).unwrap();
            assert_eq!(json["action"], kind.as_str());
            let back: Action = serde_json::from_value(json).unwrap();
            assert_eq!(back, action);
        }
        let parsed: Action = serde_json::from_str(
            r#"{"action":"request_return","reason":"needs_other_department"}"#,
        )
        .unwrap();
        assert_eq!(
            parsed,
            Action::RequestReturn {
                reason: ReturnReason::NeedsOtherDepartment
            }
        );
    }

    // ---- targeted rules ---------------------------------------------------

    fn op() -> Actor {
        actor(W::Op)
    }
    fn lead_staff() -> Actor {
        actor(W::Staff)
    }
    fn staff_of(unit: &str) -> Actor {
        Actor::new(Uuid::from_u128(0xB000), Role::UnitStaff, Some(unit.into()))
    }

    #[test]
    fn return_only_within_the_sign_window() {
        let action = sample(ActionKind::RequestReturn);
        // (state, sign_window_ends relative to now in minutes, expected)
        let table: [(CaseState, Option<i64>, Result<(), Refusal>); 8] = [
            (CaseState::Dispatched, Some(60), Ok(())),
            // Not signing does not keep the window open.
            (CaseState::Dispatched, Some(0), Err(Refusal::OutsideWindow)),
            (
                CaseState::Dispatched,
                Some(-60),
                Err(Refusal::OutsideWindow),
            ),
            (CaseState::Dispatched, None, Err(Refusal::OutsideWindow)),
            (CaseState::InProgress, Some(60), Ok(())),
            (CaseState::InProgress, Some(0), Err(Refusal::OutsideWindow)),
            (CaseState::InProgress, Some(-1), Err(Refusal::OutsideWindow)),
            (CaseState::InProgress, None, Err(Refusal::OutsideWindow)),
        ];
        for (state, ends, want) in table {
            let mut case = case_in(state);
            case.sign_window_ends = ends.map(|m| now() + Duration::minutes(m));
            let got = apply(&case, &lead_staff(), &action, now()).map(|t| {
                assert_eq!(t.to, state);
                assert_eq!(
                    t.effects,
                    vec![Effect::SetPendingRequest {
                        request: PendingRequest::Return {
                            unit: LEAD.into(),
                            reason: ReturnReason::WrongLocation
                        }
                    }]
                );
            });
            assert_eq!(got, want, "{state:?} {ends:?}");
        }
    }

    #[test]
    fn a_co_unit_returns_only_its_unsigned_share_within_the_sign_window() {
        let co = staff_of(CO);
        let request = Action::RequestReturn {
            reason: ReturnReason::NotOurs,
        };
        let mut case = case_in(CaseState::InProgress);
        let t = apply(&case, &co, &request, now()).expect("its unsigned share");
        assert_eq!(
            t.effects,
            vec![Effect::SetPendingRequest {
                request: PendingRequest::Return {
                    unit: CO.into(),
                    reason: ReturnReason::NotOurs
                }
            }]
        );
        // Its own window counts, not the lead's: closed while the lead's is
        // open, or open (restarted by rework) after the lead's has closed.
        case.co_units[0].sign_window_ends = Some(now() - Duration::minutes(1));
        assert_eq!(
            apply(&case, &co, &request, now()),
            Err(Refusal::OutsideWindow)
        );
        case.co_units[0].sign_window_ends = Some(now() + Duration::hours(1));
        case.sign_window_ends = Some(now() - Duration::minutes(1));
        apply(&case, &co, &request, now()).expect("within its own window");
        case.sign_window_ends = Some(now() + Duration::hours(1));
        case.co_units[0].signed = true;
        assert_eq!(
            apply(&case, &co, &request, now()).map_err(|e| e.code()),
            Err("invalid_input")
        );

        // Approved, the co-unit's share goes and the case stays with its lead.
        let mut pending = case_in(CaseState::InProgress);
        pending.pending_request = Some(PendingRequest::Return {
            unit: CO.into(),
            reason: ReturnReason::NotOurs,
        });
        let t = apply(&pending, &op(), &Action::ApproveReturn, now()).expect("approved");
        assert_eq!(
            (t.to, t.event_kind),
            (CaseState::InProgress, "co_unit_returned")
        );
        assert_eq!(
            t.effects,
            vec![
                Effect::ClearPendingRequest,
                Effect::DropCoUnit { unit: CO.into() }
            ]
        );
        let t = apply(&pending, &op(), &Action::DenyReturn, now()).expect("denied");
        assert_eq!(t.effects, vec![Effect::ClearPendingRequest]);
        // While its return awaits a decision, the co-unit cannot sign the share.
        assert_eq!(
            apply(&pending, &co, &Action::Sign, now()),
            Err(Refusal::RequestPending)
        );
    }

    #[test]
    fn text_photo_and_unit_counts_are_bounded() {
        let long = "字".repeat(MAX_TEXT_CHARS + 1);
        let at_limit = "字".repeat(MAX_TEXT_CHARS);
        let photos = |n: u128| (0..n).map(Uuid::from_u128).collect::<Vec<_>>();
        let units = |n: usize| (0..n).map(|i| format!("U-{i}")).collect::<Vec<_>>();
        // (action, within the limits?)
        let table: Vec<(Action, bool)> = vec![
            (Action::Comment { text: long.clone() }, false),
            (
                Action::Comment {
                    text: at_limit.clone(),
                },
                true,
            ),
            (Action::Urge { note: long.clone() }, false),
            (
                Action::Cancel {
                    reason: long.clone(),
                },
                false,
            ),
            (
                Action::FailCheck {
                    reason: long.clone(),
                },
                false,
            ),
            (
                Action::Reopen {
                    reason: long.clone(),
                },
                false,
            ),
            (
                Action::RequestSuspension {
                    reason: long.clone(),
                },
                false,
            ),
            (
                Action::RequestExtension {
                    reason: long.clone(),
                    new_due: now(),
                },
                false,
            ),
            (
                Action::Rate {
                    score: 5,
                    comment: Some(long.clone()),
                },
                false,
            ),
            (
                Action::ReportDone {
                    after_photo_ids: photos(9),
                },
                true,
            ),
            (
                Action::ReportDone {
                    after_photo_ids: photos(10),
                },
                false,
            ),
            (
                Action::ReportDone {
                    after_photo_ids: vec![Uuid::from_u128(1), Uuid::from_u128(1)],
                },
                false,
            ),
            (
                Action::Dispatch {
                    lead_unit: LEAD.into(),
                    co_units: units(MAX_CO_UNITS),
                },
                true,
            ),
            (
                Action::Reassign {
                    lead_unit: LEAD.into(),
                    co_units: units(MAX_CO_UNITS + 1),
                },
                false,
            ),
        ];
        for (action, fits) in table {
            assert_eq!(within_limits(&action).is_ok(), fits, "{:?}", action.kind());
        }
        // Checked before anything else about the case.
        let comment = Action::Comment { text: long };
        assert_eq!(
            apply(&case_in(CaseState::Archived), &op(), &comment, now()).map_err(|e| e.code()),
            Err("invalid_input")
        );
    }

    #[test]
    fn approved_return_goes_back_to_filed_and_forgets_the_units() {
        let mut case = case_in(CaseState::InProgress);
        case.pending_request = Some(pending_return());
        let t = apply(&case, &op(), &Action::ApproveReturn, now()).unwrap();
        assert_eq!(t.to, CaseState::Filed);
        assert!(t.effects.contains(&Effect::ClearAssignments));
        assert!(t.effects.contains(&Effect::ClearPendingRequest));
        assert!(t.effects.contains(&Effect::StopClock {
            phase: Phase::Handle
        }));
        let t = apply(&case, &op(), &Action::DenyReturn, now()).unwrap();
        assert_eq!(t.to, CaseState::InProgress);
        assert_eq!(t.effects, vec![Effect::ClearPendingRequest]);
    }

    #[test]
    fn extension_levels_and_cap() {
        let sup = actor(W::Sup);
        // (granted, max, actor, expected)
        let table: Vec<(u32, u32, Actor, Result<u32, Refusal>)> = vec![
            (0, 2, op(), Ok(1)),
            (
                0,
                2,
                sup.clone(),
                Err(Refusal::WrongRole {
                    role: "supervisor",
                    action: "approve_extension",
                }),
            ),
            (
                1,
                2,
                op(),
                Err(Refusal::WrongRole {
                    role: "operator",
                    action: "approve_extension",
                }),
            ),
            (1, 2, sup.clone(), Ok(2)),
            (2, 2, sup.clone(), Err(Refusal::ExtensionCapReached)),
            (0, 0, op(), Err(Refusal::ExtensionCapReached)),
        ];
        for (granted, max, who, want) in table {
            let mut case = case_in(CaseState::InProgress);
            case.extensions_granted = granted;
            case.max_extensions = max;
            case.pending_request = Some(pending_extension());
            let got = apply(&case, &who, &Action::ApproveExtension, now()).map(|t| {
                assert_eq!(t.to, CaseState::InProgress);
                assert!(t.effects.contains(&Effect::ClearPendingRequest));
                match t
                    .effects
                    .iter()
                    .find(|e| matches!(e, Effect::ExtendDue { .. }))
                {
                    Some(Effect::ExtendDue {
                        new_due,
                        extensions_granted,
                    }) => {
                        assert_eq!(*new_due, now() + Duration::days(3));
                        *extensions_granted
                    }
                    other => panic!("no ExtendDue: {other:?}"),
                }
            });
            assert_eq!(got, want, "granted {granted} max {max} {}", who.role);
        }
    }

    #[test]
    fn extension_request_checks_cap_reason_and_due() {
        let case = case_in(CaseState::InProgress);
        let request = |reason: &str, due: DateTime<Utc>| Action::RequestExtension {
            reason: reason.into(),
            new_due: due,
        };
        let later = now() + Duration::days(1);
        assert_eq!(
            apply(&case, &lead_staff(), &request("  ", later), now()),
            Err(Refusal::MissingReason)
        );
        // In the future but not past the current due time: no extension.
        let due = case.handle_due.expect("fixture has a handle due time");
        for not_later in [due - Duration::hours(1), due] {
            assert_eq!(
                apply(&case, &lead_staff(), &request("parts", not_later), now())
                    .map_err(|e| e.code()),
                Err("invalid_input"),
                "{not_later}"
            );
        }
        assert!(
            apply(
                &case,
                &lead_staff(),
                &request("parts", due + Duration::seconds(1)),
                now()
            )
            .is_ok()
        );
        assert_eq!(
            apply(&case, &lead_staff(), &request("parts", now()), now()).map_err(|e| e.code()),
            Err("invalid_input")
        );
        let mut capped = case.clone();
        capped.extensions_granted = 2;
        assert_eq!(
            apply(&capped, &lead_staff(), &request("parts", later), now()),
            Err(Refusal::ExtensionCapReached)
        );
        let mut busy = case.clone();
        busy.pending_request = Some(pending_suspension());
        assert_eq!(
            apply(&busy, &lead_staff(), &request("parts", later), now()),
            Err(Refusal::RequestPending)
        );
    }

    #[test]
    fn decisions_need_the_matching_pending_request() {
        let sup = actor(W::Sup);
        // (action, who, pending, expected)
        let table: Vec<(Action, Actor, Option<PendingRequest>)> = vec![
            (Action::ApproveReturn, op(), None),
            (Action::ApproveReturn, op(), Some(pending_extension())),
            (Action::DenyReturn, op(), Some(pending_suspension())),
            (Action::ApproveExtension, op(), None),
            (Action::DenyExtension, op(), Some(pending_return())),
            (Action::ApproveSuspension, sup.clone(), None),
            (
                Action::DenySuspension,
                sup.clone(),
                Some(pending_extension()),
            ),
        ];
        for (action, who, pending) in table {
            let mut case = case_in(CaseState::InProgress);
            case.pending_request = pending;
            assert_eq!(
                apply(&case, &who, &action, now()),
                Err(Refusal::NoPendingRequest),
                "{action:?}"
            );
        }
    }

    #[test]
    fn co_units_sign_their_own_assignment() {
        for state in [CaseState::Dispatched, CaseState::InProgress] {
            let case = case_in(state);
            let t = apply(&case, &staff_of(CO), &Action::Sign, now()).unwrap();
            assert_eq!(t.to, state, "a co-unit never moves the case");
            assert_eq!(t.event_kind, "co_unit_signed");
            assert_eq!(
                t.effects,
                vec![Effect::AssignmentSigned { unit: CO.into() }]
            );

            let mut signed = case.clone();
            signed.co_units[0].signed = true;
            assert_eq!(
                apply(&signed, &staff_of(CO), &Action::Sign, now()).map_err(|e| e.code()),
                Err("invalid_input")
            );
            assert_eq!(
                apply(&case, &staff_of("U-STRANGER"), &Action::Sign, now()),
                Err(Refusal::WrongUnit)
            );
        }
        let t = apply(
            &case_in(CaseState::Dispatched),
            &lead_staff(),
            &Action::Sign,
            now(),
        )
        .unwrap();
        assert_eq!(t.to, CaseState::InProgress);
        assert_eq!(
            t.effects,
            vec![
                Effect::StopClock { phase: Phase::Sign },
                Effect::AssignmentSigned { unit: LEAD.into() },
                Effect::StartClock {
                    phase: Phase::Handle
                },
            ]
        );
    }

    #[test]
    fn unit_actions_need_the_right_unit() {
        let no_unit = Actor::new(Uuid::from_u128(0xC000), Role::UnitLead, None);
        let empty_unit = Actor::new(Uuid::from_u128(0xC001), Role::UnitLead, Some(String::new()));
        // Requests and the case's report belong to the lead unit; co-units may
        // not make them (a co-unit's ReportDone finishes only its own share,
        // see `co_unit_reports_its_own_share_done`).
        let lead_only = [
            (CaseState::InProgress, sample(ActionKind::RequestReturn)),
            (CaseState::InProgress, sample(ActionKind::RequestExtension)),
            (CaseState::InProgress, sample(ActionKind::RequestSuspension)),
            (CaseState::InProgress, sample(ActionKind::ReportDone)),
            (CaseState::Dispatched, sample(ActionKind::Sign)),
        ];
        for (state, action) in lead_only {
            let case = case_in(state);
            for who in [staff_of("U-STRANGER"), no_unit.clone(), empty_unit.clone()] {
                assert_eq!(
                    apply(&case, &who, &action, now()),
                    Err(Refusal::WrongUnit),
                    "{action:?} {:?}",
                    who.unit
                );
            }
            // Deliberately no longer WrongUnit for ReportDone and RequestReturn:
            // co-units report their own share done, and hand back their own share.
            if !matches!(
                action.kind(),
                ActionKind::Sign | ActionKind::ReportDone | ActionKind::RequestReturn
            ) {
                assert_eq!(
                    apply(&case, &staff_of(CO), &action, now()),
                    Err(Refusal::WrongUnit),
                    "co-unit {action:?}"
                );
            }
        }
        // A case not yet dispatched belongs to no unit.
        let mut undispatched = case_in(CaseState::InProgress);
        undispatched.lead_unit = None;
        assert_eq!(
            apply(
                &undispatched,
                &lead_staff(),
                &sample(ActionKind::ReportDone),
                now()
            ),
            Err(Refusal::WrongUnit)
        );
    }

    #[test]
    fn comment_rules() {
        let case = case_in(CaseState::InProgress);
        let comment = |text: &str| Action::Comment { text: text.into() };
        assert!(apply(&case, &staff_of(CO), &comment("on it"), now()).is_ok());
        assert_eq!(
            apply(&case, &staff_of("U-STRANGER"), &comment("hi"), now()),
            Err(Refusal::WrongUnit)
        );
        assert_eq!(
            apply(&case, &actor(W::Rep), &comment(" "), now()).map_err(|e| e.code()),
            Err("invalid_input")
        );
        // The reporter sees their own comments; staff notes are internal.
        assert!(
            apply(&case, &actor(W::Rep), &comment("thanks"), now())
                .unwrap()
                .public
        );
        assert!(
            !apply(&case, &op(), &comment("call them"), now())
                .unwrap()
                .public
        );
    }

    #[test]
    fn reporter_may_pass_the_check_only_where_the_category_allows() {
        // (reporter_may_check, actor, expected)
        let table = [
            (true, W::Rep, Ok(CaseState::Closed)),
            (
                false,
                W::Rep,
                Err(Refusal::WrongRole {
                    role: "citizen",
                    action: "pass_check",
                }),
            ),
            (
                true,
                W::Cit,
                Err(Refusal::WrongRole {
                    role: "citizen",
                    action: "pass_check",
                }),
            ),
            (false, W::Insp, Ok(CaseState::Closed)),
            (false, W::Op, Ok(CaseState::Closed)),
        ];
        for (may, w, want) in table {
            let mut case = case_in(CaseState::AwaitingCheck);
            case.reporter_may_check = may;
            let got = apply(&case, &actor(w), &Action::PassCheck, now()).map(|t| {
                assert!(t.effects.contains(&Effect::SetClosedAt { at: now() }));
                t.to
            });
            assert_eq!(got, want, "{may} {w:?}");
        }
        // A reporter who is also an inspector checks as an inspector.
        let mut case = case_in(CaseState::AwaitingCheck);
        case.reporter_may_check = false;
        let inspector_reporter = Actor::new(reporter_id(), Role::Inspector, None);
        assert!(apply(&case, &inspector_reporter, &Action::PassCheck, now()).is_ok());
    }

    #[test]
    fn failed_check_counts_rework_and_restarts_handling() {
        for previous in [0u32, 1, 5, u32::MAX] {
            let mut case = case_in(CaseState::AwaitingCheck);
            case.rework_count = previous;
            let t = apply(
                &case,
                &actor(W::Insp),
                &sample(ActionKind::FailCheck),
                now(),
            )
            .unwrap();
            assert_eq!(t.to, CaseState::InProgress);
            assert_eq!(
                t.effects,
                vec![
                    Effect::StopClock {
                        phase: Phase::Check
                    },
                    Effect::RecordReworkCount {
                        rework_count: previous.saturating_add(1)
                    },
                    Effect::ClearCheckFlags,
                    Effect::StartClock {
                        phase: Phase::Handle
                    },
                    // The fixture's co-unit never finished its share.
                    Effect::RestartCoUnitClocks {
                        units: vec![CO.into()]
                    },
                ]
            );
        }
        let mut finished = case_in(CaseState::AwaitingCheck);
        finished.co_units[0].finished = true;
        let t = apply(&finished, &op(), &sample(ActionKind::FailCheck), now()).unwrap();
        assert!(
            !t.effects
                .iter()
                .any(|e| matches!(e, Effect::RestartCoUnitClocks { .. })),
            "a finished share stays finished"
        );
        let case = case_in(CaseState::AwaitingCheck);
        assert_eq!(
            apply(
                &case,
                &op(),
                &Action::FailCheck { reason: "".into() },
                now()
            ),
            Err(Refusal::MissingReason)
        );
    }

    #[test]
    fn archive_only_once_the_reopen_window_has_passed() {
        let system = Actor::system();
        let mut case = case_in(CaseState::Closed);
        // (closed this long ago, archived?)
        let table = [
            (Duration::hours(1), false),
            (case.reopen_window, false),
            (case.reopen_window + Duration::seconds(1), true),
        ];
        for (ago, archived) in table {
            case.closed_at = Some(now() - ago);
            let got = apply(&case, &system, &Action::Archive, now());
            assert_eq!(got.is_ok(), archived, "{ago:?}: {got:?}");
        }
        case.closed_at = None;
        assert!(apply(&case, &system, &Action::Archive, now()).is_err());
    }

    #[test]
    fn reopen_only_within_the_window_after_closing() {
        let window = Duration::days(7);
        // (closed how long ago, expected)
        let table: [(Option<Duration>, Result<CaseState, Refusal>); 5] = [
            (Some(Duration::hours(1)), Ok(CaseState::InProgress)),
            (Some(window), Ok(CaseState::InProgress)),
            (
                Some(window + Duration::seconds(1)),
                Err(Refusal::OutsideWindow),
            ),
            (Some(Duration::days(365)), Err(Refusal::OutsideWindow)),
            (None, Err(Refusal::OutsideWindow)),
        ];
        for (ago, want) in table {
            let mut case = case_in(CaseState::Closed);
            case.reopen_window = window;
            case.closed_at = ago.map(|d| now() - d);
            let got = apply(&case, &op(), &sample(ActionKind::Reopen), now()).map(|t| t.to);
            assert_eq!(got, want, "{ago:?}");
        }
        let case = case_in(CaseState::Closed);
        assert_eq!(
            apply(&case, &op(), &Action::Reopen { reason: " ".into() }, now()),
            Err(Refusal::MissingReason)
        );
    }

    #[test]
    fn reopen_needs_a_dissatisfied_reporter() {
        // (the reporter's rating, expected)
        let table: [(Option<u8>, Result<CaseState, Refusal>); 5] = [
            (Some(1), Ok(CaseState::InProgress)),
            (Some(DISSATISFIED_AT_MOST), Ok(CaseState::InProgress)),
            (Some(3), Err(Refusal::ReporterNotDissatisfied)),
            (Some(5), Err(Refusal::ReporterNotDissatisfied)),
            // Not asked yet: a call-back records the rating first.
            (None, Err(Refusal::ReporterNotDissatisfied)),
        ];
        for (rating, want) in table {
            let mut case = case_in(CaseState::Closed);
            case.rating = rating;
            let got = apply(&case, &op(), &sample(ActionKind::Reopen), now());
            assert_eq!(got.clone().map(|t| t.to), want, "{rating:?}");
            if let Ok(t) = got {
                // The next round is rated afresh.
                assert!(t.effects.contains(&Effect::ClearRating), "{:?}", t.effects);
            }
        }
    }

    #[test]
    fn report_done_needs_photos_and_lists_unfinished_co_units() {
        let mut case = case_in(CaseState::InProgress);
        assert_eq!(
            apply(
                &case,
                &lead_staff(),
                &Action::ReportDone {
                    after_photo_ids: vec![]
                },
                now()
            ),
            Err(Refusal::MissingAfterPhoto)
        );
        case.co_units.push(Assignment {
            unit: "U-DONE".into(),
            signed: true,
            finished: true,
            sign_window_ends: None,
        });
        case.pending_request = Some(pending_extension());
        let t = apply(&case, &lead_staff(), &sample(ActionKind::ReportDone), now()).unwrap();
        assert_eq!(t.to, CaseState::AwaitingCheck);
        assert_eq!(
            t.effects,
            vec![
                Effect::StopClock {
                    phase: Phase::Handle
                },
                Effect::ClearPendingRequest,
                Effect::CoUnitsOutstanding {
                    units: vec![CO.into()]
                },
                Effect::StartClock {
                    phase: Phase::Check
                },
            ]
        );
    }

    #[test]
    fn co_unit_reports_its_own_share_done() {
        let photos = |n: usize| Action::ReportDone {
            after_photo_ids: (0..n).map(|i| Uuid::from_u128(0x900 + i as u128)).collect(),
        };
        let sign_first = Err(Refusal::InvalidInput("sign the assignment first".into()));
        let done_twice = Err(Refusal::InvalidInput(
            "this assignment is already reported done".into(),
        ));
        let wrong = |state| {
            Err(Refusal::WrongState {
                state,
                action: "report_done",
            })
        };
        // (state, signed, finished, photos, expected)
        type Row = (CaseState, bool, bool, usize, Result<(), Refusal>);
        let table: Vec<Row> = vec![
            (CaseState::Dispatched, true, false, 1, Ok(())),
            (CaseState::InProgress, true, false, 1, Ok(())),
            (CaseState::InProgress, true, false, 3, Ok(())),
            (CaseState::Dispatched, false, false, 1, sign_first.clone()),
            (CaseState::InProgress, false, false, 1, sign_first.clone()),
            // Unsigned is reported before missing photos: signing comes first.
            (CaseState::InProgress, false, false, 0, sign_first),
            (
                CaseState::InProgress,
                true,
                false,
                0,
                Err(Refusal::MissingAfterPhoto),
            ),
            (CaseState::Dispatched, true, true, 1, done_twice.clone()),
            (CaseState::InProgress, true, true, 1, done_twice.clone()),
            // Already done is the answer even without photos: nothing to add.
            (CaseState::InProgress, true, true, 0, done_twice),
            (CaseState::Filed, true, false, 1, wrong(CaseState::Filed)),
            (
                CaseState::Suspended,
                true,
                false,
                1,
                wrong(CaseState::Suspended),
            ),
            (
                CaseState::AwaitingCheck,
                true,
                false,
                1,
                wrong(CaseState::AwaitingCheck),
            ),
            (CaseState::Closed, true, true, 1, wrong(CaseState::Closed)),
        ];
        let co_lead = Actor::new(Uuid::from_u128(0xB001), Role::UnitLead, Some(CO.into()));
        for (state, signed, finished, n, want) in table {
            let mut case = case_in(state);
            case.co_units[0].signed = signed;
            case.co_units[0].finished = finished;
            case.pending_request = Some(pending_extension());
            for who in [staff_of(CO), co_lead.clone()] {
                let got = apply(&case, &who, &photos(n), now()).map(|t| {
                    assert_eq!(t.from, state);
                    assert_eq!(t.to, state, "a co-unit never moves the case");
                    assert_eq!(t.event_kind, "co_unit_done");
                    assert!(!t.public);
                    // The lead's pending request is none of the co-unit's business.
                    assert_eq!(
                        t.effects,
                        vec![Effect::AssignmentFinished { unit: CO.into() }]
                    );
                });
                assert_eq!(
                    got, want,
                    "{state:?} signed={signed} finished={finished} n={n}"
                );
            }
        }
    }

    #[test]
    fn co_unit_done_then_lead_report_skips_it() {
        let mut case = case_in(CaseState::InProgress);
        case.co_units.push(Assignment {
            unit: "U-CO2".into(),
            signed: true,
            finished: false,
            sign_window_ends: None,
        });
        case.co_units[0].signed = true;
        let t = apply(&case, &staff_of(CO), &sample(ActionKind::ReportDone), now()).unwrap();
        assert_eq!(
            t.effects,
            vec![Effect::AssignmentFinished { unit: CO.into() }]
        );
        // What the caller does with the effect, then the second report.
        case.co_units[0].finished = true;
        assert_eq!(
            apply(&case, &staff_of(CO), &sample(ActionKind::ReportDone), now())
                .map_err(|e| e.code()),
            Err("invalid_input")
        );
        let t = apply(&case, &lead_staff(), &sample(ActionKind::ReportDone), now()).unwrap();
        assert_eq!(t.to, CaseState::AwaitingCheck);
        assert!(t.effects.contains(&Effect::CoUnitsOutstanding {
            units: vec!["U-CO2".into()]
        }));
        // Once the case awaits the check, the other co-unit is too late.
        let mut checking = case.clone();
        checking.state = CaseState::AwaitingCheck;
        assert_eq!(
            apply(
                &checking,
                &staff_of("U-CO2"),
                &sample(ActionKind::ReportDone),
                now()
            ),
            Err(Refusal::WrongState {
                state: CaseState::AwaitingCheck,
                action: "report_done"
            })
        );
    }

    #[test]
    fn lead_report_done_is_unchanged_by_the_co_unit_path() {
        // (state, actor, expected)
        let table: Vec<(CaseState, Actor, Result<CaseState, Refusal>)> = vec![
            (
                CaseState::InProgress,
                lead_staff(),
                Ok(CaseState::AwaitingCheck),
            ),
            (
                CaseState::Dispatched,
                lead_staff(),
                Err(Refusal::WrongState {
                    state: CaseState::Dispatched,
                    action: "report_done",
                }),
            ),
            (
                CaseState::InProgress,
                staff_of("U-STRANGER"),
                Err(Refusal::WrongUnit),
            ),
            (
                CaseState::Dispatched,
                staff_of("U-STRANGER"),
                Err(Refusal::WrongState {
                    state: CaseState::Dispatched,
                    action: "report_done",
                }),
            ),
        ];
        for (state, who, want) in table {
            let mut case = case_in(state);
            // Bad data listing the lead as a co-unit too must not give the lead
            // the co-unit's rules.
            case.co_units.push(Assignment {
                unit: LEAD.into(),
                signed: true,
                finished: false,
                sign_window_ends: None,
            });
            let got = apply(&case, &who, &sample(ActionKind::ReportDone), now()).map(|t| t.to);
            assert_eq!(got, want, "{state:?} {:?}", who.unit);
        }
    }

    #[test]
    fn not_filed_reasons() {
        let insp = actor(W::Insp);
        let verify = |filed, reason| Action::Verify { filed, reason };
        let case = case_in(CaseState::Verifying);
        assert_eq!(
            apply(&case, &insp, &verify(false, None), now()),
            Err(Refusal::MissingReason)
        );
        let t = apply(
            &case,
            &insp,
            &verify(false, Some(NotFiledReason::Untrue)),
            now(),
        )
        .unwrap();
        assert_eq!(t.to, CaseState::NotFiled);
        assert!(t.effects.contains(&Effect::SetNotFiledReason {
            reason: NotFiledReason::Untrue
        }));
        // Duplicates must go through merge so the master is linked.
        assert_eq!(
            apply(
                &case,
                &insp,
                &verify(false, Some(NotFiledReason::Duplicate)),
                now()
            )
            .map_err(|e| e.code()),
            Err("invalid_input")
        );
        assert_eq!(
            apply(
                &case,
                &op(),
                &Action::Reject {
                    reason: NotFiledReason::Duplicate
                },
                now()
            )
            .map_err(|e| e.code()),
            Err("invalid_input")
        );
        let filed = case_in(CaseState::Filed);
        let master = Uuid::from_u128(2);
        let t = apply(&filed, &op(), &Action::Merge { master }, now()).unwrap();
        assert!(t.effects.contains(&Effect::LinkMaster { master }));
        assert_eq!(
            apply(&filed, &op(), &Action::Merge { master: filed.id }, now()).map_err(|e| e.code()),
            Err("invalid_input")
        );
    }

    #[test]
    fn dispatch_validates_units() {
        let case = case_in(CaseState::Filed);
        let dispatch = |lead: &str, co: &[&str]| Action::Dispatch {
            lead_unit: lead.into(),
            co_units: co.iter().map(|s| s.to_string()).collect(),
        };
        for bad in [
            dispatch("", &[]),
            dispatch("  ", &["A"]),
            dispatch("A", &["A"]),
            dispatch("A", &["B", " B "]),
            dispatch("A", &[""]),
        ] {
            assert_eq!(
                apply(&case, &op(), &bad, now()).map_err(|e| e.code()),
                Err("invalid_input"),
                "{bad:?}"
            );
        }
        let t = apply(&case, &Actor::system(), &dispatch(" A ", &[" B"]), now()).unwrap();
        assert!(t.effects.contains(&Effect::SetAssignments {
            lead_unit: "A".into(),
            co_units: vec!["B".into()]
        }));
        // Reassigning drops whatever the old unit had asked for.
        let mut busy = case_in(CaseState::InProgress);
        busy.pending_request = Some(pending_return());
        let t = apply(&busy, &op(), &sample(ActionKind::Reassign), now()).unwrap();
        assert!(t.effects.contains(&Effect::ClearPendingRequest));
    }

    #[test]
    fn system_rights_cannot_be_forged() {
        let case = case_in(CaseState::Submitted);
        let forged = Actor::new(Uuid::nil(), Role::Integrator, None);
        assert_eq!(
            apply(&case, &forged, &Action::File, now()),
            Err(Refusal::WrongRole {
                role: "integrator",
                action: "file"
            })
        );
        assert!(apply(&case, &Actor::system(), &Action::File, now()).is_ok());
        assert!(Actor::system().is_system() && !forged.is_system());
    }

    #[test]
    fn suspension_pauses_and_resume_restarts_clocks() {
        let sup = actor(W::Sup);
        let mut case = case_in(CaseState::InProgress);
        case.pending_request = Some(pending_suspension());
        let t = apply(&case, &sup, &Action::ApproveSuspension, now()).unwrap();
        assert_eq!(t.to, CaseState::Suspended);
        assert_eq!(
            t.effects,
            vec![Effect::ClearPendingRequest, Effect::PauseClocks]
        );
        let t = apply(&case_in(CaseState::Suspended), &sup, &Action::Resume, now()).unwrap();
        assert_eq!(t.effects, vec![Effect::ResumeClocks]);
        assert_eq!(
            apply(
                &case_in(CaseState::InProgress),
                &lead_staff(),
                &Action::RequestSuspension { reason: "".into() },
                now()
            ),
            Err(Refusal::MissingReason)
        );
    }

    #[test]
    fn cancel_rate_and_input_checks() {
        let sup = actor(W::Sup);
        let mut case = case_in(CaseState::InProgress);
        assert_eq!(
            apply(&case, &sup, &Action::Cancel { reason: "".into() }, now()),
            Err(Refusal::MissingReason)
        );
        case.pending_request = Some(pending_extension());
        let t = apply(&case, &sup, &sample(ActionKind::Cancel), now()).unwrap();
        assert_eq!(
            t.effects,
            vec![Effect::StopAllClocks, Effect::ClearPendingRequest]
        );

        let closed = case_in(CaseState::Closed);
        for (score, ok) in [(0u8, false), (1, true), (5, true), (6, false), (255, false)] {
            let got = apply(
                &closed,
                &actor(W::Rep),
                &Action::Rate {
                    score,
                    comment: None,
                },
                now(),
            );
            assert_eq!(got.is_ok(), ok, "score {score}");
        }
    }

    #[test]
    fn envelope_checks_version_and_flattens_the_action() {
        let case = case_in(CaseState::Submitted);
        let env: ActionEnvelope =
            serde_json::from_str(r#"{"expected_version":7,"action":"send_to_verify"}"#).unwrap();
        assert_eq!(env.action, Action::SendToVerify);
        assert!(apply_envelope(&case, &op(), &env, now()).is_ok());
        let stale = ActionEnvelope {
            expected_version: 6,
            action: Action::SendToVerify,
        };
        assert_eq!(
            apply_envelope(&case, &op(), &stale, now()),
            Err(Refusal::StaleVersion)
        );
    }

    #[test]
    fn refusal_codes_are_stable_and_distinct() {
        let table = [
            (
                Refusal::WrongState {
                    state: CaseState::Closed,
                    action: "sign",
                },
                "wrong_state",
            ),
            (
                Refusal::WrongRole {
                    role: "citizen",
                    action: "file",
                },
                "wrong_role",
            ),
            (Refusal::WrongUnit, "wrong_unit"),
            (Refusal::MissingReason, "missing_reason"),
            (Refusal::MissingAfterPhoto, "missing_after_photo"),
            (Refusal::OutsideWindow, "outside_window"),
            (Refusal::ExtensionCapReached, "extension_cap_reached"),
            (Refusal::NoPendingRequest, "no_pending_request"),
            (Refusal::RequestPending, "request_pending"),
            (Refusal::StaleVersion, "stale_version"),
            (Refusal::InvalidInput("x".into()), "invalid_input"),
        ];
        for (refusal, code) in &table {
            assert_eq!(refusal.code(), *code);
            assert!(!refusal.to_string().is_empty());
        }
        assert_eq!(
            Refusal::WrongState {
                state: CaseState::Closed,
                action: "sign"
            }
            .to_string(),
            "cannot sign a case that is closed"
        );
    }

    /// Decided after the date the unit asked for, an approval would set the due
    /// time in the past and still use one of the category's extensions.
    #[test]
    fn an_extension_whose_requested_date_has_passed_cannot_be_approved() {
        let mut case = case_in(CaseState::InProgress);
        let requested = now() + Duration::days(3);
        case.handle_due = Some(now() + Duration::hours(20));
        case.pending_request = Some(pending_extension());
        for decided_at in [requested, requested + Duration::days(1)] {
            let got = apply(&case, &op(), &Action::ApproveExtension, decided_at);
            assert!(
                matches!(&got, Err(Refusal::InvalidInput(why)) if why.contains("passed")),
                "{decided_at}: {got:?}"
            );
            let denied = apply(&case, &op(), &Action::DenyExtension, decided_at);
            assert!(denied.is_ok(), "it can still be denied: {denied:?}");
        }
        let in_time = apply(
            &case,
            &op(),
            &Action::ApproveExtension,
            requested - Duration::hours(1),
        );
        assert!(in_time.is_ok(), "{in_time:?}");
    }
}
