//! Liveness, readiness, metrics and the API description.

use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::bearer_token;
use crate::error::ApiError;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(healthz)
        .service(readyz)
        .service(metrics)
        .service(openapi_yaml);
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    /// Per dependency: `ok` or why not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Checks>,
}

#[derive(Serialize, ToSchema)]
pub struct Checks {
    pub database: String,
    pub storage: String,
}

/// The process is up. Touches nothing else, so it stays fast under load.
#[utoipa::path(tag = "ops", responses((status = 200, body = Health)))]
#[get("/healthz")]
async fn healthz() -> web::Json<Health> {
    web::Json(Health {
        status: "ok",
        checks: None,
    })
}

/// How long a readiness answer is reused.
const READINESS_TTL: Duration = Duration::from_secs(1);
/// How long each dependency has to answer a readiness check.
const READINESS_TIMEOUT: Duration = Duration::from_secs(5);

/// The last readiness check of an instance, reused for [`READINESS_TTL`]: the
/// endpoint is public, and each check pings the database and writes, reads
/// and deletes an object, so probes (a load balancer's, or anyone's) cost at
/// most one of those a second. Concurrent probes wait for one check.
#[derive(Default)]
pub struct Readiness {
    last: tokio::sync::Mutex<Option<(Instant, ReadyChecks)>>,
}

#[derive(Clone, Copy)]
struct ReadyChecks {
    database: bool,
    storage: bool,
}

impl Readiness {
    async fn check(&self, state: &AppState) -> ReadyChecks {
        let mut last = self.last.lock().await;
        if let Some((at, checks)) = *last
            && at.elapsed() < READINESS_TTL
        {
            return checks;
        }
        let (database, storage) = tokio::join!(
            passes("database", state.repo.ping()),
            passes("storage", state.photos.check())
        );
        let checks = ReadyChecks { database, storage };
        *last = Some((Instant::now(), checks));
        checks
    }
}

/// Whether `check` succeeds within [`READINESS_TIMEOUT`]; why not is logged. A
/// dependency that hangs is as unready as one that fails, and must not hold
/// every probe queued behind the check.
async fn passes<E: std::fmt::Display>(
    what: &str,
    check: impl std::future::Future<Output = Result<(), E>>,
) -> bool {
    match tokio::time::timeout(READINESS_TIMEOUT, check).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness: {what} check failed");
            false
        }
        Err(_) => {
            tracing::warn!("readiness: {what} check timed out");
            false
        }
    }
}

/// The database and photo storage answer (checked at most once a second).
#[utoipa::path(tag = "ops", responses((status = 200, body = Health), (status = 503, body = Health)))]
#[get("/readyz")]
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let checks = state.readiness.check(&state).await;
    let describe = |ok: bool, what: &str| {
        if ok {
            "ok".to_owned()
        } else {
            format!("{what} unreachable")
        }
    };
    let ready = checks.database && checks.storage;
    let body = Health {
        status: if ready { "ok" } else { "unavailable" },
        checks: Some(Checks {
            database: describe(checks.database, state.repo.backend()),
            storage: describe(checks.storage, state.photos.kind()),
        }),
    };
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Prometheus text exposition. With `server.metrics_token` set, only for that
/// bearer token.
#[utoipa::path(
    tag = "ops",
    responses(
        (status = 200, content_type = "text/plain", body = String),
        (status = 401, description = "`server.metrics_token` is set and this request did not carry it", body = crate::error::Problem),
    )
)]
#[get("/metrics")]
async fn metrics(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    if let Some(expected) = &state.settings.server.metrics_token {
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(bearer_token);
        if !presented.is_some_and(|token| same_secret(token, expected)) {
            return Err(ApiError::Unauthorized("the metrics token"));
        }
    }
    let calendar_end = state.workflow.deadlines().book().calendar_end_time();
    state
        .metrics
        .calendar_end
        .set(calendar_end.map_or(0, |end| end.timestamp()));
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(state.metrics.render()))
}

/// Compares digests, so the time taken says nothing about how much of the
/// secret a guess got right.
fn same_secret(presented: &str, expected: &str) -> bool {
    use sha2::{Digest, Sha256};
    Sha256::digest(presented.as_bytes()) == Sha256::digest(expected.as_bytes())
}

/// This API's OpenAPI 3.1 description, as YAML.
#[utoipa::path(tag = "ops", responses((status = 200, content_type = "application/yaml", body = Object)))]
#[get("/api/v1/openapi.yaml")]
async fn openapi_yaml() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/yaml")
        .body(super::openapi_yaml())
}
