//! Phase clocks of a case (签收, 处置, 核查…): when each started, when it is due,
//! when to warn, and the pauses that stretched it. Pure: the deadline arithmetic
//! comes from [`DeadlineCalculator`], "now" from the caller.
//!
//! A clock owes at most two sweeper events, `warning` (预警) and `overdue` (超期,
//! which also escalates); [`Clock::next_check_at`] says when the next one falls due
//! and [`Clock::owed_events`] which are due at an instant. Recording an event moves
//! `next_check_at` on, so a clock never owes the same event twice.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::domain::case::Phase;
use crate::domain::deadline::{DeadlineCalculator, DeadlineError, Explanation, Limit, Pause};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClockStatus {
    Running,
    /// Suspended (挂账): counted time stands still until resumed.
    Paused,
    Stopped,
}

impl ClockStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ClockStatus::Running => "running",
            ClockStatus::Paused => "paused",
            ClockStatus::Stopped => "stopped",
        }
    }

    pub fn parse(s: &str) -> Option<ClockStatus> {
        [
            ClockStatus::Running,
            ClockStatus::Paused,
            ClockStatus::Stopped,
        ]
        .into_iter()
        .find(|c| c.as_str() == s)
    }
}

/// What the sweeper emits for a clock, each at most once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClockEvent {
    /// 预警: the configured fraction of the limit has elapsed.
    Warning,
    /// 超期: the limit has run out; escalated to the unit's parent and the centre.
    Overdue,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Clock {
    pub id: Uuid,
    pub phase: Phase,
    /// `None` for the case's own clocks; the co-unit for a co-unit's clocks.
    pub unit: Option<String>,
    pub limit: Limit,
    pub started_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub warning_at: DateTime<Utc>,
    pub status: ClockStatus,
    pub paused_at: Option<DateTime<Utc>>,
    /// Completed pauses, oldest first.
    pub pauses: Vec<Pause>,
    pub stopped_at: Option<DateTime<Utc>>,
    /// The inputs of the last computation, so it can be explained and redone.
    pub explanation: Explanation,
    /// Set when an approved extension (延期) replaced the computed due time.
    pub extended_to: Option<DateTime<Utc>>,
    pub warned_at: Option<DateTime<Utc>>,
    pub overdue_at: Option<DateTime<Utc>>,
}

impl Clock {
    /// A running clock of `phase` from `now` on `limit`; `warning_fraction`
    /// overrides the city's when the profile sets one.
    pub fn start(
        phase: Phase,
        unit: Option<String>,
        limit: Limit,
        now: DateTime<Utc>,
        calculator: &DeadlineCalculator,
        warning_fraction: Option<f64>,
    ) -> Result<Clock, DeadlineError> {
        let (due_at, warning_at, explanation) =
            compute(calculator, now, limit, &[], warning_fraction)?;
        Ok(Clock {
            id: Uuid::now_v7(),
            phase,
            unit,
            limit,
            started_at: now,
            due_at,
            warning_at,
            status: ClockStatus::Running,
            paused_at: None,
            pauses: Vec::new(),
            stopped_at: None,
            explanation,
            extended_to: None,
            warned_at: None,
            overdue_at: None,
        })
    }

    pub fn calendar_version(&self) -> &str {
        &self.explanation.calendar_version
    }

    pub fn is_active(&self) -> bool {
        self.status != ClockStatus::Stopped
    }

    /// Stops counting for good (the phase ended, or the case was cancelled).
    pub fn stop(&mut self, now: DateTime<Utc>) {
        if let Some(paused_at) = self.paused_at.take() {
            self.pauses.push((paused_at, now.max(paused_at)));
        }
        self.status = ClockStatus::Stopped;
        self.stopped_at = Some(now);
    }

    pub fn pause(&mut self, now: DateTime<Utc>) {
        if self.status == ClockStatus::Running {
            self.status = ClockStatus::Paused;
            self.paused_at = Some(now);
        }
    }

