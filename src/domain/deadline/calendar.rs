//! Working calendar: which dates are working days in one jurisdiction.
//!
//! Built from one JSON document per year (the State Council's annual
//! arrangement), or from a CSV listing (see [`CalendarYear::from_csv`]).
//! Parsing takes `&str`; loading files is the caller's job so this module
//! stays free of I/O.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{Datelike, NaiveDate, Weekday};
use serde::{Deserialize, Serialize};

use crate::domain::code::{CODE_RULE, is_code};

/// One year's arrangement as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarYear {
    /// Whose calendar: `CN` for the State Council's national one.
    #[schema(pattern = "^[A-Za-z0-9_-]{1,64}$")]
    pub jurisdiction: String,
    #[schema(minimum = 2000, maximum = 2099)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
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
    #[error("calendar {year}: jurisdiction {jurisdiction:?} is not {CODE_RULE}")]
    InvalidJurisdiction { year: i32, jurisdiction: String },
    #[error("calendar year {year} is outside the supported range")]
    YearOutOfRange { year: i32 },
    #[error(
        "calendar year {year} cannot be loaded: years from {} to {} can",
        UPLOADABLE_YEARS.start(),
        UPLOADABLE_YEARS.end()
    )]
    YearNotUploadable { year: i32 },
    #[error("calendar {year}: holiday range {first}..{last} is inverted")]
    InvertedRange {
        year: i32,
        first: NaiveDate,
        last: NaiveDate,
    },
    #[error("calendar {year}: date {date} is not within {year} or an adjacent year")]
    DateOutsideYear { year: i32, date: NaiveDate },
    #[error(
        "calendar {year}: date {date} is in neither {year} nor the last week of the year \
         before (where a notice's 元旦 break may start); is the file another year's?"
    )]
    DateOutsideNotice { year: i32, date: NaiveDate },
    #[error("calendar {year}: version {version:?} {problem}")]
    InvalidVersion {
        year: i32,
        version: String,
        problem: String,
    },
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
    #[error("calendar CSV line {line}: {message}")]
    Csv { line: usize, message: String },
    #[error(
        "calendar {jurisdiction} {year}: the upload lists {new_days} of the {stored_days} days \
         already stored and would drop the rest; upload the whole year"
    )]
    WouldShrink {
        jurisdiction: String,
        year: i32,
        new_days: usize,
        stored_days: usize,
    },
    #[error("calendar {year}: {date} is listed twice")]
    ListedTwice { year: i32, date: NaiveDate },
    #[error(
        "calendar {jurisdiction} {year}: version {version:?} is already stored with other days; \
         give the corrected year a version of its own, so that deadlines can be traced to the \
         days they were counted on"
    )]
    VersionReused {
        jurisdiction: String,
        year: i32,
        version: String,
    },
}

