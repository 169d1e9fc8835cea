//! Hand-checked tables. Times are Asia/Shanghai local wall time.

use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeZone, Utc};

use super::super::{
    Calendar, DEFAULT_TZ, DeadlineCalculator, DeadlineError, Limit, OfficeHours, Period, Seasonal,
};

const CN_2025: &str = include_str!("../../../../calendars/cn-2025.json");
const CN_2026: &str = include_str!("../../../../calendars/cn-2026.json");

fn calc() -> DeadlineCalculator {
    let cal = Calendar::from_years(&[CN_2025, CN_2026]).expect("shipped calendars");
    DeadlineCalculator::new(cal, OfficeHours::standard(), DEFAULT_TZ).expect("calculator")
}

/// "YYYY-MM-DD HH:MM" in Shanghai time → UTC.
fn at(s: &str) -> DateTime<Utc> {
    let local = NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M").expect("test time");
    DEFAULT_TZ
        .from_local_datetime(&local)
        .single()
        .expect("unambiguous")
        .with_timezone(&Utc)
}

fn d(s: &str) -> NaiveDate {
    s.parse().expect("test date")
}

fn wd(n: u32) -> Limit {
    Limit::work_days(n)
}
fn wh(n: u32) -> Limit {
    Limit::work_hours(n)
}
fn nh(n: u32) -> Limit {
    Limit::natural_hours(n)
}

