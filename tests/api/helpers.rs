//! The test harness: every test gets its own application on a free port, with its
//! own database (a temp SQLite file, or a fresh PostgreSQL database when
//! `TEST_POSTGRES_URL` is set) and its own photo store (a temp folder, or a fresh
//! bucket on the S3 server at `TEST_S3_ENDPOINT`).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use civicsnap::auth::{SmsError, SmsSender};
use civicsnap::config::{Settings, StorageKind};
use civicsnap::domain::phone::Phone;
use civicsnap::domain::role::Role;
use civicsnap::startup::{Application, Overrides};
use civicsnap::state::{AppState, now};
use civicsnap::store::NewUser;
use reqwest::multipart::{Form, Part};
use serde_json::Value;
use sqlx::Connection;
use uuid::Uuid;

pub const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/photos");

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap_or_else(|e| panic!("fixture {name}: {e}"))
}

/// Stands in for the SMS gateway: keeps the last code sent to each phone, or
/// fails as told.
#[derive(Default)]
pub struct CapturedSms {
    codes: Mutex<HashMap<String, String>>,
    failure: Mutex<Option<String>>,
}

impl CapturedSms {
    /// From now on every send fails with this reply, as a broken gateway's would.
    pub fn fail_with(&self, reply: &str) {
        *self.failure.lock().unwrap() = Some(reply.to_owned());
    }

    /// The gateway works again.
    pub fn recover(&self) {
        *self.failure.lock().unwrap() = None;
    }

    pub fn last_code(&self, phone: &str) -> Option<String> {
        let phone = Phone::parse(phone).ok()?;
        self.codes.lock().unwrap().get(phone.as_e164()).cloned()
    }
}

#[async_trait]
impl SmsSender for CapturedSms {
    async fn send_code(&self, phone: &Phone, code: &str) -> Result<(), SmsError> {
        if let Some(reply) = self.failure.lock().unwrap().clone() {
            return Err(SmsError(reply));
        }
        self.codes
            .lock()
            .unwrap()
            .insert(phone.as_e164().to_owned(), code.to_owned());
        Ok(())
    }
}

pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub state: actix_web::web::Data<AppState>,
    pub sms: Arc<CapturedSms>,
    data: Arc<tempfile::TempDir>,
}

/// Test databases carry their creation time in their name, so that a later run
/// can drop what earlier runs left behind: a test cannot drop its own database,
/// as the application it started still holds connections when the test ends.
const TEST_DATABASE_PREFIX: &str = "civicsnap_test_";
/// Older than this, a test database belongs to no suite still running.
const STALE_TEST_DATABASE_SECS: u64 = 2 * 3600;

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Drops test databases of earlier runs (older than a couple of hours, or named
/// before names carried a time); once per test process. Failures only leave the
/// clutter for the next run.
async fn drop_stale_test_databases(admin: &mut sqlx::PgConnection) {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| async {
        let names: Vec<String> =
            sqlx::query_scalar("SELECT datname FROM pg_database WHERE starts_with(datname, $1)")
                .bind(TEST_DATABASE_PREFIX)
                .fetch_all(&mut *admin)
                .await
                .unwrap_or_default();
        let now = unix_secs();
        for name in names {
            let created = name[TEST_DATABASE_PREFIX.len()..]
                .split('_')
                .next()
                .and_then(|secs| secs.parse::<u64>().ok());
            if created.is_none_or(|secs| now.saturating_sub(secs) > STALE_TEST_DATABASE_SECS) {
                let drop = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                let _ = sqlx::query(sqlx::AssertSqlSafe(drop))
                    .execute(&mut *admin)
                    .await;
            }
        }
    })
    .await;
}

