//! The case workflow end to end: actions with version checks, unit scoping,
//! timeline, deadlines, queues, the deadline sweeper and the outbox.

use std::time::Duration;

use civicsnap::config::Settings;
use civicsnap::domain::case::{Action, ActionEnvelope, Actor};
use civicsnap::domain::role::Role;
use civicsnap::jobs::deadline_sweeper::sweep_once;
use civicsnap::jobs::{archive, auto_dispatch};
use civicsnap::state::now;
use civicsnap::store::{CaseSession, WorkflowCase};
use civicsnap::workflow::{ActionOutcome, WorkflowError};
use serde_json::{Value, json};
use uuid::Uuid;

mod queue;
mod sweep_race;

use crate::helpers::{
    Caller, TestApp, assert_detail_mentions, assert_problem, jpeg, spawn_app,
    spawn_app_with_shipped_calendars, spawn_demo_app, spawn_demo_app_with,
};

const LEAD: &str = "DEPT-CGJ";
const CO: &str = "ENT-POWER";
const OTHER: &str = "SO-320582001";

/// The demo city without the auto-dispatch job, so each test drives every step.
async fn manual_app() -> TestApp {
    manual_app_with(|_| {}).await
}

async fn manual_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_demo_app_with(|s| {
        s.workflow.auto_dispatch = false;
        adjust(s);
    })
    .await
}

fn case_id(report: &Value) -> Uuid {
    report["id"].as_str().expect("id").parse().expect("uuid")
}

/// Posts an action with the case's current version; returns the response.
async fn act(app: &TestApp, caller: &Caller, case: Uuid, action: Value) -> reqwest::Response {
    let version = current_version(app, case).await;
    act_at(app, caller, case, version, action).await
}

async fn act_at(
    app: &TestApp,
    caller: &Caller,
    case: Uuid,
    version: i64,
    mut action: Value,
) -> reqwest::Response {
    action["version"] = json!(version);
    app.post_json(
        &format!("/api/v1/cases/{case}/actions"),
        Some(&caller.token),
        &action,
    )
    .await
}

/// Posts an action and expects it to succeed.
async fn ok(app: &TestApp, caller: &Caller, case: Uuid, action: Value) -> Value {
    let response = act(app, caller, case, action.clone()).await;
    let status = response.status();
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(status, 200, "{action} -> {body}");
    body
}

/// The case as the workflow sees it (state, version, assignments, clocks).
async fn load(app: &TestApp, case: Uuid) -> WorkflowCase {
    app.state
        .workflow
        .case(case)
        .await
        .expect("case loads")
        .expect("case exists")
}

/// The case read for an action, to pass to [`act_on`].
async fn open(app: &TestApp, case: Uuid) -> CaseSession {
    app.state
        .workflow
        .open(case)
        .await
        .expect("case loads")
        .expect("case exists")
}

