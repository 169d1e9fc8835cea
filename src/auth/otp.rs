//! Citizen sign-in by one-time code. Codes are six digits, stored only as an HMAC
//! (keyed with a server secret so a database dump cannot be brute-forced offline),
//! expire after minutes, and burn after a few wrong guesses.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use rand::Rng;
use sha2::Sha256;

use crate::domain::deadline::local_midnight;
use crate::domain::phone::Phone;

#[derive(Debug, thiserror::Error)]
#[error("SMS could not be sent: {0}")]
pub struct SmsError(pub String);

/// Delivers codes. A deployment plugs in its SMS gateway here. An [`SmsError`]'s
/// text is logged (the client gets a plain 503): keep the phone number and the
/// code out of it, even where the gateway's own reply echoes them.
#[async_trait]
pub trait SmsSender: Send + Sync + 'static {
    async fn send_code(&self, phone: &Phone, code: &str) -> Result<(), SmsError>;
}

/// Development sender: writes the code to the log instead of sending it.
pub struct LogSmsSender;

#[async_trait]
impl SmsSender for LogSmsSender {
    async fn send_code(&self, phone: &Phone, code: &str) -> Result<(), SmsError> {
        tracing::warn!(
            phone = %phone.masked(),
            code,
            "DEVELOPMENT SMS SENDER: no SMS gateway is configured, the one-time code is only logged"
        );
        Ok(())
    }
}

/// Outside development, until a deployment plugs in its gateway: no code is
/// sent, and none is written anywhere either, so citizen sign-in answers 503.
pub struct NoSmsGateway;

#[async_trait]
impl SmsSender for NoSmsGateway {
    async fn send_code(&self, _phone: &Phone, _code: &str) -> Result<(), SmsError> {
        Err(SmsError("no SMS gateway is configured".into()))
    }
}

/// The sender a deployment gets when it plugs in none: the log in development,
/// nothing at all otherwise (a code in a production log signs anyone in).
pub fn default_sms_sender(dev_mode: bool) -> std::sync::Arc<dyn SmsSender> {
    if dev_mode {
        std::sync::Arc::new(LogSmsSender)
    } else {
        tracing::warn!(
            "no SMS gateway is configured: citizen sign-in by one-time code answers 503 \
             until one is plugged in (auth::SmsSender)"
        );
        std::sync::Arc::new(NoSmsGateway)
    }
}

pub struct OtpCodes {
    key: Vec<u8>,
}

impl OtpCodes {
    /// `secret` is a server secret; a fixed label separates this use of it.
    pub fn new(secret: &[u8]) -> OtpCodes {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes keys of any length");
        mac.update(b"civicsnap otp v1");
        OtpCodes {
            key: mac.finalize().into_bytes().to_vec(),
        }
    }

    pub fn generate() -> String {
        format!("{:06}", rand::rng().random_range(0..1_000_000u32))
    }

    fn mac(&self, phone: &Phone, code: &str) -> Hmac<Sha256> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .expect("HMAC takes keys of any length");
        mac.update(phone.as_e164().as_bytes());
        mac.update(b":");
        mac.update(code.as_bytes());
        mac
    }

    pub fn hash(&self, phone: &Phone, code: &str) -> String {
        hex::encode(self.mac(phone, code).finalize().into_bytes())
    }

    /// Constant-time comparison against the stored hash.
    pub fn matches(&self, phone: &Phone, code: &str, stored_hash: &str) -> bool {
        match hex::decode(stored_hash) {
            Ok(expected) => self.mac(phone, code).verify_slice(&expected).is_ok(),
            Err(_) => false,
        }
    }
}

/// A fixed window sign-in requests are counted in: a minute per client, the
/// city's day per phone. Fixed windows keep the shared count to one row per key
/// and window; a client may squeeze two allowances around a window's edge,
/// which the per-phone resend interval bounds anyway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestWindow {
    pub start: DateTime<Utc>,
    length_secs: i64,
}

impl RequestWindow {
    const MINUTE_SECS: i64 = 60;
    const QUARTER_HOUR_SECS: i64 = 15 * 60;

    /// The minute containing `now`.
    pub fn containing(now: DateTime<Utc>) -> RequestWindow {
        Self::fixed(now, Self::MINUTE_SECS)
    }

    /// The quarter of an hour (:00, :15, :30, :45) containing `now`.
    pub fn quarter_hour_containing(now: DateTime<Utc>) -> RequestWindow {
        Self::fixed(now, Self::QUARTER_HOUR_SECS)
    }

    fn fixed(now: DateTime<Utc>, length_secs: i64) -> RequestWindow {
        let secs = now.timestamp().div_euclid(length_secs) * length_secs;
        RequestWindow {
            start: DateTime::from_timestamp(secs, 0).unwrap_or(now),
            length_secs,
        }
    }

