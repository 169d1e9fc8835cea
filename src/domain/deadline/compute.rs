//! Deadline arithmetic over a working calendar and office hours.
//!
//! Work units are measured on a "work clock": the number of office
//! nanoseconds between the start of the loaded calendar and an instant. A
//! prefix sum over days makes reading the clock O(1) and inverting it
//! O(log days), so deadlines, warnings and pauses are all "add to the clock,
//! then invert". Natural hours use plain Unix time as the clock.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::calendar::Calendar;
use super::office_hours::{OfficeHours, time_ns};
use super::profile::{Limit, Unit};

/// Mainland China has a single time zone; cities override only if needed.
pub const DEFAULT_TZ: Tz = chrono_tz::Asia::Shanghai;
/// 预警 (yellow) at 80 % of the clock unless configured otherwise.
pub const DEFAULT_WARNING_FRACTION: f64 = 0.8;

/// A stopped-clock interval `[from, to)` (挂起/暂停), UTC.
pub type Pause = (DateTime<Utc>, DateTime<Utc>);

const NS_PER_HOUR: i64 = 3_600 * 1_000_000_000;
/// Clock value for instants after the loaded range: larger than any valid
/// target yet far enough from `i64::MAX` that adding to it cannot overflow.
const AFTER_RANGE: i64 = i64::MAX / 4;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DeadlineError {
    #[error("deadline falls beyond the loaded working calendar (last loaded day {last_loaded})")]
    BeyondCalendar { last_loaded: NaiveDate },
    #[error("start lies before the loaded working calendar (first loaded day {first_loaded})")]
    BeforeCalendar { first_loaded: NaiveDate },
    #[error("local time {local} does not exist in the configured time zone")]
    NonexistentLocalTime { local: NaiveDateTime },
    #[error("warning fraction {fraction} is not within 0..=1")]
    InvalidFraction { fraction: f64 },
    #[error("pause ends ({end}) before it starts ({start})")]
    InvalidPause {
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    },
    #[error("limit too large to represent")]
    Overflow,
}

/// A computed deadline plus everything needed to recompute and explain it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deadline {
    pub due: DateTime<Utc>,
    /// 预警 time at `explanation.warning_fraction` of the counted time.
    pub warning_at: DateTime<Utc>,
    pub explanation: Explanation,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    pub start: DateTime<Utc>,
    pub limit: Limit,
    pub time_zone: String,
    pub calendar_jurisdiction: String,
    pub calendar_years: Vec<i32>,
    pub calendar_version: String,
    pub office_hours: OfficeHours,
    pub warning_fraction: f64,
    /// Pauses as applied: clipped to the start, sorted and merged.
    pub pauses: Vec<Pause>,
    /// Counted time (office time for work units, elapsed time otherwise)
    /// that the pauses added before the due time, in seconds.
    pub paused_seconds: i64,
    /// Work-day limits: the local day of receipt (not counted, 民法典 第201条).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receipt_day: Option<NaiveDate>,
    /// Work-day limits: the N-th working day, before pauses extend it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_counted_day: Option<NaiveDate>,
}

/// Computes deadlines for one jurisdiction/city. Immutable once built; cheap
/// to share behind an `Arc`.
#[derive(Debug, Clone)]
pub struct DeadlineCalculator {
    calendar: Calendar,
    office_hours: OfficeHours,
    tz: Tz,
    warning_fraction: f64,
    /// `work_prefix[i]` = office nanoseconds on days `0..i`; length days+1.
    work_prefix: Vec<i64>,
    /// Close of business per working day, so an un-paused work-day deadline
    /// is two array reads.
    close_of_business: Vec<Option<DateTime<Utc>>>,
}

#[derive(Clone, Copy)]
enum Clock {
    Work,
    Natural,
}

/// What a limit means on its clock: counting starts at `origin`, and `span`
/// of clock time must elapse.
struct Plan {
    clock: Clock,
    origin: i64,
    span: i64,
    receipt_day: Option<NaiveDate>,
    last_counted_day: Option<NaiveDate>,
}