/// Takes `action` as `actor` at `at` on the case `session` read, at the version
/// it was read at: past the HTTP layer, so that a test can choose the time.
async fn act_on(
    app: &TestApp,
    session: CaseSession,
    actor: &Actor,
    action: Action,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<ActionOutcome, WorkflowError> {
    let envelope = ActionEnvelope {
        expected_version: session.case().version,
        action,
    };
    app.state.workflow.act(session, actor, &envelope, at).await
}

async fn current_version(app: &TestApp, case: Uuid) -> i64 {
    load(app, case).await.version
}

async fn state_of(app: &TestApp, case: Uuid) -> String {
    load(app, case).await.state.as_str().to_owned()
}

/// GET `path` as `caller` answers 404, as for a case that does not exist.
async fn assert_hidden(app: &TestApp, path: &str, caller: &Caller) {
    assert_problem(app.get(path, Some(&caller.token)).await, 404, "not_found").await;
}

async fn kinds(app: &TestApp, caller: &Caller, case: Uuid) -> Vec<String> {
    let timeline = app
        .get_json(
            &format!("/api/v1/cases/{case}/timeline"),
            Some(&caller.token),
        )
        .await;
    timeline["items"]
        .as_array()
        .unwrap_or_else(|| panic!("timeline: {timeline}"))
        .iter()
        .map(|e| e["kind"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// The kinds of `case`'s outbox rows, oldest first.
async fn outbox_kinds(app: &TestApp, case: Uuid) -> Vec<String> {
    let outbox = app.state.repo.outbox(0, 100).await.expect("outbox");
    outbox
        .into_iter()
        .filter(|row| row.case_id == case)
        .map(|row| row.kind)
        .collect()
}

/// A report filed and dispatched by an operator to LEAD with CO as co-unit.
async fn dispatched_case(app: &TestApp, operator: &Caller, reporter: &Caller) -> Uuid {
    let case = case_id(&app.file_report(&reporter.token).await);
    ok(app, operator, case, json!({"action": "file"})).await;
    ok(
        app,
        operator,
        case,
        json!({"action": "dispatch", "lead_unit": LEAD, "co_units": [CO]}),
    )
    .await;
    case
}

/// A report filed and dispatched by an operator to `unit` alone.
async fn dispatched_to(app: &TestApp, operator: &Caller, reporter: &Caller, unit: &str) -> Uuid {
    let case = case_id(&app.file_report(&reporter.token).await);
    ok(app, operator, case, json!({"action": "file"})).await;
    ok(
        app,
        operator,
        case,
        json!({"action": "dispatch", "lead_unit": unit}),
    )
    .await;
    case
}

/// A report filed and dispatched by an operator to LEAD alone, signed by `lead`.
async fn signed_case(app: &TestApp, operator: &Caller, reporter: &Caller, lead: &Caller) -> Uuid {
    let case = dispatched_to(app, operator, reporter, LEAD).await;
    ok(app, lead, case, json!({"action": "sign"})).await;
    case
}

/// A [`signed_case`] whose lead has asked for a suspension, for `reason`.
async fn suspension_requested_case(
    app: &TestApp,
    operator: &Caller,
    reporter: &Caller,
    lead: &Caller,
    reason: &str,
) -> Uuid {
    let case = signed_case(app, operator, reporter, lead).await;
    ok(
        app,
        lead,
        case,
        json!({"action": "request_suspension", "reason": reason}),
    )
    .await;
    case
}

/// `unit` reports `case` done with a fresh photo of its own as proof.
async fn report_done(app: &TestApp, unit: &Caller, case: Uuid) -> Value {
    let after = app.photo(&unit.token, jpeg(120, 90)).await;
    ok(
        app,
        unit,
        case,
        json!({"action": "report_done", "after_photo_ids": [after]}),
    )
    .await
}

#[tokio::test]
async fn the_reporter_sees_the_after_photos_and_staff_who_report_see_as_staff() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let stranger = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;
    let case = signed_case(&app, &operator, &reporter, &lead).await;
    report_done(&app, &lead, case).await;
    let report = app
        .get_json(&format!("/api/v1/reports/{case}"), Some(&reporter.token))
        .await;
    let photos = report["photos"].as_array().expect("photos");
    assert_eq!(
        photos.len(),
        2,
        "the report's photo and the unit's: {report}"
    );
    for photo in photos {
        for url in [&photo["display_url"], &photo["thumbnail_url"]] {
            let url = url.as_str().expect("a URL");
            let seen = app.get(url, Some(&reporter.token)).await;
            assert_eq!(seen.status(), 200, "{url}");
            assert_problem(app.get(url, Some(&stranger.token)).await, 404, "not_found").await;
        }
    }

    // An inspector who files a report on patrol still sees its case as staff.
    let inspector = app.user(Role::Inspector).await;
    let own = app.file_report(&inspector.token).await;
    let own_case = case_id(&own);
    let detail = app
        .get(&format!("/api/v1/cases/{own_case}"), Some(&inspector.token))
        .await;
    assert_eq!(detail.status(), 200);
    let as_staff = app
        .get_json(
            &format!("/api/v1/reports/{own_case}"),
            Some(&inspector.token),
        )
        .await;
    assert!(as_staff["routing"].is_object(), "{as_staff}");
}

/// A co-unit's share is internal (`co_unit_done`) until the lead reports the
/// case done; its proof stays with staff until then, in the report and at the
/// photo's own address. A failed check takes the proof back with the report.
#[tokio::test]
async fn the_reporter_sees_the_units_proof_only_while_the_case_stands_reported_done() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;
    let co = app.user_of(Role::UnitStaff, CO).await;
    let inspector = app.user(Role::Inspector).await;
    let case = dispatched_case(&app, &operator, &reporter).await;
    ok(&app, &lead, case, json!({"action": "sign"})).await;
    ok(&app, &co, case, json!({"action": "sign"})).await;
    report_done(&app, &co, case).await;

    let report_path = format!("/api/v1/reports/{case}");
    let photo_ids = |report: &Value| -> Vec<String> {
        report["photos"]
            .as_array()
            .expect("photos")
            .iter()
            .map(|p| p["id"].as_str().expect("id").to_owned())
            .collect()
    };
    let as_staff = app.get_json(&report_path, Some(&operator.token)).await;
    let staff_sees = photo_ids(&as_staff);
    assert_eq!(
        staff_sees.len(),
        2,
        "the report's and the co-unit's: {as_staff}"
    );
    let co_proof = &staff_sees[1];
    let co_proof_url = format!("/api/v1/photos/{co_proof}/display");
    let as_reporter = app.get_json(&report_path, Some(&reporter.token)).await;
    assert_eq!(photo_ids(&as_reporter), staff_sees[..1], "{as_reporter}");
    assert_problem(
        app.get(&co_proof_url, Some(&reporter.token)).await,
        404,
        "not_found",
    )
    .await;

    report_done(&app, &lead, case).await;
    let as_reporter = app.get_json(&report_path, Some(&reporter.token)).await;
    assert_eq!(photo_ids(&as_reporter).len(), 3, "{as_reporter}");
    assert_eq!(
        app.get(&co_proof_url, Some(&reporter.token)).await.status(),
        200
    );

    ok(
        &app,
        &inspector,
        case,
        json!({"action": "fail_check", "reason": "垃圾仍在"}),
    )
    .await;
    let as_reporter = app.get_json(&report_path, Some(&reporter.token)).await;
    assert_eq!(photo_ids(&as_reporter), staff_sees[..1], "{as_reporter}");
    let as_staff = app.get_json(&report_path, Some(&operator.token)).await;
    assert_eq!(photo_ids(&as_staff).len(), 3, "{as_staff}");
}

#[tokio::test]
async fn a_report_goes_round_the_whole_loop_to_closed() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;
    let co = app.user_of(Role::UnitStaff, CO).await;
    let inspector = app.user(Role::Inspector).await;
    let case = dispatched_case(&app, &operator, &reporter).await;
    assert_eq!(state_of(&app, case).await, "dispatched");

    ok(&app, &lead, case, json!({"action": "sign"})).await;
    ok(&app, &co, case, json!({"action": "sign"})).await;
    let handle_due = load(&app, case)
        .await
        .clocks
        .iter()
        .find(|c| c.phase.as_str() == "handle" && c.unit.is_none())
        .expect("the lead's handle clock")
        .due_at;
    let new_due = handle_due + chrono::Duration::days(3);
    let extension = ok(
        &app,
        &lead,
        case,
        json!({"action": "request_extension", "reason": "需协调施工", "new_due": new_due}),
    )
    .await;
    assert_eq!(extension["state"], "in_progress");
    ok(
        &app,
        &operator,
        case,
        json!({"action": "approve_extension"}),
    )
    .await;
    let deadlines = app
        .get_json(
            &format!("/api/v1/cases/{case}/deadlines"),
            Some(&operator.token),
        )
        .await;
    let handle = deadlines["clocks"]
        .as_array()
        .expect("clocks")
        .iter()
        .find(|c| c["phase"] == "handle" && c["unit"].is_null() && c["status"] == "running")
        .unwrap_or_else(|| panic!("a running handle clock: {deadlines}"));
    // Served in the city's offset.
    let served = |value: &Value| {
        let text = value.as_str().unwrap_or_default();
        assert!(text.ends_with("+08:00"), "{text}");
        chrono::DateTime::parse_from_rfc3339(text).map(|t| t.with_timezone(&chrono::Utc))
    };
    assert_eq!(served(&handle["due_at"]), Ok(new_due));
    assert_eq!(served(&handle["extended_to"]), Ok(new_due));

    // The co-unit reports its share, then the lead reports the case done.
    let co_photo = app.photo(&co.token, jpeg(64, 48)).await;
    ok(
        &app,
        &co,
        case,
        json!({"action": "report_done", "after_photo_ids": [co_photo]}),
    )
    .await;
    let after = app.photo(&lead.token, jpeg(80, 60)).await;
    let done = ok(
        &app,
        &lead,
        case,
        json!({"action": "report_done", "after_photo_ids": [after]}),
    )
    .await;
    assert_eq!(done["state"], "awaiting_check");
    ok(&app, &inspector, case, json!({"action": "pass_check"})).await;
    assert_eq!(state_of(&app, case).await, "closed");
    ok(&app, &reporter, case, json!({"action": "rate", "score": 5})).await;

    // The reporter sees the public steps only; staff see everything.
    let public = kinds(&app, &reporter, case).await;
    assert_eq!(
        public,
        [
            "submitted",
            "filed",
            "dispatched",
            "signed",
            "reported_done",
            "check_passed",
            "rated"
        ]
    );
    let all = kinds(&app, &operator, case).await;
    for internal in [
        "routed",
        "co_unit_signed",
        "extension_requested",
        "extension_approved",
        "co_unit_done",
    ] {
        assert!(all.iter().any(|k| k == internal), "{internal} in {all:?}");
    }

    // Every state change went to the outbox, once; the internal steps above
    // changed no state.
    let mine = outbox_kinds(&app, case).await;
    assert_eq!(
        mine,
        [
            "submitted",
            "filed",
            "dispatched",
            "signed",
            "reported_done",
            "check_passed",
            "rated"
        ]
    );
}

/// chrono takes a second 60 at any minute; stored, it came back as a
/// `date-time` the served schema refuses, and the databases disagreed on it.
#[tokio::test]
async fn a_leap_second_is_refused() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;
    let case = signed_case(&app, &operator, &reporter, &lead).await;
    let response = act(
        &app,
        &lead,
        case,
        json!({"action": "request_extension", "reason": "需协调施工", "new_due": "2026-12-18T15:59:60.5+08:00"}),
    )
    .await;
    let problem = assert_problem(response, 422, "invalid_body").await;
    assert_detail_mentions(&problem, "leap second");
}

#[tokio::test]
async fn a_stale_version_gets_409_and_of_two_racing_actions_one_wins() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;
    let case = dispatched_case(&app, &operator, &reporter).await;
    let version = current_version(&app, case).await;

    let (a, b) = tokio::join!(
        act_at(&app, &lead, case, version, json!({"action": "sign"})),
        act_at(&app, &lead, case, version, json!({"action": "sign"})),
    );
    let mut statuses = [a.status().as_u16(), b.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409]);
    let loser = if a.status() == 409 { a } else { b };
    assert_problem(loser, 409, "stale_version").await;
    let signed = kinds(&app, &operator, case)
        .await
        .iter()
        .filter(|k| *k == "signed")
        .count();
    assert_eq!(signed, 1, "no event is written twice");

    let stale = act_at(
        &app,
        &lead,
        case,
        version,
        json!({"action": "comment", "text": "x"}),
    )
    .await;
    assert_problem(stale, 409, "stale_version").await;
}

/// On PostgreSQL an action keeps the connection its case was read on for its
/// save. Dispatch, reassign and report_done also read units or photos; they hand
/// that connection back first. With a pool of one connection, an action that held
/// it while asking for another would wait out the pool's timeout and fail. Only
/// a run with `TEST_POSTGRES_URL` tests this: SQLite sizes its own pools and its
/// sessions hold no connection.
#[tokio::test]
async fn actions_that_read_more_than_their_case_need_no_second_connection() {
    let app = manual_app_with(|s| s.database_connections = 1).await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;
    let case = dispatched_case(&app, &operator, &reporter).await;
    ok(
        &app,
        &operator,
        case,
        json!({"action": "reassign", "lead_unit": LEAD}),
    )
    .await;
    ok(&app, &lead, case, json!({"action": "sign"})).await;
    report_done(&app, &lead, case).await;
    assert_eq!(state_of(&app, case).await, "awaiting_check");
}

