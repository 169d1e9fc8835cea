use civicsnap::domain::geo::{LatLon, gcj02_to_bd09, wgs84_to_gcj02};
use civicsnap::domain::role::Role;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::*;

#[tokio::test]
async fn a_citizen_files_a_report() {
    let app = spawn_app().await;
    let citizen = app.citizen().await;
    let photo = app
        .photo(&citizen.token, fixture("rotated-exif6.jpg"))
        .await;
    let response = app
        .post_json(
            "/api/v1/reports",
            Some(&citizen.token),
            &report_body(&[photo]),
        )
        .await;
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let report: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/reports/{}", report["id"].as_str().unwrap())
    );
    assert_eq!(report["state"], "submitted");
    assert_eq!(report["category"], "0301");
    let tracking = report["tracking_no"].as_str().unwrap();
    let today = civicsnap::state::now()
        .with_timezone(&chrono_tz::Asia::Shanghai)
        .format("%Y%m%d")
        .to_string();
    assert_eq!(tracking, format!("SP{today}-000001"));
    assert_eq!(report["photos"][0]["id"], photo.to_string());
    assert!(report.get("flags").is_none(), "flags are for staff");
    assert!(report.get("reporter_id").is_none());

    // Read back by its reporter.
    let again = app.get_json(&location, Some(&citizen.token)).await;
    assert_eq!(again, report);
    // A first timeline event exists.
    let events = app
        .state
        .repo
        .case_events(report["id"].as_str().unwrap().parse().unwrap())
        .await
        .unwrap();
    let kinds: Vec<(&str, bool)> = events.iter().map(|e| (e.kind.as_str(), e.public)).collect();
    assert_eq!(kinds, [("submitted", true), ("routed", false)]);

    // The next report of the day gets the next number.
    let second = app.file_report(&citizen.token).await;
    assert_eq!(second["tracking_no"], format!("SP{today}-000002"));
}