#[test]
fn due_table() {
    let c = calc();
    let cases: &[(&str, Limit, &str, &str)] = &[
        // --- work days across 春节 2026 (2/14 Sat make-up, 2/15–2/23 off)
        (
            "2026-02-13 10:00",
            wd(3),
            "2026-02-25 17:30",
            "issue example",
        ),
        (
            "2026-02-13 10:00",
            wd(1),
            "2026-02-14 17:30",
            "make-up Saturday counts",
        ),
        (
            "2026-02-13 10:00",
            wd(2),
            "2026-02-24 17:30",
            "holiday skipped",
        ),
        (
            "2026-02-13 20:00",
            wd(1),
            "2026-02-14 17:30",
            "after hours: receipt day still 2/13",
        ),
        (
            "2026-02-13 00:30",
            wd(1),
            "2026-02-14 17:30",
            "local date, not UTC date (2/12 UTC)",
        ),
        (
            "2026-02-14 09:00",
            wd(1),
            "2026-02-24 17:30",
            "received on make-up Saturday",
        ),
        (
            "2026-02-15 10:00",
            wd(1),
            "2026-02-24 17:30",
            "received on holiday",
        ),
        (
            "2026-02-15 10:00",
            wd(2),
            "2026-02-25 17:30",
            "received on holiday, 2 days",
        ),
        (
            "2026-02-27 10:00",
            wd(1),
            "2026-02-28 17:30",
            "second make-up Saturday",
        ),
        (
            "2026-02-27 10:00",
            wd(2),
            "2026-03-02 17:30",
            "Sunday 3/1 is rest",
        ),
        // --- 国庆 2026 (9/20 Sun and 10/10 Sat make-up; 9/25–9/27, 10/1–10/7 off)
        (
            "2026-09-18 10:00",
            wd(1),
            "2026-09-20 17:30",
            "make-up Sunday 9/20",
        ),
        ("2026-09-18 10:00", wd(2), "2026-09-21 17:30", ""),
        (
            "2026-09-24 10:00",
            wd(1),
            "2026-09-28 17:30",
            "中秋 9/25–9/27 skipped",
        ),
        (
            "2026-09-30 10:00",
            wd(1),
            "2026-10-08 17:30",
            "国庆 skipped",
        ),
        (
            "2026-09-30 10:00",
            wd(3),
            "2026-10-10 17:30",
            "make-up Saturday 10/10",
        ),
        (
            "2026-09-30 10:00",
            wd(4),
            "2026-10-12 17:30",
            "Sunday 10/11 is rest",
        ),
        (
            "2026-10-03 10:00",
            wd(1),
            "2026-10-08 17:30",
            "received during 国庆",
        ),
        (
            "2026-10-10 16:00",
            wd(1),
            "2026-10-12 17:30",
            "received on make-up Saturday",
        ),
        // --- 2025 spot checks
        (
            "2025-01-24 10:00",
            wd(1),
            "2025-01-26 17:30",
            "make-up Sunday 1/26",
        ),
        (
            "2025-01-24 10:00",
            wd(3),
            "2025-02-05 17:30",
            "春节 1/28–2/4 skipped",
        ),
        (
            "2025-02-07 10:00",
            wd(1),
            "2025-02-08 17:30",
            "make-up Saturday 2/8",
        ),
        (
            "2025-04-25 10:00",
            wd(1),
            "2025-04-27 17:30",
            "make-up Sunday 4/27",
        ),
        (
            "2025-04-30 10:00",
            wd(1),
            "2025-05-06 17:30",
            "劳动节 skipped",
        ),
        (
            "2025-05-30 10:00",
            wd(1),
            "2025-06-03 17:30",
            "端午 5/31–6/2 skipped",
        ),
        (
            "2025-09-26 10:00",
            wd(1),
            "2025-09-28 17:30",
            "make-up Sunday 9/28",
        ),
        (
            "2025-09-30 10:00",
            wd(1),
            "2025-10-09 17:30",
            "国庆+中秋 10/1–10/8",
        ),
        (
            "2025-09-30 10:00",
            wd(3),
            "2025-10-11 17:30",
            "make-up Saturday 10/11",
        ),
        (
            "2025-12-31 10:00",
            wd(1),
            "2026-01-04 17:30",
            "across the year files",
        ),
        // --- work hours: lunch, overnight, boundaries
        (
            "2026-03-02 08:30",
            wh(4),
            "2026-03-02 14:00",
            "3.5h to 12:00, 0.5h after lunch",
        ),
        (
            "2026-03-02 09:00",
            wh(3),
            "2026-03-02 12:00",
            "exact end at period end stays 12:00",
        ),
        ("2026-03-02 08:30", wh(7), "2026-03-02 17:00", ""),
        (
            "2026-03-02 08:30",
            wh(15),
            "2026-03-03 17:30",
            "two full days end at close",
        ),
        ("2026-03-02 08:30", wh(8), "2026-03-03 09:00", "overnight"),
        (
            "2026-03-02 16:30",
            wh(2),
            "2026-03-03 09:30",
            "overnight from afternoon",
        ),
        (
            "2026-03-02 07:00",
            wh(1),
            "2026-03-02 09:30",
            "before office hours",
        ),
        (
            "2026-03-02 12:30",
            wh(1),
            "2026-03-02 14:30",
            "during lunch",
        ),
        (
            "2026-03-02 12:00",
            wh(1),
            "2026-03-02 14:30",
            "at lunch start",
        ),
        (
            "2026-03-02 13:30",
            wh(1),
            "2026-03-02 14:30",
            "at afternoon start",
        ),
        ("2026-03-02 17:30", wh(1), "2026-03-03 09:30", "at close"),
        ("2026-03-02 20:00", wh(1), "2026-03-03 09:30", "evening"),
        (
            "2026-03-06 17:00",
            wh(1),
            "2026-03-09 09:00",
            "Friday to Monday",
        ),
        (
            "2026-02-13 16:30",
            wh(2),
            "2026-02-14 09:30",
            "into make-up Saturday",
        ),
        ("2026-02-14 16:30", wh(2), "2026-02-24 09:30", "across 春节"),
        (
            "2026-10-03 10:00",
            wh(1),
            "2026-10-08 09:30",
            "start on holiday",
        ),
        (
            "2026-09-19 10:00",
            wh(1),
            "2026-09-20 09:30",
            "Saturday start, Sunday make-up",
        ),
        // --- natural hours ignore the calendar
        ("2026-02-13 10:00", nh(24), "2026-02-14 10:00", ""),
        (
            "2026-02-13 10:00",
            nh(48),
            "2026-02-15 10:00",
            "holiday irrelevant",
        ),
        ("2026-02-13 23:30", nh(1), "2026-02-14 00:30", ""),
        (
            "2027-06-01 10:00",
            nh(2),
            "2027-06-01 12:00",
            "no calendar needed",
        ),
        // --- zero limits are due at once
        ("2026-03-02 12:30", wh(0), "2026-03-02 12:30", ""),
        ("2026-03-02 20:00", wd(0), "2026-03-02 20:00", ""),
        ("2026-03-02 20:00", nh(0), "2026-03-02 20:00", ""),
    ];
    for &(start, limit, expected, why) in cases {
        let got = c.due(at(start), limit);
        assert_eq!(got, Ok(at(expected)), "{start} + {limit} ({why})");
        // The general path must agree with the work-day fast path.
        assert_eq!(
            c.due_with_pauses(at(start), limit, &[]),
            Ok(at(expected)),
            "{start} + {limit}"
        );
        assert_eq!(
            c.compute(at(start), limit).map(|x| x.due),
            Ok(at(expected)),
            "{start} + {limit}"
        );
    }
}