#[tokio::test]
async fn unit_staff_see_only_their_own_units_cases() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;
    let co = app.user_of(Role::UnitLead, CO).await;
    let stranger = app.user_of(Role::UnitStaff, OTHER).await;
    let case = dispatched_case(&app, &operator, &reporter).await;

    for path in [
        format!("/api/v1/cases/{case}/timeline"),
        format!("/api/v1/cases/{case}/deadlines"),
        format!("/api/v1/reports/{case}"),
        format!("/api/v1/units/{LEAD}/cases"),
    ] {
        assert_problem(
            app.get(&path, Some(&stranger.token)).await,
            404,
            "not_found",
        )
        .await;
        assert_eq!(
            app.get(&path, Some(&lead.token)).await.status(),
            200,
            "{path}"
        );
    }
    let sign = act(&app, &stranger, case, json!({"action": "sign"})).await;
    assert_problem(sign, 404, "not_found").await;
    let foreign_queue = app
        .get(&format!("/api/v1/cases?unit={LEAD}"), Some(&stranger.token))
        .await;
    assert_problem(foreign_queue, 403, "forbidden").await;
    let own_queue = app.get_json("/api/v1/cases", Some(&stranger.token)).await;
    assert_eq!(own_queue["items"], json!([]));

    // Both units on the case see it in their inbox; the co-unit may comment but
    // not act for the lead.
    for (caller, unit) in [(&lead, LEAD), (&co, CO)] {
        let inbox = app
            .get_json(&format!("/api/v1/units/{unit}/cases"), Some(&caller.token))
            .await;
        assert_eq!(inbox["items"][0]["id"], case.to_string(), "{unit}: {inbox}");
        assert_eq!(inbox["items"][0]["lead_unit"], LEAD);
    }
    // An inbox is its path's unit: another `unit` filter is refused, not ignored.
    let same = app
        .get_json(
            &format!("/api/v1/units/{LEAD}/cases?unit={LEAD}"),
            Some(&operator.token),
        )
        .await;
    assert_eq!(same["items"][0]["id"], case.to_string());
    for other in [OTHER, ""] {
        assert_problem(
            app.get(
                &format!("/api/v1/units/{LEAD}/cases?unit={other}"),
                Some(&operator.token),
            )
            .await,
            400,
            "invalid_query",
        )
        .await;
    }
    let suspension = act(
        &app,
        &co,
        case,
        json!({"action": "request_suspension", "reason": "等待"}),
    )
    .await;
    assert_problem(suspension, 409, "wrong_state").await;
    ok(
        &app,
        &co,
        case,
        json!({"action": "comment", "text": "已到现场"}),
    )
    .await;
    let citizen = app.citizen().await;
    assert_hidden(&app, &format!("/api/v1/cases/{case}/timeline"), &citizen).await;
    // Reporters follow the timeline; deadlines and their inputs are for staff.
    assert_hidden(&app, &format!("/api/v1/cases/{case}/deadlines"), &reporter).await;
}

#[tokio::test]
async fn refusals_carry_a_code_and_a_status_that_fits() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let supervisor = app.user(Role::Supervisor).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;
    let case = case_id(&app.file_report(&reporter.token).await);

    assert_problem(
        act(&app, &lead, case, json!({"action": "sign"})).await,
        404,
        "not_found",
    )
    .await;
    assert_problem(
        act(&app, &reporter, case, json!({"action": "file"})).await,
        403,
        "wrong_role",
    )
    .await;
    assert_problem(
        act(&app, &operator, case, json!({"action": "pass_check"})).await,
        409,
        "wrong_state",
    )
    .await;
    assert_problem(
        act(
            &app,
            &supervisor,
            case,
            json!({"action": "cancel", "reason": " "}),
        )
        .await,
        422,
        "missing_reason",
    )
    .await;
    assert_problem(
        act(&app, &operator, case, json!({"action": "teleport"})).await,
        422,
        "invalid_body",
    )
    .await;
    let missing = app
        .post_json(
            &format!("/api/v1/cases/{}/actions", Uuid::now_v7()),
            Some(&operator.token),
            &json!({"action": "file", "version": 1}),
        )
        .await;
    assert_problem(missing, 404, "not_found").await;
    // Dispatch to a unit that does not exist changes nothing.
    ok(&app, &operator, case, json!({"action": "file"})).await;
    let version = current_version(&app, case).await;
    let unknown = act(
        &app,
        &operator,
        case,
        json!({"action": "dispatch", "lead_unit": "NO-SUCH-UNIT"}),
    )
    .await;
    assert_problem(unknown, 422, "unknown_unit").await;
    assert_eq!(current_version(&app, case).await, version);
    assert_eq!(state_of(&app, case).await, "filed");
}

#[tokio::test]
async fn the_checker_sees_unfinished_co_units_and_their_clocks_stop() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;
    let co = app.user_of(Role::UnitStaff, CO).await;
    let other = app.user_of(Role::UnitStaff, OTHER).await;
    let case = dispatched_case(&app, &operator, &reporter).await;
    ok(&app, &lead, case, json!({"action": "sign"})).await;
    let done = report_done(&app, &lead, case).await;

    let path = format!("/api/v1/cases/{case}");
    let detail = app.get_json(&path, Some(&operator.token)).await;
    assert_eq!(detail["state"], "awaiting_check", "{detail}");
    assert_eq!(detail["version"], done["version"]);
    let units: Vec<(&str, bool, bool)> = detail["assignments"]
        .as_array()
        .expect("assignments")
        .iter()
        .map(|a| {
            (
                a["unit"].as_str().unwrap_or_default(),
                a["lead"] == true,
                a["signed_at"].is_string(),
            )
        })
        .collect();
    assert_eq!(units, [(LEAD, true, true), (CO, false, false)]);
    assert_eq!(
        detail["check_flags"],
        json!([{"flag": "co_units_outstanding", "units": [CO]}])
    );
    assert!(
        load(&app, case)
            .await
            .clocks
            .iter()
            .all(|c| c.unit.is_none()),
        "the co-unit's clock stopped with the lead's report"
    );

    // The co-unit on the case sees it; another unit and the reporter do not.
    let seen = app.get(&path, Some(&co.token)).await;
    assert_eq!(seen.status(), 200);
    assert_hidden(&app, &path, &other).await;
    assert_hidden(&app, &path, &reporter).await;
}

#[tokio::test]
async fn closed_cases_are_archived_once_the_reopen_window_has_passed() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;
    let case = signed_case(&app, &operator, &reporter, &lead).await;
    report_done(&app, &lead, case).await;
    ok(&app, &operator, case, json!({"action": "pass_check"})).await;
    let closed_at = load(&app, case).await.fields.closed_at.expect("closed");

    let workflow = app.state.workflow.as_ref();
    let repo = app.state.repo.as_ref();
    let window = workflow.rules().reopen_window;
    let within = closed_at + window - chrono::Duration::minutes(1);
    assert_eq!(
        archive::run_once(workflow, repo, within)
            .await
            .expect("pass"),
        0
    );
    assert_eq!(state_of(&app, case).await, "closed");
    let past = closed_at + window + chrono::Duration::minutes(1);
    assert_eq!(
        archive::run_once(workflow, repo, past).await.expect("pass"),
        1
    );
    assert_eq!(state_of(&app, case).await, "archived");
    assert!(
        kinds(&app, &operator, case)
            .await
            .contains(&"archived".to_owned())
    );
    assert_eq!(
        archive::run_once(workflow, repo, past).await.expect("pass"),
        0,
        "once"
    );
}

/// Due time of the lead's running handle clock (处置).
async fn handle_due(app: &TestApp, case: Uuid) -> chrono::DateTime<chrono::Utc> {
    load(app, case)
        .await
        .clocks
        .iter()
        .find(|c| c.phase.as_str() == "handle" && c.unit.is_none())
        .expect("the lead's handle clock")
        .due_at
}