#[tokio::test]
async fn reports_are_visible_to_their_reporter_and_centre_staff_only() {
    let app = spawn_app().await;
    let citizen = app.citizen().await;
    let report = app.file_report(&citizen.token).await;
    let path = format!("/api/v1/reports/{}", report["id"].as_str().unwrap());

    let other = app.citizen().await;
    assert_problem(app.get(&path, Some(&other.token)).await, 404, "not_found").await;
    let unit = app.user(Role::UnitStaff).await;
    assert_problem(app.get(&path, Some(&unit.token)).await, 404, "not_found").await;
    let operator = app.user(Role::Operator).await;
    let seen = app.get_json(&path, Some(&operator.token)).await;
    assert_eq!(seen["reporter_id"], citizen.id.to_string());
    assert_eq!(seen["flags"]["photo_location_mismatch"], false);
    assert_problem(
        app.get(
            &format!("/api/v1/reports/{}", Uuid::now_v7()),
            Some(&operator.token),
        )
        .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn confidential_reports_hide_the_reporter() {
    let app = spawn_app().await;
    let citizen = app.citizen().await;
    let photo = app.photo(&citizen.token, jpeg(40, 30)).await;
    let mut body = report_body(&[photo]);
    body["confidential"] = json!(true);
    let report: Value = app
        .post_json("/api/v1/reports", Some(&citizen.token), &body)
        .await
        .json()
        .await
        .unwrap();
    let operator = app.user(Role::Operator).await;
    let seen = app
        .get_json(
            &format!("/api/v1/reports/{}", report["id"].as_str().unwrap()),
            Some(&operator.token),
        )
        .await;
    assert_eq!(seen["confidential"], true);
    assert!(seen.get("reporter_id").is_none(), "{seen}");
}

#[tokio::test]
async fn a_photo_taken_far_away_flags_the_report() {
    let app = spawn_app().await;
    let citizen = app.citizen().await;
    // The 12 MP fixture was taken at 31.8753 N 120.5539 E; report ~2 km north.
    let photo = app.photo(&citizen.token, fixture("street-12mp.jpg")).await;
    let mut body = report_body(&[photo]);
    body["location"] = json!({"lat": 31.8933, "lon": 120.5539});
    let report: Value = app
        .post_json("/api/v1/reports", Some(&citizen.token), &body)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report["state"], "submitted", "kept, not refused");
    let operator = app.user(Role::Operator).await;
    let seen = app
        .get_json(
            &format!("/api/v1/reports/{}", report["id"].as_str().unwrap()),
            Some(&operator.token),
        )
        .await;
    assert_eq!(seen["flags"]["photo_location_mismatch"], true);
    let distance = seen["flags"]["photo_distance_m"].as_f64().unwrap();
    assert!((1900.0..2100.0).contains(&distance), "{distance}");
}

#[tokio::test]
async fn chinese_map_coordinates_are_converted_to_wgs84() {
    let app = spawn_app().await;
    let citizen = app.citizen().await;
    let wgs = LatLon {
        lat: 31.8753,
        lon: 120.5539,
    };
    for (crs, given) in [
        ("gcj02", wgs84_to_gcj02(wgs)),
        ("bd09", gcj02_to_bd09(wgs84_to_gcj02(wgs))),
    ] {
        let photo = app.photo(&citizen.token, jpeg(40, 30)).await;
        let mut body = report_body(&[photo]);
        body["location"] = json!({"lat": given.lat, "lon": given.lon, "crs": crs});
        let report: Value = app
            .post_json("/api/v1/reports", Some(&citizen.token), &body)
            .await
            .json()
            .await
            .unwrap();
        let stored = LatLon {
            lat: report["location"]["lat"].as_f64().unwrap(),
            lon: report["location"]["lon"].as_f64().unwrap(),
        };
        assert!(stored.distance_m(wgs) < 1.0, "{crs}: {stored:?}");
    }
}

/// A key answers retries with its first response until it is purged; then the
/// same request is a new one, here refused because its photo is taken.
#[tokio::test]
async fn an_idempotency_key_answers_until_it_is_purged() {
    let app = spawn_app().await;
    let citizen = app.citizen().await;
    let photo = app.photo(&citizen.token, jpeg(40, 30)).await;
    let body = report_body(&[photo]);
    let send = || {
        let request = app
            .client
            .post(app.url("/api/v1/reports"))
            .bearer_auth(&citizen.token)
            .header("Idempotency-Key", "kept-a-week")
            .json(&body);
        async move { request.send().await.expect("report request") }
    };
    let first = send().await;
    assert_eq!(first.status(), 201);
    let filed_at = civicsnap::state::now();
    let repo = &app.state.repo;
    let kept = civicsnap::jobs::idempotency_purge::KEPT_FOR;
    assert_eq!(
        repo.purge_idempotency_keys(filed_at - kept)
            .await
            .expect("purge"),
        0,
        "a key younger than a week stays"
    );
    let replayed = send().await;
    assert_eq!(replayed.status(), 201);
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");

    let a_week_later = filed_at + kept + chrono::Duration::seconds(1);
    assert_eq!(
        repo.purge_idempotency_keys(a_week_later - kept)
            .await
            .expect("purge"),
        1
    );
    assert_problem(send().await, 422, "photo_unavailable").await;
}

#[tokio::test]
async fn idempotency_key_makes_retries_safe() {
    let app = spawn_app().await;
    let citizen = app.citizen().await;
    let photo = app.photo(&citizen.token, jpeg(40, 30)).await;
    let body = report_body(&[photo]);
    let send = |body: Value| {
        let request = app
            .client
            .post(app.url("/api/v1/reports"))
            .bearer_auth(&citizen.token)
            .header("Idempotency-Key", "retry-42")
            .json(&body);
        async move { request.send().await.unwrap() }
    };
    let first = send(body.clone()).await;
    assert_eq!(first.status(), 201);
    let location = first.headers()["location"].clone();
    let first: Value = first.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/reports/{}", first["id"].as_str().unwrap()).as_str()
    );
    let second = send(body.clone()).await;
    assert_eq!(second.status(), 201);
    assert_eq!(second.headers()["idempotent-replayed"], "true");
    assert_eq!(second.headers().get("location"), Some(&location));
    assert_eq!(second.json::<Value>().await.unwrap(), first);

    let mut other = body.clone();
    other["description"] = json!("something else");
    assert_problem(send(other).await, 422, "idempotency_key_reused").await;

    let mine = app
        .get_json("/api/v1/me/reports", Some(&citizen.token))
        .await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1, "one case only");
}

