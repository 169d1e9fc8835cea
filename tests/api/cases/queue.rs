//! The dispatch queue and unit inboxes: filters, orders and cursors.

use std::collections::HashSet;

use chrono::{DateTime, SecondsFormat, SubsecRound, Timelike, Utc};

use super::*;

fn ids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a page: {page}"))
        .iter()
        .map(|c| c["id"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// Every case of a walk from the first page, following `next_cursor`.
async fn walk(app: &TestApp, token: &str, path: &str, query: &str) -> Vec<String> {
    let mut walked = Vec::new();
    let mut url = format!("{path}?{query}");
    for _ in 0..50 {
        let page = app.get_json(&url, Some(token)).await;
        walked.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => url = format!("{path}?{query}&cursor={cursor}"),
            None => return walked,
        }
    }
    panic!("{path}?{query}: still paging after 50 pages: {walked:?}");
}

fn once_each(walked: &[String], expected: &HashSet<String>, what: &str) {
    let seen: HashSet<String> = walked.iter().cloned().collect();
    assert_eq!(
        seen.len(),
        walked.len(),
        "{what}: given twice in {walked:?}"
    );
    assert_eq!(&seen, expected, "{what}");
}

#[tokio::test]
async fn the_queue_filters_and_pages() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let first = case_id(&app.file_report(&reporter.token).await);
    let second = case_id(&app.file_report(&reporter.token).await);
    let third = dispatched_case(&app, &operator, &reporter).await;

    let page = app
        .get_json(
            "/api/v1/cases?state=submitted&limit=1",
            Some(&operator.token),
        )
        .await;
    assert_eq!(page["items"][0]["id"], second.to_string());
    let cursor = page["next_cursor"].as_str().expect("a second page");
    let page = app
        .get_json(
            &format!("/api/v1/cases?state=submitted&limit=1&cursor={cursor}"),
            Some(&operator.token),
        )
        .await;
    assert_eq!(page["items"][0]["id"], first.to_string());
    assert!(page["next_cursor"].is_null());

    let due = app
        .get_json(
            "/api/v1/cases?sort=due&unit=DEPT-CGJ",
            Some(&operator.token),
        )
        .await;
    assert_eq!(due["items"].as_array().expect("items").len(), 1);
    assert_eq!(due["items"][0]["id"], third.to_string());
    assert!(
        due["items"][0]["due_at"]
            .as_str()
            .expect("due")
            .ends_with("+08:00")
    );
    let overdue = app
        .get_json("/api/v1/cases?overdue=true", Some(&operator.token))
        .await;
    assert_eq!(overdue["items"], json!([]));
    let by_category = app
        .get_json(
            "/api/v1/cases?category=03&source=app",
            Some(&operator.token),
        )
        .await;
    assert_eq!(by_category["items"].as_array().expect("items").len(), 3);
    // An empty state list, or stray commas in one, filters nothing extra; an
    // empty cursor is the first page.
    let all = app
        .get_json("/api/v1/cases?category=03", Some(&operator.token))
        .await;
    for lenient in [
        "state=&category=03",
        "state=,&category=03",
        "cursor=&category=03",
    ] {
        let listed = app
            .get_json(&format!("/api/v1/cases?{lenient}"), Some(&operator.token))
            .await;
        assert_eq!(listed["items"], all["items"], "{lenient}");
    }
    let submitted = app
        .get_json("/api/v1/cases?state=submitted", Some(&operator.token))
        .await;
    let commas = app
        .get_json("/api/v1/cases?state=,submitted,", Some(&operator.token))
        .await;
    assert_eq!(commas["items"], submitted["items"]);

    for bad in [
        "/api/v1/cases?state=open",
        "/api/v1/cases?sort=random",
        "/api/v1/cases?limit=0",
        "/api/v1/cases?cursor=nonsense",
        "/api/v1/cases?zone=%25",
    ] {
        assert_problem(
            app.get(bad, Some(&operator.token)).await,
            400,
            "invalid_query",
        )
        .await;
    }
    assert_problem(
        app.get("/api/v1/cases", Some(&reporter.token)).await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(
        app.get("/api/v1/units/NOPE/cases", Some(&operator.token))
            .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn the_queue_finds_overdue_flagged_zoned_and_due_before_cases() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;
    let queue = |query: String| {
        let app = &app;
        let token = operator.token.clone();
        async move {
            app.get_json(&format!("/api/v1/cases?{query}"), Some(&token))
                .await
        }
    };

    // Filed ten days ago and never dispatched: its dispatch clock ran out long since.
    let late = case_id(&app.file_report(&reporter.token).await);
    let filed_at = now() - chrono::Duration::days(10);
    act_on(
        &app,
        open(&app, late).await,
        &Actor::new(operator.id, Role::Operator, None),
        Action::File,
        filed_at,
    )
    .await
    .expect("filed");
    // Reported done while its co-unit had not finished: flagged for the checker.
    let flagged = dispatched_case(&app, &operator, &reporter).await;
    ok(&app, &lead, flagged, json!({"action": "sign"})).await;
    report_done(&app, &lead, flagged).await;

    assert_eq!(ids(&queue("overdue=true".into()).await), [late.to_string()]);
    assert!(
        !ids(&queue("overdue=false".into()).await).contains(&late.to_string()),
        "overdue=false leaves out what overdue=true lists"
    );
    assert_eq!(
        ids(&queue("flagged=true".into()).await),
        [flagged.to_string()]
    );
    let due = load(&app, late).await.fields.due_at.expect("due");
    let at = |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339().replace('+', "%2B");
    let before_late = queue(format!(
        "due_before={}",
        at(due + chrono::Duration::minutes(1))
    ))
    .await;
    assert_eq!(ids(&before_late), [late.to_string()]);
    let none = queue(format!(
        "due_before={}",
        at(due - chrono::Duration::minutes(1))
    ))
    .await;
    assert_eq!(ids(&none), Vec::<String>::new());
    // To the nanosecond: a case due at `due` is due before `due` + 500 ns, not
    // before `due` itself (stored times are whole microseconds).
    let nanos =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    let just_after = queue(format!(
        "due_before={}",
        nanos(due + chrono::Duration::nanoseconds(500))
    ))
    .await;
    assert_eq!(ids(&just_after), [late.to_string()]);
    assert_eq!(
        ids(&queue(format!("due_before={}", nanos(due))).await),
        Vec::<String>::new()
    );

    // Both lie in the demo city's zones; no case lies in a zone that does not exist.
    let zone_path = app
        .state
        .repo
        .case_by_id(late)
        .await
        .expect("case")
        .expect("exists")
        .routing
        .zone_path;
    let innermost = zone_path.last().expect("a zone path");
    let mut zoned = ids(&queue(format!("zone={innermost}")).await);
    zoned.sort();
    let mut both = vec![late.to_string(), flagged.to_string()];
    both.sort();
    assert_eq!(zoned, both);
    assert_eq!(
        ids(&queue("zone=NO-SUCH-ZONE".into()).await),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn every_order_walks_each_case_once_through_ties_and_nanoseconds() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;
    let mut signed = Vec::new();
    for _ in 0..4 {
        signed.push(signed_case(&app, &operator, &reporter, &lead).await);
    }
    let mut latest = DateTime::<Utc>::MIN_UTC;
    for &case in &signed {
        latest = latest.max(handle_due(&app, case).await);
    }
    // Two pairs extended to one due time each: ties in `due` order. The second
    // is sent to the nanosecond, as a client may; it is kept to the microsecond.
    let whole = (latest + chrono::Duration::days(1)).trunc_subsecs(0);
    let fine = (whole + chrono::Duration::days(1))
        .with_nanosecond(123_456_789)
        .expect("a time");
    for (pair, new_due) in signed.chunks(2).zip([whole, fine]) {
        for &case in pair {
            ok(
                &app,
                &lead,
                case,
                json!({"action": "request_extension", "reason": "需协调",
                       "new_due": new_due.to_rfc3339_opts(SecondsFormat::Nanos, true)}),
            )
            .await;
            ok(
                &app,
                &operator,
                case,
                json!({"action": "approve_extension"}),
            )
            .await;
            assert_eq!(handle_due(&app, case).await, new_due.trunc_subsecs(6));
        }
    }
    let plain = signed_case(&app, &operator, &reporter, &lead).await;
    let submitted = case_id(&app.file_report(&reporter.token).await);

    let due: HashSet<String> = signed.iter().chain([&plain]).map(Uuid::to_string).collect();
    let mut all = due.clone();
    all.insert(submitted.to_string());
    for limit in [1, 2] {
        for (sort, expected) in [("newest", &all), ("oldest", &all), ("due", &due)] {
            let query = format!("sort={sort}&limit={limit}");
            let walked = walk(&app, &operator.token, "/api/v1/cases", &query).await;
            once_each(&walked, expected, &query);
            let inbox = format!("/api/v1/units/{LEAD}/cases");
            let walked = walk(&app, &lead.token, &inbox, &query).await;
            let mut assigned = expected.clone();
            assigned.remove(&submitted.to_string());
            once_each(&walked, &assigned, &format!("inbox, {query}"));
        }
    }
}

#[tokio::test]
async fn a_cursor_is_good_only_for_the_order_and_filters_it_came_with() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    for _ in 0..3 {
        app.file_report(&reporter.token).await;
    }
    let first = app
        .get_json(
            "/api/v1/cases?state=submitted&limit=1",
            Some(&operator.token),
        )
        .await;
    let cursor = first["next_cursor"].as_str().expect("a second page");
    // The page size may change; the order and the filters may not.
    let more = app
        .get_json(
            &format!("/api/v1/cases?state=submitted&limit=5&cursor={cursor}"),
            Some(&operator.token),
        )
        .await;
    assert_eq!(ids(&more).len(), 2);
    for other in [
        "sort=oldest&state=submitted",
        "sort=due&state=submitted",
        "state=filed",
        "state=submitted&source=app",
    ] {
        let response = app
            .get(
                &format!("/api/v1/cases?{other}&cursor={cursor}"),
                Some(&operator.token),
            )
            .await;
        let problem = assert_problem(response, 400, "invalid_query").await;
        assert_detail_mentions(&problem, "another order or other filters");
    }
}

#[tokio::test]
async fn codes_are_matched_as_written_not_as_patterns() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let case = case_id(&app.file_report(&reporter.token).await);
    let zone_path = app
        .state
        .repo
        .case_by_id(case)
        .await
        .expect("case")
        .expect("exists")
        .routing
        .zone_path;
    let zone = zone_path.last().expect("a zone path");
    let listed = |query: String| {
        let (app, token) = (&app, operator.token.clone());
        async move {
            ids(&app
                .get_json(&format!("/api/v1/cases?{query}"), Some(&token))
                .await)
        }
    };
    assert_eq!(listed(format!("zone={zone}")).await, [case.to_string()]);
    assert_eq!(listed("category=03".into()).await, [case.to_string()]);
    // `_` may stand in a code, and is a wildcard to LIKE; SQLite's LIKE also
    // ignores case. Neither may widen a filter.
    for query in [
        "category=0_".to_owned(),
        "category=_".to_owned(),
        format!("zone=_{}", &zone[1..]),
        format!("zone={}", zone.to_lowercase()),
    ] {
        assert_eq!(listed(query.clone()).await, Vec::<String>::new(), "{query}");
    }
}

#[tokio::test]
async fn instants_outside_years_1_to_9999_are_refused_not_a_server_error() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;
    let admin = app.user(Role::Admin).await;
    let case = signed_case(&app, &operator, &reporter, &lead).await;
    // PostgreSQL holds nothing before 4713 BC, and SQLite orders RFC 3339 text,
    // which puts `+10000-…` before `2026-…`.
    let id = Uuid::now_v7();
    for query in [
        "due_before=-5000-01-01T00:00:00Z".to_owned(),
        "due_before=%2B10000-01-01T00:00:00Z".to_owned(),
        format!("sort=due&cursor=d00000000~-1000000000000000000.000000000~{id}"),
    ] {
        for path in [
            "/api/v1/cases".to_owned(),
            format!("/api/v1/units/{LEAD}/cases"),
        ] {
            let response = app
                .get(&format!("{path}?{query}"), Some(&operator.token))
                .await;
            assert_problem(response, 400, "invalid_query").await;
        }
    }
    let response = act(
        &app,
        &lead,
        case,
        json!({"action": "request_extension", "reason": "需协调",
               "new_due": "+10000-01-01T00:00:00Z"}),
    )
    .await;
    let problem = assert_problem(response, 422, "invalid_body").await;
    assert_detail_mentions(&problem, "years 1 to 9999");
    let rule = json!({
        "category_prefix": "03", "lead_unit": LEAD, "priority": 5,
        "valid_from": "-5000-01-01T00:00:00Z",
    });
    let response = app
        .post_json("/api/v1/admin/rules", Some(&admin.token), &rule)
        .await;
    let problem = assert_problem(response, 422, "invalid_body").await;
    assert_eq!(problem["field"], "valid_from", "{problem}");
}