#[test]
fn calendar_range_errors() {
    let c = calc();
    let beyond = DeadlineError::BeyondCalendar {
        last_loaded: d("2026-12-31"),
    };
    let before = DeadlineError::BeforeCalendar {
        first_loaded: d("2025-01-01"),
    };
    let cases: &[(&str, Limit, Result<&str, &DeadlineError>)] = &[
        ("2026-12-30 10:00", wd(1), Ok("2026-12-31 17:30")),
        ("2026-12-30 10:00", wd(2), Err(&beyond)),
        ("2026-12-31 10:00", wd(1), Err(&beyond)),
        ("2026-12-31 16:00", wh(1), Ok("2026-12-31 17:00")),
        ("2026-12-31 16:00", wh(2), Err(&beyond)),
        ("2026-12-31 16:00", wh(1000), Err(&beyond)),
        ("2027-01-05 10:00", wh(1), Err(&beyond)),
        ("2027-01-05 10:00", wd(1), Err(&beyond)),
        ("2024-12-31 10:00", wd(1), Err(&before)),
        ("2024-12-31 10:00", wh(1), Err(&before)),
        ("2025-01-01 00:00", wd(1), Ok("2025-01-02 17:30")),
        ("2026-02-13 10:00", wd(u32::MAX), Err(&beyond)),
        (
            "2026-02-13 10:00",
            wh(u32::MAX),
            Err(&DeadlineError::Overflow),
        ),
    ];
    for &(start, limit, expected) in cases {
        let got = c.due(at(start), limit);
        assert_eq!(
            got,
            expected.map(at).map_err(Clone::clone),
            "{start} + {limit}"
        );
    }
    // Huge natural limits are reported, never wrapped.
    assert_eq!(
        c.due(at("2026-01-01 00:00"), nh(u32::MAX)),
        Err(DeadlineError::Overflow)
    );
}

