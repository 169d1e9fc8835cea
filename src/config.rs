//! Settings: serde defaults, then an optional `civicsnap.toml` (or the file named by
//! `CIVICSNAP_CONFIG`), then `CIVICSNAP_*` environment variables with `__` between
//! levels (`CIVICSNAP_STORAGE__KIND=s3`, `CIVICSNAP_DATABASE_URL=postgres://…`).

use std::fmt;
use std::path::PathBuf;

use ipnet::IpNet;
use serde::Deserialize;

use crate::domain::deadline::OfficeHours;
use crate::domain::report::MAX_PHOTOS;

/// A year: an upload kept longer than that is not waiting for its report.
const MAX_UNATTACHED_TTL_HOURS: u64 = 24 * 365;
/// Warnings and overdue notices are owed within minutes; a sweep less often
/// than hourly would hold them back for longer than any alert allows.
const MAX_SWEEP_INTERVAL_SECS: u64 = 3600;

// No `deny_unknown_fields` at the top: every `CIVICSNAP_*` variable (such as
// `CIVICSNAP_CONFIG`) lands here. Nested sections do refuse typos.
#[derive(Clone, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Development conveniences: the `token` CLI, a generated JWT secret kept in the
    /// data folder, the logging SMS sender without a warning. Never on in production.
    pub dev_mode: bool,
    /// `sqlite://path` (created if missing) or `postgres://…`.
    pub database_url: String,
    /// Connections one instance may hold open to PostgreSQL (SQLite sizes its own
    /// pools). Every instance's count must fit under the server's `max_connections`.
    pub database_connections: u32,
    /// Folder for the SQLite database, local photos and the dev JWT secret.
    pub data_dir: PathBuf,
    pub server: ServerSettings,
    pub storage: StorageSettings,
    pub auth: AuthSettings,
    pub photos: PhotoSettings,
    pub reports: ReportSettings,
    pub city: CitySettings,
    pub demo: DemoSettings,
    pub routing: RoutingSettings,
    pub workflow: WorkflowSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            dev_mode: true,
            database_url: "sqlite://./data/civicsnap.db".into(),
            database_connections: 16,
            data_dir: PathBuf::from("./data"),
            server: ServerSettings::default(),
            storage: StorageSettings::default(),
            auth: AuthSettings::default(),
            photos: PhotoSettings::default(),
            reports: ReportSettings::default(),
            city: CitySettings::default(),
            demo: DemoSettings::default(),
            routing: RoutingSettings::default(),
            workflow: WorkflowSettings::default(),
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkflowSettings {
    /// Working calendar the city's deadlines are counted on (loaded per year).
    pub jurisdiction: String,
    /// Office hours of the city's units; `summer` may give a second set.
    pub office_hours: OfficeHours,
    /// Share of a clock after which the yellow warning (预警) goes out.
    pub warning_fraction: f64,
    /// Days after closing in which an operator may still reopen (重办).
    pub reopen_window_days: u32,
    /// An after-photo further than this from the case is flagged for the checker.
    pub after_photo_max_distance_m: f64,
    /// How often the deadline sweeper looks for due clocks.
    pub sweep_interval_secs: u64,
    /// Clocks claimed per sweep transaction.
    pub sweep_batch: i64,
    /// Run the automatic filing and dispatch job on this instance (categories
    /// still decide which reports it takes).
    pub auto_dispatch: bool,
    /// How often waiting reports are checked for automatic filing and dispatch
    /// (new reports on this instance are picked up at once).
    pub auto_dispatch_interval_secs: u64,
    /// Case actions (comments, ratings, confirmations) one citizen may take
    /// per hour on one instance; 0: no cap (see `limits`).
    pub citizen_actions_per_hour: u32,
}