/// Tampered cursors and odd but well-formed filters are answered, never a
/// server error, by the queue and an inbox alike.
#[tokio::test]
async fn odd_cursors_and_filters_are_never_a_server_error() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;
    for _ in 0..2 {
        signed_case(&app, &operator, &reporter, &lead).await;
    }
    let first = app
        .get_json("/api/v1/cases?sort=due&limit=1", Some(&operator.token))
        .await;
    let cursor = first["next_cursor"].as_str().expect("cursor").to_owned();
    let tag = cursor
        .split('~')
        .next()
        .expect("a tagged cursor")
        .to_owned();
    let id = Uuid::now_v7();
    let long = "A".repeat(64);
    let queries = vec![
        format!("sort=due&cursor={tag}~253402300799.999999999~{id}"),
        format!("sort=due&cursor={tag}~-62135596800.000000000~{id}"),
        format!("sort=due&cursor={tag}~%2B1.000000000~{id}"),
        format!("sort=due&cursor={tag}~1.%2B00000000~{id}"),
        format!("sort=due&cursor={tag}~1.000000000~{}", id.simple()),
        format!("sort=due&cursor={tag}~1.000000000~urn:uuid:{id}"),
        format!("sort=due&cursor={tag}~~"),
        format!("sort=due&cursor={tag}"),
        "due_before=9999-12-31T23:59:59.999999999Z".to_owned(),
        "due_before=0001-01-01T00:00:00Z".to_owned(),
        "limit=200".to_owned(),
        "limit=201".to_owned(),
        "limit=4294967295".to_owned(),
        "limit=4294967296".to_owned(),
        "limit=-1".to_owned(),
        "limit=".to_owned(),
        "sort=".to_owned(),
        "overdue=".to_owned(),
        "state=closed,,archived,cancelled,not_filed".to_owned(),
        format!("unit={long}&zone={long}&category={long}&source={long}"),
        "cursor=%00".to_owned(),
        "cursor=~".to_owned(),
        "cursor=%E2%82%AC%E2%82%AC~x".to_owned(),
        "cursor=d%E2%82%AC%E2%82%ACab~x".to_owned(),
        "state=a&state=b".to_owned(),
    ];
    for query in queries {
        for (path, token) in [
            ("/api/v1/cases".to_owned(), &operator.token),
            (format!("/api/v1/units/{LEAD}/cases"), &lead.token),
        ] {
            let response = app.get(&format!("{path}?{query}"), Some(token)).await;
            let status = response.status().as_u16();
            let body = response.text().await.unwrap_or_default();
            assert!(status < 500, "{path}?{query} -> {status} {body}");
        }
    }
}

/// `due_before` takes any instant in years 1–9999, and however late it is, lists
/// every case with a due time and only those. Its last half-microsecond once
/// rounded up to year 10000, which SQLite orders as text before every real due
/// time.
#[tokio::test]
async fn due_before_the_end_of_time_lists_every_case_with_a_due_time_and_no_other() {
    let app = manual_app().await;
    let reporter = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    let lead = app.user_of(Role::UnitStaff, LEAD).await;
    let clocked = signed_case(&app, &operator, &reporter, &lead).await;
    // Submitted, not dispatched: no running clock, no due time.
    let _unclocked = case_id(&app.file_report(&reporter.token).await);
    for before in [
        "9999-12-31T23:59:59.999999Z",
        "9999-12-31T23:59:59.9999995Z",
        "9999-12-31T23:59:59.999999999Z",
    ] {
        let page = app
            .get_json(
                &format!("/api/v1/cases?due_before={before}"),
                Some(&operator.token),
            )
            .await;
        assert_eq!(
            ids(&page),
            [clocked.to_string()],
            "due_before={before}: {page}"
        );
    }
}