/// A fresh, empty PostgreSQL database on the server `TEST_POSTGRES_URL` names,
/// reached with the same options (`?sslmode=…`).
async fn fresh_postgres_database(base: &str) -> String {
    let name = format!(
        "{TEST_DATABASE_PREFIX}{}_{}",
        unix_secs(),
        Uuid::new_v4().simple()
    );
    let mut admin = sqlx::PgConnection::connect(base)
        .await
        .expect("connect to TEST_POSTGRES_URL");
    drop_stale_test_databases(&mut admin).await;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create test database");
    let (server, rest) = base
        .rsplit_once('/')
        .expect("TEST_POSTGRES_URL ends with /database");
    let options = rest.find('?').map_or("", |at| &rest[at..]);
    format!("{server}/{name}{options}")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let app = spawn_app_with_shipped_calendars(adjust).await;
    crate::calendar_stand_in::cover_the_coming_months(&app.state).await;
    app
}

/// An application whose working calendar is only what the service ships, for
/// tests about where that calendar ends.
pub async fn spawn_app_with_shipped_calendars(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    // Logs only when asked for (TEST_LOG=1), so test output stays readable.
    if std::env::var_os("TEST_LOG").is_some() {
        civicsnap::telemetry::init();
    }
    let data_dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::ephemeral(data_dir.path());
    if let Ok(base) = std::env::var("TEST_POSTGRES_URL") {
        settings.database_url = fresh_postgres_database(&base).await;
    }
    if let Ok(endpoint) = std::env::var("TEST_S3_ENDPOINT") {
        settings.storage.kind = StorageKind::S3;
        settings.storage.s3.endpoint = endpoint;
        settings.storage.s3.bucket = format!("civicsnap-test-{}", Uuid::new_v4().simple());
        settings.storage.s3.access_key =
            std::env::var("TEST_S3_ACCESS_KEY").unwrap_or_else(|_| "test".into());
        settings.storage.s3.secret_key =
            std::env::var("TEST_S3_SECRET_KEY").unwrap_or_else(|_| "test".into());
    }
    adjust(&mut settings);
    start(settings, Arc::new(data_dir)).await
}

/// Builds and runs an instance on `settings`, its data kept in `data`.
async fn start(settings: Settings, data: Arc<tempfile::TempDir>) -> TestApp {
    let sms = Arc::new(CapturedSms::default());
    let app = Application::build_with(
        settings,
        Overrides {
            sms: Some(sms.clone()),
        },
    )
    .await
    .expect("application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        state,
        sms,
        data,
    }
}

pub struct Caller {
    pub id: Uuid,
    pub token: String,
}

impl TestApp {
    /// Another API instance on the same database and storage, as in a deployment
    /// with several instances behind a load balancer.
    pub async fn second_instance(&self) -> TestApp {
        start(self.state.settings.clone(), self.data.clone()).await
    }

