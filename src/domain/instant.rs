//! Instants a client sends: the range the service accepts, and the precision it
//! keeps.
//!
//! Both databases must store and order every instant alike. PostgreSQL keeps
//! whole microseconds and nothing before 4713 BC; SQLite keeps the RFC 3339
//! text it is given and orders it as text, which holds for four-digit years
//! only (`+10000-…` sorts before `2026-…`). So an instant from a client must lie
//! in [`YEARS`], and one that is stored is cut to the microsecond, as the
//! service's own clock already is.

use std::ops::RangeInclusive;

use chrono::{DateTime, Datelike, Duration, SubsecRound, Timelike, Utc};
use serde::{Deserialize, Deserializer};

/// The years an instant from a client may fall in.
pub const YEARS: RangeInclusive<i32> = 1..=9999;

/// `at` if it lies in [`YEARS`] and is not a leap second, else why not.
///
/// chrono takes a second `60` at any minute; PostgreSQL folds it into the next
/// minute, SQLite keeps the text, and RFC 3339 readers refuse it at most
/// minutes, so the two databases would store and serve it differently.
pub fn checked(at: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if !YEARS.contains(&at.year()) {
        Err(format!(
            "{at} is out of range: instants must fall in the years {} to {}",
            YEARS.start(),
            YEARS.end()
        ))
    } else if at.nanosecond() >= 1_000_000_000 {
        Err(format!(
            "{at} is a leap second (second 60), which is not accepted; send second 59"
        ))
    } else {
        Ok(at)
    }
}

/// `at` cut to the microsecond, the precision every stored instant has.
pub fn to_stored_precision(at: DateTime<Utc>) -> DateTime<Utc> {
    at.trunc_subsecs(6)
}

/// The last instant a stored one can be (a whole microsecond) that lies before
/// `at`: a stored instant lies before `at` exactly when it lies at or before
/// this one. Never later than `at`, so it stays in years SQLite orders as text
/// (rounding `at` up instead would leave year 9999 in its last half-microsecond).
pub fn last_stored_before(at: DateTime<Utc>) -> DateTime<Utc> {
    let floor = to_stored_precision(at);
    if floor < at {
        floor
    } else {
        at - Duration::microseconds(1)
    }
}

/// Deserializes an instant a client sends, refusing one outside [`YEARS`].
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    checked(DateTime::<Utc>::deserialize(deserializer)?).map_err(serde::de::Error::custom)
}

/// [`deserialize`] for an optional instant; pair it with `#[serde(default)]`.
pub fn deserialize_option<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    Option::<DateTime<Utc>>::deserialize(deserializer)?
        .map(checked)
        .transpose()
        .map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("RFC 3339")
            .with_timezone(&Utc)
    }

    #[test]
    fn years_one_to_9999_are_accepted_and_no_others() {
        for text in [
            "0001-01-01T00:00:00Z",
            "2026-12-05T08:30:00Z",
            "9999-12-31T23:59:59.999999999Z",
        ] {
            assert_eq!(checked(at(text)), Ok(at(text)), "{text}");
        }
        let before = at("0001-01-01T00:00:00Z") - Duration::nanoseconds(1);
        let after = at("9999-12-31T23:59:59.999999999Z") + Duration::nanoseconds(1);
        for outside in [before, after] {
            let refusal = checked(outside).expect_err("out of range");
            assert!(refusal.contains("years 1 to 9999"), "{refusal}");
        }
    }

    #[test]
    fn a_leap_second_is_refused_at_any_minute() {
        for text in [
            "2026-12-18T15:59:60.5+08:00",
            "2016-12-31T23:59:60Z",
            "2026-06-01T03:11:60.999999Z",
        ] {
            let refusal = checked(at(text)).expect_err(text);
            assert!(refusal.contains("leap second"), "{text}: {refusal}");
        }
        assert!(checked(at("2026-12-18T15:59:59.999999999+08:00")).is_ok());
    }

    #[test]
    fn stored_instants_keep_whole_microseconds() {
        assert_eq!(
            to_stored_precision(at("2026-02-13T17:30:00.123456789Z")),
            at("2026-02-13T17:30:00.123456Z")
        );
        assert_eq!(
            to_stored_precision(at("2026-02-13T17:30:00Z")),
            at("2026-02-13T17:30:00Z")
        );
    }

    #[test]
    fn the_last_stored_instant_before_a_bound_is_its_floor_or_a_microsecond_earlier() {
        for (bound, last) in [
            ("2026-02-13T17:30:00.000000500Z", "2026-02-13T17:30:00Z"),
            ("2026-02-13T17:30:00.000001Z", "2026-02-13T17:30:00Z"),
            (
                "9999-12-31T23:59:59.9999995Z",
                "9999-12-31T23:59:59.999999Z",
            ),
            (
                "9999-12-31T23:59:59.999999999Z",
                "9999-12-31T23:59:59.999999Z",
            ),
            ("9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59.999998Z"),
        ] {
            assert_eq!(last_stored_before(at(bound)), at(last), "{bound}");
        }
    }

    #[test]
    fn deserializing_refuses_what_the_databases_cannot_order() {
        #[derive(Debug, Deserialize)]
        struct Body {
            #[serde(deserialize_with = "deserialize")]
            due: DateTime<Utc>,
            #[serde(default, deserialize_with = "deserialize_option")]
            until: Option<DateTime<Utc>>,
        }
        let body: Body =
            serde_json::from_str(r#"{"due": "2026-10-09T09:00:00+08:00"}"#).expect("in range");
        assert_eq!((body.due, body.until), (at("2026-10-09T01:00:00Z"), None));
        for json in [
            r#"{"due": "-5000-01-01T00:00:00Z"}"#,
            r#"{"due": "2026-10-09T09:00:00Z", "until": "+10000-01-01T00:00:00Z"}"#,
        ] {
            let err = serde_json::from_str::<Body>(json).expect_err("out of range");
            assert!(err.to_string().contains("years 1 to 9999"), "{err}");
        }
    }
}
