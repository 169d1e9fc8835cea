//! The live deadline book: a calculator per jurisdiction (working calendar +
//! the city's office hours) and the deadline profiles, built from the store and
//! swapped atomically whenever the reference version moves, like the routing
//! table. Computing a deadline never touches the database.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use arc_swap::ArcSwap;
use chrono::{DateTime, NaiveDate, Utc};

use crate::config::WorkflowSettings;
use crate::domain::deadline::{
    Calendar, CalendarError, CalendarYear, DeadlineCalculator, DeadlineError, DeadlineProfile,
    Urgency, local_midnight,
};
use crate::store::{Actor, Repository, StoreError};

/// Calendars shipped with the service, loaded into an empty database at start.
pub const SHIPPED_CALENDARS: [&str; 2] = [
    include_str!("../calendars/cn-2025.json"),
    include_str!("../calendars/cn-2026.json"),
];

#[derive(Debug, thiserror::Error)]
pub enum DeadlinesError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("working calendar: {0}")]
    Calendar(#[from] CalendarError),
    #[error("deadline: {0}")]
    Deadline(#[from] DeadlineError),
}

/// Everything deadlines are computed from, at one reference version.
pub struct DeadlineBook {
    calculators: HashMap<String, Arc<DeadlineCalculator>>,
    profiles: Vec<DeadlineProfile>,
    default_jurisdiction: String,
}

impl DeadlineBook {
    /// Builds calculators for every jurisdiction that has calendar years.
    pub fn build(
        years: Vec<CalendarYear>,
        profiles: Vec<DeadlineProfile>,
        settings: &WorkflowSettings,
        tz: chrono_tz::Tz,
    ) -> Result<DeadlineBook, DeadlinesError> {
        let mut by_jurisdiction: BTreeMap<String, Vec<CalendarYear>> = BTreeMap::new();
        for year in years {
            by_jurisdiction
                .entry(year.jurisdiction.clone())
                .or_default()
                .push(year);
        }
        let mut calculators = HashMap::new();
        for (jurisdiction, years) in by_jurisdiction {
            let calendar = Calendar::from_parsed(years)?;
            let calculator = DeadlineCalculator::new(calendar, settings.office_hours.clone(), tz)?
                .with_warning_fraction(settings.warning_fraction)?;
            calculators.insert(jurisdiction, Arc::new(calculator));
        }
        Ok(DeadlineBook {
            calculators,
            profiles,
            default_jurisdiction: settings.jurisdiction.clone(),
        })
    }

    /// The calculator of `jurisdiction`, or of the city's own when `None`.
    pub fn calculator(&self, jurisdiction: Option<&str>) -> Option<&DeadlineCalculator> {
        let key = jurisdiction.unwrap_or(&self.default_jurisdiction);
        self.calculators.get(key).map(Arc::as_ref)
    }

    pub fn jurisdictions(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.calculators.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    pub fn profiles(&self) -> &[DeadlineProfile] {
        &self.profiles
    }

    /// The instant the city's working calendar runs out: midnight after its last
    /// day, in the city's zone. No deadline may fall after it, so the next year
    /// must be loaded before then.
    pub fn calendar_end_time(&self) -> Option<DateTime<Utc>> {
        let calculator = self.calculator(None)?;
        let day_after = calculator.calendar().last_loaded().succ_opt()?;
        local_midnight(calculator.tz(), day_after)
    }

    /// Warns in the log when the city's calendar ends within
    /// [`CALENDAR_WARNING_DAYS`] of `now`'s day (or is missing): from then on
    /// new deadlines start failing as they reach past its end.
    fn warn_if_calendar_ends_soon(&self, now: DateTime<Utc>) {
        let Some(calculator) = self.calculator(None) else {
            tracing::warn!(
                jurisdiction = %self.default_jurisdiction,
                "no working calendar is loaded for the city: no deadline can be computed"
            );
            return;
        };
        let last = calculator.calendar().last_loaded();
        let today = now.with_timezone(&calculator.tz()).date_naive();
        if let Some(days) = days_until_calendar_ends(last, today) {
            tracing::warn!(
                jurisdiction = %self.default_jurisdiction,
                last_day = %last,
                days_left = days,
                "the working calendar ends soon: load next year's (PUT /api/v1/admin/calendars \
                 or `civicsnap calendar import`) before deadlines reach past it"
            );
        }
    }

    pub fn profile_for(
        &self,
        named: Option<&str>,
        category: &str,
        urgency: Urgency,
    ) -> Option<&DeadlineProfile> {
        DeadlineProfile::best_match(&self.profiles, named, category, urgency)
    }
}

/// How long before the city's calendar runs out the log starts warning: the
/// State Council publishes the next year's holidays in November or December.
pub const CALENDAR_WARNING_DAYS: i64 = 45;

/// Days from `today` to the calendar's `last` day, when that is
/// [`CALENDAR_WARNING_DAYS`] or fewer (negative once it has passed).
pub fn days_until_calendar_ends(last: NaiveDate, today: NaiveDate) -> Option<i64> {
    let days = (last - today).num_days();
    (days <= CALENDAR_WARNING_DAYS).then_some(days)
}

/// A calendar file in JSON: one year as in `calendars/cn-2026.json`, or an
/// array of years.
#[derive(serde::Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum CalendarFile {
    One(CalendarYear),
    Many(Vec<CalendarYear>),
}

/// Calendar years from an uploaded file: CSV (see [`CalendarYear::from_csv`]) or
/// JSON holding one year or an array of years.
pub fn parse_calendar_file(text: &str, csv: bool) -> Result<Vec<CalendarYear>, CalendarError> {
    if csv {
        return CalendarYear::from_csv(text);
    }
    match serde_json::from_str::<CalendarFile>(text) {
        Ok(CalendarFile::One(year)) => Ok(vec![year]),
        Ok(CalendarFile::Many(years)) => Ok(years),
        // The untagged error says nothing useful; parse as one year for a message.
        Err(_) => serde_json::from_str::<CalendarYear>(text)
            .map(|year| vec![year])
            .map_err(|source| CalendarError::Json { index: 0, source }),
    }
}

/// Checks that storing `new` beside `stored` leaves every jurisdiction with a
/// calendar that builds: valid years, no holes between them, no conflicts, and
/// no stored year cut down to a fragment.
pub fn check_calendar_update(
    stored: Vec<CalendarYear>,
    new: &[CalendarYear],
) -> Result<(), CalendarError> {
    check_uploads(new)?;
    check_against_stored(stored, new)
}

/// What each uploaded year must be on its own ([`CalendarYear::check_upload`]);
/// before anything counts its days.
fn check_uploads(new: &[CalendarYear]) -> Result<(), CalendarError> {
    if new.is_empty() {
        return Err(CalendarError::Empty);
    }
    new.iter().try_for_each(CalendarYear::check_upload)
}

/// The part of [`check_calendar_update`] that needs the stored years.
fn check_against_stored(
    stored: Vec<CalendarYear>,
    new: &[CalendarYear],
) -> Result<(), CalendarError> {
    for year in new {
        if let Some(old) = stored
            .iter()
            .find(|s| s.jurisdiction == year.jurisdiction && s.year == year.year)
        {
            year.check_replaces(old)?;
        }
    }
    let mut merged: BTreeMap<String, Vec<CalendarYear>> = BTreeMap::new();
    for year in stored
        .into_iter()
        .filter(|s| {
            !new.iter()
                .any(|n| n.jurisdiction == s.jurisdiction && n.year == s.year)
        })
        .chain(new.iter().cloned())
    {
        merged
            .entry(year.jurisdiction.clone())
            .or_default()
            .push(year);
    }
    for (jurisdiction, years) in merged {
        if new.iter().any(|n| n.jurisdiction == jurisdiction) {
            Calendar::from_parsed(years)?;
        }
    }
    Ok(())
}

/// Stores uploaded calendar years after checking that every calendar they touch
/// still builds; the one path of the admin API and the CLI.
pub async fn load_calendar_years(
    repo: &dyn Repository,
    years: &[CalendarYear],
    actor: &Actor,
) -> Result<(), DeadlinesError> {
    // Before anything counts their days (naming an unversioned year does).
    check_uploads(years)?;
    let years: Vec<CalendarYear> = years.iter().cloned().map(CalendarYear::versioned).collect();
    // Seeds the shipped years into an empty table, so a first upload joins them.
    stored_or_shipped_years(repo).await?;
    repo.save_calendar_years(&years, actor, crate::state::now(), &|stored| {
        check_against_stored(stored, &years)
    })
    .await??;
    Ok(())
}

/// The stored calendar years; an empty table first gets the shipped years, so
/// a fresh deployment can compute deadlines at once, and a year imported before
/// the first start joins them instead of standing alone.
async fn stored_or_shipped_years(
    repo: &dyn Repository,
) -> Result<Vec<CalendarYear>, DeadlinesError> {
    let stored: Vec<CalendarYear> = repo
        .calendar_years()
        .await?
        .into_iter()
        .map(|stored| stored.year)
        .collect();
    if !stored.is_empty() {
        return Ok(stored);
    }
    let shipped = SHIPPED_CALENDARS
        .iter()
        .map(|text| serde_json::from_str::<CalendarYear>(text))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| CalendarError::Json {
            index: 0,
            source: e,
        })?;
    let actor = Actor {
        id: None,
        role: "system".into(),
    };
    // Known good; whatever another instance seeded meanwhile is the same data.
    repo.save_calendar_years(&shipped, &actor, crate::state::now(), &|_| Ok(()))
        .await??;
    tracing::info!(
        years = shipped.len(),
        "loaded the shipped working calendars"
    );
    Ok(shipped)
}