#[tokio::test]
async fn category_policy_caps_extensions_and_may_let_the_reporter_confirm_the_fix() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let supervisor = app.user(Role::Supervisor).await;
    let admin = app.user(Role::Admin).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;
    let case = dispatched_case(&app, &operator, &reporter).await;
    ok(&app, &lead, case, json!({"action": "sign"})).await;
    let request = |due: chrono::DateTime<chrono::Utc>| json!({"action": "request_extension", "reason": "需协调施工", "new_due": due + chrono::Duration::days(1)});

    // The first extension is the operator's to grant, the second a supervisor's.
    ok(&app, &lead, case, request(handle_due(&app, case).await)).await;
    ok(
        &app,
        &operator,
        case,
        json!({"action": "approve_extension"}),
    )
    .await;
    ok(&app, &lead, case, request(handle_due(&app, case).await)).await;
    let operator_again = act(
        &app,
        &operator,
        case,
        json!({"action": "approve_extension"}),
    )
    .await;
    assert_problem(operator_again, 403, "wrong_role").await;
    ok(
        &app,
        &supervisor,
        case,
        json!({"action": "approve_extension"}),
    )
    .await;
    // The category's cap (two by default) is reached.
    let third = act(&app, &lead, case, request(handle_due(&app, case).await)).await;
    assert_problem(third, 422, "extension_cap_reached").await;

    report_done(&app, &lead, case).await;
    // By default only the centre checks the fix.
    let by_reporter = act(&app, &reporter, case, json!({"action": "pass_check"})).await;
    assert_problem(by_reporter, 403, "wrong_role").await;
    let policy = json!({
        "parent_code": "03", "name_zh": "飞线充电", "name_en": "E-bike charged from a dangling cable",
        "service_code": "CS0301", "default_urgency": "urgent", "deadline_profile": "urgent",
        "sort_order": 31, "reporter_may_check": true, "max_extensions": 1,
    });
    let saved = app
        .client
        .put(app.url("/api/v1/admin/categories/0301"))
        .bearer_auth(&admin.token)
        .json(&policy)
        .send()
        .await
        .expect("category saved");
    assert_eq!(saved.status(), 204);
    ok(&app, &reporter, case, json!({"action": "pass_check"})).await;
    assert_eq!(state_of(&app, case).await, "closed");

    // Reopened within the window (重办) once the reporter is dissatisfied — here
    // told on the operator's call-back (回访) — the case works on under the new cap.
    let reopen = json!({"action": "reopen", "reason": "市民反映仍有飞线"});
    let unheard = act(&app, &operator, case, reopen.clone()).await;
    assert_problem(unheard, 422, "reporter_not_dissatisfied").await;
    ok(&app, &operator, case, json!({"action": "rate", "score": 2})).await;
    ok(&app, &operator, case, reopen).await;
    assert_eq!(state_of(&app, case).await, "in_progress");
    assert_eq!(load(&app, case).await.fields.rating, None, "rated afresh");
    let after_reopen = act(&app, &lead, case, request(handle_due(&app, case).await)).await;
    assert_problem(after_reopen, 422, "extension_cap_reached").await;
}

#[tokio::test]
async fn an_after_photo_taken_before_dispatch_flags_the_case_for_the_checker() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;
    let case = signed_case(&app, &operator, &reporter, &lead).await;
    // Its EXIF says 2026-05-12, at the case's own spot: accepted, but doubtful.
    let old_photo = app
        .photo(&lead.token, crate::helpers::fixture("street-12mp.jpg"))
        .await;
    ok(
        &app,
        &lead,
        case,
        json!({"action": "report_done", "after_photo_ids": [old_photo]}),
    )
    .await;
    let detail = app
        .get_json(&format!("/api/v1/cases/{case}"), Some(&operator.token))
        .await;
    assert_eq!(detail["state"], "awaiting_check");
    assert_eq!(
        detail["check_flags"],
        json!([{
            "flag": "taken_before_dispatch",
            "photo": old_photo,
            "taken_at": "2026-05-12T01:41:27Z",
        }])
    );
    let flagged = app
        .get_json("/api/v1/cases?flagged=true", Some(&operator.token))
        .await;
    assert_eq!(flagged["items"][0]["id"], case.to_string());
}

#[tokio::test]
async fn the_same_photo_is_no_proof_and_a_failed_check_is_rework() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;
    // The reporter's photo, uploaded again by the unit as "after".
    let bytes = jpeg(40, 30);
    let before = app.photo(&reporter.token, bytes.clone()).await;
    let report = app
        .post_json(
            "/api/v1/reports",
            Some(&reporter.token),
            &crate::helpers::report_body(&[before]),
        )
        .await;
    assert_eq!(report.status(), 201);
    let case = case_id(&report.json().await.expect("report"));
    ok(&app, &operator, case, json!({"action": "file"})).await;
    ok(
        &app,
        &operator,
        case,
        json!({"action": "dispatch", "lead_unit": LEAD}),
    )
    .await;
    ok(&app, &lead, case, json!({"action": "sign"})).await;
    let again = app.photo(&lead.token, bytes).await;
    let refused = act(
        &app,
        &lead,
        case,
        json!({"action": "report_done", "after_photo_ids": [again]}),
    )
    .await;
    assert_problem(refused, 422, "same_photo_as_before").await;
    let not_mine = act(
        &app,
        &lead,
        case,
        json!({"action": "report_done", "after_photo_ids": [before]}),
    )
    .await;
    assert_problem(not_mine, 422, "photo_unavailable").await;
    assert_eq!(state_of(&app, case).await, "in_progress");

    report_done(&app, &lead, case).await;
    ok(
        &app,
        &operator,
        case,
        json!({"action": "fail_check", "reason": "仍有线缆"}),
    )
    .await;
    let wf = load(&app, case).await;
    assert_eq!(wf.state.as_str(), "in_progress");
    assert_eq!(wf.fields.rework_count, 1);
    // Rework runs on the profile's rework limit, not the handle limit.
    let handle = wf
        .clocks
        .iter()
        .find(|c| c.phase.as_str() == "handle")
        .expect("a new handle clock");
    let profile = app
        .state
        .workflow
        .deadlines()
        .book()
        .profile_for(
            wf.named_profile.as_deref(),
            &wf.category_code,
            wf.fields.urgency,
        )
        .expect("profile")
        .clone();
    assert_eq!(handle.limit, profile.phases.rework);
}

#[tokio::test]
async fn suspension_pauses_every_clock_until_resumed() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let supervisor = app.user(Role::Supervisor).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;
    let case = suspension_requested_case(&app, &operator, &reporter, &lead, "等待产权人回国").await;
    assert_problem(
        act(
            &app,
            &operator,
            case,
            json!({"action": "approve_suspension"}),
        )
        .await,
        403,
        "wrong_role",
    )
    .await;
    ok(
        &app,
        &supervisor,
        case,
        json!({"action": "approve_suspension"}),
    )
    .await;
    let suspended = load(&app, case).await;
    assert_eq!(suspended.state.as_str(), "suspended");
    assert!(
        suspended
            .clocks
            .iter()
            .all(|c| c.status.as_str() == "paused")
    );
    ok(&app, &supervisor, case, json!({"action": "resume"})).await;
    let resumed = load(&app, case).await;
    assert_eq!(resumed.state.as_str(), "in_progress");
    assert!(
        resumed
            .clocks
            .iter()
            .all(|c| c.status.as_str() == "running")
    );
    assert!(resumed.clocks.iter().all(|c| c.pauses.len() == 1));
}

#[tokio::test]
async fn a_return_sends_the_case_back_for_dispatch() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;
    let case = dispatched_case(&app, &operator, &reporter).await;
    ok(
        &app,
        &lead,
        case,
        json!({"action": "request_return", "reason": "not_ours"}),
    )
    .await;
    assert_problem(
        act(
            &app,
            &lead,
            case,
            json!({"action": "request_return", "reason": "duplicate"}),
        )
        .await,
        409,
        "request_pending",
    )
    .await;
    ok(&app, &operator, case, json!({"action": "approve_return"})).await;
    let returned = load(&app, case).await;
    assert_eq!(returned.state.as_str(), "filed");
    assert!(returned.assignments.is_empty());
    // The units' clocks stopped; the case clock (办结) runs on, and dispatch starts again.
    let phases: Vec<&str> = returned.clocks.iter().map(|c| c.phase.as_str()).collect();
    assert_eq!(phases, ["resolve", "dispatch"], "{:?}", returned.clocks);
    // The former lead no longer sees the case.
    assert_hidden(&app, &format!("/api/v1/cases/{case}/timeline"), &lead).await;
    // Not a public event, but the state the reporter sees changed: the outbox
    // has it, and not the request or its refusal, which changed nothing.
    let queued = outbox_kinds(&app, case).await;
    assert_eq!(queued, ["submitted", "filed", "dispatched", "returned"]);

    // The approval is noted for the review of the routing rules.
    let returns = app
        .get_json("/api/v1/admin/rules/returns", Some(&operator.token))
        .await;
    let noted = returns
        .as_array()
        .expect("a list")
        .iter()
        .find(|r| r["case_id"] == case.to_string())
        .expect("the approved return is listed");
    assert_eq!(noted["unit"], LEAD);
    assert_eq!(noted["reason"], "not_ours");
    assert_eq!(noted["approved_by"], operator.id.to_string());
    assert_eq!(
        app.get("/api/v1/admin/rules/returns", Some(&lead.token))
            .await
            .status(),
        403
    );
}

