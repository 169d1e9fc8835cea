use civicsnap::domain::role::Role;
use serde_json::{Value, json};

use crate::helpers::*;

fn square(lon: f64, lat: f64, size: f64) -> Value {
    json!({"type": "Polygon", "coordinates": [[
        [lon, lat], [lon + size, lat], [lon + size, lat + size], [lon, lat + size], [lon, lat]
    ]]})
}

fn feature(code: &str, name: &str, kind: &str, parent: Option<&str>, geometry: Value) -> Value {
    json!({"type": "Feature", "properties": {"code": code, "name": name, "kind": kind, "parent": parent}, "geometry": geometry})
}

async fn import(app: &TestApp, token: &str, collection: &Value) -> reqwest::Response {
    import_file(app, token, collection.to_string()).await
}

/// Posts `file` as is, which need not be JSON, nor text.
async fn import_file(
    app: &TestApp,
    token: &str,
    file: impl Into<reqwest::Body>,
) -> reqwest::Response {
    app.client
        .post(app.url("/api/v1/admin/zones/import"))
        .bearer_auth(token)
        .header("content-type", "application/geo+json")
        .body(file)
        .send()
        .await
        .unwrap()
}

async fn unit(app: &TestApp, token: &str, code: &str) -> reqwest::Response {
    app.post_json(
        "/api/v1/admin/units",
        Some(token),
        &json!({"code": code, "name": format!("{code} 单位"), "kind": "department", "contacts": [{"name": "值班室", "phone": "0512-00000000"}]}),
    )
    .await
}

#[tokio::test]
async fn a_unit_contact_is_an_object() {
    let app = spawn_app().await;
    let admin = app.user(Role::Admin).await;
    let body = json!({"code": "DEPT-C", "name": "C 单位", "kind": "department",
                      "contacts": [{"name": "值班室", "phone": "0512-00000000"}, 125214672369_i64]});
    let response = app
        .post_json("/api/v1/admin/units", Some(&admin.token), &body)
        .await;
    let problem = assert_problem(response, 422, "invalid_body").await;
    assert_detail_mentions(&problem, "expected a map");
}

#[tokio::test]
async fn admins_manage_units_and_others_cannot() {
    let app = spawn_app().await;
    let admin = app.user(Role::Admin).await;
    assert_eq!(unit(&app, &admin.token, "DEPT-A").await.status(), 201);
    assert_problem(unit(&app, &admin.token, "DEPT-A").await, 409, "unit_exists").await;
    let operator = app.user(Role::Operator).await;
    assert_problem(
        unit(&app, &operator.token, "DEPT-B").await,
        403,
        "forbidden",
    )
    .await;
    let listed = app
        .get_json("/api/v1/admin/units", Some(&operator.token))
        .await;
    assert_eq!(listed[0]["code"], "DEPT-A");
    let citizen = app.citizen().await;
    assert_problem(
        app.get("/api/v1/admin/units", Some(&citizen.token)).await,
        403,
        "forbidden",
    )
    .await;

    let orphan =
        json!({"code": "DEPT-C", "name": "C", "kind": "department", "parent_code": "NOPE"});
    let problem = assert_problem(
        app.post_json("/api/v1/admin/units", Some(&admin.token), &orphan)
            .await,
        422,
        "unknown_reference",
    )
    .await;
    assert_eq!(problem["field"], "parent_code", "{problem}");
    let adopted = app
        .client
        .put(app.url("/api/v1/admin/units/DEPT-A"))
        .bearer_auth(&admin.token)
        .json(&json!({"name": "A", "kind": "department", "parent_code": "NOPE"}))
        .send()
        .await
        .unwrap();
    let problem = assert_problem(adopted, 422, "unknown_reference").await;
    assert!(
        problem["detail"].as_str().unwrap().contains("NOPE"),
        "{problem}"
    );
    let bad_kind = json!({"code": "DEPT-D", "name": "D", "kind": "ministry"});
    let problem = assert_problem(
        app.post_json("/api/v1/admin/units", Some(&admin.token), &bad_kind)
            .await,
        422,
        "invalid_body",
    )
    .await;
    // The code's fields are flattened into the body, where serde keeps no path;
    // the detail still names the kinds there are.
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains("street_office"),
        "{problem}"
    );

    let deactivate = app
        .client
        .put(app.url("/api/v1/admin/units/DEPT-A"))
        .bearer_auth(&admin.token)
        .json(&json!({"name": "A 单位", "kind": "department", "active": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(deactivate.status(), 200);
    let listed = app
        .get_json("/api/v1/admin/units", Some(&admin.token))
        .await;
    assert_eq!(listed[0]["active"], false);

    let audit = app
        .get_json("/api/v1/admin/audit", Some(&admin.token))
        .await;
    // Start-up loaded the shipped calendars (audited too); look at the units.
    let actions: Vec<&str> = audit
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["entity"] == "unit")
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["update", "create"]);
    assert_eq!(audit[0]["actor_id"], admin.id.to_string());
}

