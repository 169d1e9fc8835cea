//! What every handler can reach, built once at start-up.

use std::sync::Arc;

use chrono::{DateTime, FixedOffset, SubsecRound, Utc};
use tokio::sync::Notify;

use crate::auth::{JwtKeys, OtpCodes, SmsSender};
use crate::config::Settings;
use crate::domain::report::ReportRules;
use crate::media::PhotoWorkers;
use crate::metrics::Metrics;
use crate::objects::PhotoStore;
use crate::routing::LiveRouting;
use crate::store::Repository;
use crate::workflow::Workflow;

pub struct AppState {
    pub settings: Settings,
    pub repo: Arc<dyn Repository>,
    pub photos: Arc<dyn PhotoStore>,
    pub jwt: JwtKeys,
    pub otp: OtpCodes,
    pub sms: Arc<dyn SmsSender>,
    /// One thread per photo processed at once, so uploads cannot starve other
    /// requests.
    pub photo_workers: PhotoWorkers,
    pub metrics: Arc<Metrics>,
    pub report_rules: ReportRules,
    pub routing: Arc<LiveRouting>,
    pub workflow: Arc<Workflow>,
    /// Wakes the auto-dispatch job when a report is stored on this instance.
    pub auto_dispatch: Arc<Notify>,
    pub readiness: crate::http::ops::Readiness,
    /// Hourly caps on citizens' reports, uploads and actions.
    pub citizen_limits: Arc<crate::limits::CitizenLimits>,
    pub tz: chrono_tz::Tz,
}

impl AppState {
    /// `t` as the city's local time: how every time the API answers with is
    /// written (RFC 3339 with the city's offset).
    pub fn local(&self, t: DateTime<Utc>) -> DateTime<FixedOffset> {
        t.with_timezone(&self.tz).fixed_offset()
    }
}

/// Current time at the precision both databases store (microseconds), so a value
/// read back compares equal to the one written.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}
