//! A city's office hours: periods per working day, optionally a summer set.

use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate, NaiveTime, Timelike};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// One office period, `start < end`, within a single local day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub start: NaiveTime,
    pub end: NaiveTime,
}

impl Period {
    /// Panics-free constructor for literals in code; validation happens in
    /// [`OfficeHours::new`].
    pub fn new(start: NaiveTime, end: NaiveTime) -> Self {
        Self { start, end }
    }

    pub(crate) fn start_ns(&self) -> i64 {
        time_ns(self.start)
    }

    pub(crate) fn end_ns(&self) -> i64 {
        time_ns(self.end)
    }

    pub(crate) fn len_ns(&self) -> i64 {
        self.end_ns() - self.start_ns()
    }
}

/// Nanoseconds since local midnight; leap-second nanos are clamped because
/// they cannot occur in chrono-tz conversions anyway.
pub(crate) fn time_ns(t: NaiveTime) -> i64 {
    i64::from(t.num_seconds_from_midnight()) * 1_000_000_000
        + i64::from(t.nanosecond().min(999_999_999))
}

/// A recurring month-day such as `05-01`; serialised as `"MM-DD"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MonthDay {
    month: u32,
    day: u32,
}

impl MonthDay {
    pub fn new(month: u32, day: u32) -> Option<Self> {
        // 2000 is a leap year, so 02-29 is accepted.
        NaiveDate::from_ymd_opt(2000, month, day).map(|_| Self { month, day })
    }

    fn of(date: NaiveDate) -> Self {
        Self {
            month: date.month(),
            day: date.day(),
        }
    }
}

impl fmt::Display for MonthDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}-{:02}", self.month, self.day)
    }
}

impl FromStr for MonthDay {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (m, d) = s
            .split_once('-')
            .ok_or_else(|| format!("expected MM-DD, got {s:?}"))?;
        let m = m.parse().map_err(|_| format!("bad month in {s:?}"))?;
        let d = d.parse().map_err(|_| format!("bad day in {s:?}"))?;
        Self::new(m, d).ok_or_else(|| format!("no such day {s:?}"))
    }
}

impl Serialize for MonthDay {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MonthDay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Summer hours: `from..=to` each year (no wrap over New Year).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seasonal {
    pub from: MonthDay,
    pub to: MonthDay,
    pub periods: Vec<Period>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OfficeHoursError {
    #[error("office hours need at least one period")]
    NoPeriods,
    #[error("office period {start}–{end} is empty or inverted")]
    EmptyPeriod { start: NaiveTime, end: NaiveTime },
    #[error("office periods overlap or are out of order at {at}")]
    Unordered { at: NaiveTime },
    #[error("summer range {from}..{to} is inverted (ranges may not wrap the year)")]
    InvertedSeason { from: MonthDay, to: MonthDay },
}

#[derive(Deserialize)]
struct OfficeHoursSpec {
    periods: Vec<Period>,
    #[serde(default)]
    summer: Option<Seasonal>,
}

/// Validated office hours. Deserialisation validates too.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "OfficeHoursSpec")]
pub struct OfficeHours {
    periods: Vec<Period>,
    #[serde(skip_serializing_if = "Option::is_none")]
    summer: Option<Seasonal>,
}

impl TryFrom<OfficeHoursSpec> for OfficeHours {
    type Error = OfficeHoursError;
    fn try_from(spec: OfficeHoursSpec) -> Result<Self, Self::Error> {
        Self::new(spec.periods, spec.summer)
    }
}

impl OfficeHours {
    pub fn new(periods: Vec<Period>, summer: Option<Seasonal>) -> Result<Self, OfficeHoursError> {
        validate(&periods)?;
        if let Some(s) = &summer {
            validate(&s.periods)?;
            if s.from > s.to {
                return Err(OfficeHoursError::InvertedSeason {
                    from: s.from,
                    to: s.to,
                });
            }
        }
        Ok(Self { periods, summer })
    }

    /// The common government schedule 08:30–12:00, 13:30–17:30.
    pub fn standard() -> Self {
        let t = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN);
        Self {
            periods: vec![
                Period::new(t(8, 30), t(12, 0)),
                Period::new(t(13, 30), t(17, 30)),
            ],
            summer: None,
        }
    }

    pub fn periods(&self) -> &[Period] {
        &self.periods
    }

    pub fn summer(&self) -> Option<&Seasonal> {
        self.summer.as_ref()
    }

