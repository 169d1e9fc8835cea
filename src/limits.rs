//! Per-citizen caps on the requests that cost the city most: reports (each
//! lands in someone's queue), photo uploads (each takes a core for tens of
//! milliseconds) and case actions (comments, ratings, confirmations, which stay
//! in the timeline for good). A signed-in citizen is one phone number; these
//! caps stop one of them flooding the service with scripted requests. Staff
//! accounts are created by an administrator and answer for their actions, so
//! they are not capped.
//!
//! Counted in memory on each instance (GCRA: a full quota at once, then one
//! more every hour / quota), so they cost no database round trip; with N
//! instances behind a balancer a citizen may get up to N times the quota. They
//! are a bound on abuse, not an exact allowance.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use uuid::Uuid;

use crate::config::Settings;
use crate::domain::role::Role;
use crate::error::ApiError;

type PerUser = RateLimiter<Uuid, DefaultKeyedStateStore<Uuid>, DefaultClock>;
type Turn = Arc<tokio::sync::Mutex<()>>;

/// What a citizen's request spends.
#[derive(Clone, Copy, Debug)]
pub enum CitizenWork {
    Report,
    Photo,
    Action,
}

impl CitizenWork {
    fn noun(self) -> &'static str {
        match self {
            CitizenWork::Report => "reports",
            CitizenWork::Photo => "photo uploads",
            CitizenWork::Action => "case actions",
        }
    }
}

pub struct CitizenLimits {
    reports: Option<PerUser>,
    photos: Option<PerUser>,
    actions: Option<PerUser>,
    /// Reports in progress per (citizen, idempotency key): see `report_turn`.
    report_keys: Mutex<HashMap<(Uuid, String), Turn>>,
}

/// The one report in progress with its idempotency key; the next waits for it.
pub struct ReportTurn<'a> {
    limits: &'a CitizenLimits,
    key: (Uuid, String),
    _held: tokio::sync::OwnedMutexGuard<()>,
}

impl Drop for ReportTurn<'_> {
    fn drop(&mut self) {
        let mut keys = self
            .limits
            .report_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Held by the map and this turn alone: nobody waits, so the entry goes.
        if keys
            .get(&self.key)
            .is_some_and(|turn| Arc::strong_count(turn) == 2)
        {
            keys.remove(&self.key);
        }
    }
}

impl CitizenLimits {
    /// From the hourly quotas in `settings`; 0 leaves that kind uncapped.
    pub fn from_settings(settings: &Settings) -> CitizenLimits {
        let per_hour =
            |quota: u32| NonZeroU32::new(quota).map(|n| RateLimiter::dashmap(Quota::per_hour(n)));
        CitizenLimits {
            reports: per_hour(settings.reports.per_citizen_per_hour),
            photos: per_hour(settings.photos.per_citizen_per_hour),
            actions: per_hour(settings.workflow.citizen_actions_per_hour),
            report_keys: Mutex::default(),
        }
    }

    /// Waits until no other report with this idempotency key is in progress on
    /// this instance. Retries sent together (a phone on a bad network) then find
    /// the first one's stored answer, which is a replay and costs no quota,
    /// instead of each spending a report before the store tells them apart.
    pub async fn report_turn(&self, user: Uuid, key: &str) -> ReportTurn<'_> {
        let key = (user, key.to_owned());
        let turn = self
            .report_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone();
        ReportTurn {
            limits: self,
            key,
            _held: turn.lock_owned().await,
        }
    }

    /// Spends one of `user`'s `work` if they are a citizen; 429 with the wait
    /// until the next one when none is left.
    pub fn spend(&self, user: Uuid, role: Role, work: CitizenWork) -> Result<(), ApiError> {
        if role != Role::Citizen {
            return Ok(());
        }
        let limiter = match work {
            CitizenWork::Report => &self.reports,
            CitizenWork::Photo => &self.photos,
            CitizenWork::Action => &self.actions,
        };
        let Some(limiter) = limiter else {
            return Ok(());
        };
        limiter.check_key(&user).map_err(|not_until| {
            let wait = not_until.wait_time_from(limiter.clock().now());
            ApiError::TooManyRequests {
                detail: format!(
                    "too many {} from this account in the last hour; try again later",
                    work.noun()
                ),
                retry_after_secs: whole_seconds(wait),
            }
        })
    }

    /// Forgets citizens whose quota has refilled, so the maps hold only recent
    /// callers.
    pub fn trim(&self) {
        for limiter in [&self.reports, &self.photos, &self.actions]
            .into_iter()
            .flatten()
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        // A turn whose waiter gave up (the client went away) after its holder
        // left is held by the map alone.
        self.report_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|_, turn| Arc::strong_count(turn) > 1);
    }
}

/// Rounded up, at least 1: what `Retry-After` says.
fn whole_seconds(wait: Duration) -> u64 {
    (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(reports: u32) -> CitizenLimits {
        let mut settings = Settings::default();
        settings.reports.per_citizen_per_hour = reports;
        CitizenLimits::from_settings(&settings)
    }

    fn allows(limits: &CitizenLimits, user: Uuid, role: Role, work: CitizenWork) -> bool {
        limits.spend(user, role, work).is_ok()
    }

    #[test]
    fn a_citizen_gets_the_hourly_quota_then_a_wait_for_the_next_one() {
        let limits = limits(3);
        let citizen = Uuid::now_v7();
        for _ in 0..3 {
            assert!(allows(&limits, citizen, Role::Citizen, CitizenWork::Report));
        }
        match limits.spend(citizen, Role::Citizen, CitizenWork::Report) {
            // One more every 20 minutes.
            Err(ApiError::TooManyRequests {
                retry_after_secs, ..
            }) => assert!(
                (1_190..=1_200).contains(&retry_after_secs),
                "{retry_after_secs}"
            ),
            other => panic!("expected 429, got {other:?}"),
        }
        // Each citizen and each kind of work has its own quota.
        assert!(
            limits
                .spend(Uuid::now_v7(), Role::Citizen, CitizenWork::Report)
                .is_ok()
        );
        assert!(allows(&limits, citizen, Role::Citizen, CitizenWork::Photo));
    }

    #[test]
    fn staff_and_a_zero_quota_are_not_capped() {
        let capped = limits(1);
        let inspector = Uuid::now_v7();
        for _ in 0..5 {
            assert!(allows(
                &capped,
                inspector,
                Role::Inspector,
                CitizenWork::Report
            ));
        }
        let uncapped = limits(0);
        let citizen = Uuid::now_v7();
        for _ in 0..5 {
            assert!(allows(
                &uncapped,
                citizen,
                Role::Citizen,
                CitizenWork::Report
            ));
        }
    }

    #[test]
    fn waits_round_up_to_whole_seconds() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_secs(2)), 2);
        assert_eq!(whole_seconds(Duration::from_millis(2_001)), 3);
    }
}