#[tokio::test]
async fn concurrent_retries_with_one_key_create_one_case() {
    let app = spawn_app().await;
    let citizen = app.citizen().await;
    let photo = app.photo(&citizen.token, jpeg(40, 30)).await;
    let body = report_body(&[photo]);
    let requests = (0..4).map(|_| {
        app.client
            .post(app.url("/api/v1/reports"))
            .bearer_auth(&citizen.token)
            .header("Idempotency-Key", "same")
            .json(&body)
            .send()
    });
    let responses = futures_util::future::join_all(requests).await;
    let mut ids = std::collections::HashSet::new();
    for response in responses {
        let response = response.unwrap();
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        ids.insert(body["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    let mine = app
        .get_json("/api/v1/me/reports", Some(&citizen.token))
        .await;
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_reports_get_clear_answers_and_change_nothing() {
    let app = spawn_app().await;
    let citizen = app.citizen().await;
    let other = app.citizen().await;
    let photo = app.photo(&citizen.token, jpeg(40, 30)).await;
    let foreign = app.photo(&other.token, jpeg(40, 30)).await;
    let with = |f: &dyn Fn(&mut Value)| {
        let mut body = report_body(&[photo]);
        f(&mut body);
        body
    };
    let ten: Vec<Uuid> = (0..10).map(|_| Uuid::now_v7()).collect();
    let cases: Vec<(Value, &str, &str)> = vec![
        (
            with(&|b| b["location"]["lat"] = json!(91.0)),
            "invalid_location",
            "location",
        ),
        (
            with(&|b| b["location"]["lon"] = json!(181.0)),
            "invalid_location",
            "location",
        ),
        (
            with(&|b| b["location"] = json!({"lat": 39.9042, "lon": 116.4074})),
            "outside_service_area",
            "location",
        ),
        (
            with(&|b| b["category"] = json!("9999")),
            "unknown_category",
            "category",
        ),
        (
            with(&|b| b["category"] = json!("dumping.garbage")),
            "invalid_category",
            "category",
        ),
        (
            with(&|b| b["category"] = json!("03")),
            "unknown_category",
            "category",
        ),
        (
            with(&|b| b["photo_ids"] = json!([foreign])),
            "photo_unavailable",
            "photo_ids",
        ),
        (
            with(&|b| b["photo_ids"] = json!(ten)),
            "invalid_photo_count",
            "photo_ids",
        ),
        (
            with(&|b| b["photo_ids"] = json!([])),
            "invalid_photo_count",
            "photo_ids",
        ),
        (
            with(&|b| b["description"] = json!("飞".repeat(2001))),
            "description_too_long",
            "description",
        ),
        // A value of the wrong type is named by where it sits.
        (
            with(&|b| b["location"]["lat"] = json!("31.87")),
            "invalid_body",
            "location.lat",
        ),
        (
            with(&|b| b["photo_ids"] = json!([photo, "not-a-uuid"])),
            "invalid_body",
            "photo_ids[1]",
        ),
    ];
    for (body, code, field) in cases {
        let problem = assert_problem(
            app.post_json("/api/v1/reports", Some(&citizen.token), &body)
                .await,
            422,
            code,
        )
        .await;
        assert_eq!(problem["field"], field, "{problem}");
    }
    // NaN is not JSON: a parse error.
    let nan = serde_json::to_string(&report_body(&[photo]))
        .unwrap()
        .replace("31.8753", "NaN");
    let r = app
        .client
        .post(app.url("/api/v1/reports"))
        .bearer_auth(&citizen.token)
        .header("content-type", "application/json")
        .body(nan)
        .send()
        .await
        .unwrap();
    assert_problem(r, 400, "malformed_json").await;
    // A 3 MB description never reaches the handler.
    let huge = with(&|b| b["description"] = json!("x".repeat(3 * 1024 * 1024)));
    assert_problem(
        app.post_json("/api/v1/reports", Some(&citizen.token), &huge)
            .await,
        413,
        "body_too_large",
    )
    .await;
    // Missing and unknown fields.
    let r = app
        .post_json(
            "/api/v1/reports",
            Some(&citizen.token),
            &json!({"category": "0301"}),
        )
        .await;
    assert_problem(r, 422, "invalid_body").await;
    let bad_key = app
        .client
        .post(app.url("/api/v1/reports"))
        .bearer_auth(&citizen.token)
        .header("Idempotency-Key", "")
        .json(&report_body(&[photo]))
        .send()
        .await
        .unwrap();
    assert_problem(bad_key, 400, "invalid_idempotency_key").await;

    // Nothing was stored, and the good photo is still free to use.
    let mine = app
        .get_json("/api/v1/me/reports", Some(&citizen.token))
        .await;
    assert!(mine["items"].as_array().unwrap().is_empty());
    assert_eq!(
        app.post_json(
            "/api/v1/reports",
            Some(&citizen.token),
            &report_body(&[photo])
        )
        .await
        .status(),
        201
    );
    // ... but only once.
    let reused = app
        .post_json(
            "/api/v1/reports",
            Some(&citizen.token),
            &report_body(&[photo]),
        )
        .await;
    assert_problem(reused, 422, "photo_unavailable").await;
    // The photo another citizen's report named is still its owner's to use.
    assert!(
        app.state
            .repo
            .photo(foreign)
            .await
            .unwrap()
            .unwrap()
            .case_id
            .is_none()
    );
    assert_eq!(
        app.post_json(
            "/api/v1/reports",
            Some(&other.token),
            &report_body(&[foreign])
        )
        .await
        .status(),
        201
    );
}

#[tokio::test]
async fn only_citizens_and_inspectors_report() {
    let app = spawn_app().await;
    for role in [
        Role::Operator,
        Role::UnitStaff,
        Role::Admin,
        Role::Integrator,
    ] {
        let caller = app.user(role).await;
        let r = app
            .post_json(
                "/api/v1/reports",
                Some(&caller.token),
                &report_body(&[Uuid::now_v7()]),
            )
            .await;
        assert_problem(r, 403, "forbidden").await;
    }
    assert_problem(
        app.post_json("/api/v1/reports", None, &report_body(&[Uuid::now_v7()]))
            .await,
        401,
        "unauthorized",
    )
    .await;
}

#[tokio::test]
async fn my_reports_are_paginated_newest_first() {
    let app = spawn_app().await;
    let citizen = app.citizen().await;
    let mut created = Vec::new();
    for _ in 0..5 {
        let photo = app.photo(&citizen.token, jpeg(16, 16)).await;
        let report: Value = app
            .post_json(
                "/api/v1/reports",
                Some(&citizen.token),
                &report_body(&[photo]),
            )
            .await
            .json()
            .await
            .unwrap();
        created.push(report["id"].as_str().unwrap().to_owned());
    }
    created.reverse();
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/me/reports?limit=2&cursor={c}"),
            None => "/api/v1/me/reports?limit=2".to_owned(),
        };
        let page = app.get_json(&path, Some(&citizen.token)).await;
        seen.extend(
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_owned()),
        );
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, created);
    let other = app.citizen().await;
    let theirs = app.get_json("/api/v1/me/reports", Some(&other.token)).await;
    assert!(theirs["items"].as_array().unwrap().is_empty());
    assert_problem(
        app.get("/api/v1/me/reports?limit=0", Some(&citizen.token))
            .await,
        400,
        "invalid_query",
    )
    .await;
    assert_problem(
        app.get("/api/v1/me/reports?cursor=nope", Some(&citizen.token))
            .await,
        400,
        "invalid_query",
    )
    .await;
}

#[tokio::test]
async fn concurrent_reports_are_batched_without_mixing_them_up() {
    let app = spawn_app().await;
    let mut prepared = Vec::new();
    for _ in 0..24 {
        let citizen = app.citizen().await;
        let photos = vec![
            app.photo(&citizen.token, jpeg(16, 16)).await,
            app.photo(&citizen.token, jpeg(16, 12)).await,
        ];
        prepared.push((citizen, photos));
    }
    // One photo offered by two reports at once: only one may have it.
    let contested = &prepared[0];
    let rival_body = report_body(&[contested.1[0]]);
    let rival = app.post_json("/api/v1/reports", Some(&contested.0.token), &rival_body);
    let bodies: Vec<Value> = prepared
        .iter()
        .map(|(_, photos)| report_body(photos))
        .collect();
    let requests = prepared
        .iter()
        .zip(&bodies)
        .map(|((citizen, _), body)| app.post_json("/api/v1/reports", Some(&citizen.token), body));
    let (rival, responses) = tokio::join!(rival, futures_util::future::join_all(requests));

    let mut tracking = std::collections::HashSet::new();
    let mut contested_winners = 0;
    if rival.status() == 201 {
        contested_winners += 1;
        let body: Value = rival.json().await.unwrap();
        tracking.insert(body["tracking_no"].as_str().unwrap().to_owned());
    } else {
        assert_problem(rival, 422, "photo_unavailable").await;
    }
    for (response, (citizen, photos)) in responses.into_iter().zip(&prepared) {
        if response.status() != 201 {
            assert!(
                std::ptr::eq(citizen, &prepared[0].0),
                "only the contested report may lose"
            );
            assert_problem(response, 422, "photo_unavailable").await;
            continue;
        }
        if std::ptr::eq(citizen, &prepared[0].0) {
            contested_winners += 1;
        }
        let body: Value = response.json().await.unwrap();
        assert!(
            tracking.insert(body["tracking_no"].as_str().unwrap().to_owned()),
            "tracking numbers are unique"
        );
        let ids: Vec<&str> = body["photos"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_str().unwrap())
            .collect();
        assert_eq!(
            ids,
            photos
                .iter()
                .map(Uuid::to_string)
                .collect::<Vec<_>>()
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>()
        );
        let stored = app
            .state
            .repo
            .case_by_id(body["id"].as_str().unwrap().parse().unwrap())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            &stored.photo_ids, photos,
            "photos attached in order to the right case"
        );
        assert_eq!(stored.reporter_id, citizen.id);
        assert_eq!(
            app.state.repo.case_events(stored.id).await.unwrap().len(),
            2
        );
    }
    assert_eq!(
        contested_winners, 1,
        "the contested photo went to exactly one report"
    );
    assert_eq!(tracking.len(), 24);
}