#[tokio::test]
async fn a_co_unit_hands_back_its_share_and_the_case_stays_with_its_lead() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let co = app.user_of(Role::UnitStaff, CO).await;
    let case = dispatched_case(&app, &operator, &reporter).await;
    ok(
        &app,
        &co,
        case,
        json!({"action": "request_return", "reason": "not_ours"}),
    )
    .await;
    ok(&app, &operator, case, json!({"action": "approve_return"})).await;

    let after = load(&app, case).await;
    assert_eq!(after.state.as_str(), "dispatched");
    let units: Vec<&str> = after.assignments.iter().map(|a| a.unit.as_str()).collect();
    assert_eq!(units, [LEAD]);
    assert!(
        after.clocks.iter().all(|c| c.unit.is_none()),
        "the co-unit's sign clock stopped: {:?}",
        after.clocks
    );
    assert!(
        kinds(&app, &operator, case)
            .await
            .contains(&"co_unit_returned".to_owned())
    );
    // The former co-unit no longer sees the case; the return is up for rule review.
    assert_hidden(&app, &format!("/api/v1/cases/{case}"), &co).await;
    let returns = app
        .get_json("/api/v1/admin/rules/returns", Some(&operator.token))
        .await;
    let noted = returns
        .as_array()
        .expect("a list")
        .iter()
        .find(|r| r["case_id"] == case.to_string())
        .expect("the approved return is listed");
    assert_eq!(noted["unit"], CO);
    // The state stays, but who handles the case changed: the outbox says so.
    let queued = outbox_kinds(&app, case).await;
    assert_eq!(
        queued,
        ["submitted", "filed", "dispatched", "co_unit_returned"]
    );
}

/// A report whose automatic dispatch fails (here: its deadlines would fall past
/// every loaded calendar) is set aside for `RETRY_AFTER`, so it neither holds
/// back the reports behind it nor is retried on every pass; it stays submitted
/// for an operator, and is tried again once the wait is over.
#[tokio::test]
async fn a_report_that_cannot_be_dispatched_automatically_is_set_aside() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let case = case_id(&app.file_report(&reporter.token).await);
    let workflow = app.state.workflow.as_ref();
    let repo = app.state.repo.as_ref();
    let beyond_every_calendar = "2099-06-01T02:00:00Z"
        .parse::<chrono::DateTime<chrono::Utc>>()
        .expect("time");
    let candidates = async |at| {
        repo.auto_dispatch_candidates(at, 100)
            .await
            .expect("candidates")
    };
    let pass = async |at| {
        auto_dispatch::run_once(workflow, repo, at)
            .await
            .expect("pass")
    };
    assert_eq!(candidates(beyond_every_calendar).await, vec![case]);
    assert_eq!(pass(beyond_every_calendar).await, 0);
    assert_eq!(state_of(&app, case).await, "submitted");
    let set_aside = candidates(beyond_every_calendar).await;
    assert!(set_aside.is_empty(), "{set_aside:?}");
    let later = beyond_every_calendar + auto_dispatch::RETRY_AFTER;
    assert_eq!(candidates(later).await, vec![case]);
    // Tried again then, and set aside again while the cause lasts.
    assert_eq!(pass(later).await, 0);
    let again = candidates(later).await;
    assert!(again.is_empty(), "{again:?}");
    assert_eq!(state_of(&app, case).await, "submitted");
    // Any change to reference data (next year's calendar, a unit, a rule) may
    // be what it waited for, so it is tried again at the next pass.
    let admin = app.user(Role::Admin).await;
    let renamed = app
        .client
        .put(app.url(&format!("/api/v1/admin/units/{LEAD}")))
        .bearer_auth(&admin.token)
        .json(&json!({"name": "城管局", "kind": "department"}))
        .send()
        .await
        .expect("put");
    assert_eq!(renamed.status(), 200);
    assert_eq!(candidates(later).await, vec![case]);
    // A pass that counted on reference data older than the store's does not
    // set anything aside: the newer data may be what the report needed.
    let current = workflow.deadlines().version();
    let stale_pass = repo
        .defer_auto_dispatch(&[case], later + auto_dispatch::RETRY_AFTER, current - 1)
        .await
        .expect("defer");
    assert_eq!(stale_pass, 0);
    assert_eq!(
        repo.defer_auto_dispatch(&[case], later + auto_dispatch::RETRY_AFTER, current)
            .await
            .expect("defer"),
        1
    );
}

#[tokio::test]
async fn routed_reports_are_filed_and_dispatched_automatically() {
    let app = spawn_demo_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let case = case_id(&app.file_report(&reporter.token).await);
    let routed_lead = app
        .get_json(&format!("/api/v1/reports/{case}"), Some(&operator.token))
        .await["routing"]["lead_unit"]
        .clone();
    assert!(routed_lead.is_string(), "the demo city routes this report");
    let mut state = String::new();
    for _ in 0..100 {
        state = state_of(&app, case).await;
        if state == "dispatched" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(state, "dispatched");
    let timeline = app
        .get_json(
            &format!("/api/v1/cases/{case}/timeline"),
            Some(&operator.token),
        )
        .await;
    let dispatched = timeline["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["kind"] == "dispatched")
        .expect("dispatched event")
        .clone();
    assert_eq!(dispatched["actor_role"], "system");
    assert_eq!(dispatched["data"]["lead_unit"], routed_lead);
    let deadlines = app
        .get_json(
            &format!("/api/v1/cases/{case}/deadlines"),
            Some(&operator.token),
        )
        .await;
    let sign = deadlines["clocks"]
        .as_array()
        .expect("clocks")
        .iter()
        .find(|c| c["phase"] == "sign" && c["unit"].is_null())
        .unwrap_or_else(|| panic!("sign clock: {deadlines}"))
        .clone();
    assert_eq!(sign["status"], "running");
    // The version names every loaded year, so a recomputation can tell (later
    // years than 2026 are the tests' stand-ins until the next is published).
    let version = sign["calendar_version"].as_str().expect("calendar version");
    assert!(
        version.starts_with("CN:2025@2025-v1,2026@2026-v1"),
        "{version}"
    );
    assert_eq!(sign["explanation"]["calendar_jurisdiction"], "CN");
}

#[tokio::test]
async fn an_action_read_before_a_sweep_does_not_undo_its_events() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;
    let case = suspension_requested_case(&app, &operator, &reporter, &lead, "等待产权人回国").await;
    let supervisor = Actor::new(Uuid::now_v7(), Role::Supervisor, None);
    let repo = app.state.repo.as_ref();
    let ttl = chrono::Duration::seconds(60);

    // The approval reads the case; a sweep a month on gives the running clocks
    // their warning and overdue events; only then is the approval saved. The
    // sweep takes a connection of its own, so the session gives its back.
    let mut read_before = open(&app, case).await;
    read_before.release();
    let later = read_before
        .case()
        .clocks
        .iter()
        .map(|c| c.due_at)
        .max()
        .expect("running clocks")
        + chrono::Duration::minutes(1);
    let swept = sweep_once(repo, "sweeper", later, 100, ttl)
        .await
        .expect("sweep")
        .expect("the lease");
    assert!(swept.overdue >= 1, "{swept:?}");
    act_on(
        &app,
        read_before,
        &supervisor,
        Action::ApproveSuspension,
        later,
    )
    .await
    .expect("the sweep does not change the case's version");
    act_on(
        &app,
        open(&app, case).await,
        &supervisor,
        Action::Resume,
        later + chrono::Duration::hours(1),
    )
    .await
    .expect("resumed");

    // The resumed clocks keep their marks, so a later sweep owes them nothing.
    let again = sweep_once(repo, "sweeper", later + chrono::Duration::days(1), 100, ttl)
        .await
        .expect("sweep again")
        .expect("the lease");
    assert_eq!(again.clocks, 0, "{again:?}");
    let events = repo.case_events(case).await.expect("events");
    for clock in repo.case_clocks(case).await.expect("clocks") {
        let id = clock.id.to_string();
        for kind in ["deadline_warning", "deadline_overdue"] {
            let count = events
                .iter()
                .filter(|e| e.kind == kind && e.data["clock_id"] == id.as_str())
                .count();
            assert!(count <= 1, "{kind} written {count} times for clock {id}");
        }
    }
}

#[tokio::test]
async fn overdue_escalates_to_the_units_parent_and_the_dispatch_centre() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    // The street office answers to the city management bureau (demo/units.toml).
    let case = dispatched_to(&app, &operator, &reporter, OTHER).await;
    let due = load(&app, case)
        .await
        .clocks
        .iter()
        .map(|c| c.due_at)
        .max()
        .expect("the sign and case clocks");
    let repo = app.state.repo.as_ref();
    sweep_once(
        repo,
        "sweeper",
        due + chrono::Duration::minutes(1),
        100,
        chrono::Duration::seconds(60),
    )
    .await
    .expect("sweep")
    .expect("the lease");
    let events = repo.case_events(case).await.expect("events");
    let escalated: Vec<&Value> = events
        .iter()
        .filter(|e| e.kind == "escalated")
        .map(|e| &e.data)
        .collect();
    let mut phases: Vec<&str> = escalated
        .iter()
        .map(|e| e["phase"].as_str().unwrap_or_default())
        .collect();
    phases.sort_unstable();
    assert_eq!(phases, ["resolve", "sign"], "{escalated:?}");
    for e in escalated {
        assert_eq!(e["unit"], OTHER);
        assert_eq!(e["to"], json!(["DEPT-CGJ", "dispatch_centre"]));
    }
}