impl Default for WorkflowSettings {
    fn default() -> Self {
        WorkflowSettings {
            jurisdiction: "CN".into(),
            office_hours: OfficeHours::standard(),
            warning_fraction: crate::domain::deadline::DEFAULT_WARNING_FRACTION,
            reopen_window_days: 15,
            after_photo_max_distance_m: 200.0,
            sweep_interval_secs: 30,
            sweep_batch: 500,
            auto_dispatch: true,
            auto_dispatch_interval_secs: 5,
            citizen_actions_per_hour: 30,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DemoSettings {
    /// Seed the demo city (and one account per staff role, passwords printed)
    /// into an empty SQLite database at start, in dev_mode only. PostgreSQL is
    /// only seeded by `civicsnap seed-demo`.
    pub seed: bool,
}

impl Default for DemoSettings {
    fn default() -> Self {
        DemoSettings { seed: true }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingSettings {
    /// How often an instance checks whether another changed zones, units or rules.
    pub refresh_secs: u64,
}

impl Default for RoutingSettings {
    fn default() -> Self {
        RoutingSettings { refresh_secs: 2 }
    }
}

impl fmt::Debug for Settings {
    // Database URLs may carry a password: never print them whole.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("dev_mode", &self.dev_mode)
            .field("database", &redact_url(&self.database_url))
            .field("database_connections", &self.database_connections)
            .field("data_dir", &self.data_dir)
            .field("server", &self.server)
            .field("storage", &self.storage)
            .field("auth", &self.auth)
            .field("photos", &self.photos)
            .field("reports", &self.reports)
            .field("city", &self.city)
            .field("demo", &self.demo)
            .field("routing", &self.routing)
            .field("workflow", &self.workflow)
            .finish()
    }
}

/// `postgres://user:secret@host/db?password=secret` ->
/// `postgres://user:***@host/db?password=***`: libpq takes a password in either.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = url.split_at(url.find("://").map_or(0, |i| i + 3));
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    // An `@` only after the first `?` is a password holding an unencoded `?`, or
    // an `@` in a query value: which one cannot be told, so all of it is masked.
    if !before_query.contains('@') && query.is_some_and(|q| q.contains('@')) {
        return format!("{scheme}***");
    }
    let mut redacted = scheme.to_owned();
    // The user information ends at the last `@` before the query: a password
    // may hold an unencoded `@` or `/`.
    match before_query.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => redacted.push_str(&format!("{user}:***@{host}")),
            None => redacted.push_str(before_query),
        },
        None => redacted.push_str(before_query),
    }
    let Some(query) = query else {
        return redacted;
    };
    let params: Vec<String> = query
        .split('&')
        .map(|param| match param.split_once('=') {
            // Names are compared as the driver reads them, percent-decoded.
            Some((name, _))
                if ["password", "sslpassword"].iter().any(|secret| {
                    percent_encoding::percent_decode_str(name)
                        .decode_utf8_lossy()
                        .eq_ignore_ascii_case(secret)
                }) =>
            {
                format!("{name}=***")
            }
            _ => param.to_owned(),
        })
        .collect();
    redacted.push('?');
    redacted.push_str(&params.join("&"));
    redacted
}

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerSettings {
    pub host: String,
    /// 0 picks a free port (tests).
    pub port: u16,
    /// actix workers; 0 means one per core.
    pub workers: usize,
    /// Largest JSON body accepted, in bytes.
    pub json_limit: usize,
    /// Reverse proxies and load balancers in front of the service (addresses or
    /// networks). Only requests arriving from these may name their client in
    /// `X-Forwarded-For`; per-client limits use that client instead of the proxy.
    pub trusted_proxies: Vec<IpNet>,
    /// When set, `GET /metrics` answers only `Authorization: Bearer <this>`
    /// (Prometheus' `authorization` / `bearer_token` scrape setting). Unset,
    /// it is open, for deployments that keep it off the public path instead.
    pub metrics_token: Option<String>,
}

impl Default for ServerSettings {
    fn default() -> Self {
        ServerSettings {
            host: "127.0.0.1".into(),
            port: 8080,
            workers: 0,
            json_limit: 64 * 1024,
            trusted_proxies: Vec::new(),
            metrics_token: None,
        }
    }
}

impl fmt::Debug for ServerSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("workers", &self.workers)
            .field("json_limit", &self.json_limit)
            .field("trusted_proxies", &self.trusted_proxies)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "***"))
            .finish()
    }
}

#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    Local,
    S3,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    pub kind: StorageKind,
    /// Root of the local store; defaults to `<data_dir>/objects`.
    pub local_root: Option<PathBuf>,
    pub s3: S3Settings,
}