/// Reports submitted straight to the store, past the handler's checks, as a
/// concurrent request or another instance could leave them: each gets its own
/// answer, and a refused one leaves nothing behind, whichever batches they share.
#[tokio::test]
async fn the_store_answers_each_report_of_a_batch_on_its_own() {
    use civicsnap::store::{CaseRouting, CreateReportError, NewReport};

    let app = spawn_app().await;
    let repo = app.state.repo.as_ref();
    let citizen = app.citizen().await;
    let neighbour = app.citizen().await;
    let mine = app.photo(&citizen.token, jpeg(16, 16)).await;
    let also_mine = app.photo(&citizen.token, jpeg(16, 12)).await;
    let theirs = app.photo(&neighbour.token, jpeg(12, 16)).await;
    let now = civicsnap::state::now();
    let report = |category: &str, photo_ids: Vec<Uuid>| NewReport {
        id: Uuid::now_v7(),
        reporter_id: citizen.id,
        reporter_role: Role::Citizen,
        source: "app".into(),
        category: category.into(),
        location: LatLon::new(31.8753, 120.5539).unwrap(),
        accuracy_m: None,
        address: None,
        description: "楼道里有电动车飞线充电".into(),
        confidential: false,
        photo_ids,
        photo_distance_m: None,
        now,
        local_day: now.date_naive(),
        tracking_prefix: "SP".into(),
        routing: CaseRouting::default(),
    };
    let valid = report("0301", vec![mine]);
    let foreign_photo = report("0301", vec![also_mine, theirs]);
    let closed_category = report("01", vec![also_mine]);
    let render = |case: &civicsnap::store::CaseRecord| case.id.to_string();
    let (valid_answer, foreign_answer, category_answer) = tokio::join!(
        repo.create_report(&valid, None, render),
        repo.create_report(&foreign_photo, None, render),
        repo.create_report(&closed_category, None, render),
    );

    assert_eq!(
        valid_answer.expect("the valid report is stored").id,
        valid.id
    );
    assert!(matches!(foreign_answer, Err(CreateReportError::PhotoUnavailable(id)) if id == theirs));
    assert!(
        matches!(category_answer, Err(CreateReportError::UnknownCategory(code)) if code == "01")
    );
    for refused in [&foreign_photo, &closed_category] {
        assert!(repo.case_by_id(refused.id).await.unwrap().is_none());
        assert!(repo.case_events(refused.id).await.unwrap().is_empty());
    }
    for (photo, attached_to) in [(mine, Some(valid.id)), (also_mine, None), (theirs, None)] {
        let stored = repo.photo(photo).await.unwrap().expect("photo kept");
        assert_eq!(stored.case_id, attached_to, "photo {photo}");
    }
    let outbox = repo.outbox(0, 100).await.unwrap();
    assert_eq!(
        outbox.iter().map(|row| row.case_id).collect::<Vec<_>>(),
        [valid.id]
    );
}