pub struct LiveDeadlines {
    book: ArcSwap<DeadlineBook>,
    version: AtomicI64,
    /// One rebuild at a time, as `routing::LiveRouting`'s: a book is never
    /// stored under a version newer than the data it was built from.
    rebuilding: tokio::sync::Mutex<()>,
    settings: WorkflowSettings,
    tz: chrono_tz::Tz,
}

impl LiveDeadlines {
    /// Loads the book; an empty calendar table first gets the shipped years, so
    /// a fresh deployment can compute deadlines at once.
    pub async fn load(
        repo: &dyn Repository,
        settings: &WorkflowSettings,
        tz: chrono_tz::Tz,
    ) -> Result<LiveDeadlines, DeadlinesError> {
        let years = stored_or_shipped_years(repo).await?;
        let version = repo.routing_version().await?;
        let profiles = repo.deadline_profiles().await?;
        let book = DeadlineBook::build(years, profiles, settings, tz)?;
        book.warn_if_calendar_ends_soon(crate::state::now());
        Ok(LiveDeadlines {
            book: ArcSwap::from_pointee(book),
            version: AtomicI64::new(version),
            rebuilding: tokio::sync::Mutex::new(()),
            settings: settings.clone(),
            tz,
        })
    }

    async fn read(
        repo: &dyn Repository,
        settings: &WorkflowSettings,
        tz: chrono_tz::Tz,
    ) -> Result<DeadlineBook, DeadlinesError> {
        let years = repo
            .calendar_years()
            .await?
            .into_iter()
            .map(|stored| stored.year)
            .collect();
        let profiles = repo.deadline_profiles().await?;
        DeadlineBook::build(years, profiles, settings, tz)
    }

