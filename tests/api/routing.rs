use civicsnap::domain::role::Role;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::helpers::*;

#[derive(Deserialize)]
struct Sample {
    lat: f64,
    lon: f64,
    category: String,
    expected_lead_unit: String,
    #[serde(default)]
    expected_co_units: Vec<String>,
}

fn samples() -> Vec<Sample> {
    serde_json::from_str(include_str!("../../demo/samples.json")).unwrap()
}

#[tokio::test]
async fn reports_are_routed_to_the_responsible_unit() {
    let app = spawn_demo_app().await;
    let citizen = app.citizen().await;
    let operator = app.user(Role::Operator).await;
    for sample in samples().into_iter().take(6) {
        let photo = app.photo(&citizen.token, jpeg(16, 16)).await;
        let body = json!({
            "category": sample.category,
            "location": {"lat": sample.lat, "lon": sample.lon},
            "photo_ids": [photo],
        });
        let response = app
            .post_json("/api/v1/reports", Some(&citizen.token), &body)
            .await;
        assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
        let report: Value = response.json().await.unwrap();
        assert!(report.get("routing").is_none(), "routing is for staff");
        let path = format!("/api/v1/reports/{}", report["id"].as_str().unwrap());
        let seen = app.get_json(&path, Some(&operator.token)).await;
        assert_eq!(
            seen["routing"]["lead_unit"], sample.expected_lead_unit,
            "{seen}"
        );
        if !sample.expected_co_units.is_empty() {
            assert_eq!(seen["routing"]["co_units"], json!(sample.expected_co_units));
        }
        assert!(seen["routing"]["rule_id"].is_string());
        assert_eq!(seen["routing"]["rule_version"], 1);
        assert!(!seen["routing"]["zone_path"].as_array().unwrap().is_empty());

        let events = app
            .state
            .repo
            .case_events(report["id"].as_str().unwrap().parse().unwrap())
            .await
            .unwrap();
        let routed = events
            .iter()
            .find(|e| e.kind == "routed")
            .expect("routing decision in the timeline");
        assert!(!routed.public);
        assert_eq!(routed.data["lead_unit"], sample.expected_lead_unit);
    }
}

#[tokio::test]
async fn preview_explains_the_decision_to_staff_only() {
    let app = spawn_demo_app().await;
    let sample = &samples()[0];
    let body =
        json!({"location": {"lat": sample.lat, "lon": sample.lon}, "category": sample.category});
    let operator = app.user(Role::Operator).await;
    let response = app
        .post_json("/api/v1/routing/preview", Some(&operator.token), &body)
        .await;
    assert_eq!(response.status(), 200);
    let explanation: Value = response.json().await.unwrap();
    assert_eq!(
        explanation["winner"]["lead_unit"], sample.expected_lead_unit,
        "{explanation}"
    );
    assert!(
        explanation["candidates"].as_array().unwrap().len() > 1,
        "losers are listed with reasons"
    );
    assert!(!explanation["zone_path"].as_array().unwrap().is_empty());

    let citizen = app.citizen().await;
    assert_problem(
        app.post_json("/api/v1/routing/preview", Some(&citizen.token), &body)
            .await,
        403,
        "forbidden",
    )
    .await;
    let (lat, lon) = (sample.lat, sample.lon);
    for (bad, code) in [
        (
            json!({"location": {"lat": 95.0, "lon": 120.5}, "category": "0301"}),
            "invalid_location",
        ),
        (
            json!({"location": {"lat": lat, "lon": lon, "accuracy_m": -1}, "category": "0301"}),
            "invalid_location",
        ),
        (
            json!({"location": {"lat": lat, "lon": lon}, "category": "dumping.garbage"}),
            "invalid_category",
        ),
    ] {
        assert_problem(
            app.post_json("/api/v1/routing/preview", Some(&operator.token), &bad)
                .await,
            422,
            code,
        )
        .await;
    }
}

#[tokio::test]
async fn without_reference_data_a_case_waits_for_triage() {
    let app = spawn_app().await;
    let citizen = app.citizen().await;
    let report = app.file_report(&citizen.token).await;
    let operator = app.user(Role::Operator).await;
    let seen = app
        .get_json(
            &format!("/api/v1/reports/{}", report["id"].as_str().unwrap()),
            Some(&operator.token),
        )
        .await;
    assert_eq!(seen["routing"]["lead_unit"], Value::Null);
    assert_eq!(seen["routing"]["rule_id"], Value::Null);
    assert_eq!(seen["routing"]["reason"], "no_rule");
}

#[tokio::test]
async fn another_instance_notices_reference_data_changes() {
    let first = spawn_app_with(|s| s.routing.refresh_secs = 1).await;
    let second = first.second_instance().await;
    assert!(
        second
            .state
            .routing
            .table()
            .zone_path(civicsnap::domain::geo::LatLon {
                lat: 31.8753,
                lon: 120.5539
            })
            .is_empty()
    );
    civicsnap::demo::seed(
        first.state.repo.as_ref(),
        std::path::Path::new("/nonexistent-demo-notes"),
    )
    .await
    .expect("the demo city seeds");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let zones = second
            .state
            .routing
            .table()
            .zone_path(civicsnap::domain::geo::LatLon {
                lat: 31.8753,
                lon: 120.5539,
            })
            .len();
        if zones > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the second instance never rebuilt its table"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn demo_accounts_sign_in_with_their_printed_passwords() {
    let app = spawn_app().await;
    let accounts = civicsnap::demo::seed(app.state.repo.as_ref(), app.data_dir())
        .await
        .unwrap();
    let roles: Vec<Role> = accounts.iter().map(|a| a.role).collect();
    for role in [
        Role::Admin,
        Role::Operator,
        Role::Supervisor,
        Role::UnitStaff,
        Role::UnitLead,
    ] {
        assert!(roles.contains(&role), "{role} account missing");
    }
    let staff = accounts.iter().find(|a| a.role == Role::UnitStaff).unwrap();
    let body =
        json!({"grant_type": "password", "username": staff.username, "password": staff.password});
    let tokens: Value = app
        .post_json("/api/v1/auth/token", None, &body)
        .await
        .json()
        .await
        .unwrap();
    let claims = app
        .state
        .jwt
        .verify(tokens["access_token"].as_str().unwrap())
        .unwrap();
    assert_eq!(claims.role, Role::UnitStaff);
    assert_eq!(claims.unit_id, staff.unit);
    // Seeding again changes nothing and returns the same accounts from the notes.
    let again = civicsnap::demo::seed(app.state.repo.as_ref(), app.data_dir())
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|a| &a.password).collect::<Vec<_>>(),
        accounts.iter().map(|a| &a.password).collect::<Vec<_>>()
    );
}