    /// Resumes a paused clock; the working time spent paused is added to the
    /// deadline, whether computed or fixed by an extension.
    pub fn resume(
        &mut self,
        now: DateTime<Utc>,
        calculator: &DeadlineCalculator,
    ) -> Result<(), DeadlineError> {
        let Some(paused_at) = self.paused_at else {
            return Ok(());
        };
        let pause = (paused_at, now.max(paused_at));
        let mut pauses = self.pauses.clone();
        pauses.push(pause);
        let (due_at, warning_at, explanation) = compute(
            calculator,
            self.started_at,
            self.limit,
            &pauses,
            Some(self.explanation.warning_fraction),
        )?;
        if let Some(extended) = self.extended_to {
            let moved =
                calculator.shift_past_pause(extended, self.started_at, self.limit, pause)?;
            // The warning was placed against the extended date; it moves with it.
            self.warning_at = self.extended_warning(calculator, moved, &pauses)?;
            self.extended_to = Some(moved);
            self.due_at = moved;
        } else {
            self.due_at = due_at;
            self.warning_at = warning_at.min(due_at);
        }
        self.explanation = explanation;
        self.pauses = pauses;
        self.paused_at = None;
        self.status = ClockStatus::Running;
        Ok(())
    }

    /// An approved extension: the due time moves; a warning not yet given moves
    /// with it so the unit is warned before the new date rather than at once,
    /// at the same fraction of the now longer clock, counted as the clock counts.
    pub fn extend_to(
        &mut self,
        new_due: DateTime<Utc>,
        calculator: &DeadlineCalculator,
    ) -> Result<(), DeadlineError> {
        self.warning_at = self.extended_warning(calculator, new_due, &self.pauses)?;
        self.due_at = new_due;
        self.extended_to = Some(new_due);
        Ok(())
    }

    /// Where the warning stands once an extension has fixed the due time at
    /// `due`: a warning already given stays; one not yet given falls at the
    /// clock's fraction of the counted time to `due`, `pauses` not counted.
    fn extended_warning(
        &self,
        calculator: &DeadlineCalculator,
        due: DateTime<Utc>,
        pauses: &[Pause],
    ) -> Result<DateTime<Utc>, DeadlineError> {
        if self.warned_at.is_some() {
            return Ok(self.warning_at);
        }
        calculator.warning_before(
            self.started_at,
            self.limit,
            due,
            pauses,
            self.explanation.warning_fraction,
        )
    }

    /// When the sweeper must next look at this clock, or `None` when it owes
    /// nothing (stopped, paused, or both events given).
    pub fn next_check_at(&self) -> Option<DateTime<Utc>> {
        if self.status != ClockStatus::Running {
            return None;
        }
        match (self.warned_at, self.overdue_at) {
            (None, None) => Some(self.warning_at.min(self.due_at)),
            (Some(_), None) => Some(self.due_at),
            (_, Some(_)) => None,
        }
    }

    /// When the sweeper last marked this clock: the overdue mark, which is never
    /// earlier than the warning, else the warning.
    pub fn last_marked_at(&self) -> Option<DateTime<Utc>> {
        self.overdue_at.or(self.warned_at)
    }

    /// The events due at `now` that have not been given yet (see [`owed_events`]).
    pub fn owed_events(&self, now: DateTime<Utc>) -> Vec<ClockEvent> {
        if self.status != ClockStatus::Running {
            return Vec::new();
        }
        owed_events(
            self.warning_at,
            self.due_at,
            self.warned_at,
            self.overdue_at,
            now,
        )
    }

    pub fn record(&mut self, event: ClockEvent, now: DateTime<Utc>) {
        match event {
            ClockEvent::Warning => self.warned_at = Some(now),
            ClockEvent::Overdue => {
                self.warned_at.get_or_insert(now);
                self.overdue_at = Some(now);
            }
        }
    }
}

