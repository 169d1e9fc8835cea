//! Load benchmarks over real HTTP on loopback (the server and this client share
//! the machine, as they would on one small host).
//!
//! cargo bench --bench http_load -- reports   # POST /api/v1/reports, 16 clients
//! cargo bench --bench http_load -- uploads   # photo uploads + /healthz latency
//! cargo bench --bench http_load -- actions   # POST /api/v1/cases/{id}/actions, 16 clients
//!
//! `BENCH_DATABASE_URL=postgres://…/empty_db` runs against PostgreSQL instead of a
//! temp SQLite file. `BENCH_REQUESTS`, `BENCH_CLIENTS`, `BENCH_UPLOADS`, `BENCH_CASES`
//! resize runs; `BENCH_DB_CONNECTIONS` and `BENCH_WORKERS` override the server's
//! pool size and worker count.

#[path = "../tests/support/calendar_stand_in.rs"]
mod calendar_stand_in;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use civicsnap::config::Settings;
use civicsnap::domain::case::{Action, ActionEnvelope};
use civicsnap::domain::role::Role;
use civicsnap::startup::Application;
use civicsnap::state::AppState;
use civicsnap::state::now;
use civicsnap::store::{CaseRouting, NewReport, NewUser, PhotoRecord, StoredImage};
use serde_json::json;
use uuid::Uuid;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Latencies(Vec<Duration>);

impl Latencies {
    fn percentile(&mut self, p: f64) -> Duration {
        self.0.sort_unstable();
        let index = ((self.0.len() as f64 - 1.0) * p).round() as usize;
        self.0.get(index).copied().unwrap_or_default()
    }
}

async fn start(data_dir: &std::path::Path) -> (String, Application) {
    let mut settings = Settings::ephemeral(data_dir);
    // Cases are filed and dispatched by the benchmark itself.
    settings.workflow.auto_dispatch = false;
    // A few bench citizens send what thousands would: no per-citizen caps.
    settings.reports.per_citizen_per_hour = 0;
    settings.photos.per_citizen_per_hour = 0;
    settings.workflow.citizen_actions_per_hour = 0;
    settings.server.workers = std::thread::available_parallelism().map_or(2, usize::from);
    if let Ok(url) = std::env::var("BENCH_DATABASE_URL") {
        settings.database_url = url;
    }
    if let Ok(n) = std::env::var("BENCH_DB_CONNECTIONS") {
        settings.database_connections = n.parse().expect("BENCH_DB_CONNECTIONS is a number");
    }
    if let Ok(n) = std::env::var("BENCH_WORKERS") {
        settings.server.workers = n.parse().expect("BENCH_WORKERS is a number");
    }
    let app = Application::build(settings)
        .await
        .expect("application builds");
    (format!("http://127.0.0.1:{}", app.port()), app)
}

/// A stored account of `role` and an access token for it.
async fn account(state: &AppState, role: Role, unit: Option<&str>, name: &str) -> (Uuid, String) {
    let id = Uuid::now_v7();
    state
        .repo
        .create_user(&NewUser {
            id,
            role,
            unit_id: unit.map(str::to_owned),
            username: Some(format!("{name}-{}", id.simple())),
            password_hash: None,
            phone: None,
            display_name: None,
            created_at: now(),
        })
        .await
        .unwrap();
    let token = state
        .jwt
        .issue(id, role, unit.map(str::to_owned), now(), 3600)
        .unwrap();
    (id, token)
}

/// Every client's latencies and failure count, together.
async fn gather(
    workers: Vec<tokio::task::JoinHandle<(Vec<Duration>, usize)>>,
) -> (Latencies, usize) {
    let mut all = Latencies(Vec::new());
    let mut failures = 0;
    for worker in workers {
        let (latencies, failed) = worker.await.unwrap();
        all.0.extend(latencies);
        failures += failed;
    }
    (all, failures)
}

fn fake_photo(owner: Uuid) -> PhotoRecord {
    let id = Uuid::now_v7();
    let image = |variant: &str| StoredImage {
        key: format!("photos/bench/{id}/{variant}.jpg"),
        width: 64,
        height: 48,
        etag: "bench".into(),
    };
    PhotoRecord {
        id,
        owner_id: owner,
        case_id: None,
        source_type: "image/jpeg".into(),
        width: 64,
        height: 48,
        taken_at: None,
        gps: None,
        sha256: "0".repeat(64),
        phash: "0".repeat(16),
        byte_size: 1000,
        display: image("display"),
        thumbnail: image("thumbnail"),
        created_at: now(),
    }
}

