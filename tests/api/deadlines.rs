//! The admin side of deadlines: calendar loads and deadline profiles.

use civicsnap::domain::deadline::{Calendar, CalendarYear};
use civicsnap::domain::role::Role;
use serde_json::{Value, json};

use crate::helpers::*;

async fn put_calendar(app: &TestApp, token: &str, body: String) -> reqwest::Response {
    app.put_calendar(token, "application/json", body).await
}

fn shipped_2026() -> Value {
    serde_json::from_str(include_str!("../../calendars/cn-2026.json")).expect("shipped 2026")
}

async fn preview(app: &TestApp, token: &str, jurisdiction: &str, start: &str) -> Value {
    let body =
        json!({"start": start, "unit": "work_days", "amount": 3, "jurisdiction": jurisdiction});
    app.post_json("/api/v1/deadlines/preview", Some(token), &body)
        .await
        .json()
        .await
        .expect("preview")
}

#[tokio::test]
async fn two_loads_at_once_cannot_leave_a_calendar_that_does_not_build() {
    // Each passes against the years stored before the other: 2026 gains a
    // holiday on 12-27, which 2027 names a make-up workday.
    let mut y2026 = shipped_2026();
    y2026["version"] = json!("2026-v2");
    y2026["holidays"]
        .as_array_mut()
        .expect("holidays")
        .push(json!("2026-12-27"));
    let y2027 = json!({"jurisdiction": "CN", "year": 2027, "version": "2027-v1",
                       "holidays": ["2027-01-01"], "workdays": ["2026-12-27"]});
    for _ in 0..3 {
        let app = spawn_app_with_shipped_calendars(|_| {}).await;
        let admin = app.user(Role::Admin).await;
        let (a, b) = tokio::join!(
            put_calendar(&app, &admin.token, y2026.to_string()),
            put_calendar(&app, &admin.token, y2027.to_string())
        );
        let mut statuses = [a.status().as_u16(), b.status().as_u16()];
        statuses.sort_unstable();
        assert_eq!(
            statuses,
            [200, 422],
            "one load passes, the other is refused"
        );
        let stored: Vec<CalendarYear> = app
            .state
            .repo
            .calendar_years()
            .await
            .expect("read")
            .into_iter()
            .map(|s| s.year)
            .filter(|y| y.jurisdiction == "CN")
            .collect();
        assert!(Calendar::from_parsed(stored).is_ok());
    }
}

