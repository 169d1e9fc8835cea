//! A sweep that marks a case's clocks between an action's read and its save.
//! The sweeper does not move the case's version, so the save would otherwise
//! stop, pause or move a clock as of a time before events the sweep has
//! already recorded: signed in time, yet escalated. The save is refused and the
//! action planned again, after the marks.

use civicsnap::domain::clock::Clock;

use super::*;

/// A sweep one minute past `clock`'s due time runs after the case was read
/// for `action` and before it is saved, as `actor` at one minute before.
async fn act_across_a_sweep(
    app: &TestApp,
    case: Uuid,
    swept_at: chrono::DateTime<chrono::Utc>,
    actor: &Actor,
    action: Action,
    planned_at: chrono::DateTime<chrono::Utc>,
) -> ActionOutcome {
    let mut read_before = open(app, case).await;
    read_before.release();
    sweep_once(
        app.state.repo.as_ref(),
        "sweeper",
        swept_at,
        100,
        chrono::Duration::seconds(60),
    )
    .await
    .expect("sweep")
    .expect("the lease");
    act_on(app, read_before, actor, action, planned_at)
        .await
        .expect("the sweep does not make the client's version stale")
}

/// The stored clock `id` and the time of the first event of each kind for it.
async fn clock_and_events(
    app: &TestApp,
    case: Uuid,
    id: Uuid,
) -> (
    Clock,
    std::collections::BTreeMap<String, chrono::DateTime<chrono::Utc>>,
) {
    let repo = app.state.repo.as_ref();
    let clock = repo
        .case_clocks(case)
        .await
        .expect("clocks")
        .into_iter()
        .find(|c| c.id == id)
        .expect("the clock");
    let mut first = std::collections::BTreeMap::new();
    for event in repo.case_events(case).await.expect("events") {
        if event.data["clock_id"] == id.to_string().as_str() || !event.kind.starts_with("deadline")
        {
            first.entry(event.kind).or_insert(event.created_at);
        }
    }
    (clock, first)
}

fn lead_clock(case: &WorkflowCase, phase: &str) -> Clock {
    case.clocks
        .iter()
        .find(|c| c.phase.as_str() == phase && c.unit.is_none())
        .cloned()
        .expect("the lead's clock")
}

#[tokio::test]
async fn a_sign_planned_before_a_sweep_is_saved_after_the_overdue_it_meets() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let case = dispatched_case(&app, &operator, &reporter).await;
    let sign = lead_clock(&load(&app, case).await, "sign");
    let swept_at = sign.due_at + chrono::Duration::minutes(1);
    let lead = Actor::new(Uuid::now_v7(), Role::UnitStaff, Some(LEAD.to_owned()));
    let planned_at = sign.due_at - chrono::Duration::minutes(1);

    act_across_a_sweep(&app, case, swept_at, &lead, Action::Sign, planned_at).await;

    let (stored, events) = clock_and_events(&app, case, sign.id).await;
    assert_eq!(stored.overdue_at, Some(swept_at));
    assert_eq!(stored.stopped_at, Some(swept_at), "signed after the mark");
    assert!(events["deadline_overdue"] <= events["signed"], "{events:?}");
}

#[tokio::test]
async fn a_suspension_planned_before_a_sweep_pauses_after_the_overdue_it_meets() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;
    let case = suspension_requested_case(&app, &operator, &reporter, &lead, "等待产权人回国").await;
    let handle = lead_clock(&load(&app, case).await, "handle");
    let swept_at = handle.due_at + chrono::Duration::minutes(1);
    let supervisor = Actor::new(Uuid::now_v7(), Role::Supervisor, None);
    let planned_at = handle.due_at - chrono::Duration::minutes(1);

    act_across_a_sweep(
        &app,
        case,
        swept_at,
        &supervisor,
        Action::ApproveSuspension,
        planned_at,
    )
    .await;

    let (stored, events) = clock_and_events(&app, case, handle.id).await;
    assert_eq!(stored.overdue_at, Some(swept_at));
    assert_eq!(stored.paused_at, Some(swept_at), "paused after the mark");
    assert!(
        events["deadline_overdue"] <= events["suspended"],
        "{events:?}"
    );
}

#[tokio::test]
async fn an_extension_planned_before_a_sweep_is_approved_after_the_warning_it_meets() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;
    let case = signed_case(&app, &operator, &reporter, &lead).await;
    let handle = lead_clock(&load(&app, case).await, "handle");
    let new_due = handle.due_at + chrono::Duration::days(10);
    ok(
        &app,
        &lead,
        case,
        json!({"action": "request_extension", "reason": "需协调施工", "new_due": new_due}),
    )
    .await;
    let swept_at = handle.warning_at + chrono::Duration::minutes(1);
    let planned_at = now().max(handle.warning_at - chrono::Duration::minutes(30));
    let centre = Actor::new(operator.id, Role::Operator, None);

    act_across_a_sweep(
        &app,
        case,
        swept_at,
        &centre,
        Action::ApproveExtension,
        planned_at,
    )
    .await;

    let (stored, events) = clock_and_events(&app, case, handle.id).await;
    assert_eq!(stored.due_at, new_due);
    assert_eq!(stored.warned_at, Some(swept_at));
    assert!(
        events["deadline_warning"] <= events["extension_approved"],
        "the warning for the old due time came first: {events:?}"
    );
}
