//! Tests and benchmarks walk cases through the workflow from "now", so late in
//! the last year the shipped calendars hold, their deadlines would reach past it
//! and be refused. Until the State Council publishes the next year, they get a
//! stand-in for it: weekends off, no holidays, its version saying what it is.
//! It lives only here, outside the service, which never guesses a year.

use chrono::Datelike;
use civicsnap::domain::deadline::CalendarYear;
use civicsnap::state::{AppState, now};

/// How far ahead of today the calendar must reach for a test's or benchmark's
/// deadlines (the longest demo limit is ten working days).
const AHEAD: chrono::Duration = chrono::Duration::days(120);

/// Loads stand-in years up to [`AHEAD`] of today, if the loaded calendar ends
/// sooner, and rebuilds the deadline book.
pub async fn cover_the_coming_months(state: &AppState) {
    let book = state.workflow.deadlines().book();
    let Some(last) = book
        .calculator(None)
        .map(|calculator| calculator.calendar().last_loaded())
    else {
        return;
    };
    let needed = (now() + AHEAD).year();
    let stand_ins: Vec<CalendarYear> = (last.year() + 1..=needed)
        .map(|year| {
            serde_json::from_value(serde_json::json!({
                "jurisdiction": "CN",
                "year": year,
                "version": format!("test-stand-in-{year}-weekends-only"),
                "holidays": [],
                "workdays": [],
            }))
            .expect("a stand-in year")
        })
        .collect();
    if stand_ins.is_empty() {
        return;
    }
    let actor = civicsnap::store::Actor {
        id: None,
        role: "system".into(),
    };
    let repo = state.repo.as_ref();
    repo.save_calendar_years(&stand_ins, &actor, now(), &|_| Ok(()))
        .await
        .expect("stand-in calendar years saved")
        .expect("stand-in calendar years pass");
    state
        .workflow
        .deadlines()
        .refresh(repo)
        .await
        .expect("deadline book rebuilt");
}