impl Default for StorageSettings {
    fn default() -> Self {
        StorageSettings {
            kind: StorageKind::Local,
            local_root: None,
            s3: S3Settings::default(),
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Settings {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    pub path_style: bool,
    /// Create the bucket at start if it does not exist.
    pub create_bucket: bool,
}

impl Default for S3Settings {
    fn default() -> Self {
        S3Settings {
            endpoint: "http://127.0.0.1:9000".into(),
            region: "us-east-1".into(),
            bucket: "civicsnap-photos".into(),
            access_key: String::new(),
            secret_key: String::new(),
            path_style: true,
            create_bucket: true,
        }
    }
}

impl fmt::Debug for S3Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("bucket", &self.bucket)
            .field("access_key", &self.access_key)
            .field("secret_key", &"***")
            .field("path_style", &self.path_style)
            .field("create_bucket", &self.create_bucket)
            .finish()
    }
}

#[derive(Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// HS256 secret, at least 32 bytes. Required unless `dev_mode` is on, in which
    /// case one is generated once and kept in `<data_dir>/jwt-secret`.
    pub jwt_secret: Option<String>,
    pub issuer: String,
    pub audience: String,
    pub access_ttl_secs: u64,
    pub refresh_ttl_days: u64,
    pub otp_ttl_secs: u64,
    /// Minimum gap between two codes sent to one phone.
    pub otp_resend_secs: u64,
    /// Wrong codes allowed before a code is burnt.
    pub otp_max_attempts: u32,
    /// Code requests allowed per client IP per minute, counted in the database so
    /// every instance shares the limit.
    pub otp_per_ip_per_minute: u32,
    /// Token requests (codes, passwords, refresh tokens) allowed per client IP
    /// per minute, counted like code requests: online password guessing and
    /// the Argon2 work each guess costs stop there.
    pub token_per_ip_per_minute: u32,
    /// Codes sent to one phone per day (midnight to midnight in the city's
    /// zone), whoever asks: bounds SMS sent to a victim's phone and guesses at
    /// its codes.
    pub otp_per_phone_per_day: u32,
    /// Password sign-ins allowed for one username in a quarter of an hour
    /// (from any address, right or wrong; 0: no cap). The per-address limit
    /// alone lets a guesser spread over many addresses; past this, the
    /// account signs in again only once the quarter has passed. Staff renew
    /// their access with refresh tokens, which this does not count.
    pub password_attempts_per_account: u32,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            jwt_secret: None,
            issuer: "civicsnap".into(),
            audience: "civicsnap-api".into(),
            access_ttl_secs: 15 * 60,
            refresh_ttl_days: 30,
            otp_ttl_secs: 5 * 60,
            otp_resend_secs: 60,
            otp_max_attempts: 5,
            otp_per_ip_per_minute: 10,
            token_per_ip_per_minute: 30,
            otp_per_phone_per_day: 10,
            password_attempts_per_account: 10,
        }
    }
}

impl fmt::Debug for AuthSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthSettings")
            .field("jwt_secret", &self.jwt_secret.as_ref().map(|_| "***"))
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("access_ttl_secs", &self.access_ttl_secs)
            .field("refresh_ttl_days", &self.refresh_ttl_days)
            .field("otp_ttl_secs", &self.otp_ttl_secs)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PhotoSettings {
    pub max_bytes: usize,
    pub max_pixels: u64,
    /// Photos never attached to a report are deleted after this long.
    pub unattached_ttl_hours: u64,
    /// How often the clean-up job runs.
    pub cleanup_interval_secs: u64,
    /// Photos decoded at once; 0 means one per core.
    pub processing_slots: usize,
    /// Uploads one citizen may make per hour on one instance; 0: no cap
    /// (see `limits`).
    pub per_citizen_per_hour: u32,
}