#[tokio::test]
async fn zone_imports_are_all_or_nothing() {
    let app = spawn_app().await;
    let admin = app.user(Role::Admin).await;
    let good = json!({"type": "FeatureCollection", "features": [
        feature("320582-D09", "测试区", "district", None, square(120.50, 31.80, 0.10)),
        feature("320582009001001", "测试网格", "grid", Some("320582-D09"), square(120.52, 31.82, 0.01)),
    ]});
    let report: Value = import(&app, &admin.token, &good)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(report, json!({"created": 2, "updated": 0}));
    let again: Value = import(&app, &admin.token, &good)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(again, json!({"created": 0, "updated": 2}));

    let unclosed = json!({"type": "Polygon", "coordinates": [[[120.5, 31.8], [120.6, 31.8], [120.6, 31.9], [120.5, 31.9]]]});
    let bow_tie = json!({"type": "Polygon", "coordinates": [[[120.5, 31.8], [120.6, 31.9], [120.6, 31.8], [120.5, 31.9], [120.5, 31.8]]]});
    let bad = json!({"type": "FeatureCollection", "features": [
        feature("320582-D10", "新区", "district", None, square(120.60, 31.80, 0.05)),
        feature("320582-D11", "未闭合", "district", None, unclosed),
        feature("320582-D12", "自相交", "district", None, bow_tie),
        {"type": "Feature", "properties": {"name": "无编码"}, "geometry": square(120.7, 31.8, 0.01)},
        feature("320582-D13", "经纬颠倒", "district", None, square(31.8, 120.5, 0.01)),
    ]});
    let problem =
        assert_problem(import(&app, &admin.token, &bad).await, 422, "invalid_zones").await;
    let indexes: Vec<u64> = problem["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["index"].as_u64().unwrap())
        .collect();
    assert_eq!(indexes, [1, 2, 3, 4], "{problem}");
    assert_eq!(
        app.state.repo.routing_data().await.unwrap().zones.len(),
        2,
        "nothing partial was stored"
    );
    assert!(app.state.repo.zone("320582-D10").await.unwrap().is_none());
    // A file that is not text is a bad file, as for calendars.
    let binary = import_file(&app, &admin.token, vec![0xff_u8, 0xfe, 0x7b]).await;
    assert_problem(binary, 422, "invalid_zones").await;

    let zone = app
        .get_json("/api/v1/admin/zones/320582009001001", Some(&admin.token))
        .await;
    assert_eq!(zone["geometry"]["type"], "Polygon");
    let grids = app
        .get_json("/api/v1/admin/zones?kind=grid", Some(&admin.token))
        .await;
    assert_eq!(grids.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn rules_are_versioned_checked_for_ties_and_route_reports() {
    let app = spawn_app().await;
    let admin = app.user(Role::Admin).await;
    for code in ["DEPT-POWER", "DEPT-HOUSING", "CC-1"] {
        assert_eq!(unit(&app, &admin.token, code).await.status(), 201);
    }
    let city = json!({"type": "FeatureCollection", "features": [
        feature("320582-D01", "杨舍", "district", None, square(120.40, 31.75, 0.30)),
    ]});
    assert_eq!(import(&app, &admin.token, &city).await.status(), 200);

    let rule = json!({"category_prefix": "03", "lead_unit": "DEPT-HOUSING", "priority": 0});
    let created = app
        .post_json("/api/v1/admin/rules", Some(&admin.token), &rule)
        .await;
    assert_eq!(created.status(), 201);
    let created: Value = created.json().await.unwrap();
    assert_eq!(created["version"], 1);
    let tie = app
        .post_json("/api/v1/admin/rules", Some(&admin.token), &rule)
        .await;
    let problem = assert_problem(tie, 409, "rule_conflict").await;
    assert!(
        problem["detail"]
            .as_str()
            .unwrap()
            .contains(created["id"].as_str().unwrap())
    );

    let specific = json!({"category_prefix": "0301", "zone_code": "320582-D01", "lead_unit": "DEPT-POWER", "co_units": ["CC-1"], "priority": 0});
    let specific: Value = app
        .post_json("/api/v1/admin/rules", Some(&admin.token), &specific)
        .await
        .json()
        .await
        .unwrap();
    let unknown = json!({"category_prefix": "0301", "zone_code": "NOWHERE", "lead_unit": "DEPT-POWER", "priority": 1});
    assert_problem(
        app.post_json("/api/v1/admin/rules", Some(&admin.token), &unknown)
            .await,
        422,
        "unknown_zone",
    )
    .await;
    // Half a level, or deeper than a 小类: no category could ever match.
    for prefix in ["030", "030101"] {
        let odd = json!({"category_prefix": prefix, "lead_unit": "DEPT-POWER", "priority": 1});
        assert_problem(
            app.post_json("/api/v1/admin/rules", Some(&admin.token), &odd)
                .await,
            422,
            "invalid_category_prefix",
        )
        .await;
    }

    // A report is routed by the more specific rule, and keeps its version.
    let citizen = app.citizen().await;
    let report = app.file_report(&citizen.token).await;
    let path = format!("/api/v1/reports/{}", report["id"].as_str().unwrap());
    let operator = app.user(Role::Operator).await;
    let seen = app.get_json(&path, Some(&operator.token)).await;
    assert_eq!(seen["routing"]["lead_unit"], "DEPT-POWER");
    assert_eq!(seen["routing"]["co_units"], json!(["CC-1"]));
    assert_eq!(seen["routing"]["rule_id"], specific["id"]);
    assert_eq!(seen["routing"]["zone_path"], json!(["320582-D01"]));

    let rule_path = format!("/api/v1/admin/rules/{}", specific["id"].as_str().unwrap());
    let edited = app
        .client
        .put(app.url(&rule_path))
        .bearer_auth(&admin.token)
        .json(&json!({"category_prefix": "0301", "zone_code": "320582-D01", "lead_unit": "DEPT-HOUSING", "priority": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(edited.status(), 200);
    let edited: Value = edited.json().await.unwrap();
    assert_eq!(edited["version"], 2);
    let versions = app
        .get_json(&format!("{rule_path}/versions"), Some(&admin.token))
        .await;
    assert_eq!(versions.as_array().unwrap().len(), 2);
    let seen = app.get_json(&path, Some(&operator.token)).await;
    assert_eq!(
        seen["routing"]["rule_version"], 1,
        "the case keeps the version that routed it"
    );

    let in_use = app
        .client
        .delete(app.url(&rule_path))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_problem(in_use, 409, "rule_in_use").await;
    let unit_in_use = app
        .client
        .delete(app.url("/api/v1/admin/units/DEPT-POWER"))
        .bearer_auth(&admin.token)
        .send()
        .await
        .unwrap();
    assert_problem(unit_in_use, 409, "unit_in_use").await;
    let conflicts = app
        .get_json("/api/v1/admin/rules/conflicts", Some(&admin.token))
        .await;
    assert_eq!(conflicts, json!([]));
}

#[tokio::test]
async fn categories_are_saved_by_admins() {
    let app = spawn_app().await;
    let admin = app.user(Role::Admin).await;
    let put = |code: &str, body: Value| {
        app.client
            .put(app.url(&format!("/api/v1/admin/categories/{code}")))
            .bearer_auth(&admin.token)
            .json(&body)
            .send()
    };
    let ok = put("0305", json!({"parent_code": "03", "name_zh": "燃气泄漏", "name_en": "Gas leak", "default_urgency": "urgent"})).await.unwrap();
    assert_eq!(ok.status(), 204);
    let tree = app.get_json("/api/v1/categories", None).await;
    let safety = tree
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "03")
        .unwrap();
    assert!(
        safety["children"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["code"] == "0305")
    );
    // Not under its parent, a parent that is no 大类, a 大类 of the wrong shape.
    for (code, parent) in [
        ("0405", json!("03")),
        ("0305", json!("0")),
        ("3", Value::Null),
    ] {
        let bad = put(
            code,
            json!({"parent_code": parent, "name_zh": "x", "name_en": "x"}),
        )
        .await
        .unwrap();
        assert_problem(bad, 422, "invalid_code").await;
    }
    // The count of extensions is a cap, not a way round the deadline.
    let body = |max: u64| json!({"name_zh": "x", "name_en": "x", "max_extensions": max});
    assert_eq!(put("09", body(10)).await.unwrap().status(), 204);
    for max in [11, 2_147_483_648] {
        let bad = put("09", body(max)).await.unwrap();
        let problem = assert_problem(bad, 422, "invalid_max_extensions").await;
        assert_eq!(problem["field"], "max_extensions");
    }
}

/// Uploads are read raw, not through the JSON extractor, and must refuse a NUL
/// as it does: SQLite stored one in a zone's name, PostgreSQL refused it.
#[tokio::test]
async fn a_nul_in_an_uploaded_file_is_refused_on_both_databases() {
    let app = spawn_app().await;
    let admin = app.user(Role::Admin).await;
    let square = json!([[
        [120.30, 31.80],
        [120.31, 31.80],
        [120.31, 31.81],
        [120.30, 31.80]
    ]]);
    let collection = json!({"type": "FeatureCollection", "features": [{"type": "Feature",
        "properties": {"code": "ZNUL1", "name": "bad\u{0}name", "kind": "community"},
        "geometry": {"type": "Polygon", "coordinates": square}}]});
    let response = import(&app, &admin.token, &collection).await;
    assert_problem(response, 422, "invalid_text").await;
    let raw = "# version: 2027-v1\njurisdiction,date,kind,name\nCN,2027-01-01,holiday,元\u{0}旦\n";
    let response = app.put_calendar(&admin.token, "text/csv", raw).await;
    assert_problem(response, 422, "invalid_text").await;
    let zones = app
        .get_json("/api/v1/admin/zones", Some(&admin.token))
        .await;
    assert!(!zones.to_string().contains("ZNUL1"), "{zones}");
}

#[tokio::test]
async fn an_oversized_calendar_file_is_a_problem() {
    let app = spawn_app().await;
    let admin = app.user(Role::Admin).await;
    let oversized = "CN,2027-01-01,holiday,元旦\n".repeat(12_000);
    let response = app.put_calendar(&admin.token, "text/csv", oversized).await;
    assert_problem(response, 413, "body_too_large").await;
}

/// The checks that keep routing sound (no active rule to a deactivated unit, no
/// tie between rules) must judge what is stored, not an instance's table that
/// has not yet seen a change made through another instance.
#[tokio::test]
async fn reference_checks_see_changes_made_through_another_instance() {
    // No polling during the test: the second instance learns only what it asks.
    let first = spawn_app_with(|s| s.routing.refresh_secs = 3600).await;
    let second = first.second_instance().await;
    let admin = first.user(Role::Admin).await;
    assert_eq!(unit(&first, &admin.token, "DEPT-POWER").await.status(), 201);
    let rule = json!({"category_prefix": "03", "lead_unit": "DEPT-POWER", "priority": 0});
    let created = first
        .post_json("/api/v1/admin/rules", Some(&admin.token), &rule)
        .await;
    assert_eq!(created.status(), 201);

    let deactivate = second
        .client
        .put(second.url("/api/v1/admin/units/DEPT-POWER"))
        .bearer_auth(&admin.token)
        .json(&json!({"name": "DEPT-POWER 单位", "kind": "department", "active": false}))
        .send()
        .await
        .unwrap();
    assert_problem(deactivate, 409, "unit_in_use").await;

    let tie = second
        .post_json("/api/v1/admin/rules", Some(&admin.token), &rule)
        .await;
    assert_problem(tie, 409, "rule_conflict").await;
}
