//! Builds the application from settings: backends, state, HTTP server, jobs.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::{Next, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};
use anyhow::Context;
use tokio::sync::Notify;
use tracing_actix_web::TracingLogger;
use utoipa_actix_web::AppExt;

use crate::auth::{JwtKeys, OtpCodes, SmsSender, default_sms_sender, load_jwt_secret};
use crate::config::{Settings, StorageKind};
use crate::deadlines::LiveDeadlines;
use crate::demo::{self, DemoAccount};
use crate::domain::geo::ServiceArea;
use crate::domain::report::ReportRules;
use crate::error::{ApiError, extractors};
use crate::limits::CitizenLimits;
use crate::media::PhotoWorkers;
use crate::metrics::Metrics;
use crate::objects::{LocalStore, PhotoStore, S3Config, S3Store};
use crate::routing::LiveRouting;
use crate::state::AppState;
use crate::workflow::{Workflow, WorkflowRules};
use crate::{http, jobs, store};

/// Replaceable collaborators; production uses the defaults.
#[derive(Default)]
pub struct Overrides {
    /// Where one-time codes go; the logging sender by default.
    pub sms: Option<Arc<dyn SmsSender>>,
}

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
    demo_accounts: Vec<DemoAccount>,
}

/// Opens the photo store the settings name, creating the S3 bucket if asked to.
pub async fn open_photo_store(settings: &Settings) -> anyhow::Result<Arc<dyn PhotoStore>> {
    Ok(match settings.storage.kind {
        StorageKind::Local => {
            Arc::new(LocalStore::new(settings.local_storage_root()).context("local photo store")?)
        }
        StorageKind::S3 => {
            let s3 = &settings.storage.s3;
            let store = S3Store::new(S3Config {
                endpoint: s3.endpoint.clone(),
                region: s3.region.clone(),
                bucket: s3.bucket.clone(),
                access_key: s3.access_key.clone(),
                secret_key: s3.secret_key.clone(),
                path_style: s3.path_style,
            })
            .context("S3 photo store")?;
            if s3.create_bucket {
                store
                    .ensure_bucket()
                    .await
                    .context("creating the S3 bucket")?;
            }
            Arc::new(store)
        }
    })
}

/// What the jobs and the handlers share.
struct Engines {
    tz: chrono_tz::Tz,
    routing: Arc<LiveRouting>,
    workflow: Arc<Workflow>,
    auto_dispatch: Arc<Notify>,
    metrics: Arc<Metrics>,
}

fn build_state(
    settings: Settings,
    repo: Arc<dyn store::Repository>,
    photos: Arc<dyn PhotoStore>,
    engines: Engines,
    overrides: Overrides,
) -> anyhow::Result<AppState> {
    let secret = load_jwt_secret(&settings).context("loading the JWT secret")?;
    let area = &settings.reports.service_area;
    let service_area = match &area.polygon {
        Some(ring) => ServiceArea::from_ring(ring),
        None => ServiceArea::from_bbox(area.bbox),
    }
    .map_err(|e| anyhow::anyhow!("reports.service_area: {e}"))?;
    let slots = match settings.photos.processing_slots {
        0 => std::thread::available_parallelism().map_or(2, usize::from),
        n => n,
    };
    let sms = overrides
        .sms
        .unwrap_or_else(|| default_sms_sender(settings.dev_mode));
    Ok(AppState {
        jwt: JwtKeys::from_settings(&settings, &secret),
        otp: OtpCodes::new(secret.as_bytes()),
        sms,
        photo_workers: PhotoWorkers::new(slots)
            .map_err(|e| anyhow::anyhow!("starting the photo worker threads: {e}"))?,
        metrics: engines.metrics,
        report_rules: ReportRules {
            max_description_chars: settings.reports.max_description_chars,
            max_address_chars: 200,
            max_photos: settings.reports.max_photos,
            max_photo_distance_m: settings.reports.max_photo_distance_m,
            service_area,
        },
        tz: engines.tz,
        routing: engines.routing,
        workflow: engines.workflow,
        auto_dispatch: engines.auto_dispatch,
        readiness: Default::default(),
        citizen_limits: Arc::new(CitizenLimits::from_settings(&settings)),
        repo,
        photos,
        settings,
    })
}

/// Expired codes, old request counts and week-old idempotency keys are few an
/// hour; hourly keeps the tables short.
const PURGE_INTERVAL: Duration = Duration::from_secs(3600);
/// Reopen windows are days long; archiving within the hour after is soon enough.
const ARCHIVE_INTERVAL: Duration = Duration::from_secs(3600);
/// Citizens' hourly quotas refill within the hour; forgetting full ones every
/// ten minutes keeps memory to the recent callers.
const LIMITS_TRIM_INTERVAL: Duration = Duration::from_secs(600);

/// HTTP requires HEAD wherever GET is served. The GET route answers it; the
/// connection's encoder, which saw the request as HEAD, sends the headers
/// (length included) without the body. Changing the method needs the only
/// handle on the request (`head_mut` panics otherwise): no outer middleware
/// may keep a clone, which `head_answers_like_get_without_the_body` would show.
async fn head_as_get(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody + 'static>, actix_web::Error> {
    if req.method() == Method::HEAD
        && http::methods_at(req.path()).is_some_and(|methods| methods.contains(&"GET"))
    {
        req.head_mut().method = Method::GET;
    }
    next.call(req).await
}