impl Default for PhotoSettings {
    fn default() -> Self {
        PhotoSettings {
            max_bytes: 15 * 1024 * 1024,
            max_pixels: 50_000_000,
            unattached_ttl_hours: 24,
            cleanup_interval_secs: 600,
            processing_slots: 0,
            // Twenty full reports' worth of photos.
            per_citizen_per_hour: 180,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportSettings {
    /// A photo's EXIF position further than this from the report flags the report.
    pub max_photo_distance_m: f64,
    pub max_description_chars: usize,
    pub max_photos: usize,
    pub service_area: ServiceAreaSettings,
    /// Reports one citizen may file per hour on one instance; 0: no cap
    /// (see `limits`). Inspectors are not capped.
    pub per_citizen_per_hour: u32,
}

impl Default for ReportSettings {
    fn default() -> Self {
        ReportSettings {
            max_photo_distance_m: 500.0,
            max_description_chars: 2000,
            max_photos: MAX_PHOTOS,
            service_area: ServiceAreaSettings::default(),
            // One every three minutes, with a burst of twenty: room for a
            // volunteer's walk through a campaign area.
            per_citizen_per_hour: 20,
        }
    }
}

/// Where reports are accepted: a bounding box, or a polygon when one is given.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServiceAreaSettings {
    /// `[min_lon, min_lat, max_lon, max_lat]` in WGS84.
    pub bbox: [f64; 4],
    /// Exterior ring `[[lon, lat], …]` in WGS84; overrides `bbox`.
    pub polygon: Option<Vec<[f64; 2]>>,
}

impl Default for ServiceAreaSettings {
    fn default() -> Self {
        // Zhangjiagang (张家港) and its waterfront, with a margin.
        ServiceAreaSettings {
            bbox: [120.25, 31.70, 120.90, 32.10],
            polygon: None,
        }
    }
}

#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CitySettings {
    pub name: String,
    /// IANA zone in which dates (tracking numbers, deadlines) are counted.
    pub timezone: String,
    /// First letters of tracking numbers (随手拍 -> SP).
    pub tracking_prefix: String,
}

impl Default for CitySettings {
    fn default() -> Self {
        CitySettings {
            name: "张家港市".into(),
            timezone: "Asia/Shanghai".into(),
            tracking_prefix: "SP".into(),
        }
    }
}

impl CitySettings {
    pub fn tz(&self) -> Result<chrono_tz::Tz, ConfigError> {
        self.timezone.parse().map_err(|_| {
            ConfigError::Invalid(format!("city.timezone: unknown zone {:?}", self.timezone))
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read settings: {0}")]
    Load(#[from] config::ConfigError),
    #[error("invalid settings: {0}")]
    Invalid(String),
}

/// `CIVICSNAP_*` variables; `__` separates levels (`CIVICSNAP_SERVER__PORT`) and
/// list settings take commas (`CIVICSNAP_SERVER__TRUSTED_PROXIES=10.0.0.0/8,127.0.0.1/32`).
fn environment() -> config::Environment {
    config::Environment::with_prefix("CIVICSNAP")
        .prefix_separator("_")
        .separator("__")
        .try_parsing(true)
        .list_separator(",")
        .with_list_parse_key("server.trusted_proxies")
}

impl Settings {
    /// Defaults, then the file (if present), then the environment.
    pub fn load() -> Result<Settings, ConfigError> {
        let named = std::env::var("CIVICSNAP_CONFIG").ok();
        Settings::layered(named.as_deref(), environment())
    }

    /// Defaults, then `civicsnap.toml` or the file `named` (which then must exist),
    /// then `env`. Apart from `load`, so the layering is tested without touching
    /// the process environment.
    fn layered(named: Option<&str>, env: config::Environment) -> Result<Settings, ConfigError> {
        let settings: Settings = config::Config::builder()
            .add_source(
                config::File::with_name(named.unwrap_or("civicsnap.toml"))
                    .format(config::FileFormat::Toml)
                    .required(named.is_some()),
            )
            .add_source(env)
            .build()?
            .try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// The demo city, with its staff accounts and their printed passwords, is
    /// for development: a deployment with dev_mode off never gets it at start.
    pub fn seeds_demo_city(&self) -> bool {
        self.dev_mode && self.demo.seed && self.is_sqlite()
    }

    /// Warnings for the start of `serve`. `dev_mode` stays on by default so a fresh
    /// checkout runs, which makes it easy to carry into a real deployment.
    pub fn dev_mode_warnings(&self) -> Vec<&'static str> {
        if !self.dev_mode {
            return Vec::new();
        }
        let mut warnings = vec![
            "dev_mode is on: the `token` command mints access tokens without a password and \
             one-time codes go to the log (development SMS sender); set \
             CIVICSNAP_DEV_MODE=false outside development",
        ];
        if !self.is_sqlite() || self.storage.kind == StorageKind::S3 {
            warnings.push(
                "dev_mode is on with a PostgreSQL database or S3 storage, which looks like a \
                 production deployment: turn dev_mode off",
            );
        }
        warnings
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.city.tz()?;
        if !self.database_url.starts_with("sqlite:") && !self.database_url.starts_with("postgres") {
            return Err(ConfigError::Invalid(
                "database_url must start with sqlite:// or postgres://".into(),
            ));
        }
        if self.database_connections == 0 {
            return Err(ConfigError::Invalid(
                "database_connections must be at least 1".into(),
            ));
        }
        if let Some(secret) = &self.auth.jwt_secret {
            if secret.len() < 32 {
                return Err(ConfigError::Invalid(
                    "auth.jwt_secret must be at least 32 bytes".into(),
                ));
            }
        } else if !self.dev_mode {
            return Err(ConfigError::Invalid(
                "auth.jwt_secret (CIVICSNAP_AUTH__JWT_SECRET) is required when dev_mode is off"
                    .into(),
            ));
        }
        // Calendars are uploaded under a code, so the city's must be one to be loadable.
        if !crate::domain::code::is_code(&self.workflow.jurisdiction) {
            return Err(ConfigError::Invalid(format!(
                "workflow.jurisdiction {:?} must be {} (e.g. CN)",
                self.workflow.jurisdiction,
                crate::domain::code::CODE_RULE
            )));
        }
        if !(0.0..=1.0).contains(&self.workflow.warning_fraction) {
            return Err(ConfigError::Invalid(
                "workflow.warning_fraction must be between 0 and 1".into(),
            ));
        }
        if self
            .server
            .metrics_token
            .as_ref()
            .is_some_and(|token| token.len() < 16)
        {
            return Err(ConfigError::Invalid(
                "server.metrics_token must be at least 16 bytes (or unset, for an open /metrics)"
                    .into(),
            ));
        }
        if self.workflow.sweep_batch < 1 {
            return Err(ConfigError::Invalid(
                "workflow.sweep_batch must be positive".into(),
            ));
        }
        // Zero would delete uploads before a report could attach them; the
        // bounds also keep the conversions to seconds, and the sweeper's lease
        // of four intervals, from overflowing.
        if !(1..=MAX_UNATTACHED_TTL_HOURS).contains(&self.photos.unattached_ttl_hours) {
            return Err(ConfigError::Invalid(format!(
                "photos.unattached_ttl_hours must be between 1 and {MAX_UNATTACHED_TTL_HOURS}"
            )));
        }
        if self.workflow.sweep_interval_secs > MAX_SWEEP_INTERVAL_SECS {
            return Err(ConfigError::Invalid(format!(
                "workflow.sweep_interval_secs must be at most {MAX_SWEEP_INTERVAL_SECS} (an hour)"
            )));
        }
        if self.photos.max_bytes == 0 || self.photos.max_pixels == 0 {
            return Err(ConfigError::Invalid(
                "photos.max_bytes and photos.max_pixels must be positive".into(),
            ));
        }
        if !(1..=MAX_PHOTOS).contains(&self.reports.max_photos) {
            return Err(ConfigError::Invalid(format!(
                "reports.max_photos must be between 1 and {MAX_PHOTOS}"
            )));
        }
        if self.storage.kind == StorageKind::S3 && self.storage.s3.bucket.is_empty() {
            return Err(ConfigError::Invalid(
                "storage.s3.bucket is required for S3 storage".into(),
            ));
        }
        Ok(())
    }

    /// A throwaway instance for tests and benchmarks: SQLite and photos under
    /// `data_dir`, a free port, one worker, a fixed development secret.
    pub fn ephemeral(data_dir: &std::path::Path) -> Settings {
        let mut settings = Settings {
            dev_mode: true,
            data_dir: data_dir.to_path_buf(),
            database_url: format!("sqlite://{}", data_dir.join("civicsnap.db").display()),
            ..Settings::default()
        };
        settings.server.port = 0;
        settings.server.workers = 1;
        settings.auth.jwt_secret = Some("ephemeral-instance-secret-not-for-production".into());
        settings.photos.cleanup_interval_secs = 3600;
        settings.demo.seed = false;
        settings
    }

    pub fn local_storage_root(&self) -> PathBuf {
        self.storage
            .local_root
            .clone()
            .unwrap_or_else(|| self.data_dir.join("objects"))
    }

    pub fn is_sqlite(&self) -> bool {
        self.database_url.starts_with("sqlite:")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_password_in_urls() {
        assert_eq!(
            redact_url("postgres://app:hunter2@db:5432/x"),
            "postgres://app:***@db:5432/x"
        );
        assert_eq!(redact_url("postgres://app@db/x"), "postgres://app@db/x");
        assert_eq!(redact_url("sqlite://./data/c.db"), "sqlite://./data/c.db");
        assert_eq!(
            redact_url("postgres://app@db/x?sslmode=require&password=hunter2&PASSWORD=x"),
            "postgres://app@db/x?sslmode=require&password=***&PASSWORD=***"
        );
        assert_eq!(
            redact_url("postgres://app:hunter2@db/x?sslmode=disable"),
            "postgres://app:***@db/x?sslmode=disable"
        );
        // Characters a password should have percent-encoded, but may not have;
        // with a `?` in it, where the query starts cannot be told.
        for (password, shown) in [
            ("a/b", "postgres://app:***@db/x?sslmode=disable"),
            ("x@y", "postgres://app:***@db/x?sslmode=disable"),
            ("p?w0rd", "postgres://***"),
            ("?@/", "postgres://***"),
        ] {
            let redacted = redact_url(&format!("postgres://app:{password}@db/x?sslmode=disable"));
            assert_eq!(redacted, shown, "{password}");
        }
        assert_eq!(
            redact_url("postgres://app@db/x?pass%77ord=hunter2&SSL%70assword=x"),
            "postgres://app@db/x?pass%77ord=***&SSL%70assword=***"
        );
        // An `@` in a query value, with or without user information.
        assert_eq!(
            redact_url("postgres://app:hunter2@db/x?application_name=a@b"),
            "postgres://app:***@db/x?application_name=a@b"
        );
        assert_eq!(
            redact_url("postgres://app@db/x?password=secret&application_name=a@b"),
            "postgres://app@db/x?password=***&application_name=a@b"
        );
        assert_eq!(
            redact_url("postgres://app:pw@db/x?password=se@cret&sslmode=require"),
            "postgres://app:***@db/x?password=***&sslmode=require"
        );
        // Where an `@` comes only after the first `?`, it cannot be told whether
        // the password or the query holds it: everything is masked.
        assert_eq!(
            redact_url("postgres://db/x?password=se@cret"),
            "postgres://***"
        );
    }

    #[test]
    fn only_development_seeds_the_demo_city() {
        let mut settings = Settings::ephemeral(std::path::Path::new("/tmp"));
        settings.demo.seed = true;
        assert!(settings.seeds_demo_city());
        settings.dev_mode = false;
        assert!(!settings.seeds_demo_city(), "no demo admin in production");
        settings.dev_mode = true;
        settings.database_url = "postgres://db/civicsnap".into();
        assert!(!settings.seeds_demo_city(), "PostgreSQL: seed-demo only");
    }

    #[test]
    fn trusted_proxies_come_from_a_comma_separated_variable() {
        let variables = [(
            "CIVICSNAP_SERVER__TRUSTED_PROXIES".to_owned(),
            "10.0.0.0/8,127.0.0.1/32".to_owned(),
        )];
        let settings: Settings = config::Config::builder()
            .add_source(environment().source(Some(variables.into_iter().collect())))
            .build()
            .and_then(config::Config::try_deserialize)
            .expect("settings from the environment");
        let expected: Vec<IpNet> = vec![
            "10.0.0.0/8".parse().expect("network"),
            "127.0.0.1/32".parse().expect("network"),
        ];
        assert_eq!(settings.server.trusted_proxies, expected);
    }

    #[test]
    fn the_environment_overrides_the_file_which_overrides_the_defaults() {
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("civicsnap.toml");
        std::fs::write(
            &file,
            "database_url = \"sqlite://from-file.db\"\n\
             [server]\nport = 9999\n\
             [storage]\nkind = \"local\"\n",
        )
        .expect("write settings file");
        let variables = [
            ("CIVICSNAP_DATABASE_URL", "postgres://db.example/civicsnap"),
            ("CIVICSNAP_STORAGE__KIND", "s3"),
        ];
        let env = environment().source(Some(
            variables
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        ));
        let settings =
            Settings::layered(Some(file.to_str().expect("UTF-8 path")), env).expect("settings");
        assert_eq!(settings.database_url, "postgres://db.example/civicsnap");
        assert_eq!(settings.storage.kind, StorageKind::S3);
        assert_eq!(settings.server.port, 9999, "from the file");
        assert_eq!(settings.server.host, "127.0.0.1", "a default");
    }

    #[test]
    fn a_named_settings_file_must_exist() {
        let dir = tempfile::tempdir().expect("temp dir");
        let missing = dir.path().join("missing.toml");
        let env = environment().source(Some(Default::default()));
        assert!(Settings::layered(missing.to_str(), env).is_err());
    }

    #[test]
    fn dev_mode_warns_and_warns_again_on_a_production_looking_setup() {
        let dev = Settings::default();
        assert_eq!(dev.dev_mode_warnings().len(), 1);
        let postgres = Settings {
            database_url: "postgres://db/civicsnap".into(),
            ..Settings::default()
        };
        assert_eq!(postgres.dev_mode_warnings().len(), 2);
        let mut s3 = Settings::default();
        s3.storage.kind = StorageKind::S3;
        assert_eq!(s3.dev_mode_warnings().len(), 2);
        let production = Settings {
            dev_mode: false,
            ..postgres
        };
        assert!(production.dev_mode_warnings().is_empty());
    }

    #[test]
    fn defaults_are_valid() {
        Settings::default().validate().expect("defaults validate");
    }

    #[test]
    fn production_requires_a_secret() {
        let settings = Settings {
            dev_mode: false,
            ..Settings::default()
        };
        assert!(settings.validate().is_err());
        let mut settings = settings;
        settings.auth.jwt_secret = Some("x".repeat(32));
        settings.validate().expect("valid with a secret");
    }

    #[test]
    fn an_empty_or_short_metrics_token_is_refused() {
        // An unset environment variable in a compose file gives "": that must
        // not pass for a secret a bare `Bearer` header matches.
        for short in ["", "scrape"] {
            let mut settings = Settings::default();
            settings.server.metrics_token = Some(short.into());
            assert!(settings.validate().is_err(), "{short:?}");
        }
        let mut settings = Settings::default();
        settings.server.metrics_token = Some("0123456789abcdef".into());
        settings.validate().expect("a 16-byte token");
    }

    #[test]
    fn a_database_pool_needs_a_connection() {
        let mut settings = Settings {
            database_connections: 0,
            ..Settings::default()
        };
        let err = settings.validate().expect_err("no connections");
        assert!(err.to_string().contains("database_connections"), "{err}");
        settings.database_connections = 1;
        settings.validate().expect("one connection");
    }

    #[test]
    fn the_city_jurisdiction_must_be_a_code() {
        for bad in ["", "江苏", "CN JS"] {
            let mut settings = Settings::default();
            settings.workflow.jurisdiction = bad.into();
            let err = settings.validate().expect_err(bad);
            assert!(err.to_string().contains("workflow.jurisdiction"), "{err}");
        }
        let mut settings = Settings::default();
        settings.workflow.jurisdiction = "CN-JS".into();
        settings.validate().expect("a code");
    }

    #[test]
    fn job_periods_that_would_break_their_jobs_are_refused() {
        type Mutation = fn(&mut Settings);
        let cases: [(&str, Mutation); 3] = [
            // Every upload would be deleted before a report could attach it.
            ("photos.unattached_ttl_hours", |s| {
                s.photos.unattached_ttl_hours = 0
            }),
            // Hours to seconds overflows: a panic at start.
            ("photos.unattached_ttl_hours", |s| {
                s.photos.unattached_ttl_hours = u64::MAX / 1000
            }),
            // The sweeper's lease is four intervals: a panic at start.
            ("workflow.sweep_interval_secs", |s| {
                s.workflow.sweep_interval_secs = u64::MAX / 2
            }),
        ];
        for (name, mutate) in cases {
            let mut settings = Settings::default();
            mutate(&mut settings);
            let err = settings.validate().expect_err(name);
            assert!(err.to_string().contains(name), "{err}");
        }
    }

    #[test]
    fn debug_never_prints_secrets() {
        let mut settings = Settings::default();
        settings.auth.jwt_secret = Some("s".repeat(40));
        settings.storage.s3.secret_key = "topsecretkey".into();
        settings.database_url = "postgres://u:pw123@h/db".into();
        let printed = format!("{settings:?}");
        assert!(
            !printed.contains("ssssssss")
                && !printed.contains("topsecretkey")
                && !printed.contains("pw123")
        );
    }
}