#[tokio::test]
async fn a_version_names_one_set_of_days() {
    let app = spawn_app_with_shipped_calendars(|_| {}).await;
    let admin = app.user(Role::Admin).await;
    // The shipped 2026 again under its own version, with a day more.
    let mut changed = shipped_2026();
    changed["holidays"]
        .as_array_mut()
        .expect("holidays")
        .push(json!("2026-06-02"));
    let response = put_calendar(&app, &admin.token, changed.to_string()).await;
    let problem = assert_problem(response, 422, "invalid_calendar").await;
    assert_detail_mentions(&problem, "version");
    // The same days under the same version load again.
    let same = put_calendar(&app, &admin.token, shipped_2026().to_string()).await;
    assert_eq!(same.status(), 200);

    // Years sent without a version are named after their days, so two
    // different loads are told apart in every explanation.
    let plain = json!({"jurisdiction": "TEST", "year": 2030});
    assert_eq!(
        put_calendar(&app, &admin.token, plain.to_string())
            .await
            .status(),
        200
    );
    let before = preview(&app, &admin.token, "TEST", "2030-01-07T09:00:00+08:00").await;
    let corrected = json!({"jurisdiction": "TEST", "year": 2030, "holidays": ["2030-01-08"]});
    assert_eq!(
        put_calendar(&app, &admin.token, corrected.to_string())
            .await
            .status(),
        200
    );
    let after = preview(&app, &admin.token, "TEST", "2030-01-07T09:00:00+08:00").await;
    assert_ne!(before["due_at"], after["due_at"]);
    let version = |v: &Value| {
        v["explanation"]["calendar_version"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };
    assert!(version(&before).starts_with("TEST:2030@days-"), "{before}");
    assert_ne!(version(&before), version(&after));
}

#[tokio::test]
async fn a_date_listed_twice_is_refused_so_a_fragment_cannot_pass_for_a_year() {
    let app = spawn_app_with_shipped_calendars(|_| {}).await;
    let admin = app.user(Role::Admin).await;
    let fragment = json!({"jurisdiction": "CN", "year": 2026, "version": "fragment",
                          "holidays": vec!["2026-10-01"; 20]});
    let response = put_calendar(&app, &admin.token, fragment.to_string()).await;
    let problem = assert_problem(response, 422, "invalid_calendar").await;
    assert_detail_mentions(&problem, "listed twice");
    let spring_festival = chrono::NaiveDate::from_ymd_opt(2026, 2, 17).expect("a date");
    let book = app.state.workflow.deadlines().book();
    let calendar = book.calculator(None).expect("CN").calendar().clone();
    assert!(!calendar.is_working_day(spring_festival));
}

async fn put_profile(app: &TestApp, token: &str, id: &str, body: &Value) -> reqwest::Response {
    app.client
        .put(app.url(&format!("/api/v1/admin/deadline-profiles/{id}")))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("request")
}

fn phases() -> Value {
    json!({
        "sign": {"amount": 2, "unit": "work_hours"},
        "handle": {"amount": 3, "unit": "work_days"},
        "check": {"amount": 1, "unit": "work_days"},
        "rework": {"amount": 2, "unit": "work_days"}
    })
}

#[tokio::test]
async fn the_default_profile_keeps_its_place_and_limits_stay_within_a_year() {
    let app = spawn_app().await;
    let admin = app.user(Role::Admin).await;
    let moved = json!({"category_prefix": "02", "urgency": "normal", "phases": phases()});
    let response = put_profile(&app, &admin.token, "default-normal", &moved).await;
    assert_problem(response, 409, "profile_in_use").await;
    // Its limits may change.
    let kept = json!({"category_prefix": "*", "urgency": "normal", "phases": phases()});
    assert_eq!(
        put_profile(&app, &admin.token, "default-normal", &kept)
            .await
            .status(),
        204
    );

    for (limit, most) in [
        ("work_days", 250),
        ("work_hours", 2000),
        ("natural_hours", 8784),
    ] {
        let mut long = phases();
        long["resolve"] = json!({"amount": most, "unit": limit});
        let body = json!({"category_prefix": "03", "urgency": "normal", "phases": long});
        assert_eq!(
            put_profile(&app, &admin.token, "long", &body)
                .await
                .status(),
            204,
            "{limit}"
        );
        let mut longer = phases();
        longer["resolve"] = json!({"amount": most + 1, "unit": limit});
        let body = json!({"category_prefix": "03", "urgency": "normal", "phases": longer});
        let response = put_profile(&app, &admin.token, "long", &body).await;
        let problem = assert_problem(response, 422, "invalid_limit").await;
        assert_eq!(problem["field"], "phases.resolve");
    }
}

/// A version is named in every explanation and stored as text: printable, in
/// either format. A NUL, which PostgreSQL cannot store, is refused with the
/// file, as in any JSON body.
#[tokio::test]
async fn a_version_with_a_control_character_is_refused_not_a_server_error() {
    let app = spawn_app_with_shipped_calendars(|_| {}).await;
    let admin = app.user(Role::Admin).await;
    let rows: String = serde_json::from_value::<CalendarYear>(shipped_2026())
        .expect("shipped")
        .to_csv()
        .lines()
        .filter(|line| !line.starts_with('#'))
        .map(|line| format!("{line}\n"))
        .collect();
    let json_with = |version: &str| {
        let mut year = shipped_2026();
        year["version"] = json!(version);
        ("application/json", year.to_string())
    };
    let csv_with = |version: &str| ("text/csv", format!("# version: {version}\n{rows}"));
    for ((content_type, body), code, detail) in [
        (
            json_with("2026\tv2"),
            "invalid_calendar",
            "control character",
        ),
        (
            csv_with("2026\u{7}v2"),
            "invalid_calendar",
            "control character",
        ),
        (json_with("2026-v2\u{0}"), "invalid_text", "NUL"),
        (csv_with("2026-v2\u{0}"), "invalid_text", "NUL"),
    ] {
        let response = app.put_calendar(&admin.token, content_type, body).await;
        let problem = assert_problem(response, 422, code).await;
        assert_detail_mentions(&problem, detail);
    }
}

/// Last year's file copied under this year's number and not edited agrees
/// with the stored last year and lists enough days to pass for a whole year;
/// loaded, it would make 国庆 2026 working days.
#[tokio::test]
async fn another_years_file_under_this_years_number_is_refused() {
    let app = spawn_app_with_shipped_calendars(|_| {}).await;
    let admin = app.user(Role::Admin).await;
    let mut copied: Value =
        serde_json::from_str(include_str!("../../calendars/cn-2025.json")).expect("2025");
    copied["year"] = json!(2026);
    copied["version"] = json!("2026-v2");
    let response = put_calendar(&app, &admin.token, copied.to_string()).await;
    let problem = assert_problem(response, 422, "invalid_calendar").await;
    assert_detail_mentions(&problem, "another year's");
    let national_day = chrono::NaiveDate::from_ymd_opt(2026, 10, 1).expect("a date");
    let book = app.state.workflow.deadlines().book();
    let calendar = book.calculator(None).expect("CN").calendar().clone();
    assert!(
        !calendar.is_working_day(national_day),
        "国庆 2026 is still a holiday"
    );
}

/// CSV has no escapes: the six characters `\u0000` in a CSV are text, not a NUL.
#[tokio::test]
async fn a_csv_holding_the_text_backslash_u0000_is_not_refused_as_a_nul() {
    let app = spawn_app_with_shipped_calendars(|_| {}).await;
    let admin = app.user(Role::Admin).await;
    let csv = "# version: 2027-v1\njurisdiction,date,kind,name\n\
               CN,2027-01-01,holiday,元旦 (see C:\\u0000\\notes)\n";
    let response = app.put_calendar(&admin.token, "text/csv", csv).await;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{body}");
}