/// A citizen's reports and uploads per hour are capped; a report refused for a
/// correctable mistake does not count, and inspectors are not capped.
#[tokio::test]
async fn a_citizen_is_capped_per_hour_and_told_when_to_come_back() {
    let app = spawn_app_with(|s| {
        s.reports.per_citizen_per_hour = 2;
        s.photos.per_citizen_per_hour = 4;
    })
    .await;
    let citizen = app.citizen().await;
    let mut bad = report_body(&[app.photo(&citizen.token, jpeg(40, 30)).await]);
    bad["location"]["lat"] = json!(91.0);
    let refused = app
        .post_json("/api/v1/reports", Some(&citizen.token), &bad)
        .await;
    assert_problem(refused, 422, "invalid_location").await;
    app.file_report(&citizen.token).await;
    app.file_report(&citizen.token).await;
    let spare = app.photo(&citizen.token, jpeg(40, 30)).await;
    let third = app
        .post_json(
            "/api/v1/reports",
            Some(&citizen.token),
            &report_body(&[spare]),
        )
        .await;
    let retry_after: u64 = third.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // Two an hour: the next one in up to half an hour.
    assert!((1..=1_800).contains(&retry_after), "{retry_after}");
    let problem = assert_problem(third, 429, "rate_limited").await;
    assert!(problem["detail"].as_str().unwrap().contains("reports"));
    // Four uploads are spent (the bad report's, two reports', the spare).
    let fifth = app.upload(&citizen.token, jpeg(40, 30), "photo.jpg").await;
    assert_problem(fifth, 429, "rate_limited").await;

    let inspector = app.user(Role::Inspector).await;
    for _ in 0..3 {
        app.file_report(&inspector.token).await;
    }
}

