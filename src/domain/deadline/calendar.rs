//! Working calendar: which dates are working days in one jurisdiction.
//!
//! Built from one JSON document per year (the State Council's annual
//! arrangement). Parsing takes `&str`; loading files is the caller's job so
//! this module stays free of I/O.

use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

/// One year's arrangement as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarYear {
    pub jurisdiction: String,
    pub year: i32,
    /// Free-form source/version tag (e.g. the notice number); recorded in
    /// explanations so a deadline can be traced to the data it used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Rest days beyond ordinary weekends.
    #[serde(default)]
    pub holidays: Vec<HolidaySpan>,
    /// Weekend dates that are working days (调休 make-up days).
    #[serde(default)]
    pub workdays: Vec<NaiveDate>,
}

/// A holiday entry: a single date or an inclusive `[first, last]` range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum HolidaySpan {
    Day(NaiveDate),
    Range([NaiveDate; 2]),
}

impl HolidaySpan {
    fn bounds(self) -> (NaiveDate, NaiveDate) {
        match self {
            Self::Day(d) => (d, d),
            Self::Range([a, b]) => (a, b),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CalendarError {
    #[error("no calendar year given")]
    Empty,
    #[error("calendar file #{index}: invalid JSON: {source}")]
    Json {
        index: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("calendar year {year} is outside the supported range")]
    YearOutOfRange { year: i32 },
    #[error("calendar {year}: holiday range {first}..{last} is inverted")]
    InvertedRange {
        year: i32,
        first: NaiveDate,
        last: NaiveDate,
    },
    #[error("calendar {year}: date {date} is not within {year} or an adjacent year")]
    DateOutsideYear { year: i32, date: NaiveDate },
    #[error("calendar {year}: make-up workday {date} is not a Saturday or Sunday")]
    WorkdayNotWeekend { year: i32, date: NaiveDate },
    #[error("date {date} is listed both as a holiday and as a workday")]
    Conflict { date: NaiveDate },
    #[error("calendar year {year} given twice")]
    DuplicateYear { year: i32 },
    #[error("calendar years mix jurisdictions {first:?} and {other:?}")]
    MixedJurisdictions { first: String, other: String },
    #[error("calendar years are not contiguous: {missing} is missing")]
    MissingYear { missing: i32 },
}

/// Per-day state while merging files; `None` means "ordinary rules apply".
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mark {
    Holiday,
    Workday,
}

/// A contiguous range of whole years with O(1) working-day lookups.
#[derive(Debug, Clone)]
pub struct Calendar {
    jurisdiction: String,
    years: Vec<i32>,
    version: String,
    first: NaiveDate,
    last: NaiveDate,
    /// `working[i]` for the day `first + i`.
    working: Vec<bool>,
    /// `rank[i]` = number of working days strictly before day `i`; length
    /// `days + 1` so "working days up to and including day i" is `rank[i+1]`.
    rank: Vec<u32>,
    /// Day offsets of working days, ascending: the N-th working day after a
    /// date is a single index into this.
    working_days: Vec<u32>,
}

impl Calendar {
    /// Parses and merges one JSON document per year. Years must share a
    /// jurisdiction and be contiguous, so the covered range has no holes in
    /// which a weekend-only guess could creep in.
    pub fn from_years(files: &[&str]) -> Result<Self, CalendarError> {
        let parsed = files
            .iter()
            .enumerate()
            .map(|(index, text)| {
                serde_json::from_str::<CalendarYear>(text)
                    .map_err(|source| CalendarError::Json { index, source })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_parsed(parsed)
    }

    /// Same as [`Calendar::from_years`] for already-deserialised years.
    pub fn from_parsed(mut years: Vec<CalendarYear>) -> Result<Self, CalendarError> {
        years.sort_by_key(|y| y.year);
        let (Some(head), Some(tail)) = (years.first(), years.last()) else {
            return Err(CalendarError::Empty);
        };
        let jurisdiction = head.jurisdiction.clone();
        let first = year_start(head.year)?;
        let last = year_end(tail.year)?;
        for pair in years.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            if a.year == b.year {
                return Err(CalendarError::DuplicateYear { year: a.year });
            }
            if b.year != a.year + 1 {
                return Err(CalendarError::MissingYear {
                    missing: a.year + 1,
                });
            }
        }
        if let Some(other) = years.iter().find(|y| y.jurisdiction != jurisdiction) {
            return Err(CalendarError::MixedJurisdictions {
                first: jurisdiction,
                other: other.jurisdiction.clone(),
            });
        }

        // `last >= first` holds because years are sorted and each is valid.
        let days = usize::try_from((last - first).num_days() + 1).unwrap_or(0);
        let mut marks: Vec<Option<Mark>> = vec![None; days];
        // Entries may legitimately reach into an adjacent year (an 元旦
        // break starting on 30 Dec); those outside the loaded range are
        // dropped because no query can land there anyway.
        let index_of = |date: NaiveDate| -> Option<usize> {
            if date < first || date > last {
                return None;
            }
            usize::try_from((date - first).num_days()).ok()
        };
        let mut set = |date: NaiveDate, mark: Mark| -> Result<(), CalendarError> {
            if let Some(slot) = index_of(date).and_then(|i| marks.get_mut(i)) {
                match *slot {
                    Some(existing) if existing != mark => {
                        return Err(CalendarError::Conflict { date });
                    }
                    _ => *slot = Some(mark),
                }
            }
            Ok(())
        };
        for y in &years {
            let in_reach = |d: NaiveDate| (y.year - 1..=y.year + 1).contains(&d.year());
            for span in &y.holidays {
                let (a, b) = span.bounds();
                if a > b {
                    return Err(CalendarError::InvertedRange {
                        year: y.year,
                        first: a,
                        last: b,
                    });
                }
                for d in [a, b] {
                    if !in_reach(d) {
                        return Err(CalendarError::DateOutsideYear {
                            year: y.year,
                            date: d,
                        });
                    }
                }
                for d in a.iter_days().take_while(|d| *d <= b) {
                    set(d, Mark::Holiday)?;
                }
            }
            for &d in &y.workdays {
                if !in_reach(d) {
                    return Err(CalendarError::DateOutsideYear {
                        year: y.year,
                        date: d,
                    });
                }
                // 调休 days are always weekend dates; a weekday here is a typo
                // that would otherwise go unnoticed.
                if !is_weekend(d) {
                    return Err(CalendarError::WorkdayNotWeekend {
                        year: y.year,
                        date: d,
                    });
                }
                set(d, Mark::Workday)?;
            }
        }

        let mut working = Vec::with_capacity(days);
        let mut rank = Vec::with_capacity(days + 1);
        let mut working_days = Vec::new();
        let mut count: u32 = 0;
        for (i, (mark, date)) in marks.iter().zip(first.iter_days()).enumerate() {
            let w = match mark {
                Some(Mark::Holiday) => false,
                Some(Mark::Workday) => true,
                None => !is_weekend(date),
            };
            rank.push(count);
            working.push(w);
            if w {
                // A few thousand days at most: the offset always fits.
                working_days.push(u32::try_from(i).unwrap_or(u32::MAX));
                count += 1;
            }
        }
        rank.push(count);

        let version = years
            .iter()
            .map(|y| {
                format!(
                    "{}@{}",
                    y.year,
                    y.version.as_deref().unwrap_or("unversioned")
                )
            })
            .collect::<Vec<_>>()
            .join(",");
        Ok(Self {
            version: format!("{jurisdiction}:{version}"),
            jurisdiction,
            years: years.iter().map(|y| y.year).collect(),
            first,
            last,
            working,
            rank,
            working_days,
        })
    }

    pub fn jurisdiction(&self) -> &str {
        &self.jurisdiction
    }

    /// Loaded years, ascending.
    pub fn years(&self) -> &[i32] {
        &self.years
    }

    /// e.g. `CN:2025@gov-2024-11,2026@gov-2025-11`; identifies the data used.
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn first_loaded(&self) -> NaiveDate {
        self.first
    }

    pub fn last_loaded(&self) -> NaiveDate {
        self.last
    }

    pub fn covers(&self, date: NaiveDate) -> bool {
        date >= self.first && date <= self.last
    }

    /// `None` outside the loaded range: callers must not guess there.
    pub fn working_day(&self, date: NaiveDate) -> Option<bool> {
        self.offset(date).and_then(|i| self.working.get(i).copied())
    }

    /// Convenience form of [`Calendar::working_day`]; dates outside the
    /// loaded range report `false` (use `covers` or `working_day` to tell).
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        self.working_day(date).unwrap_or(false)
    }

    /// The `n`-th working day strictly after `date` (`n >= 1`), or `None` if
    /// `date` is outside the range or the answer lies beyond it.
    pub fn nth_working_day_after(&self, date: NaiveDate, n: u32) -> Option<NaiveDate> {
        let i = self.nth_working_offset_after(self.offset(date)?, n)?;
        self.date_at(i)
    }

    /// Offset form used by the calculator's hot path.
    pub(crate) fn nth_working_offset_after(&self, offset: usize, n: u32) -> Option<usize> {
        let n = usize::try_from(n.checked_sub(1)?).ok()?;
        let before = usize::try_from(*self.rank.get(offset + 1)?).ok()?;
        let idx = before.checked_add(n)?;
        self.working_days
            .get(idx)
            .and_then(|&d| usize::try_from(d).ok())
    }

    pub(crate) fn offset(&self, date: NaiveDate) -> Option<usize> {
        if !self.covers(date) {
            return None;
        }
        usize::try_from((date - self.first).num_days()).ok()
    }

    pub(crate) fn date_at(&self, offset: usize) -> Option<NaiveDate> {
        self.first
            .checked_add_days(chrono::Days::new(u64::try_from(offset).ok()?))
    }

    pub(crate) fn day_count(&self) -> usize {
        self.working.len()
    }

    pub(crate) fn working_at(&self, offset: usize) -> bool {
        self.working.get(offset).copied().unwrap_or(false)
    }
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

fn year_start(year: i32) -> Result<NaiveDate, CalendarError> {
    NaiveDate::from_ymd_opt(year, 1, 1).ok_or(CalendarError::YearOutOfRange { year })
}

fn year_end(year: i32) -> Result<NaiveDate, CalendarError> {
    NaiveDate::from_ymd_opt(year, 12, 31).ok_or(CalendarError::YearOutOfRange { year })
}

#[cfg(test)]
mod tests {
    use super::*;

    const CN_2025: &str = include_str!("../../../calendars/cn-2025.json");
    const CN_2026: &str = include_str!("../../../calendars/cn-2026.json");

    fn d(s: &str) -> NaiveDate {
        s.parse().expect("test date")
    }

    fn both() -> Calendar {
        Calendar::from_years(&[CN_2026, CN_2025]).expect("shipped calendars")
    }

    #[test]
    fn shipped_days_classified() {
        let cal = both();
        let cases = [
            // 2025
            ("2025-01-01", false), // 元旦
            ("2025-01-02", true),
            ("2025-01-26", true),  // Sun, make-up
            ("2025-01-27", true),  // Mon before 春节
            ("2025-01-28", false), // 春节 first
            ("2025-02-04", false), // 春节 last
            ("2025-02-05", true),
            ("2025-02-08", true), // Sat, make-up
            ("2025-02-09", false),
            ("2025-04-04", false),
            ("2025-04-06", false),
            ("2025-04-07", true),
            ("2025-04-27", true), // Sun, make-up
            ("2025-05-01", false),
            ("2025-05-05", false),
            ("2025-05-06", true),
            ("2025-05-31", false),
            ("2025-06-02", false),
            ("2025-06-03", true),
            ("2025-09-28", true), // Sun, make-up
            ("2025-10-01", false),
            ("2025-10-08", false),
            ("2025-10-09", true),
            ("2025-10-11", true), // Sat, make-up
            ("2025-10-12", false),
            // 2026
            ("2026-01-01", false),
            ("2026-01-03", false),
            ("2026-01-04", true), // Sun, make-up
            ("2026-02-13", true),
            ("2026-02-14", true), // Sat, make-up
            ("2026-02-15", false),
            ("2026-02-23", false),
            ("2026-02-24", true),
            ("2026-02-28", true), // Sat, make-up
            ("2026-03-01", false),
            ("2026-04-06", false),
            ("2026-04-07", true),
            ("2026-05-05", false),
            ("2026-05-09", true), // Sat, make-up
            ("2026-06-19", false),
            ("2026-06-22", true),
            ("2026-09-20", true), // Sun, make-up
            ("2026-09-25", false),
            ("2026-09-28", true),
            ("2026-10-07", false),
            ("2026-10-08", true),
            ("2026-10-10", true), // Sat, make-up
            ("2026-10-11", false),
            ("2026-12-31", true),
        ];
        for (date, expected) in cases {
            assert_eq!(cal.working_day(d(date)), Some(expected), "{date}");
            assert_eq!(cal.is_working_day(d(date)), expected, "{date}");
        }
    }

    #[test]
    fn range_and_metadata() {
        let cal = both();
        assert_eq!(cal.jurisdiction(), "CN");
        assert_eq!(cal.years(), &[2025, 2026]);
        assert_eq!(cal.first_loaded(), d("2025-01-01"));
        assert_eq!(cal.last_loaded(), d("2026-12-31"));
        assert!(cal.version().starts_with("CN:2025@"), "{}", cal.version());
        assert_eq!(cal.working_day(d("2027-01-01")), None);
        assert_eq!(cal.working_day(d("2024-12-31")), None);
        assert!(!cal.is_working_day(d("2027-01-04")));
    }

    #[test]
    fn working_day_counts_match_official_totals() {
        // 365 days - 104 weekend days - 13 statutory holidays (since 2025)
        // = 248; make-up days only move rest days around.
        let cal = both();
        let count = |y: i32| {
            d(&format!("{y}-01-01"))
                .iter_days()
                .take_while(|x| x.year() == y)
                .filter(|x| cal.is_working_day(*x))
                .count()
        };
        assert_eq!(count(2025), 248);
        assert_eq!(count(2026), 248);
    }

    #[test]
    fn nth_working_day_after_table() {
        let cal = both();
        let cases = [
            ("2026-02-13", 1, Some("2026-02-14")),
            ("2026-02-13", 2, Some("2026-02-24")),
            ("2026-02-13", 3, Some("2026-02-25")),
            ("2026-09-18", 1, Some("2026-09-20")),
            ("2026-09-30", 1, Some("2026-10-08")),
            ("2026-09-30", 3, Some("2026-10-10")),
            ("2026-09-30", 4, Some("2026-10-12")),
            ("2025-12-31", 1, Some("2026-01-04")), // 1/1–1/3 off, Sun 1/4 make-up
            ("2026-12-30", 1, Some("2026-12-31")),
            ("2026-12-30", 2, None),
            ("2026-12-31", 1, None),
            ("2027-01-01", 1, None),
            ("2026-02-13", 0, None),
        ];
        for (from, n, expected) in cases {
            assert_eq!(
                cal.nth_working_day_after(d(from), n),
                expected.map(d),
                "{from} + {n}"
            );
        }
    }

    #[test]
    fn single_year_and_defaults() {
        let cal = Calendar::from_years(&[r#"{"jurisdiction":"X","year":2030}"#]).expect("minimal");
        assert!(cal.is_working_day(d("2030-01-01"))); // Tue, no holidays listed
        assert!(!cal.is_working_day(d("2030-01-05"))); // Sat
        assert_eq!(cal.version(), "X:2030@unversioned");
    }

    #[test]
    fn cross_year_entries_are_clipped() {
        let y = r#"{"jurisdiction":"CN","year":2030,"holidays":[["2029-12-30","2030-01-01"]]}"#;
        let cal = Calendar::from_years(&[y]).expect("clipped");
        assert!(!cal.is_working_day(d("2030-01-01")));
        assert_eq!(cal.working_day(d("2029-12-31")), None);
    }

    #[test]
    fn invalid_inputs_table() {
        let y = |body: &str| format!(r#"{{"jurisdiction":"CN","year":2030{body}}}"#);
        let cases: Vec<(Vec<String>, &str)> = vec![
            (vec![], "Empty"),
            (vec!["not json".into()], "Json"),
            (vec![r#"{"jurisdiction":"CN"}"#.into()], "Json"),
            (
                vec![y(r#","holidays":[["2030-13-01","2030-13-02"]]"#)],
                "Json",
            ),
            (vec![y(r#","extra":1"#)], "Json"),
            (
                vec![y(r#","holidays":[["2030-02-05","2030-02-01"]]"#)],
                "InvertedRange",
            ),
            (vec![y(r#","holidays":["2062-01-01"]"#)], "DateOutsideYear"),
            (vec![y(r#","workdays":["2033-06-04"]"#)], "DateOutsideYear"),
            (
                vec![y(r#","workdays":["2030-01-02"]"#)],
                "WorkdayNotWeekend",
            ),
            (
                vec![y(
                    r#","holidays":[["2030-01-05","2030-01-06"]],"workdays":["2030-01-05"]"#,
                )],
                "Conflict",
            ),
            (vec![y(""), y("")], "DuplicateYear"),
            (
                vec![y(""), r#"{"jurisdiction":"CN","year":2032}"#.into()],
                "MissingYear",
            ),
            (
                vec![y(""), r#"{"jurisdiction":"HK","year":2031}"#.into()],
                "MixedJurisdictions",
            ),
            (
                vec![r#"{"jurisdiction":"CN","year":999999}"#.into()],
                "YearOutOfRange",
            ),
        ];
        for (files, expected) in cases {
            let refs: Vec<&str> = files.iter().map(String::as_str).collect();
            let err = Calendar::from_years(&refs).expect_err(expected);
            let got = format!("{err:?}");
            assert!(
                got.starts_with(expected),
                "{files:?}: expected {expected}, got {got}"
            );
            // Every error must render a human-readable message.
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn json_error_names_the_file() {
        let err = Calendar::from_years(&[CN_2025, "{"]).expect_err("bad second file");
        assert!(
            matches!(err, CalendarError::Json { index: 1, .. }),
            "{err:?}"
        );
    }
}
