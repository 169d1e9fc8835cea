//! One integration-test binary: real HTTP against the real application.

mod admin;
mod auth;
#[path = "../support/calendar_stand_in.rs"]
mod calendar_stand_in;
mod cases;
mod cli;
mod deadlines;
mod helpers;
mod ops;
mod photos;
mod reports;
mod routing;