#[tokio::test]
async fn text_with_a_nul_character_is_refused_alike_on_both_databases() {
    let app = spawn_app().await;
    let citizen = app.citizen().await;
    for field in ["description", "address"] {
        let photo = app.photo(&citizen.token, jpeg(40, 30)).await;
        let mut body = report_body(&[photo]);
        body[field] = json!("路灯不亮\u{0}第二行");
        let response = app
            .post_json("/api/v1/reports", Some(&citizen.token), &body)
            .await;
        assert_problem(response, 422, "invalid_text").await;
    }
    let sign_in = json!({"grant_type": "password", "username": "admin\u{0}", "password": "x"});
    let response = app.post_json("/api/v1/auth/token", None, &sign_in).await;
    assert_problem(response, 422, "invalid_text").await;
    // A backslash before `u0000` is text, not a NUL.
    let photo = app.photo(&citizen.token, jpeg(40, 30)).await;
    let mut body = report_body(&[photo]);
    body["description"] = json!("C:\\u0000 路灯");
    let response = app
        .post_json("/api/v1/reports", Some(&citizen.token), &body)
        .await;
    assert_eq!(response.status(), 201);
}

#[tokio::test]
async fn a_misspelt_location_field_is_refused_not_dropped() {
    let app = spawn_app().await;
    let citizen = app.citizen().await;
    let photo = app.photo(&citizen.token, jpeg(40, 30)).await;
    let mut body = report_body(&[photo]);
    body["location"]["CRS"] = json!("gcj02");
    let response = app
        .post_json("/api/v1/reports", Some(&citizen.token), &body)
        .await;
    let problem = assert_problem(response, 422, "invalid_body").await;
    assert_detail_mentions(&problem, "CRS");
}

