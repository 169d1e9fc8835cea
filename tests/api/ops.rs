use sqlx::Connection;

use crate::helpers::*;

#[tokio::test]
async fn health_and_readiness() {
    let app = spawn_app().await;
    let health = app.get("/healthz", None).await;
    assert_eq!(health.status(), 200);
    assert!(health.headers().contains_key("x-request-id"));
    let ready: serde_json::Value = app.get("/readyz", None).await.json().await.unwrap();
    assert_eq!(ready["status"], "ok", "{ready}");
    assert_eq!(ready["checks"]["database"], "ok");
    assert_eq!(ready["checks"]["storage"], "ok");
}

/// A photo store that cannot be written makes the instance not ready (so a load
/// balancer takes it out), while the database still reports fine.
#[tokio::test]
async fn unwritable_photo_storage_is_not_ready() {
    let app = spawn_app().await;
    if app.state.photos.kind() != "local" {
        // The S3 run exercises a live bucket; breaking it is this test's local half.
        return;
    }
    assert_eq!(app.get("/readyz", None).await.status(), 200);
    let root = app.state.settings.local_storage_root();
    std::fs::remove_dir_all(&root).expect("objects folder removed");
    std::fs::write(&root, b"not a folder").expect("a file in its place");
    // An answer is reused for a second, so probes cannot make it write a file
    // each; then the next check sees the broken store.
    assert_eq!(app.get("/readyz", None).await.status(), 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let response = app.get("/readyz", None).await;
    assert_eq!(response.status(), 503);
    let ready: serde_json::Value = response.json().await.unwrap();
    assert_eq!(ready["status"], "unavailable", "{ready}");
    assert_eq!(ready["checks"]["database"], "ok");
    assert_eq!(ready["checks"]["storage"], "local unreachable");
    // Liveness is not readiness: the process itself is fine.
    assert_eq!(app.get("/healthz", None).await.status(), 200);
}

/// PostgreSQL restarts and failovers drop every connection the pool holds;
/// the pool must notice rather than hand out dead ones.
#[tokio::test]
async fn serves_again_after_the_database_drops_its_connections() {
    let app = spawn_app().await;
    if app.state.repo.backend() != "postgres" {
        return;
    }
    assert_eq!(app.get("/readyz", None).await.status(), 200);
    let mut admin = sqlx::PgConnection::connect(&app.state.settings.database_url)
        .await
        .unwrap();
    let dropped: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()) AS t",
    )
    .fetch_one(&mut admin)
    .await
    .unwrap();
    assert!(dropped > 0, "the app held no connection to drop");
    // Long enough for the pool to test an idle connection before using it.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let ready: serde_json::Value = app.get("/readyz", None).await.json().await.unwrap();
    assert_eq!(ready["checks"]["database"], "ok", "{ready}");
    let categories = app.get("/api/v1/categories", None).await;
    assert_eq!(categories.status(), 200);
}

#[tokio::test]
async fn metrics_count_requests_by_route() {
    let app = spawn_app_with_shipped_calendars(|_| {}).await;
    app.get("/healthz", None).await;
    app.get("/api/v1/reports/not-a-uuid", None).await;
    let citizen = app.citizen().await;
    app.photo(&citizen.token, jpeg(64, 48)).await;
    let text = app.get("/metrics", None).await.text().await.unwrap();
    // The upload was timed, and nothing waits or runs once it is done.
    assert!(
        text.contains("civicsnap_photo_processing_seconds_count 1"),
        "{text}"
    );
    assert!(text.contains("civicsnap_photo_queue_depth 0"), "{text}");
    assert!(
        text.contains(
            r#"civicsnap_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"civicsnap_http_request_duration_seconds_count{method="GET",route="/healthz",status="200"} 1"#
        ),
        "{text}"
    );
    // The shipped calendar runs to 2026-12-31: it ends at midnight in Shanghai.
    assert!(
        text.contains("civicsnap_working_calendar_end_seconds 1798732800"),
        "{text}"
    );
}