    /// The instance's data folder (demo notes, dev secret, local photos).
    pub fn data_dir(&self) -> &std::path::Path {
        self.data.path()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// A user of `role` stored in the database, with a fresh access token; unit
    /// roles belong to `UNIT-A`.
    pub async fn user(&self, role: Role) -> Caller {
        self.user_of(role, "UNIT-A").await
    }

    /// A user of `role` (of `unit` for unit roles), with a fresh access token.
    pub async fn user_of(&self, role: Role, unit: &str) -> Caller {
        let id = Uuid::now_v7();
        let unit_id = role.is_unit_role().then(|| unit.to_owned());
        self.state
            .repo
            .create_user(&NewUser {
                id,
                role,
                unit_id: unit_id.clone(),
                username: Some(format!("{role}-{}", id.simple())),
                password_hash: None,
                phone: None,
                display_name: None,
                created_at: now(),
            })
            .await
            .expect("create user");
        let token = self
            .state
            .jwt
            .issue(id, role, unit_id, now(), 600)
            .expect("token");
        Caller { id, token }
    }

    pub async fn citizen(&self) -> Caller {
        self.user(Role::Citizen).await
    }

    pub async fn upload(&self, token: &str, bytes: Vec<u8>, file_name: &str) -> reqwest::Response {
        let form = Form::new().part("file", Part::bytes(bytes).file_name(file_name.to_owned()));
        self.upload_form(token, form).await
    }

    /// `POST /api/v1/photos` with `form` as it is, for uploads shaped by hand.
    pub async fn upload_form(&self, token: &str, form: Form) -> reqwest::Response {
        self.client
            .post(self.url("/api/v1/photos"))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .expect("upload request")
    }

    /// Uploads a photo and returns its id.
    pub async fn photo(&self, token: &str, bytes: Vec<u8>) -> Uuid {
        let response = self.upload(token, bytes, "photo.jpg").await;
        assert_eq!(
            response.status(),
            201,
            "upload: {}",
            response.text().await.unwrap_or_default()
        );
        let body: Value = response.json().await.unwrap();
        body["id"].as_str().unwrap().parse().unwrap()
    }

    /// `PUT /api/v1/admin/calendars` with `body` as `content_type`.
    pub async fn put_calendar(
        &self,
        token: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> reqwest::Response {
        self.client
            .put(self.url("/api/v1/admin/calendars"))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn post_json(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }

    /// Uploads a small photo and files the standard report with it (201 expected).
    pub async fn file_report(&self, token: &str) -> Value {
        let photo = self.photo(token, jpeg(40, 30)).await;
        let response = self
            .post_json("/api/v1/reports", Some(token), &report_body(&[photo]))
            .await;
        assert_eq!(
            response.status(),
            201,
            "report: {}",
            response.text().await.unwrap_or_default()
        );
        response.json().await.expect("report body")
    }

    /// GETs `path` expecting a JSON body (any status).
    pub async fn get_json(&self, path: &str, token: Option<&str>) -> Value {
        self.get(path, token).await.json().await.expect("JSON body")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("request")
    }
}

/// A small real JPEG (no EXIF) of the given size, made in code.
pub fn jpeg(width: u16, height: u16) -> Vec<u8> {
    let pixels: Vec<u8> = (0..usize::from(width) * usize::from(height))
        .flat_map(|i| {
            let v = (i % 251) as u8;
            [v, v.wrapping_mul(3), 255 - v]
        })
        .collect();
    let mut out = Vec::new();
    jpeg_encoder::Encoder::new(&mut out, 85)
        .encode(&pixels, width, height, jpeg_encoder::ColorType::Rgb)
        .expect("encode test jpeg");
    out
}

/// Asserts that a problem's detail says `text`.
pub fn assert_detail_mentions(problem: &Value, text: &str) {
    let detail = problem["detail"].as_str().unwrap_or_default();
    assert!(detail.contains(text), "{text:?} not in {problem}");
}

/// Asserts an `application/problem+json` answer with this status and code.
pub async fn assert_problem(response: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "status");
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    let body: Value = response.json().await.expect("problem body");
    assert_eq!(body["code"], code, "problem: {body}");
    assert_eq!(body["status"], status);
    body
}

/// A report body at the demo city's centre.
pub fn report_body(photo_ids: &[Uuid]) -> Value {
    serde_json::json!({
        "category": "0301",
        "location": {"lat": 31.8753, "lon": 120.5539, "accuracy_m": 8.0},
        "address": "暨阳中路 1 号",
        "description": "楼道里有电动车飞线充电",
        "photo_ids": photo_ids,
    })
}

/// An application whose database holds the demo city, with the routing table
/// rebuilt from it.
pub async fn spawn_demo_app() -> TestApp {
    spawn_demo_app_with(|_| {}).await
}

pub async fn spawn_demo_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let app = spawn_app_with(adjust).await;
    civicsnap::demo::seed(app.state.repo.as_ref(), app.data_dir())
        .await
        .expect("demo city seeds");
    app.refresh_reference_data().await;
    app
}

impl TestApp {
    /// Rebuilds the routing table and deadline book after a direct store write.
    pub async fn refresh_reference_data(&self) {
        let repo = self.state.repo.as_ref();
        self.state
            .routing
            .refresh(repo)
            .await
            .expect("routing table rebuilt");
        self.state
            .workflow
            .deadlines()
            .refresh(repo)
            .await
            .expect("deadline book rebuilt");
    }
}