#[tokio::test]
async fn a_reporters_photo_forgets_its_gps_fix_once_the_report_is_filed() {
    let app = spawn_app().await;
    let citizen = app.citizen().await;
    let uploaded: Value = app
        .upload(&citizen.token, fixture("street-12mp.jpg"), "IMG_0001.JPG")
        .await
        .json()
        .await
        .expect("photo");
    assert!(uploaded["gps"].is_object(), "{uploaded}");
    let id: Uuid = uploaded["id"].as_str().expect("id").parse().expect("uuid");
    let response = app
        .post_json("/api/v1/reports", Some(&citizen.token), &report_body(&[id]))
        .await;
    assert_eq!(response.status(), 201);
    let stored = app
        .state
        .repo
        .photo(id)
        .await
        .expect("reads")
        .expect("kept");
    assert!(stored.case_id.is_some());
    assert_eq!(stored.gps, None);
}

/// A client that retries before its first attempt was answered (a timeout on a
/// bad network) must get the first answer, not an error about the photos its
/// own first attempt attached: whether a retry arrives before, during or after
/// that attempt's commit is luck, so requests are spread over that window.
#[tokio::test]
async fn every_retry_with_one_key_gets_the_first_answer() {
    // Uncapped: what retries cost is `retries_of_one_report_cost_one_report`.
    let app = spawn_app_with(|s| s.reports.per_citizen_per_hour = 0).await;
    let citizen = app.citizen().await;
    for round in 0..4 {
        let photo = app.photo(&citizen.token, jpeg(40, 30)).await;
        let body = report_body(&[photo]);
        let key = format!("retry-round-{round}");
        let requests = (0..12u64).map(|i| {
            let request = app
                .client
                .post(app.url("/api/v1/reports"))
                .bearer_auth(&citizen.token)
                .header("Idempotency-Key", key.as_str())
                .json(&body);
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(2 * i)).await;
                let response = request.send().await.unwrap();
                let status = response.status().as_u16();
                (status, response.json::<Value>().await.unwrap())
            }
        });
        let answers = futures_util::future::join_all(requests).await;
        let ids: std::collections::HashSet<_> = answers
            .iter()
            .map(|(status, body)| {
                assert_eq!(*status, 201, "round {round}: {body}");
                body["id"].as_str().unwrap().to_owned()
            })
            .collect();
        assert_eq!(ids.len(), 1, "round {round}: {ids:?}");
    }
}

/// Idempotent replays do not count against the hourly quota, however they
/// arrive: retries of one report sent together (a phone on a bad network) must
/// leave the rest of the hour's reports to the citizen.
#[tokio::test]
async fn retries_of_one_report_cost_one_report() {
    let app = spawn_app_with(|s| s.reports.per_citizen_per_hour = 2).await;
    let citizen = app.citizen().await;
    let photo = app.photo(&citizen.token, jpeg(40, 30)).await;
    let body = report_body(&[photo]);
    let retries = (0..12).map(|_| {
        app.client
            .post(app.url("/api/v1/reports"))
            .bearer_auth(&citizen.token)
            .header("Idempotency-Key", "one-report")
            .json(&body)
            .send()
    });
    for response in futures_util::future::join_all(retries).await {
        assert_eq!(response.unwrap().status(), 201);
    }
    let another = app.photo(&citizen.token, jpeg(40, 30)).await;
    let second_report = app
        .post_json(
            "/api/v1/reports",
            Some(&citizen.token),
            &report_body(&[another]),
        )
        .await;
    assert_eq!(
        second_report.status(),
        201,
        "{}",
        second_report.text().await.unwrap_or_default()
    );
}