async fn reports() {
    let requests = env_usize("BENCH_REQUESTS", 20_000);
    let clients = env_usize("BENCH_CLIENTS", 16);
    let dir = tempfile::tempdir().unwrap();
    let (base, app) = start(dir.path()).await;
    let state = app.state();
    let backend = state.repo.backend();
    tokio::spawn(app.run_until_stopped());

    // Citizens and their photos, written straight to the store: this measures
    // report intake, not the photo pipeline.
    let mut citizens = Vec::new();
    for _ in 0..200 {
        citizens.push(account(&state, Role::Citizen, None, "bench").await);
    }
    let mut jobs = Vec::with_capacity(requests);
    for n in 0..requests {
        let (owner, token) = &citizens[n % citizens.len()];
        let photo = fake_photo(*owner);
        state.repo.insert_photo(&photo).await.unwrap();
        jobs.push((token.clone(), photo.id));
    }
    let jobs = Arc::new(jobs);
    let next = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::new();
    // Seeding takes a while on PostgreSQL: a profile must start after this.
    eprintln!("reports/{backend}: {requests} photos ready, timing starts");
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (jobs, next, client, base) =
                (jobs.clone(), next.clone(), client.clone(), base.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failures = 0;
                loop {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let Some((token, photo)) = jobs.get(n) else {
                        break;
                    };
                    let body = json!({
                        "category": "0301",
                        "location": {"lat": 31.8753, "lon": 120.5539},
                        "description": "楼道里有电动车飞线充电",
                        "photo_ids": [photo],
                    });
                    let sent = Instant::now();
                    let response = client
                        .post(format!("{base}/api/v1/reports"))
                        .bearer_auth(token)
                        .json(&body)
                        .send()
                        .await;
                    latencies.push(sent.elapsed());
                    if !matches!(response, Ok(r) if r.status() == 201) {
                        failures += 1;
                    }
                }
                (latencies, failures)
            })
        })
        .collect();
    let (mut all, failures) = gather(workers).await;
    let elapsed = started.elapsed();
    println!(
        "reports/{backend}: {requests} requests, {clients} clients, {:.2} s -> {:.0} requests/s; p50 {:.1} ms, p99 {:.1} ms; {failures} failures",
        elapsed.as_secs_f64(),
        requests as f64 / elapsed.as_secs_f64(),
        all.percentile(0.5).as_secs_f64() * 1e3,
        all.percentile(0.99).as_secs_f64() * 1e3,
    );
}

async fn uploads() {
    let uploads = env_usize("BENCH_UPLOADS", 80);
    let clients = env_usize("BENCH_CLIENTS", 4);
    let photo = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/photos/street-12mp.jpg"
    ))
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (base, app) = start(dir.path()).await;
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
    let (_, token) = account(&state, Role::Citizen, None, "bench-uploader").await;
    let client = reqwest::Client::new();

    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let prober = {
        let (client, base, done) = (client.clone(), base.clone(), done.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !done.load(Ordering::Relaxed) {
                let sent = Instant::now();
                let ok = client
                    .get(format!("{base}/healthz"))
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 200);
                latencies.push(sent.elapsed());
                assert!(ok, "/healthz failed under load");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            latencies
        })
    };
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (client, base, token, photo, next) = (
                client.clone(),
                base.clone(),
                token.clone(),
                photo.clone(),
                next.clone(),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                while next.fetch_add(1, Ordering::Relaxed) < uploads {
                    let form = reqwest::multipart::Form::new().part(
                        "file",
                        reqwest::multipart::Part::bytes(photo.clone()).file_name("street.jpg"),
                    );
                    let sent = Instant::now();
                    let response = client
                        .post(format!("{base}/api/v1/photos"))
                        .bearer_auth(&token)
                        .multipart(form)
                        .send()
                        .await;
                    latencies.push(sent.elapsed());
                    assert!(
                        matches!(response, Ok(r) if r.status() == 201),
                        "upload failed"
                    );
                }
                latencies
            })
        })
        .collect();
    let mut upload_latency = Latencies(Vec::new());
    for worker in workers {
        upload_latency.0.extend(worker.await.unwrap());
    }
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let mut health = Latencies(prober.await.unwrap());
    println!(
        "uploads: {uploads} × 12 MP, {clients} clients, {:.2} s -> {:.1} photos/s; upload p50 {:.0} ms p99 {:.0} ms; \
         /healthz ({} probes) p50 {:.2} ms p99 {:.2} ms max {:.2} ms",
        elapsed.as_secs_f64(),
        uploads as f64 / elapsed.as_secs_f64(),
        upload_latency.percentile(0.5).as_secs_f64() * 1e3,
        upload_latency.percentile(0.99).as_secs_f64() * 1e3,
        health.0.len(),
        health.percentile(0.5).as_secs_f64() * 1e3,
        health.percentile(0.99).as_secs_f64() * 1e3,
        health.percentile(1.0).as_secs_f64() * 1e3,
    );
}