#[test]
fn pauses_table() {
    let c = calc();
    type P = &'static [(&'static str, &'static str)];
    let cases: &[(&str, Limit, P, &str, &str)] = &[
        (
            "2026-03-02 08:30",
            wh(4),
            &[("2026-03-02 09:00", "2026-03-02 10:00")],
            "2026-03-02 15:00",
            "1h pause",
        ),
        (
            "2026-03-02 08:30",
            wh(4),
            &[
                ("2026-03-02 09:00", "2026-03-02 10:00"),
                ("2026-03-02 09:30", "2026-03-02 10:30"),
            ],
            "2026-03-02 15:30",
            "overlapping pauses merged",
        ),
        (
            "2026-03-02 08:30",
            wh(4),
            &[
                ("2026-03-02 09:30", "2026-03-02 10:30"),
                ("2026-03-02 09:00", "2026-03-02 10:00"),
            ],
            "2026-03-02 15:30",
            "unsorted input",
        ),
        (
            "2026-03-02 08:30",
            wh(4),
            &[("2026-03-02 11:30", "2026-03-02 14:00")],
            "2026-03-02 15:00",
            "lunch inside pause not counted",
        ),
        (
            "2026-03-02 08:30",
            wh(4),
            &[("2026-03-02 14:00", "2026-03-02 16:00")],
            "2026-03-02 14:00",
            "pause at due: no effect",
        ),
        (
            "2026-03-02 08:30",
            wh(4),
            &[("2026-03-03 09:00", "2026-03-03 10:00")],
            "2026-03-02 14:00",
            "pause after due",
        ),
        (
            "2026-03-02 10:00",
            wh(2),
            &[("2026-03-02 08:00", "2026-03-02 11:00")],
            "2026-03-02 14:30",
            "pause before start clipped",
        ),
        (
            "2026-03-02 10:00",
            wh(2),
            &[("2026-03-01 08:00", "2026-03-01 11:00")],
            "2026-03-02 12:00",
            "pause wholly before start",
        ),
        (
            "2026-03-02 08:30",
            wh(4),
            &[("2026-03-02 10:00", "2026-03-02 10:00")],
            "2026-03-02 14:00",
            "empty pause",
        ),
        (
            "2026-02-12 09:00",
            wd(3),
            &[("2026-02-13 17:30", "2026-02-24 08:30")],
            "2026-02-25 17:30",
            "pause over 春节: only make-up 2/14 counts",
        ),
        (
            "2026-02-12 09:00",
            wd(3),
            &[("2026-02-15 00:00", "2026-02-23 23:59")],
            "2026-02-24 17:30",
            "pause wholly inside holiday subtracts nothing",
        ),
        (
            "2026-02-12 09:00",
            wd(3),
            &[("2026-02-12 10:00", "2026-02-12 16:00")],
            "2026-02-24 17:30",
            "pause on receipt day (not counted) has no effect",
        ),
        (
            "2026-02-12 09:00",
            wd(3),
            &[("2026-02-13 08:30", "2026-02-13 10:30")],
            "2026-02-25 10:30",
            "2h pause extends 2 office hours into next working day",
        ),
        (
            "2026-09-30 15:30",
            wh(2),
            &[("2026-09-30 16:30", "2026-10-08 09:00")],
            "2026-10-08 10:00",
            "pause over 国庆 subtracts 1h + 0.5h",
        ),
        (
            "2026-02-13 10:00",
            nh(24),
            &[("2026-02-13 12:00", "2026-02-13 14:00")],
            "2026-02-14 12:00",
            "natural pause",
        ),
        (
            "2026-02-13 10:00",
            nh(24),
            &[("2026-02-14 10:00", "2026-02-14 12:00")],
            "2026-02-14 10:00",
            "natural pause at due",
        ),
        (
            "2026-02-13 10:00",
            nh(24),
            &[
                ("2026-02-13 11:00", "2026-02-13 12:00"),
                ("2026-02-14 10:30", "2026-02-14 11:00"),
            ],
            "2026-02-14 11:30",
            "later pause pulled in by an earlier one",
        ),
        (
            "2026-12-31 10:00",
            wh(2),
            &[("2027-01-04 09:00", "2027-01-05 09:00")],
            "2026-12-31 12:00",
            "pause beyond the calendar after the due time is harmless",
        ),
    ];
    for &(start, limit, pauses, expected, why) in cases {
        let pauses: Vec<_> = pauses.iter().map(|&(a, b)| (at(a), at(b))).collect();
        let got = c.due_with_pauses(at(start), limit, &pauses);
        assert_eq!(got, Ok(at(expected)), "{start} + {limit} ({why})");
        let full = c
            .compute_with_pauses(at(start), limit, &pauses)
            .expect("compute");
        assert_eq!(full.due, at(expected), "{why}");
    }
}

#[test]
fn pause_errors() {
    let c = calc();
    let (s, e) = (at("2026-03-02 10:00"), at("2026-03-02 09:00"));
    assert_eq!(
        c.due_with_pauses(at("2026-03-02 08:30"), wh(1), &[(s, e)]),
        Err(DeadlineError::InvalidPause { start: s, end: e })
    );
    // A pause running past the calendar while the clock is still running.
    assert_eq!(
        c.due_with_pauses(
            at("2026-12-31 10:00"),
            wh(2),
            &[(at("2026-12-31 11:00"), at("2027-01-05 09:00"))]
        ),
        Err(DeadlineError::BeyondCalendar {
            last_loaded: d("2026-12-31")
        })
    );
}