    /// Periods in force on `date` (whether or not it is a working day).
    pub fn periods_on(&self, date: NaiveDate) -> &[Period] {
        match &self.summer {
            Some(s) if (s.from..=s.to).contains(&MonthDay::of(date)) => &s.periods,
            _ => &self.periods,
        }
    }
}

fn validate(periods: &[Period]) -> Result<(), OfficeHoursError> {
    if periods.is_empty() {
        return Err(OfficeHoursError::NoPeriods);
    }
    for p in periods {
        if p.start >= p.end {
            return Err(OfficeHoursError::EmptyPeriod {
                start: p.start,
                end: p.end,
            });
        }
    }
    // Touching periods (12:00 end, 12:00 start) are allowed; overlap is not,
    // because it would count the same minutes twice.
    for w in periods.windows(2) {
        if w[1].start < w[0].end {
            return Err(OfficeHoursError::Unordered { at: w[1].start });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> NaiveTime {
        s.parse().expect("test time")
    }

    #[test]
    fn parses_hh_mm_and_summer() {
        let json = r#"{
            "periods": [{"start":"08:30","end":"12:00"},{"start":"13:30","end":"17:30"}],
            "summer": {"from":"06-01","to":"09-30",
                       "periods":[{"start":"08:00","end":"12:00"},{"start":"14:30","end":"18:00"}]}
        }"#;
        let oh: OfficeHours = serde_json::from_str(json).expect("office hours");
        let cases = [
            ("2026-05-31", "08:30"),
            ("2026-06-01", "08:00"),
            ("2026-09-30", "08:00"),
            ("2026-10-01", "08:30"),
        ];
        for (date, first_start) in cases {
            let date: NaiveDate = date.parse().expect("date");
            assert_eq!(oh.periods_on(date)[0].start, t(first_start), "{date}");
        }
        let back: OfficeHours =
            serde_json::from_str(&serde_json::to_string(&oh).expect("ser")).expect("de");
        assert_eq!(back, oh);
    }

    #[test]
    fn standard_matches_spec() {
        let oh = OfficeHours::standard();
        assert_eq!(
            oh.periods(),
            &[
                Period::new(t("08:30"), t("12:00")),
                Period::new(t("13:30"), t("17:30"))
            ]
        );
        assert_eq!(
            oh.periods().iter().map(Period::len_ns).sum::<i64>(),
            27_000_000_000_000
        ); // 7.5 h
    }

    #[test]
    fn invalid_table() {
        let p = |a: &str, b: &str| Period::new(t(a), t(b));
        let season = |from: &str, to: &str| Seasonal {
            from: from.parse().expect("md"),
            to: to.parse().expect("md"),
            periods: vec![p("08:00", "12:00")],
        };
        let cases: Vec<(Vec<Period>, Option<Seasonal>, OfficeHoursError)> = vec![
            (vec![], None, OfficeHoursError::NoPeriods),
            (
                vec![p("12:00", "12:00")],
                None,
                OfficeHoursError::EmptyPeriod {
                    start: t("12:00"),
                    end: t("12:00"),
                },
            ),
            (
                vec![p("13:00", "12:00")],
                None,
                OfficeHoursError::EmptyPeriod {
                    start: t("13:00"),
                    end: t("12:00"),
                },
            ),
            (
                vec![p("08:00", "12:00"), p("11:00", "13:00")],
                None,
                OfficeHoursError::Unordered { at: t("11:00") },
            ),
            (
                vec![p("13:00", "17:00"), p("08:00", "12:00")],
                None,
                OfficeHoursError::Unordered { at: t("08:00") },
            ),
            (
                vec![p("08:00", "12:00")],
                Some(season("10-01", "04-30")),
                OfficeHoursError::InvertedSeason {
                    from: "10-01".parse().expect("md"),
                    to: "04-30".parse().expect("md"),
                },
            ),
            (
                vec![p("08:00", "12:00")],
                Some(Seasonal {
                    periods: vec![],
                    ..season("06-01", "09-30")
                }),
                OfficeHoursError::NoPeriods,
            ),
        ];
        for (periods, summer, expected) in cases {
            assert_eq!(
                OfficeHours::new(periods, summer),
                Err(expected.clone()),
                "{expected}"
            );
        }
        // Touching periods are fine.
        assert!(OfficeHours::new(vec![p("08:00", "12:00"), p("12:00", "13:00")], None).is_ok());
    }

    #[test]
    fn serde_rejects_invalid() {
        let cases = [
            r#"{"periods":[]}"#,
            r#"{"periods":[{"start":"18:00","end":"08:00"}]}"#,
            r#"{"periods":[{"start":"08:00","end":"12:00"}],"summer":{"from":"13-01","to":"09-30","periods":[{"start":"08:00","end":"12:00"}]}}"#,
            r#"{"periods":[{"start":"08:00","end":"12:00"}],"summer":{"from":"0601","to":"09-30","periods":[{"start":"08:00","end":"12:00"}]}}"#,
        ];
        for json in cases {
            assert!(serde_json::from_str::<OfficeHours>(json).is_err(), "{json}");
        }
    }

    #[test]
    fn month_day_parse_table() {
        let cases = [
            ("05-01", Some((5, 1))),
            ("02-29", Some((2, 29))),
            ("02-30", None),
            ("00-10", None),
            ("5-1", Some((5, 1))),
            ("xx-01", None),
            ("", None),
        ];
        for (s, expected) in cases {
            let got = s.parse::<MonthDay>().ok().map(|m| (m.month, m.day));
            assert_eq!(got, expected, "{s:?}");
        }
    }
}