impl DeadlineCalculator {
    /// Precomputes per-day office time and close-of-business instants.
    /// Fails only if an office-period end does not exist locally (a DST gap).
    pub fn new(
        calendar: Calendar,
        office_hours: OfficeHours,
        tz: Tz,
    ) -> Result<Self, DeadlineError> {
        let days = calendar.day_count();
        let mut work_prefix = Vec::with_capacity(days + 1);
        let mut close_of_business = Vec::with_capacity(days);
        let mut total: i64 = 0;
        let mut date = calendar.first_loaded();
        for offset in 0..days {
            work_prefix.push(total);
            if calendar.working_at(offset) {
                let periods = office_hours.periods_on(date);
                total += periods.iter().map(|p| p.len_ns()).sum::<i64>();
                let close = match periods.last() {
                    Some(p) => Some(to_utc(tz, date.and_time(p.end))?),
                    None => None,
                };
                close_of_business.push(close);
            } else {
                close_of_business.push(None);
            }
            date = date.succ_opt().unwrap_or(date);
        }
        work_prefix.push(total);
        Ok(Self {
            calendar,
            office_hours,
            tz,
            warning_fraction: DEFAULT_WARNING_FRACTION,
            work_prefix,
            close_of_business,
        })
    }

    /// Default warning fraction used by [`DeadlineCalculator::compute`].
    pub fn with_warning_fraction(mut self, fraction: f64) -> Result<Self, DeadlineError> {
        check_fraction(fraction)?;
        self.warning_fraction = fraction;
        Ok(self)
    }

    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// The zone working days are counted in.
    pub fn tz(&self) -> Tz {
        self.tz
    }

    pub fn office_hours(&self) -> &OfficeHours {
        &self.office_hours
    }

    pub fn time_zone(&self) -> Tz {
        self.tz
    }

    pub fn warning_fraction(&self) -> f64 {
        self.warning_fraction
    }

    /// Due time of `limit` counted from `start`.
    pub fn due(&self, start: DateTime<Utc>, limit: Limit) -> Result<DateTime<Utc>, DeadlineError> {
        if limit.unit == Unit::WorkDays && limit.amount > 0 {
            // Hot path: no pauses means close of business of the N-th day.
            let plan = self.plan(start, limit)?;
            if let Some(day) = plan.last_counted_day.and_then(|d| self.calendar.offset(d))
                && let Some(Some(close)) = self.close_of_business.get(day)
            {
                return Ok(*close);
            }
        }
        self.due_with_pauses(start, limit, &[])
    }

    /// Due time when the clock was stopped during `pauses` (挂起/暂停).
    pub fn due_with_pauses(
        &self,
        start: DateTime<Utc>,
        limit: Limit,
        pauses: &[Pause],
    ) -> Result<DateTime<Utc>, DeadlineError> {
        let plan = self.plan(start, limit)?;
        let pauses = normalise_pauses(start, pauses)?;
        let target = plan
            .origin
            .checked_add(plan.span)
            .ok_or(DeadlineError::Overflow)?;
        Ok(self.solve(&plan, start, target, &pauses)?.0)
    }

    /// The instant at which `fraction` of the limit's counted time has elapsed.
    pub fn warning_at(
        &self,
        start: DateTime<Utc>,
        limit: Limit,
        fraction: f64,
    ) -> Result<DateTime<Utc>, DeadlineError> {
        self.warning_with_pauses(start, limit, fraction, &[])
    }

    /// [`DeadlineCalculator::warning_at`] with the clock stopped during `pauses`.
    pub fn warning_with_pauses(
        &self,
        start: DateTime<Utc>,
        limit: Limit,
        fraction: f64,
        pauses: &[Pause],
    ) -> Result<DateTime<Utc>, DeadlineError> {
        check_fraction(fraction)?;
        let plan = self.plan(start, limit)?;
        let pauses = normalise_pauses(start, pauses)?;
        Ok(self
            .solve(&plan, start, warning_target(&plan, fraction)?, &pauses)?
            .0)
    }

    /// Due and warning time with the inputs that produced them.
    pub fn compute(&self, start: DateTime<Utc>, limit: Limit) -> Result<Deadline, DeadlineError> {
        self.compute_with_pauses(start, limit, &[])
    }