/// No route matched: a path the API has, asked with another method, is a 405
/// naming the methods it has; anything else is a 404.
async fn not_found(req: actix_web::HttpRequest) -> Result<HttpResponse, ApiError> {
    match http::methods_at(req.path()) {
        Some(allow) => Err(ApiError::MethodNotAllowed {
            method: req.method().to_string(),
            allow: allow.join(", "),
        }),
        None => Err(ApiError::NotFound("route")),
    }
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        Application::build_with(settings, Overrides::default()).await
    }

    pub async fn build_with(
        settings: Settings,
        overrides: Overrides,
    ) -> anyhow::Result<Application> {
        settings.validate()?;
        for warning in settings.dev_mode_warnings() {
            tracing::warn!("{warning}");
        }
        let repo = store::connect(&settings.database_url, settings.database_connections)
            .await
            .context("opening the database")?;
        let photos = open_photo_store(&settings).await?;
        let demo_accounts = if settings.seeds_demo_city() {
            demo::seed(repo.as_ref(), &settings.data_dir)
                .await
                .context("seeding the demo city")?
        } else {
            Vec::new()
        };
        let routing = Arc::new(
            LiveRouting::load(repo.as_ref())
                .await
                .context("loading the routing table")?,
        );
        let tz = settings.city.tz()?;
        let deadlines = Arc::new(
            LiveDeadlines::load(repo.as_ref(), &settings.workflow, tz)
                .await
                .context("loading working calendars and deadline profiles")?,
        );
        let metrics = Arc::new(Metrics::new());
        jobs::reference_refresh::spawn(
            repo.clone(),
            routing.clone(),
            deadlines.clone(),
            Duration::from_secs(settings.routing.refresh_secs.max(1)),
            metrics.clone(),
        );
        let workflow = Arc::new(Workflow::new(
            repo.clone(),
            deadlines,
            WorkflowRules::from_settings(&settings.workflow),
        ));
        let auto_dispatch = Arc::new(Notify::new());
        if settings.workflow.auto_dispatch {
            jobs::auto_dispatch::spawn(
                workflow.clone(),
                repo.clone(),
                auto_dispatch.clone(),
                Duration::from_secs(settings.workflow.auto_dispatch_interval_secs.max(1)),
                metrics.clone(),
            );
        }
        jobs::deadline_sweeper::spawn(
            repo.clone(),
            format!("instance-{}", uuid::Uuid::now_v7()),
            Duration::from_secs(settings.workflow.sweep_interval_secs.max(1)),
            settings.workflow.sweep_batch,
            metrics.clone(),
        );
        jobs::photo_cleanup::spawn(
            repo.clone(),
            photos.clone(),
            Duration::from_secs(settings.photos.cleanup_interval_secs.max(1)),
            Duration::from_secs(settings.photos.unattached_ttl_hours * 3600),
            metrics.clone(),
        );
        jobs::sign_in_purge::spawn(repo.clone(), PURGE_INTERVAL, metrics.clone());
        jobs::idempotency_purge::spawn(repo.clone(), PURGE_INTERVAL, metrics.clone());
        jobs::archive::spawn(
            workflow.clone(),
            repo.clone(),
            ARCHIVE_INTERVAL,
            metrics.clone(),
        );
        let listener = TcpListener::bind((settings.server.host.as_str(), settings.server.port))
            .with_context(|| {
                format!("binding {}:{}", settings.server.host, settings.server.port)
            })?;
        let port = listener.local_addr()?.port();
        let workers = match settings.server.workers {
            0 => std::thread::available_parallelism().map_or(2, usize::from),
            n => n,
        };
        let json_limit = settings.server.json_limit;
        let state = web::Data::new(build_state(
            settings,
            repo,
            photos,
            Engines {
                tz,
                routing,
                workflow,
                auto_dispatch,
                metrics: metrics.clone(),
            },
            overrides,
        )?);
        let limits = state.citizen_limits.clone();
        jobs::every(
            "citizen_limits_trim",
            LIMITS_TRIM_INTERVAL,
            metrics,
            move || {
                let limits = limits.clone();
                async move {
                    limits.trim();
                    jobs::Pass::Succeeded
                }
            },
        );
        let app_state = state.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(app_state.clone())
                .app_data(extractors::JsonLimit(json_limit))
                .app_data(extractors::query_config())
                .app_data(extractors::path_config())
                .into_utoipa_app()
                .configure(http::configure)
                .into_app()
                .default_service(web::to(not_found))
                .wrap(from_fn(head_as_get))
                .wrap(from_fn(http::observe::observe))
                .wrap(TracingLogger::<http::observe::RequestSpan>::new())
        })
        .workers(workers)
        .shutdown_timeout(30)
        .listen(listener)?
        .run();
        Ok(Application {
            port,
            server,
            state,
            demo_accounts,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Demo staff accounts, when the demo city was seeded (embedded default).
    pub fn demo_accounts(&self) -> &[DemoAccount] {
        &self.demo_accounts
    }

    /// Shared state, for tests and the CLI.
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    /// Serves until SIGINT/SIGTERM, then drains in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}