/// Every job runs a first pass at start; /metrics tells when each last got
/// through one, so a stuck sweeper is seen without reading the log.
#[tokio::test]
async fn metrics_say_when_each_background_job_last_succeeded() {
    let app = spawn_app().await;
    let jobs = [
        "deadline_sweeper",
        "reference_refresh",
        "photo_cleanup",
        "sign_in_purge",
        "archive",
        "auto_dispatch",
        "citizen_limits_trim",
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let text = app.get("/metrics", None).await.text().await.unwrap();
        let missing: Vec<&str> = jobs
            .iter()
            .copied()
            .filter(|job| {
                !text.contains(&format!(
                    r#"civicsnap_job_passes_total{{job="{job}",outcome="ok"}}"#
                ))
            })
            .collect();
        if missing.is_empty() {
            for job in jobs {
                let line = text
                    .lines()
                    .find(|l| {
                        l.starts_with(&format!(
                            r#"civicsnap_job_last_success_seconds{{job="{job}"}}"#
                        ))
                    })
                    .unwrap_or_else(|| panic!("{job} in {text}"));
                let at: i64 = line
                    .rsplit(' ')
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("a Unix time");
                let age = civicsnap::state::now().timestamp() - at;
                assert!((0..60).contains(&age), "{line}");
            }
            assert!(!text.contains(r#"outcome="failed""#), "{text}");
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no successful pass of {missing:?} in {text}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn unknown_routes_and_bad_ids_are_problems() {
    let app = spawn_app().await;
    assert_problem(app.get("/nowhere", None).await, 404, "not_found").await;
    let caller = app.citizen().await;
    assert_problem(
        app.get("/api/v1/reports/not-a-uuid", Some(&caller.token))
            .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn served_openapi_matches_the_committed_file() {
    let app = spawn_app().await;
    let served = app
        .get("/api/v1/openapi.yaml", None)
        .await
        .text()
        .await
        .unwrap();
    let generated = civicsnap::http::openapi_yaml();
    assert_eq!(served, generated);
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml");
    if std::env::var_os("UPDATE_OPENAPI").is_some() {
        std::fs::write(path, generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "openapi.yaml is stale: regenerate it with `cargo run -- openapi > openapi.yaml` \
         (or UPDATE_OPENAPI=1 cargo test served_openapi)"
    );
    for path in [
        "/api/v1/photos",
        "/api/v1/reports",
        "/api/v1/auth/token",
        "/api/v1/categories",
        "/readyz",
    ] {
        assert!(
            generated.contains(&format!("  {path}:")),
            "{path} missing from the document"
        );
    }
}

#[tokio::test]
async fn categories_are_a_public_tree() {
    let app = spawn_app().await;
    let tree: serde_json::Value = app
        .get("/api/v1/categories", None)
        .await
        .json()
        .await
        .unwrap();
    let safety = tree
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "03")
        .expect("03 安全隐患");
    let leaves: Vec<_> = safety["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name_zh"].as_str().unwrap())
        .collect();
    assert!(leaves.contains(&"飞线充电"), "{leaves:?}");
}

#[tokio::test]
async fn a_metrics_token_closes_metrics_to_everyone_else() {
    let app = spawn_app_with(|s| s.server.metrics_token = Some("scrape-me-9f2c1e".into())).await;
    let without = app.get("/metrics", None).await;
    assert!(without.headers().contains_key("www-authenticate"));
    assert_problem(without, 401, "unauthorized").await;
    let wrong = app.get("/metrics", Some("scrape-me-9f2c1d")).await;
    assert_problem(wrong, 401, "unauthorized").await;
    // A signed-in user's access token is no metrics token.
    let citizen = app.citizen().await;
    let user_token = app.get("/metrics", Some(&citizen.token)).await;
    assert_problem(user_token, 401, "unauthorized").await;
    let scraped = app.get("/metrics", Some("scrape-me-9f2c1e")).await;
    assert_eq!(scraped.status(), 200);
    assert!(
        scraped
            .text()
            .await
            .unwrap()
            .contains("civicsnap_http_requests_total")
    );
    // The token never shows in the settings the service logs at start.
    assert!(!format!("{:?}", app.state.settings).contains("scrape-me"));
}

/// A path the API has, asked with a method it does not serve there, is a 405
/// naming the methods it does (RFC 9110); a path it does not have is a 404.
#[tokio::test]
async fn a_method_a_path_does_not_serve_is_405_with_allow() {
    let app = spawn_app().await;
    let send =
        |method: reqwest::Method, path: String| app.client.request(method, app.url(&path)).send();
    let case = uuid::Uuid::now_v7();
    for (method, path, allow) in [
        (reqwest::Method::DELETE, "/healthz".to_owned(), "GET, HEAD"),
        (reqwest::Method::HEAD, "/api/v1/reports".to_owned(), "POST"),
        // Also `/admin/zones/{code}`, which the router tries too.
        (
            reqwest::Method::DELETE,
            "/api/v1/admin/zones/import".to_owned(),
            "POST, GET, HEAD",
        ),
        (reqwest::Method::PUT, "/api/v1/reports".to_owned(), "POST"),
        (
            reqwest::Method::GET,
            format!("/api/v1/cases/{case}/actions"),
            "POST",
        ),
    ] {
        let response = send(method.clone(), path.clone()).await.unwrap();
        assert_eq!(response.status(), 405, "{method} {path}");
        assert_eq!(response.headers()["allow"], allow, "{method} {path}");
        if method != reqwest::Method::HEAD {
            assert_problem(response, 405, "method_not_allowed").await;
        }
    }
    let missing = send(reqwest::Method::GET, "/api/v1/nothing-here".into())
        .await
        .unwrap();
    assert_problem(missing, 404, "not_found").await;
}

/// HEAD is answered wherever GET is: the same status and headers, no body.
#[tokio::test]
async fn head_answers_like_get_without_the_body() {
    let app = spawn_app().await;
    for path in ["/healthz", "/api/v1/categories", "/api/v1/openapi.yaml"] {
        let got = app.client.get(app.url(path)).send().await.unwrap();
        let headed = app.client.head(app.url(path)).send().await.unwrap();
        assert_eq!(headed.status(), 200, "HEAD {path}");
        assert_eq!(
            headed.headers()["content-type"],
            got.headers()["content-type"],
            "HEAD {path}"
        );
        let length = got.bytes().await.unwrap().len().to_string();
        assert_eq!(
            headed.headers()["content-length"],
            length.as_str(),
            "HEAD {path}"
        );
        assert!(headed.bytes().await.unwrap().is_empty(), "HEAD {path}");
    }
    // Access rules are GET's: a signed-out HEAD of someone's inbox is refused.
    let refused = app
        .client
        .head(app.url("/api/v1/units/any-unit/cases"))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    assert!(refused.headers().contains_key("www-authenticate"));
}

/// Anyone may name any method, so a label copied from it would let one client
/// add series to the metrics without end (memory here, load on Prometheus).
#[tokio::test]
async fn made_up_methods_do_not_add_metric_series() {
    let app = spawn_app().await;
    for n in 0..20 {
        let method = reqwest::Method::from_bytes(format!("PROBE{n}").as_bytes()).unwrap();
        let response = app
            .client
            .request(method, app.url("/healthz"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405);
    }
    let text = app.get("/metrics", None).await.text().await.unwrap();
    assert!(!text.contains("PROBE"), "{text}");
    assert!(
        text.contains(
            r#"civicsnap_http_requests_total{method="other",route="/healthz",status="405"} 20"#
        ),
        "{text}"
    );
}