    /// Due and warning time under pauses, with the inputs that produced them.
    pub fn compute_with_pauses(
        &self,
        start: DateTime<Utc>,
        limit: Limit,
        pauses: &[Pause],
    ) -> Result<Deadline, DeadlineError> {
        let plan = self.plan(start, limit)?;
        let pauses = normalise_pauses(start, pauses)?;
        let target = plan
            .origin
            .checked_add(plan.span)
            .ok_or(DeadlineError::Overflow)?;
        let (due, paused) = self.solve(&plan, start, target, &pauses)?;
        let warning_target = warning_target(&plan, self.warning_fraction)?;
        let (warning_at, _) = self.solve(&plan, start, warning_target, &pauses)?;
        Ok(Deadline {
            due,
            warning_at,
            explanation: Explanation {
                start,
                limit,
                time_zone: self.tz.name().to_owned(),
                calendar_jurisdiction: self.calendar.jurisdiction().to_owned(),
                calendar_years: self.calendar.years().to_vec(),
                calendar_version: self.calendar.version().to_owned(),
                office_hours: self.office_hours.clone(),
                warning_fraction: self.warning_fraction,
                pauses,
                paused_seconds: paused / 1_000_000_000,
                receipt_day: plan.receipt_day,
                last_counted_day: plan.last_counted_day,
            },
        })
    }

    /// `Ok` when `t` falls within the loaded calendar, so a due time fixed
    /// there (an extension) can later be moved past pauses and explained.
    pub fn check_covered(&self, t: DateTime<Utc>) -> Result<(), DeadlineError> {
        self.work_value(t).map(|_| ())
    }

    /// `at` moved on by the counted time (office time for work units, elapsed
    /// time for natural hours) inside `pause`: how a due time fixed by an
    /// extension follows a suspension, as a computed one does. The pause is
    /// measured as the clock started at `start` under `limit` counts, so the
    /// receipt day of a work-day limit, never counted, adds nothing. A pause
    /// that begins once the clock has reached `at` moves nothing: time had
    /// already run out (the rule `solve` applies to computed due times).
    pub fn shift_past_pause(
        &self,
        at: DateTime<Utc>,
        start: DateTime<Utc>,
        limit: Limit,
        pause: Pause,
    ) -> Result<DateTime<Utc>, DeadlineError> {
        let (from, to) = pause;
        if to < from {
            return Err(DeadlineError::InvalidPause {
                start: from,
                end: to,
            });
        }
        let plan = self.plan(start, limit)?;
        let counted = |t| Ok::<_, DeadlineError>(self.value(plan.clock, t)?.max(plan.origin));
        let (at_value, from_value) = (self.value(plan.clock, at)?, counted(from)?);
        let paused = counted(to)? - from_value;
        if paused == 0 || from_value >= at_value {
            return Ok(at);
        }
        let target = at_value
            .checked_add(paused)
            .ok_or(DeadlineError::Overflow)?;
        Ok(self.instant(plan.clock, target)?.max(at))
    }

    /// The warning of a clock started at `start` under `limit` whose due time
    /// an extension fixed at `due`: `fraction` of the counted time from the
    /// limit's origin to `due`, less the time `pauses` held before `due` —
    /// placed the way a computed warning is, so in office time for work units.
    pub fn warning_before(
        &self,
        start: DateTime<Utc>,
        limit: Limit,
        due: DateTime<Utc>,
        pauses: &[Pause],
        fraction: f64,
    ) -> Result<DateTime<Utc>, DeadlineError> {
        check_fraction(fraction)?;
        let plan = self.plan(start, limit)?;
        let end = self.value(plan.clock, due)?.max(plan.origin);
        let pauses = normalise_pauses(start, pauses)?;
        let paused: i64 = pauses
            .iter()
            .map(|&(ps, pe)| {
                let a = self
                    .value_saturating(plan.clock, ps)
                    .clamp(plan.origin, end);
                let b = self.value_saturating(plan.clock, pe).clamp(a, end);
                b - a
            })
            .sum();
        let running = Plan {
            span: end - plan.origin - paused,
            ..plan
        };
        let target = warning_target(&running, fraction)?;
        Ok(self.solve(&running, start, target, &pauses)?.0.min(due))
    }