/// Per-day state while merging files; `None` means "ordinary rules apply".
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
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
            y.validate()?;
            for span in &y.holidays {
                let (a, b) = span.bounds();
                for d in a.iter_days().take_while(|d| *d <= b) {
                    set(d, Mark::Holiday)?;
                }
            }
            for &d in &y.workdays {
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
            .map(|y| format!("{}@{}", y.year, y.version_name()))
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

/// The years an upload may bring. Deadlines run from now on, so a year far from
/// this century is a typo (`0`, `20226`).
pub const UPLOADABLE_YEARS: std::ops::RangeInclusive<i32> = 2000..=2099;

impl CalendarYear {
    /// Refuses what an upload may not bring: a jurisdiction that is not a code,
    /// a year outside [`UPLOADABLE_YEARS`]. Checked on uploads only, not in
    /// [`Calendar::from_parsed`]: years stored before these rules must keep
    /// loading.
    ///
    /// Runs before anything counts the year's days: the bounds are checked
    /// first, so a range reaching to 9999 is refused without being walked.
    pub fn check_upload(&self) -> Result<(), CalendarError> {
        if !is_code(&self.jurisdiction) {
            return Err(CalendarError::InvalidJurisdiction {
                year: self.year,
                jurisdiction: self.jurisdiction.clone(),
            });
        }
        if !UPLOADABLE_YEARS.contains(&self.year) {
            return Err(CalendarError::YearNotUploadable { year: self.year });
        }
        if let Some(version) = &self.version {
            check_version(self.year, version)?;
        }
        self.validate()?;
        // A notice reaches into the year before only for an 元旦 break; a year
        // whose dates lie elsewhere is most likely another year's file copied
        // under this year's number, and would replace this year's holidays.
        let reach_start = NaiveDate::from_ymd_opt(self.year - 1, 12, LAST_WEEK_OF_DECEMBER)
            .ok_or(CalendarError::YearOutOfRange { year: self.year })?;
        let in_notice = |d: NaiveDate| d >= reach_start && d.year() <= self.year;
        let mut dates = self
            .holidays
            .iter()
            .flat_map(|span| {
                let (first, last) = span.bounds();
                [first, last]
            })
            .chain(self.workdays.iter().copied());
        if let Some(date) = dates.find(|d| !in_notice(*d)) {
            return Err(CalendarError::DateOutsideNotice {
                year: self.year,
                date,
            });
        }
        // In a hand-kept file a repeat is usually a typo for another date, and
        // repeats would pass a fragment off as a whole year to `check_replaces`.
        if let Some(date) = self.first_repeat() {
            return Err(CalendarError::ListedTwice {
                year: self.year,
                date,
            });
        }
        Ok(())
    }

    /// The checks one year must pass on its own, whatever format it came
    /// from; [`Calendar::from_parsed`] adds the checks across years.
    fn validate(&self) -> Result<(), CalendarError> {
        year_start(self.year)?;
        let in_reach = |d: NaiveDate| (self.year - 1..=self.year + 1).contains(&d.year());
        let outside = |date| CalendarError::DateOutsideYear {
            year: self.year,
            date,
        };
        for span in &self.holidays {
            let (a, b) = span.bounds();
            if a > b {
                return Err(CalendarError::InvertedRange {
                    year: self.year,
                    first: a,
                    last: b,
                });
            }
            if let Some(d) = [a, b].into_iter().find(|d| !in_reach(*d)) {
                return Err(outside(d));
            }
        }
        for &d in &self.workdays {
            if !in_reach(d) {
                return Err(outside(d));
            }
            // 调休 days are always weekend dates; a weekday here is a typo
            // that would otherwise go unnoticed.
            if !is_weekend(d) {
                return Err(CalendarError::WorkdayNotWeekend {
                    year: self.year,
                    date: d,
                });
            }
        }
        Ok(())
    }

    /// Every listed holiday (ranges day by day), then every make-up workday,
    /// repeats included.
    fn listed_days(&self) -> impl Iterator<Item = (Mark, NaiveDate)> + '_ {
        let holidays = self.holidays.iter().flat_map(|span| {
            let (first, last) = span.bounds();
            first
                .iter_days()
                .take_while(move |d| *d <= last)
                .map(|d| (Mark::Holiday, d))
        });
        holidays.chain(self.workdays.iter().map(|d| (Mark::Workday, *d)))
    }

    /// The days listed as holidays and as make-up workdays.
    fn listed(&self) -> (BTreeSet<NaiveDate>, BTreeSet<NaiveDate>) {
        let mut holidays = BTreeSet::new();
        let mut workdays = BTreeSet::new();
        for (mark, day) in self.listed_days() {
            match mark {
                Mark::Holiday => holidays.insert(day),
                Mark::Workday => workdays.insert(day),
            };
        }
        (holidays, workdays)
    }

    /// The first date listed twice as a holiday or twice as a workday. Stops
    /// there, so it walks at most one more day than the listing has distinct.
    fn first_repeat(&self) -> Option<NaiveDate> {
        let mut seen = std::collections::HashSet::new();
        self.listed_days()
            .find(|entry| !seen.insert(*entry))
            .map(|(_, day)| day)
    }

    /// Parses a CSV listing, for offices that keep the arrangement in a
    /// spreadsheet. One calendar year per (jurisdiction, year) is returned,
    /// sorted by jurisdiction then year; pass them to
    /// [`Calendar::from_parsed`].
    ///
    /// Format:
    ///
    /// ```text
    /// # version: 2026-v1
    /// jurisdiction,date,kind,name
    /// CN,2026-01-01,holiday,元旦
    /// CN,2026-01-04,workday,元旦调休
    /// ```
    ///
    /// * The first line that is neither blank nor a comment is the header:
    ///   `jurisdiction,date,kind`, optionally followed by `,name`.
    /// * One row per date. `date` is `YYYY-MM-DD`; `kind` is `holiday` (a rest
    ///   day beyond ordinary weekends) or `workday` (a weekend date worked,
    ///   调休). `name` is for people reading the file and may be empty or left
    ///   out; it is not kept.
    /// * A row belongs to the calendar year its date falls in, except for a
    ///   notice's reach into the year before: when every row of a year is in
    ///   the last week of December and the file also lists the next year,
    ///   those rows belong to the next year's notice (an 元旦 break from 30
    ///   December, a make-up Saturday on the 29th), as in a JSON year. They
    ///   then apply to the year before only where it is loaded, instead of
    ///   standing as a year of their own with nothing but weekends.
    /// * Blank lines and lines starting with `#` are ignored, except that one
    ///   `# version: ...` comment sets the version of every year in the file.
    /// * Fields are trimmed. There is no quoting, so fields cannot contain
    ///   commas or `"`.
    ///
    /// Errors name the 1-based line. A date listed twice is an error even
    /// with the same kind: in a hand-kept file it is usually a typo for
    /// another date.
    /// The version explanations and the store name this year by.
    pub fn version_name(&self) -> &str {
        self.version.as_deref().unwrap_or("unversioned")
    }

    /// The year with a version: its own, or one named after its days
    /// (`days-` and a digest of them), so that an explanation always names
    /// the days a deadline was counted on, and two different unversioned
    /// loads never share a name.
    pub fn versioned(mut self) -> CalendarYear {
        if self.version.is_none() {
            use sha2::{Digest, Sha256};
            let (holidays, workdays) = self.listed();
            let mut digest = Sha256::new();
            for (kind, days) in [("holiday", holidays), ("workday", workdays)] {
                for day in days {
                    digest.update(format!("{kind} {day}\n"));
                }
            }
            self.version = Some(format!("days-{}", &hex::encode(digest.finalize())[..12]));
        }
        self
    }

    /// Uploads replace whole years, so a replacement that keeps fewer than half
    /// the listed days of the stored year is taken for a partial file and refused.
    /// A replacement under the stored version must list the same days: the
    /// version is what explanations name.
    pub fn check_replaces(&self, stored: &CalendarYear) -> Result<(), CalendarError> {
        let (holidays, workdays) = self.listed();
        let (stored_holidays, stored_workdays) = stored.listed();
        if let Some(version) = &self.version
            && stored.version.as_ref() == Some(version)
            && (&holidays, &workdays) != (&stored_holidays, &stored_workdays)
        {
            return Err(CalendarError::VersionReused {
                jurisdiction: self.jurisdiction.clone(),
                year: self.year,
                version: version.clone(),
            });
        }
        let new_days = holidays.len() + workdays.len();
        let stored_days = stored_holidays.len() + stored_workdays.len();
        if new_days * 2 < stored_days {
            return Err(CalendarError::WouldShrink {
                jurisdiction: self.jurisdiction.clone(),
                year: self.year,
                new_days,
                stored_days,
            });
        }
        Ok(())
    }

    pub fn from_csv(text: &str) -> Result<Vec<CalendarYear>, CalendarError> {
        // Spreadsheet exports often start with a byte-order mark.
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut version: Option<(usize, String)> = None;
        let mut has_name: Option<bool> = None;
        let mut seen: BTreeMap<(String, NaiveDate), usize> = BTreeMap::new();
        let mut years: BTreeMap<(String, i32), CalendarYear> = BTreeMap::new();
        let mut last_line = 0;

        for (index, raw) in text.lines().enumerate() {
            let line = index + 1;
            last_line = line;
            let err = |message: String| CalendarError::Csv { line, message };
            let trimmed = raw.trim();
            if trimmed.is_empty() {
                continue;
            }
            if let Some(comment) = trimmed.strip_prefix('#') {
                let Some(value) = comment
                    .split_once(':')
                    .filter(|(key, _)| key.trim().eq_ignore_ascii_case("version"))
                    .map(|(_, value)| value.trim())
                else {
                    continue;
                };
                if value.is_empty() {
                    return Err(err("the version comment is empty".into()));
                }
                if let Some((first, _)) = &version {
                    return Err(err(format!("version already given on line {first}")));
                }
                version = Some((line, value.to_owned()));
                continue;
            }
            if trimmed.contains('"') {
                return Err(err("quoted fields are not supported".into()));
            }
            let fields: Vec<&str> = trimmed.split(',').map(str::trim).collect();
            let Some(with_name) = has_name else {
                has_name = Some(match fields.as_slice() {
                    ["jurisdiction", "date", "kind"] => false,
                    ["jurisdiction", "date", "kind", "name"] => true,
                    _ => {
                        return Err(err(format!(
                            "expected the header `jurisdiction,date,kind,name`, found `{trimmed}`"
                        )));
                    }
                });
                continue;
            };
            let (jurisdiction, date, kind) = match (fields.as_slice(), with_name) {
                ([j, d, k], _) | ([j, d, k, _], true) => (*j, *d, *k),
                _ => {
                    return Err(err(format!(
                        "expected {} fields, found {}",
                        if with_name { "3 or 4" } else { "3" },
                        fields.len()
                    )));
                }
            };
            if !is_code(jurisdiction) {
                return Err(err(format!(
                    "jurisdiction `{jurisdiction}` is not {CODE_RULE}"
                )));
            }
            let date = parse_iso_date(date)
                .ok_or_else(|| err(format!("`{date}` is not a date in YYYY-MM-DD form")))?;
            let holiday = if kind.eq_ignore_ascii_case("holiday") {
                true
            } else if kind.eq_ignore_ascii_case("workday") {
                false
            } else {
                return Err(err(format!(
                    "kind `{kind}` is neither `holiday` nor `workday`"
                )));
            };
            // Same rule as `validate`, checked here so the error names the line.
            if !holiday && !is_weekend(date) {
                return Err(err(format!(
                    "make-up workday {date} is not a Saturday or Sunday"
                )));
            }
            if let Some(first) = seen.insert((jurisdiction.to_owned(), date), line) {
                return Err(err(format!("{date} is already listed on line {first}")));
            }
            let year = years
                .entry((jurisdiction.to_owned(), date.year()))
                .or_insert_with(|| CalendarYear {
                    jurisdiction: jurisdiction.to_owned(),
                    year: date.year(),
                    version: None,
                    holidays: Vec::new(),
                    workdays: Vec::new(),
                });
            if holiday {
                year.holidays.push(HolidaySpan::Day(date));
            } else {
                year.workdays.push(date);
            }
        }

        if has_name.is_none() {
            return Err(CalendarError::Csv {
                line: last_line.max(1),
                message: "the header `jurisdiction,date,kind,name` is missing".into(),
            });
        }
        fold_spill_over_into_next_year(&mut years);
        let version = version.map(|(_, v)| v);
        let mut out: Vec<CalendarYear> = years.into_values().collect();
        for y in &mut out {
            y.version.clone_from(&version);
            y.holidays.sort_by_key(|span| span.bounds());
            y.workdays.sort();
            y.validate()?;
        }
        if out.is_empty() {
            return Err(CalendarError::Empty);
        }
        Ok(out)
    }

    /// This year in the [`CalendarYear::from_csv`] format, holiday ranges
    /// expanded to days and rows in date order. Reading it back gives the
    /// same working days, a notice's reach into the year before included.
    pub fn to_csv(&self) -> String {
        let mut rows: Vec<(NaiveDate, &str)> = self
            .holidays
            .iter()
            .flat_map(|span| {
                let (a, b) = span.bounds();
                a.iter_days().take_while(move |d| *d <= b)
            })
            .map(|d| (d, "holiday"))
            .chain(self.workdays.iter().map(|d| (*d, "workday")))
            .collect();
        rows.sort();
        let mut out = String::new();
        if let Some(version) = &self.version {
            out.push_str(&format!("# version: {version}\n"));
        }
        out.push_str("jurisdiction,date,kind\n");
        for (date, kind) in rows {
            out.push_str(&format!(
                "{},{},{kind}\n",
                self.jurisdiction,
                date.format("%Y-%m-%d")
            ));
        }
        out
    }
}