/// The events a running clock owes at `now`, in order. A clock found already
/// past due gets both, the warning first, so the timeline always reads 预警
/// before 超期. The sweeper calls this on claimed rows without loading whole clocks.
pub fn owed_events(
    warning_at: DateTime<Utc>,
    due_at: DateTime<Utc>,
    warned_at: Option<DateTime<Utc>>,
    overdue_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Vec<ClockEvent> {
    let mut owed = Vec::with_capacity(2);
    if overdue_at.is_some() {
        return owed;
    }
    if warned_at.is_none() && warning_at.min(due_at) <= now {
        owed.push(ClockEvent::Warning);
    }
    if due_at <= now {
        owed.push(ClockEvent::Overdue);
    }
    owed
}

fn compute(
    calculator: &DeadlineCalculator,
    start: DateTime<Utc>,
    limit: Limit,
    pauses: &[Pause],
    warning_fraction: Option<f64>,
) -> Result<(DateTime<Utc>, DateTime<Utc>, Explanation), DeadlineError> {
    let mut deadline = calculator.compute_with_pauses(start, limit, pauses)?;
    if let Some(fraction) = warning_fraction
        && fraction != deadline.explanation.warning_fraction
    {
        deadline.warning_at = calculator.warning_with_pauses(start, limit, fraction, pauses)?;
        deadline.explanation.warning_fraction = fraction;
    }
    Ok((deadline.due, deadline.warning_at, deadline.explanation))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::deadline::{Calendar, DEFAULT_TZ, OfficeHours};
    use chrono::TimeZone;

    fn calculator() -> DeadlineCalculator {
        let calendar = Calendar::from_years(&[
            include_str!("../../calendars/cn-2025.json"),
            include_str!("../../calendars/cn-2026.json"),
        ])
        .expect("shipped calendars parse");
        DeadlineCalculator::new(calendar, OfficeHours::standard(), DEFAULT_TZ).expect("calculator")
    }

    /// Local (Asia/Shanghai) wall time as UTC.
    fn local(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
        DEFAULT_TZ
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .expect("unambiguous")
            .with_timezone(&Utc)
    }

    fn handle_clock(limit: Limit, start: DateTime<Utc>) -> Clock {
        Clock::start(Phase::Handle, None, limit, start, &calculator(), None).expect("starts")
    }

    #[test]
    fn a_new_clock_owes_its_warning_first() {
        // Mon 2026-03-02 10:00 + 4 work hours: 10:00-12:00, 13:30-15:30.
        let clock = handle_clock(Limit::work_hours(4), local(2026, 3, 2, 10, 0));
        assert_eq!(clock.due_at, local(2026, 3, 2, 15, 30));
        assert!(clock.warning_at < clock.due_at);
        assert_eq!(clock.next_check_at(), Some(clock.warning_at));
        assert!(clock.owed_events(local(2026, 3, 2, 10, 30)).is_empty());
        assert_eq!(
            clock.owed_events(clock.warning_at),
            vec![ClockEvent::Warning]
        );
        assert_eq!(
            clock.owed_events(clock.due_at),
            vec![ClockEvent::Warning, ClockEvent::Overdue]
        );
    }

    #[test]
    fn recorded_events_are_never_owed_again() {
        let mut clock = handle_clock(Limit::work_hours(4), local(2026, 3, 2, 10, 0));
        let warning_at = clock.warning_at;
        clock.record(ClockEvent::Warning, warning_at);
        assert_eq!(clock.next_check_at(), Some(clock.due_at));
        assert!(clock.owed_events(warning_at).is_empty());
        let due = clock.due_at;
        assert_eq!(clock.owed_events(due), vec![ClockEvent::Overdue]);
        clock.record(ClockEvent::Overdue, due);
        assert_eq!(clock.next_check_at(), None);
        assert!(
            clock
                .owed_events(due + chrono::Duration::days(30))
                .is_empty()
        );
    }

    #[test]
    fn overdue_without_a_warning_records_both() {
        let mut clock = handle_clock(Limit::work_hours(1), local(2026, 3, 2, 10, 0));
        clock.record(ClockEvent::Overdue, clock.due_at);
        assert!(clock.warned_at.is_some());
        assert_eq!(clock.next_check_at(), None);
    }

    #[test]
    fn stopped_and_paused_clocks_owe_nothing() {
        let start = local(2026, 3, 2, 10, 0);
        let mut clock = handle_clock(Limit::work_hours(1), start);
        clock.pause(start);
        assert_eq!(clock.next_check_at(), None);
        assert!(
            clock
                .owed_events(start + chrono::Duration::days(3))
                .is_empty()
        );
        clock.stop(start + chrono::Duration::hours(1));
        assert_eq!(clock.status, ClockStatus::Stopped);
        assert_eq!(clock.pauses.len(), 1, "the open pause is closed on stop");
        assert!(!clock.is_active());
    }

    #[test]
    fn a_pause_across_the_national_day_holiday_adds_only_the_working_time_paused() {
        // 3 work days from Mon 2026-09-28 09:00: receipt day not counted, so
        // due close of business of the 3rd working day. 9/29 Tue, 9/30 Wed are
        // working days, then 国庆 10/1-10/7 and Thu 10/8 is the third.
        let calc = calculator();
        let start = local(2026, 9, 28, 9, 0);
        let mut clock = Clock::start(Phase::Handle, None, Limit::work_days(3), start, &calc, None)
            .expect("starts");
        assert_eq!(clock.due_at, local(2026, 10, 8, 17, 30));
        // Suspended Wed 9/30 17:30 (after close) to Fri 10/9 08:30: the only
        // working time paused is Thu 10/8, one full office day.
        clock.pause(local(2026, 9, 30, 17, 30));
        clock
            .resume(local(2026, 10, 9, 8, 30), &calc)
            .expect("resumes");
        assert_eq!(clock.status, ClockStatus::Running);
        assert_eq!(clock.pauses.len(), 1);
        // One working day later: Fri 10/9 close of business (10/10 is a make-up
        // Saturday, but the lost day is only one).
        assert_eq!(clock.due_at, local(2026, 10, 9, 17, 30));
        assert_eq!(clock.explanation.pauses.len(), 1);
    }

    #[test]
    fn an_extended_due_time_moves_by_the_working_time_paused_not_the_calendar_time() {
        let calc = calculator();
        let start = local(2026, 9, 21, 9, 0);
        let mut clock = Clock::start(Phase::Handle, None, Limit::work_days(3), start, &calc, None)
            .expect("starts");
        // Extended to Fri 10/9 17:30, then suspended Wed 9/30 12:00 to Thu 10/8
        // 12:00: working time paused is 9/30 13:30–17:30 (4 h) and 10/8
        // 08:30–12:00 (3.5 h), 国庆 in between counting nothing.
        let extended = local(2026, 10, 9, 17, 30);
        clock.extend_to(extended, &calc).expect("extends");
        clock.pause(local(2026, 9, 30, 12, 0));
        clock
            .resume(local(2026, 10, 8, 12, 0), &calc)
            .expect("resumes");
        // 7.5 office hours after Fri 10/9 17:30: the make-up Saturday 10/10 holds
        // 7.5 office hours (08:30–12:00, 13:30–17:30), so it ends at its close.
        let due = local(2026, 10, 10, 17, 30);
        assert_eq!(clock.due_at, due);
        assert_eq!(clock.extended_to, Some(due));
        assert!(clock.warning_at <= due);
    }

    #[test]
    fn an_extension_moves_the_due_time_and_an_unsent_warning() {
        let start = local(2026, 3, 2, 10, 0);
        let mut clock = handle_clock(Limit::work_hours(4), start);
        let new_due = local(2026, 3, 6, 17, 30);
        clock.extend_to(new_due, &calculator()).expect("extends");
        assert_eq!(clock.due_at, new_due);
        assert_eq!(clock.extended_to, Some(new_due));
        // 4 work hours from Mon 10:00 became Mon 10:00 to Fri 17:30: 2 h + 4 h
        // on Monday and 30 h Tuesday to Friday, 36 office hours; 80 % is 28.8 h.
        // Monday to Thursday hold 28.5 h, so 18 minutes into Friday: 08:48.
        assert_eq!(clock.warning_at, local(2026, 3, 6, 8, 48));
        assert_eq!(clock.next_check_at(), Some(clock.warning_at));
    }

    #[test]
    fn an_extended_warning_counts_working_days_as_the_clock_does() {
        // 3 work days from Mon 3/2, extended to Mon 3/16 17:30: the days
        // counted are 3/3 (receipt day not counted) to 3/16, ten working days.
        // Eight of them are 80 %: close of business Thu 3/12, not a point
        // 80 % of the way through the calendar (Fri 3/13 evening).
        let calc = calculator();
        let mut clock = handle_clock(Limit::work_days(3), local(2026, 3, 2, 10, 0));
        clock
            .extend_to(local(2026, 3, 16, 17, 30), &calc)
            .expect("extends");
        assert_eq!(clock.warning_at, local(2026, 3, 12, 17, 30));

        // A warning already given stays where it was.
        let mut warned = handle_clock(Limit::work_days(3), local(2026, 3, 2, 10, 0));
        let given = warned.warning_at;
        warned.warned_at = Some(given);
        warned
            .extend_to(local(2026, 3, 16, 17, 30), &calc)
            .expect("extends");
        assert_eq!(warned.warning_at, given);
    }

    #[test]
    fn a_suspension_after_the_extended_date_gives_no_more_time() {
        // 3 work days from Mon 3/2 10:00, extended to Fri 3/6 17:30; suspended
        // only on Mon 3/9, once that date had passed: nothing was left to pause.
        let calc = calculator();
        let mut clock = handle_clock(Limit::work_days(3), local(2026, 3, 2, 10, 0));
        let extended = local(2026, 3, 6, 17, 30);
        clock.extend_to(extended, &calc).expect("extends");
        clock.pause(local(2026, 3, 9, 9, 0));
        clock
            .resume(local(2026, 3, 10, 9, 0), &calc)
            .expect("resumes");
        assert_eq!(clock.due_at, extended);
        assert_eq!(clock.extended_to, Some(extended));

        // Suspended before it, the office time left is kept: from Fri 3/6
        // 16:30 (one hour left) to Mon 3/9 09:00, due Mon 3/9 10:00.
        let mut early = handle_clock(Limit::work_days(3), local(2026, 3, 2, 10, 0));
        early.extend_to(extended, &calc).expect("extends");
        early.pause(local(2026, 3, 6, 16, 30));
        early
            .resume(local(2026, 3, 9, 9, 0), &calc)
            .expect("resumes");
        assert_eq!(early.due_at, local(2026, 3, 9, 10, 0));
    }

    #[test]
    fn a_suspension_on_the_receipt_day_leaves_an_extended_date_where_it_was() {
        // 3 work days from Mon 3/2 10:00 (due Thu 3/5 17:30), extended to Fri
        // 3/6 17:30, suspended Mon 14:00–16:00: Monday is the receipt day, never
        // counted, so the suspension took no time from the unit.
        let calc = calculator();
        let mut clock = handle_clock(Limit::work_days(3), local(2026, 3, 2, 10, 0));
        let extended = local(2026, 3, 6, 17, 30);
        clock.extend_to(extended, &calc).expect("extends");
        clock.pause(local(2026, 3, 2, 14, 0));
        clock
            .resume(local(2026, 3, 2, 16, 0), &calc)
            .expect("resumes");
        assert_eq!(clock.due_at, extended);
        // 80 % of Tue–Fri's 30 office hours: 24 h, Fri 10:00.
        assert_eq!(clock.warning_at, local(2026, 3, 6, 10, 0));
    }

    #[test]
    fn a_profile_warning_fraction_overrides_the_city_default() {
        let calc = calculator();
        let start = local(2026, 3, 2, 8, 30);
        let half = Clock::start(
            Phase::Sign,
            None,
            Limit::natural_hours(10),
            start,
            &calc,
            Some(0.5),
        )
        .expect("starts");
        assert_eq!(half.warning_at, start + chrono::Duration::hours(5));
        assert_eq!(half.explanation.warning_fraction, 0.5);
    }

    #[test]
    fn beyond_the_loaded_calendar_is_an_error() {
        let err = Clock::start(
            Phase::Handle,
            None,
            Limit::work_days(10),
            local(2026, 12, 28, 9, 0),
            &calculator(),
            None,
        )
        .expect_err("2027 is not loaded");
        assert!(matches!(err, DeadlineError::BeyondCalendar { .. }));
    }

    #[test]
    fn status_names_round_trip() {
        for s in [
            ClockStatus::Running,
            ClockStatus::Paused,
            ClockStatus::Stopped,
        ] {
            assert_eq!(ClockStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(ClockStatus::parse("ticking"), None);
    }
}