    /// The city's day (midnight to midnight in `tz`) containing `now`.
    pub fn day_containing(now: DateTime<Utc>, tz: chrono_tz::Tz) -> RequestWindow {
        let today = now.with_timezone(&tz).date_naive();
        let start = local_midnight(tz, today).unwrap_or(now);
        let next = today
            .succ_opt()
            .and_then(|day| local_midnight(tz, day))
            .unwrap_or(now);
        RequestWindow {
            start,
            length_secs: (next - start).num_seconds().max(1),
        }
    }

    /// Whole seconds until the next window opens, at least 1: what `Retry-After` says.
    pub fn seconds_left(&self, now: DateTime<Utc>) -> u64 {
        let end = self.start + chrono::Duration::seconds(self.length_secs);
        let left = (end - now).num_milliseconds();
        u64::try_from((left + 999) / 1000).unwrap_or(0).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().expect("test time")
    }

    #[tokio::test]
    async fn outside_development_no_code_is_sent_or_logged() {
        let phone = Phone::parse("13800000042").expect("phone");
        assert!(
            default_sms_sender(true)
                .send_code(&phone, "123456")
                .await
                .is_ok()
        );
        let err = default_sms_sender(false)
            .send_code(&phone, "123456")
            .await
            .expect_err("no gateway");
        assert!(!err.0.contains("123456"), "{}", err.0);
    }

    #[test]
    fn a_day_window_runs_from_the_citys_midnight() {
        let shanghai = chrono_tz::Asia::Shanghai;
        // 07:59:30 in Shanghai on 29 November: still the 29th's window, which
        // began at 16:00 UTC on the 28th.
        let now = at("2026-11-28T23:59:30Z");
        let day = RequestWindow::day_containing(now, shanghai);
        assert_eq!(day.start, at("2026-11-28T16:00:00Z"));
        assert_eq!(day.seconds_left(now), 16 * 3600 + 30);
        assert_eq!(
            RequestWindow::day_containing(at("2026-11-29T15:59:59Z"), shanghai),
            day
        );
        assert_ne!(
            RequestWindow::day_containing(at("2026-11-29T16:00:00Z"), shanghai),
            day
        );
        assert_ne!(RequestWindow::containing(now), day);
    }

    #[test]
    fn a_day_without_a_midnight_is_still_one_window() {
        // Havana springs forward at midnight: on 8 March 2026 the clocks go
        // from 00:00 straight to 01:00 (05:00 UTC), so that day has no 00:00.
        // Every request of that day must still count in the same window, or
        // the codes-per-phone cap never fills.
        let havana = chrono_tz::America::Havana;
        let morning = RequestWindow::day_containing(at("2026-03-08T14:00:00Z"), havana);
        let evening = RequestWindow::day_containing(at("2026-03-08T23:00:00Z"), havana);
        assert_eq!(morning, evening);
        assert_eq!(morning.start, at("2026-03-08T05:00:00Z"));
        // The day before ends where that one begins, so its Retry-After
        // counts to then rather than to a second from now.
        let before = at("2026-03-08T02:00:00Z");
        assert_eq!(
            RequestWindow::day_containing(before, havana).seconds_left(before),
            3 * 3600
        );
    }

    #[test]
    fn a_window_starts_on_the_minute() {
        let window = RequestWindow::containing(at("2026-11-28T12:34:56.789Z"));
        assert_eq!(window.start, at("2026-11-28T12:34:00Z"));
        assert_eq!(
            RequestWindow::containing(at("2026-11-28T12:34:00Z")),
            window
        );
        assert_ne!(
            RequestWindow::containing(at("2026-11-28T12:35:00Z")),
            window
        );
    }

    #[test]
    fn retry_after_counts_to_the_next_window_rounding_up() {
        let window = RequestWindow::containing(at("2026-11-28T12:34:00Z"));
        assert_eq!(window.seconds_left(at("2026-11-28T12:34:00Z")), 60);
        assert_eq!(window.seconds_left(at("2026-11-28T12:34:56.200Z")), 4);
        assert_eq!(window.seconds_left(at("2026-11-28T12:34:59.999Z")), 1);
        // A clock step past the window never asks for less than a second.
        assert_eq!(window.seconds_left(at("2026-11-28T12:36:00Z")), 1);
    }

    #[test]
    fn codes_are_six_digits() {
        for _ in 0..100 {
            let code = OtpCodes::generate();
            assert_eq!(code.len(), 6);
            assert!(code.chars().all(|c| c.is_ascii_digit()));
        }
    }

    #[test]
    fn hash_binds_code_phone_and_secret() {
        let codes = OtpCodes::new(b"secret");
        let phone = Phone::parse("13812345678").unwrap();
        let other = Phone::parse("13912345678").unwrap();
        let stored = codes.hash(&phone, "123456");
        assert!(codes.matches(&phone, "123456", &stored));
        assert!(!codes.matches(&phone, "123457", &stored));
        assert!(!codes.matches(&other, "123456", &stored));
        assert!(!OtpCodes::new(b"other").matches(&phone, "123456", &stored));
        assert!(!codes.matches(&phone, "123456", "zz"));
    }
}