#[tokio::test]
async fn two_sweepers_give_every_clock_its_events_exactly_once() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let mut cases = Vec::new();
    for _ in 0..6 {
        cases.push(dispatched_case(&app, &operator, &reporter).await);
    }
    // A month on, every running clock is overdue: the case's sign clock and
    // case clock (办结), and the co-unit's sign clock.
    let later = now() + chrono::Duration::days(30);
    let repo = app.state.repo.as_ref();
    let ttl = chrono::Duration::seconds(60);
    // A sweep cut off mid-way (as by a crash) leaves nothing half-done.
    let _ = tokio::time::timeout(
        Duration::from_micros(50),
        sweep_once(repo, "sweeper-a", later, 2, ttl),
    )
    .await;
    let (a, b) = tokio::join!(
        sweep_once(repo, "sweeper-a", later, 2, ttl),
        sweep_once(repo, "sweeper-b", later, 2, ttl),
    );
    let (a, b) = (a.expect("sweep a"), b.expect("sweep b"));
    // On SQLite the one that finds the other's lease does nothing.
    let holder = if a.is_some() {
        "sweeper-a"
    } else {
        "sweeper-b"
    };
    let again = sweep_once(repo, holder, later, 2, ttl)
        .await
        .expect("sweep again")
        .expect("the lease");
    assert_eq!(again.clocks, 0, "nothing is due twice");

    let mut warnings = 0;
    let mut overdue = 0;
    for case in &cases {
        let events = repo.case_events(*case).await.expect("events");
        let clocks = repo.case_clocks(*case).await.expect("clocks");
        let running: Vec<_> = clocks
            .iter()
            .filter(|c| c.status.as_str() == "running")
            .collect();
        assert_eq!(running.len(), 3, "sign, case and co-unit sign clocks");
        for clock in running {
            let id = clock.id.to_string();
            for kind in ["deadline_warning", "deadline_overdue", "escalated"] {
                let count = events
                    .iter()
                    .filter(|e| e.kind == kind && e.data["clock_id"] == id.as_str())
                    .count();
                assert_eq!(count, 1, "{kind} for clock {id}");
            }
            assert!(clock.overdue_at.is_some() && clock.warned_at.is_some());
        }
        let escalated = events
            .iter()
            .find(|e| e.kind == "escalated" && e.data["unit"] == LEAD)
            .expect("the lead's escalation");
        assert_eq!(escalated.data["to"], json!(["dispatch_centre"]));
        let co_escalated = events
            .iter()
            .find(|e| e.kind == "escalated" && e.data["unit"] == CO)
            .expect("the co-unit's escalation");
        assert!(
            co_escalated.data["to"]
                .as_array()
                .expect("to")
                .contains(&json!("dispatch_centre"))
        );
        warnings += events
            .iter()
            .filter(|e| e.kind == "deadline_warning")
            .count();
        overdue += events
            .iter()
            .filter(|e| e.kind == "deadline_overdue")
            .count();
    }
    assert_eq!(warnings, 18);
    assert_eq!(overdue, 18);
    assert!(a.map_or(0, |a| a.overdue) + b.map_or(0, |b| b.overdue) <= 18);
    // Deadline events reach the outbox with the state changes.
    let outbox = repo.outbox(0, 1000).await.expect("outbox");
    assert_eq!(
        outbox
            .iter()
            .filter(|e| e.kind == "deadline_overdue")
            .count(),
        18
    );
}

#[tokio::test]
async fn deadline_preview_counts_the_national_day_holiday_and_refuses_past_the_calendar() {
    let app = spawn_app_with_shipped_calendars(|_| {}).await;
    let operator = app.user(Role::Operator).await;
    let preview = |body: Value| {
        let app = &app;
        let token = operator.token.clone();
        async move {
            app.post_json("/api/v1/deadlines/preview", Some(&token), &body)
                .await
        }
    };
    // Received Wed 30 Sep (not counted); 1–7 Oct are holidays; Thu 8, Fri 9 and
    // the make-up Saturday 10 Oct are the three working days.
    let response =
        preview(json!({"start": "2026-09-30T09:00:00+08:00", "unit": "work_days", "amount": 3}))
            .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["due_at"], "2026-10-10T17:30:00+08:00");
    assert_eq!(body["explanation"]["receipt_day"], "2026-09-30");

    let beyond =
        preview(json!({"start": "2026-12-30T09:00:00+08:00", "unit": "work_days", "amount": 5}))
            .await;
    let problem = assert_problem(beyond, 422, "beyond_calendar").await;
    assert!(
        problem["detail"]
            .as_str()
            .expect("detail")
            .contains("2026-12-31")
    );
    let unknown = preview(json!({"start": "2026-09-30T09:00:00+08:00", "unit": "work_days", "amount": 3, "jurisdiction": "XX"})).await;
    assert_problem(unknown, 422, "unknown_jurisdiction").await;
    let citizen = app.citizen().await;
    let response = app
        .post_json(
            "/api/v1/deadlines/preview",
            Some(&citizen.token),
            &json!({"start": "2026-09-30T09:00:00+08:00", "unit": "work_days", "amount": 3}),
        )
        .await;
    assert_problem(response, 403, "forbidden").await;
}