/// Each case goes through five actions over HTTP — sign, request suspension,
/// approve it (clocks pause), resume (clocks are recomputed around the pause),
/// urge — each carrying the version the previous answer gave.
async fn actions() {
    let cases = env_usize("BENCH_CASES", 4_000);
    let clients = env_usize("BENCH_CLIENTS", 16);
    let dir = tempfile::tempdir().unwrap();
    let (base, app) = start(dir.path()).await;
    let state = app.state();
    let backend = state.repo.backend();
    tokio::spawn(app.run_until_stopped());
    civicsnap::demo::seed(state.repo.as_ref(), dir.path())
        .await
        .unwrap();
    state.routing.refresh(state.repo.as_ref()).await.unwrap();
    state
        .workflow
        .deadlines()
        .refresh(state.repo.as_ref())
        .await
        .unwrap();
    calendar_stand_in::cover_the_coming_months(&state).await;

    // Dispatched cases, made in process: this measures the action endpoint.
    let (citizen, _) = account(&state, Role::Citizen, None, "bench-citizen").await;
    let (_, staff) = account(&state, Role::UnitStaff, Some("DEPT-CGJ"), "bench-staff").await;
    let (_, supervisor) = account(&state, Role::Supervisor, None, "bench-supervisor").await;
    let (_, operator) = account(&state, Role::Operator, None, "bench-operator").await;
    let system = civicsnap::domain::case::Actor::system();
    let mut ready = Vec::with_capacity(cases);
    for _ in 0..cases {
        let photo = fake_photo(citizen);
        state.repo.insert_photo(&photo).await.unwrap();
        let report = NewReport {
            id: Uuid::now_v7(),
            reporter_id: citizen,
            reporter_role: Role::Citizen,
            source: "app".into(),
            category: "0301".into(),
            location: civicsnap::domain::geo::LatLon {
                lat: 31.8753,
                lon: 120.5539,
            },
            accuracy_m: None,
            address: None,
            description: "楼道里有电动车飞线充电".into(),
            confidential: false,
            photo_ids: vec![photo.id],
            photo_distance_m: None,
            now: now(),
            local_day: now().date_naive(),
            tracking_prefix: "SP".into(),
            routing: CaseRouting::default(),
        };
        let case = state
            .repo
            .create_report(&report, None, |_| String::new())
            .await
            .unwrap();
        for action in [
            Action::File,
            Action::Dispatch {
                lead_unit: "DEPT-CGJ".into(),
                co_units: vec![],
            },
        ] {
            let session = state.workflow.open(case.id).await.unwrap().unwrap();
            let envelope = ActionEnvelope {
                expected_version: session.case().version,
                action,
            };
            state
                .workflow
                .act(session, &system, &envelope, now())
                .await
                .unwrap();
        }
        ready.push(case.id);
    }
    let steps = [
        (staff.clone(), json!({"action": "sign"})),
        (
            staff.clone(),
            json!({"action": "request_suspension", "reason": "等待配合"}),
        ),
        (supervisor.clone(), json!({"action": "approve_suspension"})),
        (supervisor.clone(), json!({"action": "resume"})),
        (
            operator.clone(),
            json!({"action": "urge", "note": "请加快"}),
        ),
    ];
    let transitions = cases * steps.len();
    // Setting the cases up takes longer than the timed part on PostgreSQL; a
    // profiler attached before this line measures the setup.
    eprintln!("actions/{backend}: {cases} cases ready, timing starts");
    let ready = Arc::new(ready);
    let steps = Arc::new(steps);
    let next = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::new();
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (ready, steps, next, client, base) = (
                ready.clone(),
                steps.clone(),
                next.clone(),
                client.clone(),
                base.clone(),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failures = 0;
                while let Some(case) = ready.get(next.fetch_add(1, Ordering::Relaxed)) {
                    // Dispatch and filing took the case to version 3.
                    let mut version = 3;
                    for (token, action) in steps.iter() {
                        let mut body = action.clone();
                        body["version"] = json!(version);
                        let sent = Instant::now();
                        let response = client
                            .post(format!("{base}/api/v1/cases/{case}/actions"))
                            .bearer_auth(token)
                            .json(&body)
                            .send()
                            .await;
                        latencies.push(sent.elapsed());
                        match response {
                            Ok(r) if r.status() == 200 => {
                                let answer: serde_json::Value = r.json().await.unwrap_or_default();
                                version = answer["version"].as_i64().unwrap_or(version + 1);
                            }
                            _ => failures += 1,
                        }
                    }
                }
                (latencies, failures)
            })
        })
        .collect();
    let (mut all, failures) = gather(workers).await;
    let elapsed = started.elapsed();
    println!(
        "actions/{backend}: {transitions} transitions on {cases} cases, {clients} clients, {:.2} s -> {:.0} transitions/s; p50 {:.1} ms, p99 {:.1} ms; {failures} failures",
        elapsed.as_secs_f64(),
        transitions as f64 / elapsed.as_secs_f64(),
        all.percentile(0.5).as_secs_f64() * 1e3,
        all.percentile(0.99).as_secs_f64() * 1e3,
    );
}

fn main() {
    // `cargo bench` passes `--bench`; scenario names select what runs.
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let all = args.is_empty();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        if all || args.iter().any(|a| a == "reports") {
            reports().await;
        }
        if all || args.iter().any(|a| a == "uploads") {
            uploads().await;
        }
        if all || args.iter().any(|a| a == "actions") {
            actions().await;
        }
    });
}