#[test]
fn a_fixed_due_time_shifts_past_a_pause_by_the_counted_time() {
    let c = calc();
    // (clock start, limit, fixed due time, pause from, pause to, expected)
    let table: &[(&str, Limit, &str, &str, &str, &str)] = &[
        // 2 office hours paused (Tue 09:00–11:00) move Fri 17:30 past the
        // weekend to Mon 10:30.
        (
            "2026-03-02 08:30",
            wh(16),
            "2026-03-06 17:30",
            "2026-03-03 09:00",
            "2026-03-03 11:00",
            "2026-03-09 10:30",
        ),
        // Work days count office time too.
        (
            "2026-03-02 10:00",
            wd(3),
            "2026-03-06 17:30",
            "2026-03-03 09:00",
            "2026-03-03 11:00",
            "2026-03-09 10:30",
        ),
        // ... but never the receipt day (民法典 第201条): a pause on it moves
        // nothing, as it moves nothing on a computed due time.
        (
            "2026-03-02 10:00",
            wd(3),
            "2026-03-06 17:30",
            "2026-03-02 14:00",
            "2026-03-02 16:00",
            "2026-03-06 17:30",
        ),
        // A pause from the receipt day into the next counts the next day's
        // part only: Tue 08:30–12:00, 3.5 office hours, Fri 17:30 → Mon 12:00.
        (
            "2026-03-02 10:00",
            wd(3),
            "2026-03-06 17:30",
            "2026-03-02 14:00",
            "2026-03-03 12:00",
            "2026-03-09 12:00",
        ),
        // A pause over lunch and the night holds no office time: no move.
        (
            "2026-03-02 08:30",
            wh(16),
            "2026-03-06 17:30",
            "2026-03-03 17:30",
            "2026-03-04 08:30",
            "2026-03-06 17:30",
        ),
        // 国庆: 9/30 17:30 to 10/8 08:30 holds nothing either.
        (
            "2026-09-29 09:00",
            wd(3),
            "2026-10-09 12:00",
            "2026-09-30 17:30",
            "2026-10-08 08:30",
            "2026-10-09 12:00",
        ),
        // Natural hours move by the elapsed time, nights and holidays included.
        (
            "2026-03-02 08:30",
            nh(72),
            "2026-03-06 17:30",
            "2026-03-03 17:30",
            "2026-03-04 08:30",
            "2026-03-07 08:30",
        ),
    ];
    for &(start, limit, due, from, to, want) in table {
        assert_eq!(
            c.shift_past_pause(at(due), at(start), limit, (at(from), at(to))),
            Ok(at(want)),
            "{due} {limit:?} from {start}, paused {from}–{to}"
        );
    }
    let (s, e) = (at("2026-03-03 11:00"), at("2026-03-03 09:00"));
    assert_eq!(
        c.shift_past_pause(
            at("2026-03-06 17:30"),
            at("2026-03-02 08:30"),
            wh(16),
            (s, e)
        ),
        Err(DeadlineError::InvalidPause { start: s, end: e })
    );
    // Moving past the loaded calendar is an error, not a guess.
    assert!(matches!(
        c.shift_past_pause(
            at("2026-12-31 17:00"),
            at("2026-12-29 09:00"),
            wh(8),
            (at("2026-12-30 09:00"), at("2026-12-30 11:00"))
        ),
        Err(DeadlineError::BeyondCalendar { .. })
    ));
}

#[test]
fn warning_table() {
    let c = calc();
    let cases: &[(&str, Limit, f64, &str, &str)] = &[
        (
            "2026-03-02 08:30",
            wh(10),
            0.8,
            "2026-03-03 09:00",
            "8 of 10 work hours",
        ),
        ("2026-03-02 08:30", wh(4), 0.5, "2026-03-02 10:30", ""),
        (
            "2026-03-02 08:30",
            wh(4),
            1.0,
            "2026-03-02 14:00",
            "fraction 1 is the due time",
        ),
        (
            "2026-03-02 12:30",
            wh(4),
            0.0,
            "2026-03-02 12:30",
            "fraction 0 is the start",
        ),
        (
            "2026-02-13 10:00",
            wd(3),
            0.8,
            "2026-02-25 11:30",
            "18h of 22.5h: 2/14, 2/24, then 3h of 2/25",
        ),
        ("2026-02-13 10:00", wd(3), 1.0, "2026-02-25 17:30", ""),
        (
            "2026-02-13 10:00",
            wd(1),
            0.5,
            "2026-02-14 13:45",
            "3.75h: lunch skipped",
        ),
        (
            "2026-03-02 08:30",
            wh(7),
            0.5,
            "2026-03-02 12:00",
            "3.5h: period end preferred",
        ),
        ("2026-02-13 10:00", nh(10), 0.8, "2026-02-13 18:00", ""),
    ];
    for &(start, limit, f, expected, why) in cases {
        assert_eq!(
            c.warning_at(at(start), limit, f),
            Ok(at(expected)),
            "{start} {limit} {f} ({why})"
        );
    }
    for f in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
        assert!(
            matches!(
                c.warning_at(at("2026-03-02 08:30"), wh(1), f),
                Err(DeadlineError::InvalidFraction { .. })
            ),
            "{f}"
        );
    }
    assert!(calc().with_warning_fraction(2.0).is_err());
}

#[test]
fn warning_with_pauses_shifts_too() {
    let c = calc();
    let pauses = [(at("2026-03-02 09:00"), at("2026-03-02 10:00"))];
    assert_eq!(
        c.warning_with_pauses(at("2026-03-02 08:30"), wh(4), 0.5, &pauses),
        Ok(at("2026-03-02 11:30"))
    );
}