/// The first day of December a notice for the next year reaches back to: an
/// 元旦 break starts on 30 December at the earliest, with a make-up Saturday
/// before it.
const LAST_WEEK_OF_DECEMBER: u32 = 25;

/// The longest version a calendar may have: it is named in every explanation.
const MAX_VERSION_CHARS: usize = 100;

/// A version names the year in explanations and the store: printable text, so
/// that both databases keep it (PostgreSQL refuses a NUL) and a reader sees
/// all of it.
fn check_version(year: i32, version: &str) -> Result<(), CalendarError> {
    let problem = if version.trim().is_empty() {
        Some("is empty".to_owned())
    } else if version.chars().count() > MAX_VERSION_CHARS {
        Some(format!("is longer than {MAX_VERSION_CHARS} characters"))
    } else if version.chars().any(char::is_control) {
        Some("holds a control character".to_owned())
    } else if version.chars().any(is_invisible_format) {
        Some("holds an invisible formatting character".to_owned())
    } else {
        None
    };
    match problem {
        Some(problem) => Err(CalendarError::InvalidVersion {
            year,
            version: version.to_owned(),
            problem,
        }),
        None => Ok(()),
    }
}

/// Zero-width and direction-changing characters, and the line and paragraph
/// separators: invisible, or moving the text around them, where a version is
/// read by people in explanations.
fn is_invisible_format(c: char) -> bool {
    matches!(c,
        '\u{200B}'..='\u{200F}' | '\u{2028}'..='\u{202E}' | '\u{2060}'..='\u{2064}'
        | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// Moves each CSV year group that is only a following notice's reach into it
/// (see [`CalendarYear::from_csv`]) into that notice's year.
fn fold_spill_over_into_next_year(years: &mut BTreeMap<(String, i32), CalendarYear>) {
    let in_last_week = |d: &NaiveDate| d.month() == 12 && d.day() >= LAST_WEEK_OF_DECEMBER;
    let spill_overs: Vec<(String, i32)> = years
        .iter()
        .filter(|((jurisdiction, year), group)| {
            years.contains_key(&(jurisdiction.clone(), year + 1))
                && group.workdays.iter().all(in_last_week)
                && group
                    .holidays
                    .iter()
                    .all(|span| in_last_week(&span.bounds().0))
        })
        .map(|(key, _)| key.clone())
        .collect();
    for (jurisdiction, year) in spill_overs {
        let Some(spill) = years.remove(&(jurisdiction.clone(), year)) else {
            continue;
        };
        if let Some(notice) = years.get_mut(&(jurisdiction, year + 1)) {
            notice.holidays.extend(spill.holidays);
            notice.workdays.extend(spill.workdays);
        }
    }
}

/// Strict `YYYY-MM-DD`: chrono alone also accepts `2026-1-4`, which in a
/// hand-kept file is more likely a typo than intent.
fn parse_iso_date(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    let shape_ok = b.len() == 10
        && b.iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if !shape_ok {
        return None;
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()
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

    /// `cn-2026.json` transcribed by hand as the spreadsheet would hold it,
    /// with the comments, spacing and blank lines such files tend to have.
    const CN_2026_CSV: &str = "\
# 国务院办公厅关于2026年部分节假日安排的通知
# version: 2026-v1

jurisdiction, date, kind, name
CN,2026-01-01,holiday,元旦
CN,2026-01-02,holiday,元旦
CN,2026-01-03,holiday,元旦
CN,2026-01-04,workday,元旦调休

CN,2026-02-14,workday,春节调休
CN,2026-02-15,holiday,春节
CN,2026-02-16,holiday,春节
CN,2026-02-17,holiday,春节
CN,2026-02-18,holiday,春节
CN,2026-02-19,holiday,春节
CN,2026-02-20,holiday,春节
CN,2026-02-21,holiday,春节
CN,2026-02-22,holiday,春节
CN,2026-02-23,holiday,春节
CN,2026-02-28,workday,春节调休
  CN , 2026-04-04 , holiday , 清明节
CN,2026-04-05,holiday,
CN,2026-04-06,holiday
CN,2026-05-01,holiday,劳动节
CN,2026-05-02,holiday,劳动节
CN,2026-05-03,holiday,劳动节
CN,2026-05-04,holiday,劳动节
CN,2026-05-05,holiday,劳动节
CN,2026-05-09,workday,劳动节调休
CN,2026-06-19,holiday,端午节
CN,2026-06-20,holiday,端午节
CN,2026-06-21,holiday,端午节
CN,2026-09-20,workday,中秋调休
CN,2026-09-25,holiday,中秋节
CN,2026-09-26,holiday,中秋节
CN,2026-09-27,holiday,中秋节
# 国庆节
CN,2026-10-01,holiday,国庆节
CN,2026-10-02,holiday,国庆节
CN,2026-10-03,holiday,国庆节
CN,2026-10-04,holiday,国庆节
CN,2026-10-05,holiday,国庆节
CN,2026-10-06,holiday,国庆节
CN,2026-10-07,holiday,国庆节
CN,2026-10-10,workday,国庆调休
";

    fn days_of(year: i32) -> impl Iterator<Item = NaiveDate> {
        d(&format!("{year}-01-01"))
            .iter_days()
            .take_while(move |x| x.year() == year)
    }

    fn assert_same_days(a: &Calendar, b: &Calendar, year: i32) {
        for day in days_of(year) {
            assert_eq!(a.working_day(day), b.working_day(day), "{day}");
        }
    }

    #[test]
    fn csv_2026_agrees_with_the_json_on_every_day() {
        let years = CalendarYear::from_csv(CN_2026_CSV).expect("csv");
        assert_eq!(years.len(), 1);
        assert_eq!(years[0].version.as_deref(), Some("2026-v1"));
        let from_csv = Calendar::from_parsed(years).expect("valid years");
        let from_json = Calendar::from_years(&[CN_2026]).expect("json");
        assert_same_days(&from_csv, &from_json, 2026);
        assert_eq!(from_csv.version(), from_json.version());
        assert_eq!(from_csv.years(), &[2026]);
    }

    #[test]
    fn csv_round_trips_the_shipped_years() {
        for json in [CN_2025, CN_2026] {
            let year: CalendarYear = serde_json::from_str(json).expect("json");
            let csv = year.to_csv();
            let back = CalendarYear::from_csv(&csv).expect("own output parses");
            assert_eq!(back.len(), 1, "{csv}");
            let back = &back[0];
            assert_eq!(
                (&back.jurisdiction, back.year, &back.version),
                (&year.jurisdiction, year.year, &year.version)
            );
            let mut workdays = year.workdays.clone();
            workdays.sort();
            assert_eq!(back.workdays, workdays);
            // Ranges come back as days, so compare the output, not the spans.
            assert_eq!(back.to_csv(), csv);
            let a = Calendar::from_parsed(vec![year.clone()]).expect("json year");
            let b = Calendar::from_parsed(vec![back.clone()]).expect("csv year");
            assert_same_days(&a, &b, year.year);
        }
    }

    #[test]
    fn to_csv_expands_ranges_in_date_order() {
        let year = CalendarYear {
            jurisdiction: "X".into(),
            year: 2030,
            version: None,
            holidays: vec![
                HolidaySpan::Range([d("2030-02-04"), d("2030-02-05")]),
                HolidaySpan::Day(d("2030-01-01")),
            ],
            workdays: vec![d("2030-01-05")],
        };
        assert_eq!(
            year.to_csv(),
            "jurisdiction,date,kind\n\
             X,2030-01-01,holiday\n\
             X,2030-01-05,workday\n\
             X,2030-02-04,holiday\n\
             X,2030-02-05,holiday\n"
        );
    }

    #[test]
    fn csv_groups_by_jurisdiction_and_year_and_sorts() {
        let csv = "\u{feff}jurisdiction,date,kind\r\n\
                   HK,2026-01-01,holiday\r\n\
                   CN,2026-10-02,holiday\r\n\
                   CN,2025-12-31,holiday\r\n\
                   CN,2026-01-04,workday\r\n\
                   CN,2026-01-01,HOLIDAY\r\n\
                   #Version : v9\r\n\
                   CN,2025-12-28,workday\r\n";
        let years = CalendarYear::from_csv(csv).expect("csv");
        let summary: Vec<(&str, i32, Vec<HolidaySpan>, Vec<NaiveDate>)> = years
            .iter()
            .map(|y| {
                assert_eq!(y.version.as_deref(), Some("v9"), "applies to every year");
                (
                    y.jurisdiction.as_str(),
                    y.year,
                    y.holidays.clone(),
                    y.workdays.clone(),
                )
            })
            .collect();
        let day = |s| HolidaySpan::Day(d(s));
        // The rows of 2025's last week are the 2026 notice's reach into it.
        assert_eq!(
            summary,
            vec![
                (
                    "CN",
                    2026,
                    vec![day("2025-12-31"), day("2026-01-01"), day("2026-10-02")],
                    vec![d("2025-12-28"), d("2026-01-04")]
                ),
                ("HK", 2026, vec![day("2026-01-01")], vec![]),
            ]
        );
    }

    /// A notice's rows for the end of the year before stay with the notice,
    /// so that they neither stand as a weekends-only year of their own nor,
    /// for a stored year, fail the shrink guard.
    #[test]
    fn csv_rows_reaching_into_the_year_before_belong_to_the_notice() {
        let h = "jurisdiction,date,kind\n";
        let notice = format!(
            "{h}X,2029-12-29,workday\nX,2029-12-30,holiday\nX,2029-12-31,holiday\n\
             X,2030-01-01,holiday\nX,2030-02-04,holiday\n"
        );
        let years = CalendarYear::from_csv(&notice).expect("csv");
        assert_eq!(
            years.iter().map(|y| y.year).collect::<Vec<_>>(),
            vec![2030],
            "no year of its own"
        );
        let alone = Calendar::from_parsed(years.clone()).expect("one year");
        assert_eq!(alone.years(), &[2030]);
        assert_eq!(alone.working_day(d("2029-12-31")), None, "not loaded");

        let year_before = CalendarYear {
            jurisdiction: "X".into(),
            year: 2029,
            version: None,
            holidays: vec![HolidaySpan::Day(d("2029-01-01"))],
            workdays: vec![],
        };
        let both = Calendar::from_parsed(vec![year_before, years[0].clone()]).expect("two years");
        assert!(both.is_working_day(d("2029-12-29")), "make-up Saturday");
        assert!(!both.is_working_day(d("2029-12-31")), "Monday in the break");

        // A file holding the year before in full keeps its rows there, and a
        // late-December year with no next year in the file stays its own.
        let whole = format!("{notice}X,2029-01-01,holiday\n");
        let years = CalendarYear::from_csv(&whole).expect("csv");
        assert_eq!(
            years.iter().map(|y| y.year).collect::<Vec<_>>(),
            vec![2029, 2030]
        );
        assert_eq!(years[0].workdays, vec![d("2029-12-29")]);
        let lone = CalendarYear::from_csv(&format!("{h}X,2029-12-31,holiday\n")).expect("csv");
        assert_eq!(lone.iter().map(|y| y.year).collect::<Vec<_>>(), vec![2029]);

        // Before the last week, a row is no notice's reach.
        let earlier = format!("{h}X,2029-12-24,holiday\nX,2030-01-01,holiday\n");
        let years = CalendarYear::from_csv(&earlier).expect("csv");
        assert_eq!(
            years.iter().map(|y| y.year).collect::<Vec<_>>(),
            vec![2029, 2030]
        );
    }

    #[test]
    fn csv_errors_name_the_line() {
        let h = "jurisdiction,date,kind,name\n";
        // (text, line, part of the message)
        let cases: Vec<(String, usize, &str)> = vec![
            (String::new(), 1, "header"),
            ("# just a comment\n\n".into(), 2, "header"),
            ("date,kind\n".into(), 1, "expected the header"),
            ("jurisdiction,date,kind,name,extra\n".into(), 1, "header"),
            (
                format!("\n# c\n{h}CN,2026-13-01,holiday\n"),
                4,
                "YYYY-MM-DD",
            ),
            (format!("{h}CN,2026-1-4,holiday\n"), 2, "YYYY-MM-DD"),
            (format!("{h}CN,+2026-01-01,holiday\n"), 2, "YYYY-MM-DD"),
            (format!("{h}CN,2026/01/01,holiday\n"), 2, "YYYY-MM-DD"),
            (format!("{h}CN,,holiday\n"), 2, "YYYY-MM-DD"),
            (format!("{h}CN,2026-01-01,rest\n"), 2, "neither"),
            (format!("{h}CN,2026-01-01,\n"), 2, "neither"),
            (format!("{h},2026-01-01,holiday\n"), 2, "jurisdiction"),
            (format!("{h}C N,2026-01-01,holiday\n"), 2, "not a code"),
            (
                format!("{h}CN,2026-01-05,workday\n"),
                2,
                "Saturday or Sunday",
            ),
            (
                format!("{h}CN,2026-01-01,holiday\n\nCN,2026-01-01,holiday\n"),
                4,
                "already listed on line 2",
            ),
            (
                format!("{h}CN,2026-01-04,holiday\nCN,2026-01-04,workday\n"),
                3,
                "already listed on line 2",
            ),
            (format!("{h}CN,2026-01-01\n"), 2, "3 or 4 fields, found 2"),
            (format!("{h}CN,2026-01-01,holiday,a,b\n"), 2, "found 5"),
            (
                "jurisdiction,date,kind\nCN,2026-01-01,holiday,元旦\n".into(),
                2,
                "expected 3 fields, found 4",
            ),
            (
                format!("{h}CN,2026-01-01,holiday,\"元旦, New Year\"\n"),
                2,
                "quoted",
            ),
            (
                format!("# version: a\n{h}# version: b\nCN,2026-01-01,holiday\n"),
                3,
                "already given on line 1",
            ),
            (format!("# version:\n{h}"), 1, "version comment is empty"),
        ];
        for (text, line, part) in cases {
            match CalendarYear::from_csv(&text) {
                Err(err @ CalendarError::Csv { line: got, .. }) => {
                    let message = err.to_string();
                    assert_eq!(got, line, "{text:?}: {message}");
                    assert!(message.contains(part), "{text:?}: {message}");
                    assert!(
                        message.starts_with(&format!("calendar CSV line {line}: ")),
                        "{message}"
                    );
                }
                other => panic!("{text:?}: expected a CSV error, got {other:?}"),
            }
        }
    }

    #[test]
    fn csv_without_rows_is_empty() {
        for text in [
            "jurisdiction,date,kind\n",
            "# version: x\njurisdiction,date,kind,name\n\n",
        ] {
            assert!(
                matches!(CalendarYear::from_csv(text), Err(CalendarError::Empty)),
                "{text:?}"
            );
        }
    }

    #[test]
    fn same_date_in_two_jurisdictions_is_not_a_duplicate() {
        let csv = "jurisdiction,date,kind\nCN,2026-01-01,holiday\nHK,2026-01-01,holiday\n";
        let years = CalendarYear::from_csv(csv).expect("csv");
        assert_eq!(years.len(), 2);
    }
}