#[tokio::test]
async fn admins_load_calendar_years_as_csv_or_json() {
    let app = spawn_app_with_shipped_calendars(|_| {}).await;
    let admin = app.user(Role::Admin).await;
    let operator = app.user(Role::Operator).await;
    let put = |body: &'static str, content_type: &'static str, token: String| {
        let request = app
            .client
            .put(app.url("/api/v1/admin/calendars"))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body);
        async move { request.send().await.expect("request") }
    };
    let csv = "jurisdiction,date,kind,name\n# version: 2027-test\nCN,2027-01-01,holiday,元旦\nCN,2027-02-06,workday,\n";
    let loaded = put(csv, "text/csv", admin.token.clone()).await;
    assert_eq!(loaded.status(), 200);
    let body: Value = loaded.json().await.expect("JSON");
    assert_eq!(body["loaded"], json!(["CN/2027"]));
    // The audit log keeps the document loaded, for when the year is replaced.
    let audit = app
        .get_json("/api/v1/admin/audit?limit=10", Some(&admin.token))
        .await;
    let entry = audit
        .as_array()
        .expect("a list")
        .iter()
        .find(|e| e["entity"] == "calendar_year" && e["entity_id"] == "CN/2027")
        .expect("the load is audited");
    assert_eq!(entry["data"]["version"], "2027-test", "{entry}");
    assert_eq!(
        entry["data"]["document"]["holidays"],
        json!(["2027-01-01"]),
        "{entry}"
    );
    assert_eq!(
        entry["data"]["document"]["workdays"],
        json!(["2027-02-06"]),
        "{entry}"
    );

    // 2027 now counts: the preview reaches past New Year.
    let response = app
        .post_json(
            "/api/v1/deadlines/preview",
            Some(&operator.token),
            &json!({"start": "2026-12-30T09:00:00+08:00", "unit": "work_days", "amount": 5}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("JSON");
    // 31 Dec, then 1 Jan is a holiday, 4–7 Jan: due Thu 7 Jan.
    assert_eq!(body["due_at"], "2027-01-07T17:30:00+08:00");

    // A notice whose break starts on 31 December: that row stays with 2027
    // and applies to the stored 2026, which is neither replaced nor shrunk.
    let from_new_years_eve = "jurisdiction,date,kind\n# version: 2027-test-2\n\
                              CN,2026-12-31,holiday\nCN,2027-01-01,holiday\nCN,2027-02-06,workday\n";
    let loaded = put(from_new_years_eve, "text/csv", admin.token.clone()).await;
    assert_eq!(loaded.status(), 200);
    let body: Value = loaded.json().await.expect("JSON");
    assert_eq!(body["loaded"], json!(["CN/2027"]));
    let response = app
        .post_json(
            "/api/v1/deadlines/preview",
            Some(&operator.token),
            &json!({"start": "2026-12-30T09:00:00+08:00", "unit": "work_days", "amount": 5}),
        )
        .await;
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["due_at"], "2027-01-08T17:30:00+08:00", "{body}");

    let gap = put(
        r#"{"jurisdiction": "CN", "year": 2029}"#,
        "application/json",
        admin.token.clone(),
    )
    .await;
    assert_problem(gap, 422, "invalid_calendar").await;
    let typo = put(
        r#"{"jurisdiction": "XX", "year": 20227}"#,
        "application/json",
        admin.token.clone(),
    )
    .await;
    let problem = assert_problem(typo, 422, "invalid_calendar").await;
    assert_detail_mentions(&problem, "2000 to 2099");
    let broken = put(
        "jurisdiction,date,kind\nCN,2027-13-01,holiday\n",
        "text/csv",
        admin.token.clone(),
    )
    .await;
    assert_problem(broken, 422, "invalid_calendar").await;
    let nameless = put(
        r#"[{"jurisdiction": "", "year": 2027}]"#,
        "application/json",
        admin.token.clone(),
    )
    .await;
    let problem = assert_problem(nameless, 422, "invalid_calendar").await;
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("calendar 2027") && detail.contains(r#"jurisdiction """#),
        "{problem}"
    );
    let wrong_type = put("x", "text/plain", admin.token.clone()).await;
    assert_problem(wrong_type, 415, "unsupported_media_type").await;
    assert_problem(
        put(csv, "text/csv", operator.token.clone()).await,
        403,
        "forbidden",
    )
    .await;

    let years = app
        .get_json("/api/v1/admin/calendars", Some(&operator.token))
        .await;
    let names: Vec<String> = years
        .as_array()
        .expect("list")
        .iter()
        .map(|y| format!("{}/{}", y["jurisdiction"].as_str().unwrap(), y["year"]))
        .collect();
    assert_eq!(names, ["CN/2025", "CN/2026", "CN/2027"]);
}

#[tokio::test]
async fn deadline_profiles_are_administered_and_the_default_stays() {
    let app = spawn_app().await;
    let admin = app.user(Role::Admin).await;
    let profile = json!({
        "category_prefix": "03",
        "urgency": "normal",
        "phases": {
            "sign": {"amount": 1, "unit": "work_hours"},
            "handle": {"amount": 2, "unit": "work_days"},
            "check": {"amount": 1, "unit": "work_days"},
            "rework": {"amount": 1, "unit": "work_days"}
        }
    });
    let put = |id: &str, body: &Value| {
        app.client
            .put(app.url(&format!("/api/v1/admin/deadline-profiles/{id}")))
            .bearer_auth(&admin.token)
            .json(body)
            .send()
    };
    assert_eq!(
        put("municipal-03", &profile).await.expect("put").status(),
        204
    );
    // Padding is trimmed, so " 03 " is the same prefix as "03".
    let mut padded = profile.clone();
    padded["category_prefix"] = json!(" 03 ");
    let clash = put("another-03", &padded).await.expect("put");
    assert_problem(clash, 409, "profile_conflict").await;
    // Every phase is checked, the case's own resolve limit included (a limit
    // of millions would fail every case filed under the profile).
    for (phase, amount) in [
        ("handle", 0),
        ("resolve", 0),
        ("resolve", 2_147_483_648_u64),
    ] {
        let mut bad = profile.clone();
        bad["phases"][phase] = json!({"amount": amount, "unit": "work_days"});
        let problem =
            assert_problem(put("bad", &bad).await.expect("put"), 422, "invalid_limit").await;
        assert_eq!(problem["field"], format!("phases.{phase}"), "{problem}");
    }
    for prefix in ["030", "030101", "", "  "] {
        let mut odd = profile.clone();
        odd["category_prefix"] = json!(prefix);
        assert_problem(
            put("odd", &odd).await.expect("put"),
            422,
            "invalid_category_prefix",
        )
        .await;
    }
    let mut slow_rework = profile.clone();
    slow_rework["phases"]["rework"] = json!({"amount": 2, "unit": "work_days"});
    assert_problem(
        put("slow-rework", &slow_rework).await.expect("put"),
        422,
        "rework_not_shorter",
    )
    .await;

    let list = app
        .get_json("/api/v1/admin/deadline-profiles", Some(&admin.token))
        .await;
    let ours = list
        .as_array()
        .expect("list")
        .iter()
        .find(|p| p["id"] == "municipal-03")
        .expect("stored");
    assert_eq!(
        ours["phases"]["dispatch"],
        json!({"amount": 2, "unit": "work_hours"})
    );
    // The deadline book follows at once.
    let book = app.state.workflow.deadlines().book();
    let picked = book
        .profile_for(None, "0301", civicsnap::domain::deadline::Urgency::Normal)
        .expect("a profile");
    assert_eq!(picked.id, "municipal-03");

    let delete = |id: &str| {
        app.client
            .delete(app.url(&format!("/api/v1/admin/deadline-profiles/{id}")))
            .bearer_auth(&admin.token)
            .send()
    };
    assert_problem(
        delete("default-normal").await.expect("delete"),
        409,
        "profile_in_use",
    )
    .await;
    assert_eq!(delete("municipal-03").await.expect("delete").status(), 204);
    assert_problem(
        delete("municipal-03").await.expect("delete"),
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn a_confidential_reporter_stays_hidden_in_the_staff_timeline() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let photo = app.photo(&reporter.token, jpeg(40, 30)).await;
    let mut body = crate::helpers::report_body(&[photo]);
    body["confidential"] = json!(true);
    let response = app
        .post_json("/api/v1/reports", Some(&reporter.token), &body)
        .await;
    assert_eq!(response.status(), 201);
    let case = case_id(&response.json().await.expect("report"));
    ok(&app, &operator, case, json!({"action": "file"})).await;
    let timeline = app
        .get_json(
            &format!("/api/v1/cases/{case}/timeline"),
            Some(&operator.token),
        )
        .await;
    let items = timeline["items"].as_array().expect("items");
    let submitted = items
        .iter()
        .find(|e| e["kind"] == "submitted")
        .expect("submitted");
    assert!(submitted.get("actor_id").is_none(), "{submitted}");
    let filed = items.iter().find(|e| e["kind"] == "filed").expect("filed");
    assert_eq!(filed["actor_id"], operator.id.to_string());
}

#[tokio::test]
async fn a_deactivated_unit_is_not_given_cases() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let admin = app.user(Role::Admin).await;
    let deactivate = |code: &'static str, name: &'static str, kind: &'static str| {
        app.client
            .put(app.url(&format!("/api/v1/admin/units/{code}")))
            .bearer_auth(&admin.token)
            .json(&json!({"name": name, "kind": kind, "active": false}))
            .send()
    };
    // Rules still route cable reports to the power company: it stays active.
    let problem = assert_problem(
        deactivate(CO, "供电公司", "enterprise").await.unwrap(),
        409,
        "unit_in_use",
    )
    .await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("57859971-5c0a-51b8-a95e-b68e55707575"),
        "{problem}"
    );
    // A grid team no rule names can go.
    let idle = "GT-320582005001";
    assert_eq!(
        deactivate(idle, "网格队", "grid_team")
            .await
            .unwrap()
            .status(),
        200
    );
    let rule =
        json!({"category_prefix": "0301", "lead_unit": LEAD, "co_units": [idle], "priority": 7});
    let refused = app
        .post_json("/api/v1/admin/rules", Some(&admin.token), &rule)
        .await;
    let problem = assert_problem(refused, 422, "inactive_unit").await;
    assert_eq!(problem["field"], "co_units");

    let case = case_id(&app.file_report(&reporter.token).await);
    ok(&app, &operator, case, json!({"action": "file"})).await;
    assert_problem(
        act(
            &app,
            &operator,
            case,
            json!({"action": "dispatch", "lead_unit": LEAD, "co_units": [idle]}),
        )
        .await,
        422,
        "inactive_unit",
    )
    .await;
    assert_eq!(state_of(&app, case).await, "filed");
    ok(
        &app,
        &operator,
        case,
        json!({"action": "dispatch", "lead_unit": LEAD}),
    )
    .await;
    assert_eq!(state_of(&app, case).await, "dispatched");
}