    fn plan(&self, start: DateTime<Utc>, limit: Limit) -> Result<Plan, DeadlineError> {
        let hours = || {
            i64::from(limit.amount)
                .checked_mul(NS_PER_HOUR)
                .ok_or(DeadlineError::Overflow)
        };
        match limit.unit {
            Unit::NaturalHours => Ok(Plan {
                clock: Clock::Natural,
                origin: natural_value(start)?,
                span: hours()?,
                receipt_day: None,
                last_counted_day: None,
            }),
            Unit::WorkHours => Ok(Plan {
                clock: Clock::Work,
                origin: self.work_value(start)?,
                span: hours()?,
                receipt_day: None,
                last_counted_day: None,
            }),
            Unit::WorkDays => {
                let local = start.with_timezone(&self.tz).date_naive();
                let receipt = self.offset_checked(local)?;
                // The receipt day is never counted, so the clock starts at
                // its end whatever the hour of receipt.
                let origin = self.prefix(receipt + 1)?;
                if limit.amount == 0 {
                    // Zero days: due at once; nothing to count.
                    return Ok(Plan {
                        clock: Clock::Work,
                        origin: self.work_value(start)?,
                        span: 0,
                        receipt_day: Some(local),
                        last_counted_day: None,
                    });
                }
                let nth = self
                    .calendar
                    .nth_working_offset_after(receipt, limit.amount)
                    .ok_or(self.beyond())?;
                Ok(Plan {
                    clock: Clock::Work,
                    origin,
                    span: self.prefix(nth + 1)? - origin,
                    receipt_day: Some(local),
                    last_counted_day: self.calendar.date_at(nth),
                })
            }
        }
    }

    /// Moves `target` past the counted time inside each pause that starts
    /// before the clock reaches it, then inverts the clock. Returns the
    /// instant and the counted time added by pauses.
    fn solve(
        &self,
        plan: &Plan,
        start: DateTime<Utc>,
        mut target: i64,
        pauses: &[Pause],
    ) -> Result<(DateTime<Utc>, i64), DeadlineError> {
        let mut added: i64 = 0;
        for &(ps, pe) in pauses {
            let a = self.value_saturating(plan.clock, ps).max(plan.origin);
            // A pause that begins exactly when the clock runs out is too late.
            if a >= target {
                break;
            }
            let b = self.value_saturating(plan.clock, pe);
            if b > a {
                target = target.saturating_add(b - a);
                added = added.saturating_add(b - a);
            }
        }
        let at = self.instant(plan.clock, target)?;
        // Inverting picks the earliest instant with that clock value, which
        // can precede a start taken outside office hours; never go back.
        Ok((at.max(start), added))
    }

    /// `t` read on `clock`.
    fn value(&self, clock: Clock, t: DateTime<Utc>) -> Result<i64, DeadlineError> {
        match clock {
            Clock::Natural => natural_value(t),
            Clock::Work => self.work_value(t),
        }
    }

    fn value_saturating(&self, clock: Clock, t: DateTime<Utc>) -> i64 {
        self.value(clock, t).unwrap_or(AFTER_RANGE)
    }

    /// Earliest instant at which `clock` reads `target`.
    fn instant(&self, clock: Clock, target: i64) -> Result<DateTime<Utc>, DeadlineError> {
        match clock {
            Clock::Natural => Ok(DateTime::from_timestamp_nanos(target)),
            Clock::Work => self.work_instant(target),
        }
    }

    /// Office nanoseconds from the calendar's first day to `t`.
    fn work_value(&self, t: DateTime<Utc>) -> Result<i64, DeadlineError> {
        let local = t.with_timezone(&self.tz).naive_local();
        let day = self.offset_checked(local.date())?;
        let base = self.prefix(day)?;
        if !self.calendar.working_at(day) {
            return Ok(base);
        }
        let now = time_ns(local.time());
        let partial: i64 = self
            .office_hours
            .periods_on(local.date())
            .iter()
            .map(|p| (now - p.start_ns()).clamp(0, p.len_ns()))
            .sum();
        Ok(base + partial)
    }

    /// Earliest instant whose work clock reads `target`.
    fn work_instant(&self, target: i64) -> Result<DateTime<Utc>, DeadlineError> {
        let total = *self.work_prefix.last().ok_or(self.beyond())?;
        if target > total {
            return Err(self.beyond());
        }
        // Day i with prefix[i] < target <= prefix[i+1]: the day on which the
        // clock reaches target, so a period end is preferred over the next
        // period's start (an exact 12:00 end stays 12:00).
        let day = self
            .work_prefix
            .partition_point(|&p| p < target)
            .saturating_sub(1);
        let date = self.calendar.date_at(day).ok_or(self.beyond())?;
        let mut rest = (target - self.prefix(day)?).max(0);
        if self.calendar.working_at(day) {
            for p in self.office_hours.periods_on(date) {
                if rest <= p.len_ns() {
                    let ns = p.start_ns() + rest;
                    return to_utc(self.tz, date.and_time(time_from_ns(ns)));
                }
                rest -= p.len_ns();
            }
        }
        // Only reachable for target == 0 on a rest day: any instant up to
        // the first office minute reads 0, and the caller clamps to start.
        to_utc(self.tz, date.and_time(NaiveTime::MIN))
    }