    /// The current book; cheap, never blocks.
    pub fn book(&self) -> Arc<DeadlineBook> {
        self.book.load_full()
    }

    pub fn version(&self) -> i64 {
        self.version.load(Ordering::Acquire)
    }

    /// Rebuilds when the stored reference version moved; returns whether it did.
    pub async fn refresh(&self, repo: &dyn Repository) -> Result<bool, DeadlinesError> {
        let _rebuilding = self.rebuilding.lock().await;
        let version = repo.routing_version().await?;
        if version == self.version() {
            return Ok(false);
        }
        let book = Self::read(repo, &self.settings, self.tz).await?;
        book.warn_if_calendar_ends_soon(crate::state::now());
        self.book.store(Arc::new(book));
        self.version.store(version, Ordering::Release);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::deadline::Limit;

    fn shipped() -> Vec<CalendarYear> {
        SHIPPED_CALENDARS
            .iter()
            .map(|t| serde_json::from_str(t).expect("shipped calendar parses"))
            .collect()
    }

    #[test]
    fn the_calendar_warning_starts_45_days_before_its_last_day() {
        let last = NaiveDate::from_ymd_opt(2026, 12, 31).expect("date");
        let day = |m, d| NaiveDate::from_ymd_opt(2026, m, d).expect("date");
        assert_eq!(days_until_calendar_ends(last, day(11, 15)), None);
        assert_eq!(days_until_calendar_ends(last, day(11, 16)), Some(45));
        assert_eq!(days_until_calendar_ends(last, day(12, 31)), Some(0));
        assert_eq!(
            days_until_calendar_ends(last, NaiveDate::from_ymd_opt(2027, 1, 2).expect("date")),
            Some(-2)
        );
        let book = DeadlineBook::build(
            shipped(),
            Vec::new(),
            &WorkflowSettings::default(),
            chrono_tz::Asia::Shanghai,
        )
        .expect("book");
        // Midnight after 2026-12-31 in Shanghai.
        assert_eq!(
            book.calendar_end_time(),
            "2026-12-31T16:00:00Z".parse::<DateTime<Utc>>().ok()
        );
    }

    #[test]
    fn uploads_may_hold_one_year_or_several() {
        let one = parse_calendar_file(SHIPPED_CALENDARS[1], false).expect("one year");
        assert_eq!(one.len(), 1);
        let both = format!("[{}, {}]", SHIPPED_CALENDARS[0], SHIPPED_CALENDARS[1]);
        assert_eq!(parse_calendar_file(&both, false).expect("two").len(), 2);
        let err = parse_calendar_file(r#"{"jurisdiction": "CN"}"#, false).expect_err("no year");
        assert!(err.to_string().contains("year"), "{err}");
    }

    #[test]
    fn a_fragment_cannot_replace_a_stored_year() {
        let stored = shipped();
        // A 2027 notice whose 元旦 break starts on 2026-12-31: that row stays
        // with 2027 and the stored 2026 is not replaced.
        let upload = parse_calendar_file(
            "jurisdiction,date,kind\nCN,2026-12-31,holiday\nCN,2027-01-01,holiday\n",
            true,
        )
        .expect("CSV parses");
        assert_eq!(upload.iter().map(|y| y.year).collect::<Vec<_>>(), [2027]);
        check_calendar_update(stored.clone(), &upload).expect("2026 is not touched");
        // A file of a few days of 2026 would replace it with a fragment.
        let fragment = parse_calendar_file("jurisdiction,date,kind\nCN,2026-10-01,holiday\n", true)
            .expect("CSV parses");
        let err = check_calendar_update(stored.clone(), &fragment).expect_err("2026 would shrink");
        assert!(
            matches!(
                err,
                CalendarError::WouldShrink {
                    year: 2026,
                    new_days: 1,
                    ..
                }
            ),
            "{err}"
        );
        // Correcting a stored year (one day fewer) is still an ordinary
        // replacement, under a version of its own.
        let mut corrected = stored[1].clone();
        corrected.workdays.pop();
        corrected.version = Some("2026-v2".into());
        check_calendar_update(stored.clone(), &[corrected.clone()])
            .expect("a correction is accepted");
        corrected.version = stored[1].version.clone();
        let err =
            check_calendar_update(stored, &[corrected]).expect_err("same version, other days");
        assert!(
            matches!(err, CalendarError::VersionReused { year: 2026, .. }),
            "{err}"
        );
    }

    #[test]
    fn an_update_that_leaves_a_hole_is_refused() {
        let stored = shipped();
        let mut y2028 = stored[1].clone();
        y2028.year = 2028;
        y2028.holidays.clear();
        y2028.workdays.clear();
        y2028.version = None;
        let err =
            check_calendar_update(stored.clone(), &[y2028.clone()]).expect_err("2027 missing");
        assert!(
            matches!(err, CalendarError::MissingYear { missing: 2027 }),
            "{err}"
        );
        let mut y2027 = y2028.clone();
        y2027.year = 2027;
        check_calendar_update(stored.clone(), &[y2027, y2028]).expect("contiguous");
        // Replacing a stored year is fine.
        check_calendar_update(stored.clone(), &[stored[1].clone()]).expect("replace");
        assert!(check_calendar_update(stored, &[]).is_err());
    }

    #[test]
    fn an_upload_needs_a_coded_jurisdiction_but_stored_years_still_build() {
        let stored = shipped();
        for jurisdiction in ["", "C N", "江苏"] {
            let mut year = stored[1].clone();
            year.jurisdiction = jurisdiction.into();
            let err = check_calendar_update(stored.clone(), std::slice::from_ref(&year))
                .expect_err(jurisdiction);
            assert!(
                matches!(err, CalendarError::InvalidJurisdiction { .. }),
                "{jurisdiction:?}: {err}"
            );
            // A year stored before the rule keeps loading.
            let mut old = stored.clone();
            for y in &mut old {
                y.jurisdiction = jurisdiction.into();
            }
            Calendar::from_parsed(old).expect(jurisdiction);
        }
    }

    #[test]
    fn an_upload_lists_its_own_year_and_the_last_week_of_the_year_before_only() {
        use chrono::Datelike;
        let stored = shipped();
        // 2025's file copied under 2026's number would wipe 2026's holidays.
        let mut copied = stored[0].clone();
        copied.year = 2026;
        copied.version = Some("2026-v2".into());
        let err = check_calendar_update(stored.clone(), &[copied]).expect_err("another year's");
        assert!(
            matches!(err, CalendarError::DateOutsideNotice { year: 2026, date }
                if date.year() == 2025),
            "{err}"
        );
        let upload = |json: &str| {
            parse_calendar_file(
                &format!(r#"{{"jurisdiction":"CN","year":2027{json}}}"#),
                false,
            )
            .expect("JSON parses")
        };
        // An 元旦 break from 30 December is the notice's own.
        check_calendar_update(
            stored.clone(),
            &upload(r#","holidays":[["2026-12-30","2027-01-01"]],"workdays":["2026-12-26"]"#),
        )
        .expect("a notice's reach into the year before");
        for outside in [
            r#","holidays":["2026-12-24"]"#,
            r#","workdays":["2028-01-01"]"#,
            r#","holidays":[["2027-12-31","2028-01-02"]]"#,
        ] {
            let err = check_calendar_update(stored.clone(), &upload(outside)).expect_err(outside);
            assert!(
                matches!(err, CalendarError::DateOutsideNotice { year: 2027, .. }),
                "{outside}: {err}"
            );
        }
        // A range far out is refused by its bounds; walking it day by day
        // (2.9 million days) would hold the load's transaction for seconds.
        let err = check_calendar_update(
            stored,
            &upload(r#","holidays":[["2027-01-01","9999-12-31"]]"#),
        )
        .expect_err("far out");
        assert!(
            matches!(err, CalendarError::DateOutsideYear { year: 2027, .. }),
            "{err}"
        );
    }

    #[test]
    fn an_uploaded_version_is_printable_text_of_at_most_100_characters() {
        let stored = shipped();
        let mut year = stored[1].clone();
        for (version, problem) in [
            ("2026-v2\u{0}", "control character"),
            ("2026\tv2", "control character"),
            ("2026-v2\u{202E}", "invisible formatting"),
            ("2026\u{200B}v2", "invisible formatting"),
            ("2026\u{2028}v2", "invisible formatting"),
            ("", "is empty"),
            ("  ", "is empty"),
        ]
        .map(|(v, p)| (v.to_owned(), p))
        .into_iter()
        .chain([("国".repeat(101), "longer than 100 characters")])
        {
            year.version = Some(version.clone());
            let err = check_calendar_update(stored.clone(), std::slice::from_ref(&year))
                .expect_err(&version);
            assert!(
                matches!(&err, CalendarError::InvalidVersion { problem: p, .. } if p.contains(problem)),
                "{version:?}: {err}"
            );
        }
        year.version = Some(format!("国办发明电〔2025〕7号 {}", "v".repeat(86)));
        check_calendar_update(stored, &[year]).expect("100 printable characters");
    }

    #[test]
    fn an_upload_brings_years_of_this_century_only() {
        let stored = shipped();
        for (year, loadable) in [
            (0, false),
            (1999, false),
            (2000, true),
            (2099, true),
            (2100, false),
            (20226, false),
        ] {
            let mut upload = stored[1].clone();
            upload.jurisdiction = "TEST".into();
            upload.year = year;
            upload.holidays.clear();
            upload.workdays.clear();
            let result = check_calendar_update(vec![], std::slice::from_ref(&upload));
            match result {
                Ok(()) => assert!(loadable, "{year} was loaded"),
                Err(CalendarError::YearNotUploadable { year: refused }) => {
                    assert!(!loadable, "{year} was refused");
                    assert_eq!(refused, year);
                }
                Err(other) => panic!("{year}: {other}"),
            }
        }
        // A year stored before the rule keeps loading.
        let mut old = stored[1].clone();
        old.year = 1990;
        old.holidays.clear();
        old.workdays.clear();
        Calendar::from_parsed(vec![old]).expect("a stored 1990");
    }

    #[test]
    fn the_book_has_a_calculator_per_jurisdiction() {
        let mut years = shipped();
        let mut other = years[1].clone();
        other.jurisdiction = "CN-HK".into();
        years.push(other);
        let settings = WorkflowSettings::default();
        let book = DeadlineBook::build(years, vec![], &settings, chrono_tz::Asia::Shanghai)
            .expect("builds");
        assert_eq!(book.jurisdictions(), vec!["CN", "CN-HK"]);
        let cn = book.calculator(None).expect("the city's own");
        assert_eq!(cn.calendar().years(), &[2025, 2026]);
        assert_eq!(
            book.calculator(Some("CN-HK"))
                .expect("other")
                .calendar()
                .years(),
            &[2026]
        );
        assert!(book.calculator(Some("XX")).is_none());
    }

    #[test]
    fn the_city_warning_fraction_reaches_the_calculator() {
        let settings = WorkflowSettings {
            warning_fraction: 0.5,
            ..WorkflowSettings::default()
        };
        let book = DeadlineBook::build(shipped(), vec![], &settings, chrono_tz::Asia::Shanghai)
            .expect("builds");
        let calc = book.calculator(None).expect("calculator");
        assert_eq!(calc.warning_fraction(), 0.5);
        let start = "2026-03-02T02:00:00Z".parse().expect("time");
        let deadline = calc
            .compute(start, Limit::natural_hours(10))
            .expect("computes");
        assert_eq!(deadline.warning_at, start + chrono::Duration::hours(5));
    }
}