#[test]
fn explanation_records_inputs() {
    let c = calc().with_warning_fraction(0.75).expect("fraction");
    let pauses = [(at("2026-02-13 08:30"), at("2026-02-13 10:30"))];
    let r = c
        .compute_with_pauses(at("2026-02-12 09:00"), wd(3), &pauses)
        .expect("compute");
    assert_eq!(r.due, at("2026-02-25 10:30"));
    let e = &r.explanation;
    assert_eq!(e.limit, wd(3));
    assert_eq!(e.time_zone, "Asia/Shanghai");
    assert_eq!(e.calendar_jurisdiction, "CN");
    assert_eq!(e.calendar_years, vec![2025, 2026]);
    assert_eq!(e.calendar_version, "CN:2025@2025-v1,2026@2026-v1");
    assert_eq!(e.office_hours, OfficeHours::standard());
    assert_eq!(e.warning_fraction, 0.75);
    assert_eq!(e.paused_seconds, 7_200);
    assert_eq!(e.receipt_day, Some(d("2026-02-12")));
    assert_eq!(e.last_counted_day, Some(d("2026-02-24")));
    // Round-trips through JSON so it can be stored beside the case.
    let json = serde_json::to_string(&r).expect("serialize");
    let back: super::Deadline = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, r);
    // Recomputing from the explanation gives the same answer.
    let again = c
        .due_with_pauses(e.start, e.limit, &e.pauses)
        .expect("recompute");
    assert_eq!(again, r.due);
}

#[test]
fn summer_hours() {
    let t = |s: &str| s.parse().expect("time");
    let oh = OfficeHours::new(
        vec![
            Period::new(t("08:30"), t("12:00")),
            Period::new(t("13:30"), t("17:30")),
        ],
        Some(Seasonal {
            from: "06-01".parse().expect("md"),
            to: "09-30".parse().expect("md"),
            periods: vec![
                Period::new(t("08:00"), t("12:00")),
                Period::new(t("14:30"), t("18:00")),
            ],
        }),
    )
    .expect("office hours");
    let cal = Calendar::from_years(&[CN_2026]).expect("2026");
    let c = DeadlineCalculator::new(cal, oh, DEFAULT_TZ).expect("calculator");
    let cases: &[(&str, Limit, &str)] = &[
        ("2026-06-01 10:00", wd(1), "2026-06-02 18:00"),
        ("2026-09-30 10:00", wd(1), "2026-10-08 17:30"),
        ("2026-05-29 17:00", wh(1), "2026-06-01 08:30"),
        ("2026-06-01 11:00", wh(2), "2026-06-01 15:30"),
        ("2026-09-30 17:00", wh(2), "2026-10-08 09:30"), // 9/30 is still summer: 1h to 18:00
    ];
    for &(start, limit, expected) in cases {
        assert_eq!(
            c.due(at(start), limit),
            Ok(at(expected)),
            "{start} + {limit}"
        );
    }
}

#[test]
fn other_time_zone_shifts_local_days() {
    // Same CN calendar evaluated on Urumqi's customary UTC+6 would not be
    // in chrono-tz as a separate legal zone, so use a fixed-offset zone.
    let cal = Calendar::from_years(&[CN_2026]).expect("2026");
    let c = DeadlineCalculator::new(cal, OfficeHours::standard(), chrono_tz::Etc::GMTMinus6)
        .expect("calculator");
    // 2026-02-13 20:00 UTC is 2/14 02:00 at UTC+6: receipt day is the make-up
    // Saturday, so one work day ends 2/24 17:30 local = 11:30 UTC.
    let start = Utc
        .with_ymd_and_hms(2026, 2, 13, 20, 0, 0)
        .single()
        .expect("utc");
    let due = Utc
        .with_ymd_and_hms(2026, 2, 24, 11, 30, 0)
        .single()
        .expect("utc");
    assert_eq!(c.due(start, wd(1)), Ok(due));
}

#[test]
fn a_day_begins_at_the_citys_midnight() {
    let day = NaiveDate::from_ymd_opt(2026, 12, 1).expect("date");
    let begins = Utc
        .with_ymd_and_hms(2026, 11, 30, 16, 0, 0)
        .single()
        .expect("utc");
    assert_eq!(
        super::local_midnight(chrono_tz::Asia::Shanghai, day),
        Some(begins)
    );
}