/// A reporter's actions per hour are capped, so a script cannot fill a case's
/// timeline; staff are not capped.
#[tokio::test]
async fn a_citizens_actions_are_capped_per_hour() {
    let app = manual_app_with(|s| s.workflow.citizen_actions_per_hour = 2).await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let case = case_id(&app.file_report(&reporter.token).await);
    for text in ["有人处理吗？", "还在充电"] {
        ok(
            &app,
            &reporter,
            case,
            json!({"action": "comment", "text": text}),
        )
        .await;
    }
    let third = act(
        &app,
        &reporter,
        case,
        json!({"action": "comment", "text": "？"}),
    )
    .await;
    assert!(third.headers().contains_key("retry-after"));
    assert_problem(third, 429, "rate_limited").await;
    for _ in 0..3 {
        ok(
            &app,
            &operator,
            case,
            json!({"action": "comment", "text": "已转派"}),
        )
        .await;
    }
}

/// The reporter's timeline and the case's outbox rows, as text to search.
async fn seen_outside(app: &TestApp, reporter: &Caller, case: Uuid) -> String {
    let timeline = app
        .get_json(
            &format!("/api/v1/cases/{case}/timeline"),
            Some(&reporter.token),
        )
        .await;
    let outbox = app.state.repo.outbox(0, 1000).await.expect("outbox");
    let events: Vec<String> = outbox
        .iter()
        .filter(|e| e.case_id == case)
        .map(|e| format!("{} {}", e.kind, e.payload))
        .collect();
    format!("{timeline} {events:?}")
}

#[tokio::test]
async fn a_units_request_stays_internal_when_an_event_seen_outside_clears_it() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let supervisor = app.user(Role::Supervisor).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;

    // An extension still pending when the unit reports done.
    let case = signed_case(&app, &operator, &reporter, &lead).await;
    let new_due = handle_due(&app, case).await + chrono::Duration::days(1);
    ok(
        &app,
        &lead,
        case,
        json!({"action": "request_extension", "reason": "内部：王科长要求拖延", "new_due": new_due}),
    )
    .await;
    report_done(&app, &lead, case).await;
    let seen = seen_outside(&app, &reporter, case).await;
    assert!(seen.contains("reported_done"), "{seen}");
    assert!(!seen.contains("王科长"), "{seen}");

    // A suspension, approved (public), then the case cancelled (public).
    let case =
        suspension_requested_case(&app, &operator, &reporter, &lead, "内部：等李主任批示").await;
    ok(
        &app,
        &supervisor,
        case,
        json!({"action": "approve_suspension"}),
    )
    .await;
    ok(
        &app,
        &supervisor,
        case,
        json!({"action": "cancel", "reason": "重复上报"}),
    )
    .await;
    let seen = seen_outside(&app, &reporter, case).await;
    assert!(
        seen.contains("suspended") && seen.contains("cancelled"),
        "{seen}"
    );
    assert!(!seen.contains("李主任"), "{seen}");

    // A request cleared by a reassignment: internal, but in the outbox.
    let reassigned =
        suspension_requested_case(&app, &operator, &reporter, &lead, "内部：等张处长回话").await;
    ok(
        &app,
        &operator,
        reassigned,
        json!({"action": "reassign", "lead_unit": OTHER}),
    )
    .await;
    let seen = seen_outside(&app, &reporter, reassigned).await;
    assert!(seen.contains("reassigned"), "{seen}");
    assert!(!seen.contains("张处长"), "{seen}");

    // Staff still read the request in its own, internal, event.
    let staff = app
        .get_json(
            &format!("/api/v1/cases/{case}/timeline"),
            Some(&operator.token),
        )
        .await;
    assert!(staff.to_string().contains("李主任"), "{staff}");
}

#[tokio::test]
async fn only_the_reporters_photos_are_the_before_an_after_photo_is_compared_with() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;
    let co = app.user_of(Role::UnitStaff, CO).await;
    // The co-unit's proof and the lead's show the same repaired spot
    // (`report_done` uploads the same picture each time).
    let case = dispatched_case(&app, &operator, &reporter).await;
    ok(&app, &lead, case, json!({"action": "sign"})).await;
    ok(&app, &co, case, json!({"action": "sign"})).await;
    report_done(&app, &co, case).await;
    report_done(&app, &lead, case).await;

    // After a failed check, the new proof is not judged against the first.
    let case = signed_case(&app, &operator, &reporter, &lead).await;
    report_done(&app, &lead, case).await;
    ok(
        &app,
        &operator,
        case,
        json!({"action": "fail_check", "reason": "路面未清理干净"}),
    )
    .await;
    report_done(&app, &lead, case).await;
}

/// 判重 links a duplicate to the case that is handled: a case merged away is
/// no master, or two reports could be each other's duplicate and neither be
/// handled.
#[tokio::test]
async fn a_duplicate_is_merged_only_into_a_case() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let a = case_id(&app.file_report(&reporter.token).await);
    let b = case_id(&app.file_report(&reporter.token).await);
    let unknown = act(
        &app,
        &operator,
        a,
        json!({"action": "merge", "master": Uuid::now_v7()}),
    )
    .await;
    assert_problem(unknown, 422, "unknown_case").await;
    ok(&app, &operator, a, json!({"action": "merge", "master": b})).await;
    assert_eq!(state_of(&app, a).await, "not_filed");
    let back = act(&app, &operator, b, json!({"action": "merge", "master": a})).await;
    let problem = assert_problem(back, 422, "invalid_master").await;
    assert_detail_mentions(&problem, "not_filed");
    assert_eq!(state_of(&app, b).await, "submitted", "nothing changed");
}

/// The check (核查) after a unit reports done is the centre's inspectors' and
/// operators' work: overdue, it is not the parent of the finished unit's to chase.
#[tokio::test]
async fn an_overdue_check_is_escalated_to_the_centre_alone() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let street = app.user_of(Role::UnitStaff, OTHER).await;
    let case = dispatched_to(&app, &operator, &reporter, OTHER).await;
    ok(&app, &street, case, json!({"action": "sign"})).await;
    report_done(&app, &street, case).await;
    let check = load(&app, case)
        .await
        .clocks
        .into_iter()
        .find(|c| c.phase.as_str() == "check")
        .expect("the check clock");
    let repo = app.state.repo.as_ref();
    sweep_once(
        repo,
        "sweeper",
        check.due_at + chrono::Duration::minutes(1),
        100,
        chrono::Duration::seconds(60),
    )
    .await
    .expect("sweep")
    .expect("the lease");
    let events = repo.case_events(case).await.expect("events");
    let escalated: Vec<_> = events
        .iter()
        .filter(|e| e.kind == "escalated" && e.data["clock_id"] == check.id.to_string().as_str())
        .collect();
    assert_eq!(escalated.len(), 1);
    assert_eq!(
        escalated[0].data["to"],
        json!(["dispatch_centre"]),
        "the overdue check escalated as {}",
        escalated[0].data
    );
}

/// The preview's start is an instant a client sends like any other.
#[tokio::test]
async fn the_deadline_preview_refuses_a_leap_second_start() {
    let app = spawn_app_with_shipped_calendars(|_| {}).await;
    let operator = app.user(Role::Operator).await;
    let response = app
        .post_json(
            "/api/v1/deadlines/preview",
            Some(&operator.token),
            &json!({"start": "2026-06-01T03:11:60Z", "unit": "natural_hours", "amount": 1}),
        )
        .await;
    let problem = assert_problem(response, 422, "invalid_body").await;
    assert_detail_mentions(&problem, "leap second");
}
