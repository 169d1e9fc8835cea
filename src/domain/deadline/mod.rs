//! Case deadlines on the Chinese working calendar.
//!
//! * [`Calendar`]: holidays and 调休 make-up workdays per jurisdiction, parsed
//!   from one JSON document per year (no I/O here; the service loads files).
//! * [`OfficeHours`]: office periods per city, optionally summer hours.
//! * [`DeadlineCalculator`]: due and 预警 warning times for [`Limit`]s in work
//!   hours, work days (民法典 第201/203条: the day of receipt is not counted,
//!   the deadline is close of business of the N-th working day) or natural
//!   hours, with pauses, and an [`Explanation`] of the inputs used.
//! * [`DeadlineProfile`]: per-category/urgency phase limits (types only).
//!
//! Deadlines past the last loaded calendar day are an error
//! ([`DeadlineError::BeyondCalendar`]), never a weekends-only guess.

mod calendar;
mod compute;
mod office_hours;
mod profile;

pub use calendar::{Calendar, CalendarError, CalendarYear, HolidaySpan, UPLOADABLE_YEARS};
pub use compute::{
    DEFAULT_TZ, DEFAULT_WARNING_FRACTION, Deadline, DeadlineCalculator, DeadlineError, Explanation,
    Pause, local_midnight,
};
pub use office_hours::{MonthDay, OfficeHours, OfficeHoursError, Period, Seasonal};
pub use profile::{ANY_CATEGORY, DeadlineProfile, Limit, PhaseLimits, Unit, Urgency};