    fn prefix(&self, day: usize) -> Result<i64, DeadlineError> {
        self.work_prefix.get(day).copied().ok_or(self.beyond())
    }

    fn offset_checked(&self, date: NaiveDate) -> Result<usize, DeadlineError> {
        if date < self.calendar.first_loaded() {
            return Err(DeadlineError::BeforeCalendar {
                first_loaded: self.calendar.first_loaded(),
            });
        }
        self.calendar.offset(date).ok_or(self.beyond())
    }

    fn beyond(&self) -> DeadlineError {
        DeadlineError::BeyondCalendar {
            last_loaded: self.calendar.last_loaded(),
        }
    }
}

fn warning_target(plan: &Plan, fraction: f64) -> Result<i64, DeadlineError> {
    check_fraction(fraction)?;
    // span < 2^63 and fraction in 0..=1, so the product fits back in i64.
    #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
    let part = (plan.span as f64 * fraction).round() as i64;
    plan.origin
        .checked_add(part.min(plan.span))
        .ok_or(DeadlineError::Overflow)
}

fn check_fraction(fraction: f64) -> Result<(), DeadlineError> {
    if (0.0..=1.0).contains(&fraction) {
        Ok(())
    } else {
        Err(DeadlineError::InvalidFraction { fraction })
    }
}

fn natural_value(t: DateTime<Utc>) -> Result<i64, DeadlineError> {
    t.timestamp_nanos_opt().ok_or(DeadlineError::Overflow)
}

/// Validates, clips to `start` (time before receipt never counted anyway),
/// sorts and merges so overlapping pauses are not subtracted twice.
fn normalise_pauses(start: DateTime<Utc>, pauses: &[Pause]) -> Result<Vec<Pause>, DeadlineError> {
    let mut out: Vec<Pause> = Vec::with_capacity(pauses.len());
    for &(s, e) in pauses {
        if e < s {
            return Err(DeadlineError::InvalidPause { start: s, end: e });
        }
        if e > start {
            out.push((s.max(start), e));
        }
    }
    out.sort_unstable();
    let mut merged: Vec<Pause> = Vec::with_capacity(out.len());
    for (s, e) in out {
        match merged.last_mut() {
            Some(last) if s <= last.1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    Ok(merged)
}

fn time_from_ns(ns: i64) -> NaiveTime {
    let secs = u32::try_from(ns.div_euclid(1_000_000_000)).unwrap_or(0);
    let nanos = u32::try_from(ns.rem_euclid(1_000_000_000)).unwrap_or(0);
    NaiveTime::from_num_seconds_from_midnight_opt(secs, nanos).unwrap_or(NaiveTime::MIN)
}

/// The instant `day` begins in `tz`: its midnight, or where the clocks spring
/// forward at midnight (Havana, Santiago), the end of that gap, so that such a
/// day still has a start. `None` only for a day chrono cannot hold.
pub fn local_midnight(tz: Tz, day: NaiveDate) -> Option<DateTime<Utc>> {
    let midnight = day.and_time(NaiveTime::MIN);
    // Gaps are whole minutes and last hours at most.
    (0..=24 * 60).find_map(|minutes| {
        to_utc(
            tz,
            midnight.checked_add_signed(chrono::Duration::minutes(minutes))?,
        )
        .ok()
    })
}

/// Ambiguous local times (DST fold) resolve to the earlier instant, the
/// stricter deadline; gaps cannot be resolved honestly and are reported.
fn to_utc(tz: Tz, local: NaiveDateTime) -> Result<DateTime<Utc>, DeadlineError> {
    tz.from_local_datetime(&local)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or(DeadlineError::NonexistentLocalTime { local })
}

#[cfg(test)]
mod tests;
